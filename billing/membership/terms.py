"""Use cases and building blocks on membership terms: a purchase at the till or online (fulfilment of a
paid order), cancellation, a refund of unused whole months, and what a member sees.

Ledger (decision 0034): a purchase debits what received the money — ``cash`` at the till, the
provider's ``payments_clearing`` online — and credits the merchant's ``deferred_membership_revenue``
(a liability); the monthly job moves each ended month's share to ``membership_revenue``; a refund
debits the deferred revenue of the months not begun and pays them back the way they came in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from lianka.alliance.ledger import services as ledger
from lianka.billing.membership import domain, queries, schemas
from lianka.billing.membership.domain import Period, Perks, RefundPolicy, Status
from lianka.billing.membership.errors import (
    NothingToRefund,
    OnlineRefundUnavailable,
    ProductRetired,
    RefundNotAllowed,
    TermNotLive,
    WrongCurrency,
)
from lianka.billing.membership.models import MembershipProduct, MembershipTerm
from lianka.billing.membership.products import deferred_account, perks_of, policy, revenue_account
from lianka.billing.payments import queries as payment_queries
from lianka.billing.payments import registry
from lianka.billing.payments import services as payments
from lianka.billing.payments.contract import PaidOrder
from lianka.platform import idempotency, outbox
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import DomainError, NotFound
from lianka.platform.log import get_logger
from lianka.platform.settings import Settings
from lianka.tenants.domain import times
from lianka.tenants.pos.context import branch
from lianka.tenants.pos.sales import MEMBERSHIP_COUPON_SOURCE
from lianka.tenants.services import accounts, coupons, rules

log = get_logger(__name__)

TILL = "till"

Renew = Callable[[UnitOfWork, MembershipTerm], Awaitable[bool]]
#: Providers that can charge a saved payment method again, by ``term.source`` (e.g. ``"stripe"``): the
#: renewals job calls the provider's hook before a term with ``auto_renew`` ends; it returns whether a
#: renewal was started (its paid order then comes back through :func:`fulfil_membership`). Members of
#: every other source get a reminder instead.
RENEWERS: dict[str, Renew] = {}


def term_out(t: MembershipTerm) -> schemas.TermOut:
    return schemas.TermOut(
        term_id=t.id,
        member_id=t.member_id,
        product=t.product_code,
        product_name=t.product_name,
        starts_at=t.starts_at,
        ends_at=t.ends_at,
        months=t.months,
        price=t.price,
        currency=t.currency,
        source=t.source,
        auto_renew=t.auto_renew,
        status=t.status,
        recognised_months=t.recognised_months,
        refunded_months=t.refunded_months,
        refunded_amount=t.refunded_amount,
    )


def _debit_kind(source: str) -> str:
    return "cash" if source == TILL else "payments_clearing"


async def _debit_account(uow: UnitOfWork, source: str, currency: str) -> ledger.Account:
    if source == TILL:
        return (await accounts.merchant_accounts(uow, currency)).cash
    assert uow.tenant_id is not None
    return await ledger.open_account(
        uow,
        owner_kind="merchant",
        owner_id=uow.tenant_id,
        kind=_debit_kind(source),
        unit=currency,
        allow_negative=True,
        tracked=False,
    )


async def start_term(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    product: MembershipProduct,
    *,
    now: datetime,
    price: int,
    source: str,
    payment_ref: str,
    payment_method: str,
    branch_id: uuid.UUID | None,
    ledger_scope: str,
    ledger_key: str,
) -> MembershipTerm:
    """Building block: the member buys ``product`` — a new term from now, or from the end of the term
    they hold (a renewal) — and its fee is booked as deferred revenue. The first month's coupon pack is
    issued at once when the term starts now. Never commits."""
    await rules.require_member(uow, member_id)
    await queries.lock_member(uow, member_id)
    currency, tz = await accounts.merchant_info(uow)
    if product.currency != currency:
        raise WrongCurrency(currency=product.currency)
    live = await queries.live_terms(uow, member_id, now)
    starts = domain.renewal_start(now, [t.ends_at for t in live])
    months = Period(product.period).months
    term = MembershipTerm(
        tenant_id=uow.tenant_id,
        id=uuid.uuid4(),
        member_id=member_id,
        product_id=product.id,
        product_code=product.code,
        product_name=product.name,
        perks=perks_of(product).to_json(),
        months=months,
        starts_at=starts,
        ends_at=domain.add_months(starts, months, tz),
        price=price,
        currency=currency,
        source=source,
        payment_ref=payment_ref,
        payment_method=payment_method,
        branch_id=branch_id,
        auto_renew=source in RENEWERS,
        status=str(Status.ACTIVE),
    )
    uow.session.add(term)
    await uow.session.flush()
    await ledger.post(
        uow,
        kind="membership_sold",
        business_time=now,
        key=ledger_key,
        scope=ledger_scope,
        timezone=tz,
        refs={"term": str(term.id), "member": str(member_id), "product": product.code, "source": source},
        legs=[
            ledger.Leg(await _debit_account(uow, source, currency), -price),
            ledger.Leg(await deferred_account(uow, currency), price),
        ],
    )
    if starts <= now:
        await issue_packs(uow, term, now, tz)
    return term


async def _product_for_sale(uow: UnitOfWork, code: str) -> MembershipProduct:
    product = await queries.product_by_code(uow, code)
    if product is None:
        raise NotFound(f"no membership product {code!r}", field="product")
    if not product.active:
        raise ProductRetired(product=code)
    return product


async def buy_at_till(
    db: Database, tenant: uuid.UUID, body: schemas.TillPurchaseIn, key: str, branch_id: uuid.UUID | None
) -> tuple[schemas.TermOut, bool]:
    """A membership bought at the counter (cash or card there), exactly once under its Idempotency-Key.
    Returns (the new term, replayed)."""

    async def work(uow: UnitOfWork) -> schemas.TermOut:
        at_branch, _ = await branch(uow, body.branch_id or branch_id)
        product = await _product_for_sale(uow, body.product)
        term = await start_term(
            uow,
            body.member_id,
            product,
            now=times.business_time(body.business_time),
            price=product.price,
            source=TILL,
            payment_ref=key,
            payment_method=body.payment_method,
            branch_id=at_branch,
            ledger_scope="pos",
            ledger_key=f"{key}:membership",
        )
        return term_out(term)

    return await idempotency.once(
        db, tenant, "pos.membership", key, (msgspec.to_builtins(body), str(branch_id)), schemas.TermOut, work
    )


async def fulfil_membership(uow: UnitOfWork, order: PaidOrder) -> None:
    """:data:`billing.payments.contract.Fulfil` for order kind ``"membership"`` (purpose
    ``{"product": code}``): start the term the member paid for online. Safe to call again: a second
    call for the same order finds its term and does nothing. The fee booked is what was paid."""
    if await queries.term_by_payment(uow, order.provider, str(order.order_id)) is not None:
        return
    code = str(order.purpose.get("product", ""))
    product = await queries.product_by_code(uow, code)
    if product is None:
        raise NotFound(f"no membership product {code!r}", field="product")
    if order.currency != product.currency:
        raise WrongCurrency(currency=order.currency)
    # a product retired after the order was placed is still delivered: the member has paid for it
    await start_term(
        uow,
        order.member_id,
        product,
        now=order.paid_at,
        price=order.amount,
        source=order.provider,
        payment_ref=str(order.order_id),
        payment_method=order.provider,
        branch_id=None,
        ledger_scope="ledger",
        ledger_key=f"payment:{order.order_id}",
    )


async def start_online_purchase(
    db: Database,
    settings: Settings,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    product_code: str,
    *,
    return_url: str,
    channel: str = "h5",
    openid: str | None = None,
) -> payments.PaymentStart:
    """A member buys a membership product online: an order of kind ``"membership"`` for the product's
    price now, paid at the merchant's provider; :func:`fulfil_membership` starts the term once the
    provider confirms (exactly once, however often it says so)."""
    async with db.uow(tenant) as uow:
        product = await queries.product_by_code(uow, product_code)
    if product is None or not product.active:
        raise NotFound(f"no membership product {product_code!r} on sale", field="product")
    return await payments.start_member_payment(
        db,
        settings,
        tenant,
        member_id,
        kind="membership",
        purpose={"product": product.code},
        amount=product.price,
        description=product.name,
        return_url=return_url,
        channel=channel,
        openid=openid,
    )


async def cancel(db: Database, tenant: uuid.UUID, term_id: uuid.UUID) -> schemas.TermOut:
    """Stop auto-renewal: the perks last to the end of the term. Cancelling twice changes nothing."""
    async with db.uow(tenant) as uow:
        term = await queries.term(uow, term_id, lock=True)
        if term is None:
            raise NotFound("membership term not found")
        if term.status == Status.ACTIVE:
            term.status, term.auto_renew, term.canceled_at = str(Status.CANCELED), False, datetime.now(UTC)
        elif term.status != Status.CANCELED:
            raise TermNotLive(status=term.status)
        await uow.session.flush()
        out = term_out(term)
        await uow.commit()
        return out


async def refund_term(uow: UnitOfWork, term: MembershipTerm, now: datetime, refund_policy: RefundPolicy) -> int:
    """Building block: end ``term`` now under ``refund_policy`` — recognise the months begun and not yet
    recognised, reverse the deferred revenue of the months not begun and pay it back (cash at the till,
    the provider online: :func:`refund_at_till` sends it after this commits). Returns the amount paid
    back."""
    currency, tz = await accounts.merchant_info(uow)
    plan = domain.refund_plan(
        price=term.price,
        months=term.months,
        starts_at=term.starts_at,
        recognised=term.recognised_months,
        now=now,
        tz=tz,
        policy=refund_policy,
    )
    await _recognise(uow, term, plan.recognise, tz, currency, at=now)
    if plan.refund:
        await ledger.post(
            uow,
            kind="membership_refunded",
            business_time=now,
            key=f"{term.id}:refund",
            scope="membership",
            timezone=tz,
            refs={"term": str(term.id), "member": str(term.member_id), "months": plan.refunded_months},
            legs=[
                ledger.Leg(await deferred_account(uow, currency), -plan.refund),
                ledger.Leg(await _debit_account(uow, term.source, currency), plan.refund),
            ],
        )
    term.status, term.auto_renew, term.refunded_at = str(Status.REFUNDED), False, now
    term.refunded_months, term.refunded_amount = plan.refunded_months, plan.refund
    await uow.session.flush()
    return plan.refund


async def refund_at_till(
    db: Database, settings: Settings, tenant: uuid.UUID, term_id: uuid.UUID, body: schemas.RefundIn, key: str
) -> tuple[schemas.RefundOut, bool]:
    """Pay back the unused whole months of a live term — and of any term bought to follow it — by the
    merchant's policy (``none`` refuses), exactly once under the Idempotency-Key. The perks end now."""

    async def work(uow: UnitOfWork) -> schemas.RefundOut:
        term = await queries.term(uow, term_id)
        if term is None:
            raise NotFound("membership term not found")
        await queries.lock_member(uow, term.member_id)
        refund_policy, _ = await policy(uow)
        if refund_policy is RefundPolicy.NONE:
            raise RefundNotAllowed()
        now = times.business_time(body.business_time)
        live = [
            t for t in await queries.live_terms(uow, term.member_id, now, lock=True) if t.starts_at >= term.starts_at
        ]
        if term.id not in {t.id for t in live}:
            raise TermNotLive(status=term.status)
        unrefundable = [str(t.id) for t in live if t.source != TILL and not await _refundable_online(uow, t)]
        if unrefundable:
            raise OnlineRefundUnavailable(terms=unrefundable)
        _, tz = await accounts.merchant_info(uow)
        if all(domain.months_begun(t.starts_at, t.months, now, tz) == t.months for t in live):
            raise NothingToRefund()
        total = 0
        for t in live:
            total += await refund_term(uow, t, now, refund_policy)
        return schemas.RefundOut(member_id=term.member_id, refunded=total, terms=[term_out(t) for t in live])

    out, replayed = await idempotency.once(
        db, tenant, "pos.membership_refund", key, (str(term_id), msgspec.to_builtins(body)), schemas.RefundOut, work
    )
    await _send_online_refunds(db, settings, tenant, out, key)
    return out, replayed


async def _refundable_online(uow: UnitOfWork, term: MembershipTerm) -> bool:
    """An online term is paid back through its order: there must be one, paid, on record."""
    if not term.payment_ref:
        return False
    try:
        order = await payment_queries.order(uow, uuid.UUID(term.payment_ref))
    except ValueError:
        return False
    return order is not None and order.status in ("paid", "partially_refunded") and order.provider_ref is not None


async def _send_online_refunds(
    db: Database, settings: Settings, tenant: uuid.UUID, out: schemas.RefundOut, key: str
) -> None:
    """Terms paid online get their money back through the order's provider once the refund is booked.
    ``refund_order`` is idempotent under its key, so a retry of the same request (a replay) sends
    nothing twice and finishes what a crash interrupted. A provider's refusal is recorded on the order
    (the console's member page lists it) and raised; the staff member refunds that amount again from
    the member's online payments."""
    online = [t for t in out.terms if t.source != TILL and t.refunded_amount > 0]
    if not online:
        return
    async with db.uow(tenant) as uow:
        refs = {t.term_id: (await queries.term(uow, t.term_id)) for t in online}
    for t in online:
        term = refs[t.term_id]
        assert term is not None and term.payment_ref
        await payments.refund_order(
            db,
            settings,
            tenant,
            uuid.UUID(term.payment_ref),
            key=f"membership:{key}:{t.term_id}",
            amount=t.refunded_amount,
        )


# --- the monthly work (called by the jobs, one merchant per unit of work) -----------------------------


async def _recognise(
    uow: UnitOfWork, term: MembershipTerm, rec: domain.Recognition, tz: str, currency: str, *, at: datetime | None
) -> int:
    """Book the months of ``rec`` (one entry per month, keyed by term and month: idempotent)."""
    if not rec.amounts:
        return 0
    deferred = await deferred_account(uow, currency)
    revenue = await revenue_account(uow, currency)
    for offset, amount in enumerate(rec.amounts):
        month = rec.first + offset
        when = at or domain.month_start(term.starts_at, month + 1, tz)
        await ledger.post(
            uow,
            kind="membership_revenue_recognised",
            business_time=when,
            key=f"{term.id}:month:{month + 1}",
            scope="membership",
            timezone=tz,
            refs={"term": str(term.id), "member": str(term.member_id), "month": month + 1, "of": term.months},
            legs=[ledger.Leg(deferred, -amount), ledger.Leg(revenue, amount)],
        )
    term.recognised_months = rec.first + len(rec.amounts)
    return len(rec.amounts)


async def recognise_revenue(uow: UnitOfWork, as_of: datetime) -> int:
    """Every ended month of every term, not yet recognised, moved from deferred to earned revenue.
    Returns the number of months booked."""
    currency, tz = await accounts.merchant_info(uow)
    done = 0
    for term in await queries.terms_to_recognise(uow, as_of):
        rec = domain.recognisable(
            price=term.price,
            months=term.months,
            starts_at=term.starts_at,
            recognised=term.recognised_months,
            refunded=term.refunded_months,
            now=as_of,
            tz=tz,
        )
        done += await _recognise(uow, term, rec, tz, currency, at=None)
    await uow.session.flush()
    return done


async def issue_packs(uow: UnitOfWork, term: MembershipTerm, now: datetime, tz: str) -> int:
    """The coupon packs of the term's months begun by ``now`` and not yet issued. A template that cannot
    issue (retired, sold out, at its per-member limit) is skipped with a log line; the month counts as
    issued so a later run does not flood the member. Returns coupons issued."""
    perks = Perks.of(term.perks)
    due = domain.pack_months_due(term.starts_at, term.months, term.packs_issued, now, tz)
    issued = 0
    if perks.coupon_pack:
        for month in due:
            for item in perks.coupon_pack:
                template = await coupons.get_template_by_code(uow, item.template)
                for _ in range(item.count):
                    if template is None:
                        break
                    try:
                        async with uow.session.begin_nested():
                            await coupons.issue(
                                uow, template.id, term.member_id, source=MEMBERSHIP_COUPON_SOURCE, now=now
                            )
                        issued += 1
                    except DomainError as e:
                        log.warning(
                            "membership_pack_skipped",
                            term=str(term.id),
                            month=month,
                            template=item.template,
                            reason=e.detail,
                        )
                        break
    if due:
        term.packs_issued = due.stop
    await uow.session.flush()
    return issued


async def issue_due_packs(uow: UnitOfWork, as_of: datetime) -> int:
    _, tz = await accounts.merchant_info(uow)
    return sum([await issue_packs(uow, term, as_of, tz) for term in await queries.terms_with_packs_due(uow, as_of)])


async def renewals(uow: UnitOfWork, as_of: datetime) -> int:
    """Before a term ends: renew it through its provider when it can (``RENEWERS``), else queue a
    reminder (an outbox message the marketing engine delivers; today it logs). At its end: expire it.
    Returns the number of terms reminded, renewed or expired."""
    _, days = await policy(uow)
    done = 0
    for term in await queries.terms_ending(uow, as_of + timedelta(days=days)):
        if term.ends_at <= as_of or term.reminded_at is not None:
            continue
        if await queries.has_successor(uow, term):
            continue
        renew = RENEWERS.get(term.source) if term.auto_renew else None
        if renew is not None and await renew(uow, term):
            log.info("membership_renewal_started", term=str(term.id), source=term.source)
        else:
            await outbox.enqueue(
                uow,
                "membership_expiry_reminder",
                member_id=str(term.member_id),
                term_id=str(term.id),
                product=term.product_code,
                ends_at=term.ends_at.isoformat(),
            )
        term.reminded_at = as_of
        done += 1
    done += await queries.mark_expired(uow, as_of)
    await uow.session.flush()
    return done


# --- what a member (and the console) sees ------------------------------------------------------------


async def membership_of(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> schemas.MembershipOut:
    currency, tz = await accounts.merchant_info(uow)
    terms = await queries.member_terms(uow, member_id)
    current = next(
        (t for t in terms if t.status in domain.LIVE and t.starts_at <= now < t.ends_at),
        None,
    )
    return schemas.MembershipOut(
        current=term_out(current) if current else None,
        terms=[term_out(t) for t in terms],
        meter=await meter(uow, member_id, now, currency, tz),
    )


async def meter(uow: UnitOfWork, member_id: uuid.UUID, now: datetime, currency: str, tz: str) -> schemas.MeterOut:
    """本年已省 ¥X / 会费 ¥Y: what the perks saved since 1 January (merchant's zone) against the fees
    paid for terms bought this year (net of refunds)."""
    local = now.astimezone(ZoneInfo(tz))
    since = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    s = await queries.savings_since(uow, member_id, since)
    fee = await queries.fees_since(uow, member_id, since)
    savings = domain.Savings(discount=s.discount, points_value=s.points_value, coupons=s.coupons, fee=fee)
    return schemas.MeterOut(
        year=local.year,
        saved=savings.total,
        discount=s.discount,
        points_value=s.points_value,
        coupons=s.coupons,
        fee=fee,
        percent=savings.percent_of_fee,
        currency=currency,
    )


async def member_membership(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> schemas.MembershipOut:
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        return await membership_of(uow, member_id, datetime.now(UTC))


registry.register("membership", fulfil_membership)
