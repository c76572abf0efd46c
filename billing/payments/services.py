"""Member payments' use cases: start a payment, confirm it exactly once (notification, Stripe event
or reconciliation poll — any of them, in any order, any number of times, concurrently), refund it
through the provider, and the merchant's provider credentials.

Exactly once: an order moves ``pending → paid`` by one conditional update in the same transaction
(a savepoint of it) as its fulfilment, whose ledger entry is keyed ``payment:{order_id}``. Whoever
loses the race finds the order already paid and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lianka.alliance.ledger import queries as ledger_queries
from lianka.alliance.ledger import services as ledger
from lianka.billing import queries as billing_q
from lianka.billing.payments import crypto, registry
from lianka.billing.payments import queries as q
from lianka.billing.payments.contract import PaidOrder
from lianka.billing.payments.errors import (
    BadCredentials,
    NotificationInvalid,
    OrderNotRefundable,
    PaymentsNotConfigured,
    ProviderFailed,
    RefundInProgress,
    RefundTooLarge,
)
from lianka.billing.payments.providers import OrderRequest, Outcome, Provider, RefundState
from lianka.billing.payments.providers.stripe import StripePayments, event_outcome
from lianka.billing.payments.providers.stripe import refund_state as stripe_refund_state
from lianka.billing.payments.providers.wechatpay import WeChatCredentials, WeChatPayments, transaction_outcome
from lianka.billing.payments.providers.wechatpay import refund_state as wechat_refund_state
from lianka.billing.payments.queries import Order, Refund
from lianka.billing.queries import EventRow
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import BadRequest, DomainError, NotFound
from lianka.platform.log import get_logger
from lianka.platform.metrics import count_webhook_rejected
from lianka.platform.outbox import enqueue
from lianka.platform.settings import Settings
from lianka.tenants.pos.stored_value import book_sv_refund
from lianka.tenants.services import accounts, rules
from lianka.tenants.services.programme import programme_at

log = get_logger(__name__)
WECHATPAY = "wechatpay"
STRIPE = "stripe"
SCOPE = "payments"
#: the reconciliation poll asks the provider about orders pending for longer than this
POLL_AFTER = timedelta(minutes=5)
PROVIDERS = (STRIPE, WECHATPAY)
WECHAT_FIELDS = ("mchid", "serial_no", "private_key", "apiv3_key", "appid")


@dataclass(frozen=True)
class PaymentStart:
    order_id: uuid.UUID
    provider: str
    status: str
    #: where to send the member (Stripe's hosted page, WeChat's H5 page); None for JSAPI
    redirect_url: str | None
    #: what a WeChat JSAPI client passes to ``WeixinJSBridge`` (empty otherwise)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    refund: Refund
    order: Order
    replayed: bool


# --- providers and credentials ------------------------------------------------------------------------

_wechat_clients: dict[tuple[uuid.UUID, datetime, str], WeChatPayments] = {}


async def _provider(uow: UnitOfWork, settings: Settings, tenant: uuid.UUID, only: str | None = None) -> Provider:
    """The merchant's provider, built from its decrypted credentials; a merchant with none pays
    through the installation's own Stripe account when one is configured. ``only``: the provider an
    existing order was paid through (polls and refunds go there even after the merchant switched)."""
    row = await q.credentials(uow, tenant)
    if row is not None and only is not None and row.provider != only:
        row = None
    if row is None and only == WECHATPAY:
        raise PaymentsNotConfigured("The WeChat Pay credentials this order was paid with are gone")
    if row is None:
        if settings.stripe_secret_key:
            return StripePayments(settings.stripe_secret_key, settings.stripe_api_base, settings.stripe_webhook_secret)
        raise PaymentsNotConfigured("Choose a payment provider and enter its credentials in the console")
    values = crypto.unseal(settings, row.secret)
    if row.provider == STRIPE:
        return StripePayments(str(values["secret_key"]), settings.stripe_api_base, settings.stripe_webhook_secret)
    cache_key = (tenant, row.updated_at, settings.wechatpay_api_base)
    found = _wechat_clients.get(cache_key)
    if found is None:
        creds = WeChatCredentials(**{k: str(values[k]) for k in WECHAT_FIELDS})
        found = _wechat_clients[cache_key] = WeChatPayments(creds, settings.wechatpay_api_base)
    return found


@dataclass(frozen=True)
class CredentialsView:
    provider: str | None
    #: each field's last four characters (never more)
    hints: dict[str, str]
    updated_at: datetime | None


async def save_credentials(
    db: Database, settings: Settings, tenant: uuid.UUID, provider: str, values: Mapping[str, str]
) -> CredentialsView:
    """Choose the provider and store its credentials encrypted (replacing what was there)."""
    if provider == STRIPE:
        wanted: tuple[str, ...] = ("secret_key",)
    elif provider == WECHATPAY:
        wanted = WECHAT_FIELDS
    else:
        raise BadRequest(f"Unknown provider {provider!r}", field="provider")
    clean = {k: str(values.get(k) or "").strip() for k in wanted}
    missing = [k for k, v in clean.items() if not v]
    if missing:
        raise BadCredentials(f"Missing: {', '.join(missing)}", field=missing[0])
    if provider == WECHATPAY:
        if len(clean["apiv3_key"]) != 32:
            raise BadCredentials("The APIv3 key is 32 characters", field="apiv3_key")
        if "PRIVATE KEY" not in clean["private_key"]:
            raise BadCredentials("The private key is a PEM (apiclient_key.pem)", field="private_key")
    elif not clean["secret_key"].startswith(("sk_", "rk_")):
        raise BadCredentials("A Stripe secret key starts with sk_ or rk_", field="secret_key")
    hints = {k: crypto.last4(v) for k, v in clean.items() if k != "private_key"}
    if provider == WECHATPAY:
        hints["private_key"] = "PEM"
    async with db.uow(tenant) as uow:
        await q.save_credentials(uow, provider, crypto.seal(settings, clean), hints)
        await uow.commit()
    return await credentials_view(db, tenant)


async def credentials_view(db: Database, tenant: uuid.UUID) -> CredentialsView:
    async with db.uow(tenant) as uow:
        row = await q.credentials(uow, tenant)
    if row is None:
        return CredentialsView(None, {}, None)
    return CredentialsView(row.provider, row.hints, row.updated_at)


# --- starting a payment -------------------------------------------------------------------------------


async def start_member_payment(
    db: Database,
    settings: Settings,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    *,
    kind: str,
    purpose: Mapping[str, Any],
    amount: int,
    description: str,
    return_url: str,
    channel: str = "h5",
    openid: str | None = None,
    client_ip: str = "127.0.0.1",
) -> PaymentStart:
    """Create a pending order and its payment at the merchant's provider. ``return_url`` may hold
    ``{order_id}``. The order is committed before the provider is called, so a confirmation can
    never arrive for an order we do not have; a provider refusal marks it ``failed``."""
    registry.fulfilment(kind)  # an unknown kind is refused before anything is written
    if amount <= 0:
        raise BadRequest("The amount must be positive", field="amount")
    if channel not in ("h5", "jsapi"):
        raise BadRequest("channel is h5 or jsapi", field="channel")
    order_id = uuid.uuid4()
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        provider = await _provider(uow, settings, tenant)
        currency = await q.merchant_currency(uow)
        await q.insert_order(
            uow,
            order_id,
            member_id=member_id,
            kind=kind,
            purpose=dict(purpose),
            description=description,
            amount=amount,
            currency=currency,
            provider=provider.name,
        )
        await uow.commit()
    request = OrderRequest(
        tenant_id=tenant,
        order_id=order_id,
        amount=amount,
        currency=currency,
        description=description or kind,
        return_url=return_url.replace("{order_id}", str(order_id)),
        notify_url=f"{settings.identity.public_url}/api/v1/webhooks/wechatpay/{tenant}",
        channel=channel,
        openid=openid,
        client_ip=client_ip,
    )
    try:
        started = await provider.create(request)
    except ProviderFailed:
        async with db.uow(tenant) as uow:
            await q.mark_unpaid(uow, order_id, "failed")
            await uow.commit()
        raise
    async with db.uow(tenant) as uow:
        await q.set_checkout(
            uow, order_id, started.checkout_ref, {"redirect_url": started.redirect_url, "channel": channel}
        )
        await uow.commit()
    return PaymentStart(order_id, provider.name, "pending", started.redirect_url, started.params)


async def start_top_up(
    db: Database,
    settings: Settings,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    plan_code: str,
    *,
    return_url: str,
    channel: str = "h5",
    openid: str | None = None,
) -> PaymentStart:
    """A member buys a stored-value plan online: the order's amount is the plan's price now."""
    async with db.uow(tenant) as uow:
        _, programme = await programme_at(uow, datetime.now(UTC))
    plan = next((p for p in programme.stored_value.plans if p.code == plan_code and p.active), None)
    if plan is None:
        raise NotFound(f"no active stored-value plan {plan_code!r}", field="plan")
    return await start_member_payment(
        db,
        settings,
        tenant,
        member_id,
        kind="top_up",
        purpose={"plan": plan.code},
        amount=plan.pay,
        description=plan.name or plan.code,
        return_url=return_url,
        channel=channel,
        openid=openid,
    )


# --- confirmation, exactly once -----------------------------------------------------------------------


async def apply_outcome(uow: UnitOfWork, tenant: uuid.UUID, outcome: Outcome, provider: str) -> tuple[str, str | None]:
    """Apply what the provider says about an order of ``tenant`` (building block; switches the unit
    of work to the tenant). Returns an inbox status and why: ``processed``, ``ignored`` (not this
    merchant's order, not this provider's, the amount differs, nothing to do) or ``failed``."""
    await uow.set_tenant(tenant)
    order = await q.order(uow, outcome.order_id)
    if order is None:
        return "ignored", f"order {outcome.order_id} is not merchant {tenant}'s"
    if order.provider != provider:
        return "ignored", f"order {order.id} is paid through {order.provider}, not {provider}"
    if outcome.state == "paid":
        if outcome.amount is not None and outcome.amount != order.amount:
            return "ignored", f"paid {outcome.amount} but the order is for {order.amount}"
        if outcome.currency is not None and outcome.currency.upper() != order.currency:
            return "ignored", f"paid in {outcome.currency} but the order is in {order.currency}"
        paid_at = outcome.paid_at or datetime.now(UTC)
        ref = outcome.provider_ref or order.checkout_ref or str(order.id)
        try:
            async with uow.session.begin_nested():
                if not await q.mark_paid(uow, order.id, ref, paid_at):
                    return "processed", "already paid"
                paid = PaidOrder(
                    tenant, order.id, order.member_id, order.kind, order.purpose, order.amount, order.currency,
                    provider, ref, paid_at,
                )  # fmt: skip
                await registry.fulfilment(order.kind)(uow, paid)
        except DomainError as exc:
            log.warning("paid order not delivered", order=str(order.id), error=exc.detail)
            return "failed", f"{type(exc).__name__}: {exc.detail}"
        log.info("member payment confirmed", order=str(order.id), kind=order.kind, provider=provider)
        return "processed", None
    if outcome.state in ("failed", "expired"):
        moved = await q.mark_unpaid(uow, order.id, outcome.state)
        return "processed", None if moved else f"order is {order.status}"
    return "ignored", "nothing to do"


async def reconcile(db: Database, settings: Settings, tenant: uuid.UUID, order_id: uuid.UUID) -> Order:
    """The poll: ask the provider about a pending order and apply its answer (idempotent)."""
    async with db.uow(tenant) as uow:
        order = await q.order(uow, order_id)
        if order is None:
            raise NotFound("order not found", field="order_id")
        provider = await _provider(uow, settings, tenant, order.provider) if order.status == "pending" else None
    if provider is not None:
        outcome = await provider.query(order.id, order.checkout_ref)
        async with db.uow(tenant) as uow:
            await apply_outcome(uow, tenant, outcome, order.provider)
            await uow.commit()
    return await get_order(db, tenant, order_id)


async def reconcile_pending(db: Database, settings: Settings, tenant: uuid.UUID, as_of: datetime) -> int:
    """The reconciliation job for one merchant: every order pending since before ``as_of - POLL_AFTER``.
    Returns how many changed."""
    async with db.uow(tenant) as uow:
        pending = await q.pending_older_than(uow, as_of - POLL_AFTER, tenant)
    changed = 0
    for order in pending:
        try:
            after = await reconcile(db, settings, tenant, order.id)
        except (ProviderFailed, PaymentsNotConfigured) as exc:
            log.warning("reconciliation failed", order=str(order.id), error=exc.detail)
            continue
        changed += after.status != "pending"
    return changed


# --- the inbox (Stripe events through billing's endpoint, WeChat Pay notifications) ---------------------


async def receive_wechatpay_notification(
    db: Database, settings: Settings, ref: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, bool]:
    """Verify a WeChat Pay notification with the merchant's platform certificate, decrypt it, store it
    once in the inbox (by notification id) and queue its processing — one transaction, so the 2xx
    answer means it is safely stored. A bad signature is recorded and refused."""
    try:
        tenant = uuid.UUID(ref)
    except ValueError:
        raise NotFound("No such merchant") from None
    async with db.uow(tenant) as uow:
        if await q.credentials(uow, tenant) is None:
            raise NotFound("This merchant does not use WeChat Pay")
        provider = await _provider(uow, settings, tenant, WECHATPAY)
    try:
        data = await provider.verify(headers, body)
    except NotificationInvalid as exc:
        async with db.uow(system=True) as uow:
            row = await billing_q.record_refusal(uow, WECHATPAY, f"merchant {tenant}: {exc.detail}")
            await uow.commit()
        log.warning("wechatpay notification refused", row=row, reason=exc.detail)
        count_webhook_rejected(WECHATPAY)
        raise
    created = datetime.fromisoformat(str(data.get("create_time"))) if data.get("create_time") else datetime.now(UTC)
    payload = {**data, "lianka_tenant": str(tenant)}
    async with db.uow(system=True) as uow:
        row_id, first = await billing_q.store_event(
            uow, WECHATPAY, str(data["id"]), str(data.get("event_type", "")), created, payload
        )
        if first:
            await enqueue(uow, "billing_process_event", queue="billing", event_row=row_id)
        await uow.commit()
    return row_id, not first


def _refund_event(provider: str, payload: Mapping[str, Any]) -> tuple[uuid.UUID, RefundState, str] | None:
    """(our refund id, the provider's state, the merchant it names) when the event is about one of
    our refunds: WeChat Pay's ``REFUND.*`` notifications (``out_refund_no`` is our refund id), Stripe's
    ``refund.updated`` / ``refund.failed`` (metadata ``lianka_refund``)."""
    try:
        if provider == WECHATPAY and str(payload.get("event_type", "")).startswith("REFUND."):
            resource = payload.get("resource") or {}
            return (
                uuid.UUID(hex=str(resource.get("out_refund_no"))),
                wechat_refund_state(resource),
                str(payload.get("lianka_tenant")),
            )
        if provider == STRIPE and payload.get("type") in ("refund.updated", "refund.failed"):
            obj = (payload.get("data") or {}).get("object") or {}
            meta = obj.get("metadata") or {}
            if "lianka_refund" not in meta:
                return None
            return uuid.UUID(str(meta["lianka_refund"])), stripe_refund_state(obj), str(meta.get("lianka_tenant"))
    except ValueError:
        return None
    return None


async def process_inbox_event(uow: UnitOfWork, row: EventRow) -> tuple[str, uuid.UUID | None, str | None] | None:
    """billing's ``process_event`` hands every stored event here first: a member-payment event is
    applied and its (status, merchant, reason) returned; anything else is None (billing's own).
    The unit of work is back in system scope on return."""
    payload = row.payload or {}
    if (refund := _refund_event(row.provider, payload)) is not None:
        refund_id, state, claimed_tenant = refund
        try:
            tenant = uuid.UUID(str(claimed_tenant))
        except ValueError:
            return "ignored", None, "the refund event names no merchant"
        await uow.set_tenant(tenant)
        status, reason = await settle_refund(uow, tenant, refund_id, state)
        await uow.set_system()
        return status, tenant, reason
    if row.provider == STRIPE:
        outcome = event_outcome(payload)
        if outcome is None:
            return None
        claimed = outcome.tenant_ref
    elif row.provider == WECHATPAY:
        resource = payload.get("resource")
        if not isinstance(resource, dict) or "out_trade_no" not in resource:
            return "ignored", None, "not a transaction notification"
        try:
            outcome = transaction_outcome(resource)
        except ValueError:
            return "ignored", None, "out_trade_no is not one of our orders"
        claimed = str(payload.get("lianka_tenant"))
        if outcome.tenant_ref is not None and outcome.tenant_ref != claimed:
            return "ignored", None, f"the order names merchant {outcome.tenant_ref}, the notification {claimed}"
    else:
        return None
    try:
        tenant = uuid.UUID(str(claimed))
    except ValueError:
        return "ignored", None, "the event names no merchant"
    status, reason = await apply_outcome(uow, tenant, outcome, row.provider)
    await uow.set_system()
    return status, tenant, reason


# --- refunds ------------------------------------------------------------------------------------------


async def refund_order(
    db: Database, settings: Settings, tenant: uuid.UUID, order_id: uuid.UUID, *, key: str, amount: int | None = None
) -> RefundResult:
    """Send (part of) a paid order back through its provider; the same ``key`` is the same refund.

    A top-up's refund is booked like the till's stored-value refund (principal only, the bonus
    forfeited in proportion) *before* the provider is asked, so the member cannot spend the money
    meanwhile; if the provider refuses, the entry is reversed and the refund marked failed. Other
    kinds (a paid membership) book their own consequences; this sends the money and records it."""
    refund_id = uuid.uuid4()
    async with db.uow(tenant) as uow:
        order = await q.order(uow, order_id, lock=True)
        if order is None:
            raise NotFound("order not found", field="order_id")
        done = await q.refund_by_key(uow, order_id, key)
        if done is not None:
            return RefundResult(done, order, replayed=True)
        if order.status not in ("paid", "partially_refunded") or order.provider_ref is None:
            raise OrderNotRefundable(status=order.status)
        if await q.pending_refund(uow, order_id):
            raise RefundInProgress()
        left = order.amount - order.refunded_amount
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise RefundTooLarge(available=left, requested=amount)
        provider = await _provider(uow, settings, tenant, order.provider)
        forfeited = 0
        if order.kind == "top_up":
            booked = await book_sv_refund(
                uow,
                member_id=order.member_id,
                amount=amount,
                branch_id=await q.online_branch(uow),
                payment_method="online",
                entry_key=f"payment_refund:{refund_id}",
                scope=SCOPE,
                refs={"order": str(order_id), "refund": str(refund_id)},
            )
            forfeited = booked.bonus_forfeited
        await q.insert_refund(uow, refund_id, order_id, key, amount, forfeited)
        await q.add_refunded(uow, order_id, amount)
        await uow.commit()
    try:
        state = await provider.refund(
            order_id,
            order.provider_ref,
            refund_id=refund_id,
            amount=amount,
            total=order.amount,
            currency=order.currency,
            tenant_id=tenant,
        )
    except ProviderFailed as exc:
        async with db.uow(tenant) as uow:
            await _undo_refund(uow, tenant, order, refund_id, amount, exc.detail)
            await uow.commit()
        raise
    async with db.uow(tenant) as uow:
        # the money is back, or on its way (a notification or the poll finishes a pending refund)
        status = "succeeded" if state.status == "succeeded" else "pending"
        await q.finish_refund(uow, refund_id, status, state.provider_ref, None)
        refund = await q.refund_by_key(uow, order_id, key)
        after = await q.order(uow, order_id)
        await uow.commit()
    assert refund is not None and after is not None
    return RefundResult(refund, after, replayed=False)


async def _undo_refund(
    uow: UnitOfWork, tenant: uuid.UUID, order: Order, refund_id: uuid.UUID, amount: int, reason: str | None
) -> None:
    """The provider refused or failed a refund: it is marked failed, the order's refunded amount given
    back, and a top-up's booking reversed (the member holds the principal and bonus again)."""
    await q.finish_refund(uow, refund_id, "failed", None, reason)
    await q.add_refunded(uow, order.id, -amount)
    if order.kind == "top_up":
        entry = await ledger_queries.entry_by_key(uow, tenant, SCOPE, f"payment_refund:{refund_id}")
        if entry is not None:
            await ledger.reverse(uow, entry.id, key=f"payment_refund:{refund_id}:failed", scope=SCOPE)


async def settle_refund(
    uow: UnitOfWork, tenant: uuid.UUID, refund_id: uuid.UUID, state: RefundState
) -> tuple[str, str | None]:
    """A pending refund's end, from a notification or the poll (building block; tenant scope). Only a
    pending refund moves, so duplicates and late repeats change nothing: succeeded is recorded,
    failed undoes it (:func:`_undo_refund`). Returns (status, reason) for the inbox."""
    refund = await q.refund(uow, refund_id, lock=True)
    if refund is None:
        return "ignored", "not one of this merchant's refunds"
    if refund.status != "pending":
        return "ignored", f"the refund is already {refund.status}"
    if state.status == "pending":
        return "ignored", "the refund is still in progress"
    if state.status == "succeeded":
        await q.finish_refund(uow, refund_id, "succeeded", state.provider_ref or refund.provider_ref, None)
        return "processed", None
    order = await q.order(uow, refund.order_id, lock=True)
    assert order is not None
    await _undo_refund(uow, tenant, order, refund_id, refund.amount, state.reason)
    log.warning("refund failed at the provider", refund=str(refund_id), reason=state.reason)
    return "processed", None


async def reconcile_refunds(db: Database, settings: Settings, tenant: uuid.UUID, as_of: datetime) -> int:
    """The poll for refunds the provider accepted but has not finished. Returns how many ended."""
    async with db.uow(tenant) as uow:
        in_flight = await q.refunds_in_flight(uow, as_of - POLL_AFTER)
    ended = 0
    for refund in in_flight:
        assert refund.provider_ref is not None
        try:
            async with db.uow(tenant) as uow:
                order = await q.order(uow, refund.order_id)
                assert order is not None
                provider = await _provider(uow, settings, tenant, order.provider)
            state = await provider.refund_status(refund.id, refund.provider_ref)
        except (ProviderFailed, PaymentsNotConfigured) as exc:
            log.warning("refund reconciliation failed", refund=str(refund.id), error=exc.detail)
            continue
        async with db.uow(tenant) as uow:
            status, _ = await settle_refund(uow, tenant, refund.id, state)
            await uow.commit()
        ended += status == "processed"
    return ended


# --- reading ------------------------------------------------------------------------------------------


async def get_order(db: Database, tenant: uuid.UUID, order_id: uuid.UUID, member_id: uuid.UUID | None = None) -> Order:
    """One order of the merchant (of the member, when given); another's is a 404."""
    async with db.uow(tenant) as uow:
        order = await q.order(uow, order_id)
    if order is None or (member_id is not None and order.member_id != member_id):
        raise NotFound("order not found", field="order_id")
    return order


@dataclass(frozen=True)
class History:
    orders: list[Order]
    refunds: dict[uuid.UUID, list[Refund]]


async def member_history(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> History:
    async with db.uow(tenant) as uow:
        orders = await q.member_orders(uow, member_id)
        refunds = await q.refunds_of(uow, [o.id for o in orders]) if orders else []
    by_order: dict[uuid.UUID, list[Refund]] = {}
    for r in refunds:
        by_order.setdefault(r.order_id, []).append(r)
    return History(orders, by_order)


@dataclass(frozen=True)
class TopUpOffer:
    """What the portal's top-up page shows: the plans on sale and the member's stored value now."""

    plans: list[Any]
    principal: int
    bonus: int
    currency: str


async def top_up_offer(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> TopUpOffer:
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        now = datetime.now(UTC)
        _, programme = await programme_at(uow, now)
        balances = await accounts.balances(uow, member_id, now)
        currency = await q.merchant_currency(uow)
    plans = [p for p in programme.stored_value.plans if p.active]
    return TopUpOffer(plans, balances.sv_principal, balances.sv_bonus, currency)
