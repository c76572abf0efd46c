"""Billing use cases: the merchant's account (created lazily with its trial), Stripe Checkout and the
customer portal through the real ``stripe`` SDK, the webhook inbox (store first, process in a job),
the clock (trial and grace expiry), and the operators' list and re-processing of events.

Use cases take the ``Database`` and commit; ``process_event`` is a building block the job and the
operator's ``reprocess`` share. Calls to Stripe carry an idempotency key where a retry could create
a second object (the customer).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import stripe

from lianka.billing import domain, limits
from lianka.billing import queries as q
from lianka.billing.domain import Account, Limit, Plan, Status
from lianka.billing.payments import services as member_payments
from lianka.billing.payouts import webhooks as payout_webhooks
from lianka.billing.queries import EventRow
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import BadRequest, DomainError, NotFound, RuleViolation
from lianka.platform.log import get_logger
from lianka.platform.metrics import count_webhook_rejected
from lianka.platform.outbox import enqueue
from lianka.platform.settings import Settings

log = get_logger(__name__)
STRIPE = "stripe"
#: how old (seconds) a signed delivery may be: Stripe's SDK default, against replays of old captures
WEBHOOK_TOLERANCE_SECONDS = 300
PROCESS_ACTOR = "billing_process_event"
QUEUE = "billing"


class BillingNotConfigured(DomainError):
    """This installation has no Stripe key or webhook secret. A 409 (the server's state forbids the
    request) rather than a 5xx: nothing is broken, and retrying will not help until it is set."""

    type_slug = "billing-not-configured"
    title = "Billing is not configured"
    status = 409


class WebhookSignatureInvalid(DomainError):
    type_slug = "webhook-signature-invalid"
    title = "The webhook signature could not be verified"
    status = 400


class PlanNotPurchasable(RuleViolation):
    type_slug = "plan-not-purchasable"
    title = "This plan cannot be bought"


class NoStripeCustomer(RuleViolation):
    type_slug = "billing-no-customer"
    title = "There is no billing customer yet: subscribe to a plan first"


# --- Stripe ----------------------------------------------------------------------------------------


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """The SDK's client, pointed at ``LIANKA_STRIPE_API_BASE`` when set (the local stand-in)."""
    if not settings.stripe_secret_key:
        raise BillingNotConfigured("Set LIANKA_STRIPE_SECRET_KEY (and LIANKA_STRIPE_WEBHOOK_SECRET)")
    base: Any = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
    return stripe.StripeClient(
        settings.stripe_secret_key, base_addresses=base, http_client=stripe.HTTPXClient(), max_network_retries=2
    )


# --- the account -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    account: Account
    plan: Plan
    #: the plan whose limits apply now (the free plan once canceled)
    effective: Plan


async def ensure_account(uow: UnitOfWork, tenant: uuid.UUID, *, lock: bool = False) -> Account:
    """The merchant's account; created on first use with the trial counted from the sign-up, so a
    merchant read late still ends its trial 14 days after signing up (building block)."""
    found = await q.account(uow, tenant, lock=lock)
    if found is not None:
        return found
    signed_up = await q.merchant_created_at(uow, tenant)
    if signed_up is None:
        raise NotFound("No such merchant")
    await q.insert_account(uow, tenant, domain.new_account(signed_up))
    found = await q.account(uow, tenant, lock=lock)
    assert found is not None
    return found


async def subscription(db: Database, tenant: uuid.UUID) -> Subscription:
    async with db.uow(tenant) as uow:
        account = await ensure_account(uow, tenant)
        plan = await q.plan(uow, account.plan)
        effective = await q.plan(uow, domain.effective_plan(account))
        await uow.commit()
    assert plan is not None and effective is not None
    return Subscription(account, plan, effective)


async def plans(db: Database) -> list[Plan]:
    async with db.uow() as uow:
        return await q.plans(uow)


async def start_checkout(
    db: Database, settings: Settings, tenant: uuid.UUID, plan_code: str, *, success_url: str, cancel_url: str
) -> str:
    """A Stripe Checkout Session for ``plan_code`` (creating the merchant's Stripe customer once);
    returns the URL to send the merchant to. The subscription's metadata names the merchant and the
    plan, which the webhooks carry back."""
    client = stripe_client(settings)
    async with db.uow(tenant) as uow:
        plan = await q.plan(uow, plan_code)
        if plan is None:
            raise BadRequest(f"No plan {plan_code!r}", field="plan")
        if not plan.is_paid:
            raise PlanNotPurchasable("The free plan needs no checkout", field="plan")
        await limits.check_plan_fits(
            uow, tenant, plan
        )  # paying for a plan that is over its limits at once helps no one
        account = await ensure_account(uow, tenant, lock=True)  # one customer even under double clicks
        customer = account.stripe_customer_id
        if customer is None:
            params: dict[str, Any] = {
                "metadata": {"tenant_id": str(tenant)},
                "description": f"Lianka merchant {tenant}",
            }
            if email := await q.billing_email(uow, tenant):
                params["email"] = email
            created = await client.v1.customers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"lianka-customer-{tenant}"},
            )
            customer = created.id
            await q.save_account(uow, tenant, _with_customer(account, customer))
        await uow.commit()
    metadata = {"tenant_id": str(tenant), "plan": plan.code}
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": str(tenant),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": plan.currency.lower(),
                        "unit_amount": plan.price_minor,
                        "recurring": {"interval": "month"},
                        "product_data": {"name": f"Lianka {plan.name}", "metadata": {"plan": plan.code}},
                    },
                }
            ],
        }
    )
    if not session.url:
        raise BillingNotConfigured("Stripe returned a Checkout Session without a URL")
    return session.url


def _with_customer(account: Account, customer: str) -> Account:
    return replace(account, stripe_customer_id=customer)


async def open_portal(db: Database, settings: Settings, tenant: uuid.UUID, *, return_url: str) -> str:
    """A Stripe customer-portal session (card, invoices, cancellation); its URL."""
    client = stripe_client(settings)
    async with db.uow(tenant) as uow:
        account = await ensure_account(uow, tenant)
        await uow.commit()
    if account.stripe_customer_id is None:
        raise NoStripeCustomer()
    session = await client.v1.billing_portal.sessions.create_async(
        params={"customer": account.stripe_customer_id, "return_url": return_url}
    )
    return session.url


# --- the webhook inbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    row_id: int
    event_id: str
    duplicate: bool


async def receive_stripe_webhook(db: Database, settings: Settings, payload: bytes, signature: str | None) -> Received:
    """Verify a delivery with the SDK, store the event once and queue its processing, all in one
    transaction, so a 2xx means it is safely stored. A bad signature is recorded and refused."""
    if not settings.stripe_webhook_secret:
        raise BillingNotConfigured("Set LIANKA_STRIPE_WEBHOOK_SECRET")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, settings.stripe_webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        async with db.uow(system=True) as uow:
            row = await q.record_refusal(uow, STRIPE, reason)
            await uow.commit()
        log.warning("stripe webhook refused", row=row, reason=reason)
        count_webhook_rejected(STRIPE)
        raise WebhookSignatureInvalid("The Stripe-Signature header does not match this payload") from None
    body = event.to_dict()
    created = datetime.fromtimestamp(int(event.created), UTC)
    async with db.uow(system=True) as uow:
        row_id, first = await q.store_event(uow, STRIPE, event.id, event.type, created, body)
        if first:
            await enqueue(uow, PROCESS_ACTOR, queue=QUEUE, event_row=row_id)
        await uow.commit()
    return Received(row_id, event.id, duplicate=not first)


async def process_event(uow: UnitOfWork, row_id: int, *, retry: bool = False) -> str:
    """Apply one stored event to its merchant's account (system scope; building block). Returns the
    event's status; an event already processed or ignored is left as it is unless ``retry``."""
    row = await q.event(uow, row_id, lock=True)
    if row is None:
        raise NotFound(f"No billing event {row_id}")
    if row.status == "refused" or (row.status in ("processed", "ignored") and not retry):
        return row.status
    if payout_webhooks.handles(row.type):  # Stripe Connect: transfers and connected accounts (payouts)
        return await payout_webhooks.process(uow, row)
    if (paid := await member_payments.process_inbox_event(uow, row)) is not None:  # member payments' events
        return await _finish(uow, row, *paid)
    invoice = domain.invoice_from_event(row.payload or {})
    if invoice is not None and invoice.customer is not None:
        owner = await q.tenant_of_customer(uow, invoice.customer)
        if owner is not None:
            await q.upsert_invoice(uow, owner, _invoice_row(invoice))
    try:
        signal = domain.signal_from_event(row.payload or {})
    except domain.Unusable as why:
        return await _finish(uow, row, "ignored", None, str(why))
    tenant = await q.tenant_of_customer(uow, signal.customer) if signal.customer else None
    if tenant is None:
        return await _finish(uow, row, "ignored", None, f"Stripe customer {signal.customer!r} is no merchant's")
    if signal.tenant_ref is not None and signal.tenant_ref != str(tenant):
        reason = f"the object names merchant {signal.tenant_ref} but its customer is merchant {tenant}'s"
        return await _finish(uow, row, "ignored", None, reason)
    if signal.plan is not None and await q.plan(uow, signal.plan) is None:
        return await _finish(uow, row, "ignored", tenant, f"unknown plan {signal.plan!r}")
    account = await ensure_account(uow, tenant, lock=True)
    decision = domain.apply(account, signal)
    if not decision.applied:
        return await _finish(uow, row, "ignored", tenant, decision.reason)
    if decision.account != account:
        await q.save_account(uow, tenant, decision.account)
    log.info("billing event applied", stripe_event=row.event_id, type=row.type, status=decision.account.status.value)
    return await _finish(uow, row, "processed", tenant, None)


def _invoice_row(i: domain.InvoiceFacts) -> q.InvoiceRow:
    return q.InvoiceRow(
        stripe_invoice_id=i.id,
        number=i.number,
        currency=i.currency,
        amount_due=i.amount_due,
        amount_paid=i.amount_paid,
        status=i.status,
        hosted_invoice_url=i.hosted_invoice_url,
        period_start=i.period_start,
        period_end=i.period_end,
        created=i.created,
        event_at=i.at,
    )


async def _finish(uow: UnitOfWork, row: EventRow, status: str, tenant: uuid.UUID | None, reason: str | None) -> str:
    await q.finish_event(uow, row.id, status, tenant=tenant, reason=reason)
    return status


async def process_event_recording_failure(uow: UnitOfWork, row_id: int, *, retry: bool = False) -> str:
    """:func:`process_event` in a savepoint: an error rolls its effects back and marks the event
    ``failed`` with the error, for an operator to look at and ``lianka billing reprocess``."""
    try:
        async with uow.session.begin_nested():
            return await process_event(uow, row_id, retry=retry)
    except DomainError:
        raise
    except Exception as exc:
        log.exception("billing event failed", row=row_id)
        await q.finish_event(uow, row_id, "failed", tenant=None, reason=f"{type(exc).__name__}: {exc}"[:1000])
        return "failed"


async def reprocess(db: Database, row_id: int) -> EventRow:
    """An operator re-runs one event now (any status but refused); the ordering rule keeps a stale
    one from changing anything."""
    async with db.uow(system=True) as uow:
        await process_event_recording_failure(uow, row_id, retry=True)
        await uow.commit()
    async with db.uow(system=True) as uow:
        row = await q.event(uow, row_id)
    assert row is not None
    return row


async def list_events(db: Database, *, failed_only: bool = False, limit: int = 100) -> list[EventRow]:
    async with db.uow(system=True) as uow:
        return await q.events(uow, statuses=("failed",) if failed_only else None, limit=limit)


# --- the clock -------------------------------------------------------------------------------------


async def run_clock(db: Database, tenant: uuid.UUID, as_of: datetime) -> int:
    """Trial and grace expiry for one merchant as of ``as_of``: 1 when its status moved, else 0."""
    async with db.uow(tenant) as uow:
        account = await ensure_account(uow, tenant, lock=True)
        decision = domain.tick(account, as_of)
        if decision.applied:
            await q.save_account(uow, tenant, decision.account)
            log.info("billing clock", reason=decision.reason, status=decision.account.status.value)
        await uow.commit()
    return 1 if decision.applied else 0


is_restricted = domain.is_restricted


# --- enforcement -----------------------------------------------------------------------------------


async def may_configure(db: Database, tenant: uuid.UUID, adding: Limit | None = None) -> None:
    """Refuses (402) a configuration or marketing write of a restricted merchant, of one over a
    limit, or one that adds ``adding`` past the plan (the web layer's billing gate calls this)."""
    async with db.uow(tenant) as uow:
        await limits.check_config_write(uow, tenant, adding)
        await uow.commit()  # the account may have been created (lazily) by the check


# --- plan changes, cancellation, billing e-mail ------------------------------------------------------


class NoLiveSubscription(RuleViolation):
    type_slug = "billing-no-subscription"
    title = "There is no live subscription to change: subscribe to a plan first"


class SamePlan(RuleViolation):
    type_slug = "billing-same-plan"
    title = "The subscription is already on this plan"


async def _live(uow: UnitOfWork, tenant: uuid.UUID) -> Account:
    account = await ensure_account(uow, tenant, lock=True)
    if account.stripe_subscription_id is None or account.status is Status.CANCELED:
        raise NoLiveSubscription()
    return account


async def change_plan(db: Database, settings: Settings, tenant: uuid.UUID, plan_code: str) -> domain.Change:
    """Move the live subscription to ``plan_code`` at once with proration (an upgrade invoices the
    difference now, a downgrade credits the next invoice). A downgrade the merchant does not fit —
    more branches, members or staff than the new plan allows, or an alliance on a plan without
    alliances — is refused (402 ``plan-limit-reached``) before Stripe is called. Our account follows
    Stripe's ``customer.subscription.updated`` event, as for every other change."""
    client = stripe_client(settings)
    async with db.uow(tenant) as uow:
        target = await q.plan(uow, plan_code)
        if target is None:
            raise BadRequest(f"No plan {plan_code!r}", field="plan")
        if not target.is_paid:
            raise PlanNotPurchasable("To stop paying, cancel the subscription at the end of its period", field="plan")
        account = await _live(uow, tenant)
        current = await q.plan(uow, account.plan)
        assert current is not None
        if current.code == target.code:
            raise SamePlan(field="plan")
        await limits.check_plan_fits(uow, tenant, target)
        await uow.commit()
    change = domain.plan_change(current, target)
    sub_id = account.stripe_subscription_id
    assert sub_id is not None
    sub = await client.v1.subscriptions.retrieve_async(sub_id)
    item = sub["items"]["data"][0]
    product = item["price"]["product"]
    await client.v1.subscriptions.update_async(
        sub_id,
        params={
            "items": [
                {
                    "id": item["id"],
                    "price_data": {
                        "currency": target.currency.lower(),
                        "unit_amount": target.price_minor,
                        "recurring": {"interval": "month"},
                        "product": product if isinstance(product, str) else product["id"],
                    },
                }
            ],
            "proration_behavior": domain.PRORATION[change],
            "cancel_at_period_end": False,
            "metadata": {"tenant_id": str(tenant), "plan": target.code},
        },
        # a double click or a retry is one change; a later change back and forth is a new one
        options={"idempotency_key": f"lianka-plan-{tenant}-{sub_id}-{target.code}-{_stamp(account)}"},
    )
    log.info("plan change requested", change=change.value, plan=target.code)
    return change


def _stamp(account: Account) -> str:
    return str(int(account.state_at.timestamp())) if account.state_at else "0"


async def set_cancel_at_period_end(db: Database, settings: Settings, tenant: uuid.UUID, *, cancel: bool) -> None:
    """Cancel at the end of the paid period (``cancel=True``) or undo that; nothing stops before
    the period ends. The account follows the ``customer.subscription.updated`` event."""
    client = stripe_client(settings)
    async with db.uow(tenant) as uow:
        account = await _live(uow, tenant)
        await uow.commit()
    sub_id = account.stripe_subscription_id
    assert sub_id is not None
    await client.v1.subscriptions.update_async(
        sub_id,
        params={"cancel_at_period_end": cancel},
        options={"idempotency_key": f"lianka-cancel-{tenant}-{sub_id}-{cancel}-{_stamp(account)}"},
    )


class BillingEmailInvalid(BadRequest):
    type_slug = "validation-failed"


def _clean_email(email: str) -> str | None:
    email = email.strip()
    if not email:
        return None
    local, at, domain_part = email.partition("@")
    if not at or not local or "." not in domain_part or len(email) > 320 or any(c.isspace() for c in email):
        raise BillingEmailInvalid("Enter an e-mail address such as finance@example.com", field="email")
    return email


async def set_billing_email(db: Database, settings: Settings, tenant: uuid.UUID, email: str) -> str | None:
    """Where invoices and receipts go: stored, and set on the Stripe customer when there is one."""
    cleaned = _clean_email(email)
    async with db.uow(tenant) as uow:
        account = await ensure_account(uow, tenant, lock=True)
        await q.set_billing_email(uow, tenant, cleaned)
        await uow.commit()
    if account.stripe_customer_id is not None:
        await stripe_client(settings).v1.customers.update_async(
            account.stripe_customer_id, params={"email": cleaned or ""}
        )
    return cleaned


# --- the console's overview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    subscription: Subscription
    usage: domain.Usage
    plans: list[Plan]
    invoices: list[q.InvoiceRow]
    billing_email: str | None
    #: the counted limits the merchant is over now (its next configuration write is refused)
    over: list[Limit]


async def overview(db: Database, tenant: uuid.UUID) -> Overview:
    """Everything the billing page shows, read in one transaction."""
    async with db.uow(tenant) as uow:
        account = await ensure_account(uow, tenant)
        plan = await q.plan(uow, account.plan)
        effective = await q.plan(uow, domain.effective_plan(account))
        assert plan is not None and effective is not None
        used = await q.usage(uow, tenant)
        result = Overview(
            Subscription(account, plan, effective),
            used,
            await q.plans(uow),
            await q.invoices(uow, tenant),
            await q.billing_email(uow, tenant),
            domain.over(effective.limits, used),
        )
        await uow.commit()
    return result
