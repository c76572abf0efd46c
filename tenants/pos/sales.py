"""POS use cases: the quote and the sale.

A sale is one unit of work (one transaction) and exactly-once under its Idempotency-Key: the key is
claimed in its first statement (with the context read), the sale row, its lines, the ledger entries (points redeemed, stored value paid,
points earned), the coupons, the member's spend and tier all change together, and the response is
stored with the key — a retried call returns it, a different body with the same key is a 409. The
numbers booked are the ones :func:`lianka.tenants.domain.pricing.quote` computed, so a quote shown to
the cashier is what the sale books. The statements it sends, and why so few, are decisions 0011 and
0053 (five round trips for a member's sale).
"""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

import msgspec

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.platform import idempotency, metrics
from lianka.platform.db import Database, UnitOfWork, retry_transient
from lianka.platform.faults import fault_point
from lianka.platform.identity.members import new_card_number, normalise_phone
from lianka.platform.money import RoundingMode, round_minor
from lianka.platform.webhooks import services as webhooks
from lianka.tenants.domain import pricing, tiers
from lianka.tenants.domain.rules import base_tier
from lianka.tenants.marketing import offers
from lianka.tenants.models import Coupon
from lianka.tenants.pos import queries, schemas
from lianka.tenants.pos.context import SaleContext, applied_out, claim_and_load, load, price, profile, quote_out
from lianka.tenants.services import accounts, rules, self_join
from lianka.tenants.services import coupons as coupon_svc

#: ``coupons.source`` of the coupons a paid membership's monthly pack issues (``billing/membership``)
MEMBERSHIP_COUPON_SOURCE = "membership"


async def quote(
    db: Database, tenant: uuid.UUID, basket: schemas.Basket, branch_id: uuid.UUID | None
) -> schemas.QuoteOut:
    """What a sale would do, without writing anything."""
    async with db.uow(tenant) as uow:
        ctx = await load(uow, basket, branch_id, lock=False)
        q, state, _ = await price(uow, basket, ctx, lock=False)
        return quote_out(q, ctx, state)


async def _enrol_at_till(uow: UnitOfWork, phone_raw: str, branch_id: uuid.UUID) -> uuid.UUID:
    """Enrol inside the sale's own transaction (the global person row needs system scope)."""
    phone = normalise_phone(phone_raw)
    tenant = uow.tenant_id
    assert tenant is not None
    await uow.set_system()
    member_id = await queries.person_by_phone(uow, phone)
    while member_id is None:
        member_id = await queries.insert_person(uow, phone, new_card_number(), secrets.token_bytes(32))
        if member_id is None:  # phone raced in, or the card number was taken: look again
            member_id = await queries.person_by_phone(uow, phone)
    await uow.set_tenant(tenant)
    # a prospect who joined by a branch's link keeps that branch; their online choices apply now
    await queries.join_at_till(uow, member_id, await self_join.prospect_branch(uow, member_id) or branch_id)
    await self_join.take_prospect(uow, member_id)
    return member_id


async def _after_purchase(
    uow: UnitOfWork, ctx: SaleContext, q: pricing.Quote, key: str
) -> tuple[str | None, bool, bool]:
    """Tier upgrade and referral reward for this purchase (the profile's counters and tier are written
    with the sale row). Returns (tier, whether the profile's tier column changes, whether a tier change
    was recorded)."""
    assert ctx.member_id is not None and ctx.profile is not None and ctx.standing is not None
    prof = ctx.profile
    net = q.net
    # the window as it will be once this sale is in: what the standing query would now return
    standing = tiers.Standing(
        spend=ctx.standing.spend + (q.qualifying_spend if net else 0),
        points_earned=ctx.standing.points_earned + q.points_earned,
    )
    current = prof.tier_code or base_tier(ctx.programme)
    change = tiers.on_activity(
        ctx.programme,
        current,
        standing,
        floor=prof.tier_floor,
        floor_until=prof.tier_floor_until,
        today=ctx.business_date,
    )
    changed = change.new != prof.tier_code
    if changed:
        if change.changed:
            await queries.record_tier_change(uow, ctx.member_id, change.old, change.new, change.reason)
        prof.tier_code = change.new
        await rules.on_tier_change(
            uow, ctx.programme, ctx.member_id, change.old, change.new, at=ctx.business_time, branch_code=ctx.branch_code
        )
    if prof.purchase_count == 0 and prof.referrer_member_id:
        await rules.on_referral(
            uow,
            ctx.programme,
            prof.referrer_member_id,
            ctx.member_id,
            spend=q.qualifying_spend,
            key=key,
            at=ctx.business_time,
            branch_code=ctx.branch_code,
        )
    return prof.tier_code, changed, change.changed


async def _book(
    uow: UnitOfWork, ctx: SaleContext, q: pricing.Quote, key: str, sale_id: uuid.UUID
) -> tuple[dict[str, str], str, bool]:
    """The member's ledger entries of the sale: stored value paid (and its clearing), points paid and
    points earned. Returns (the entries by name, the period they landed in, late)."""
    assert ctx.member_id is not None
    entries: dict[str, str] = {}
    period, late = domain_period(ctx), False
    mine = await accounts.member_accounts(uow, ctx.member_id, ctx.currency)
    merchant = await accounts.merchant_accounts(uow, ctx.currency)
    refs = {"sale": str(sale_id)}
    if q.stored_value.total:
        legs = [ledger.Leg(merchant.sales, q.stored_value.total)]
        if q.stored_value.principal:
            legs.append(ledger.Leg(mine.sv_principal, -q.stored_value.principal))
        if q.stored_value.bonus:
            legs.append(ledger.Leg(mine.sv_bonus, -q.stored_value.bonus))
        e = await ledger.post(
            uow,
            kind="stored_value_spent",
            business_time=ctx.business_time,
            key=f"{key}:sv",
            scope="pos",
            timezone=ctx.tz,
            refs=refs,
            legs=legs,
        )
        entries["stored_value"], period, late = str(e.id), e.period, e.late
        c = await clearing.post_consumed(
            uow,
            currency=ctx.currency,
            tz=ctx.tz,
            branch=ctx.branch_id,
            principal=q.stored_value.principal,
            sv_entry=e,
            funder=ctx.programme.stored_value.bonus_funder,
            key=key,
            refs=refs,
        )
        if c is not None:
            entries["clearing"] = str(c.id)
    # points paid and points earned: two entries, one round trip (redeemed first: the points earned now
    # are never the ones spent)
    points: list[tuple[str, ledger.Prepared]] = []
    if q.points_redeemed:
        points.append(
            (
                "redeem",
                ledger.prepare(
                    uow,
                    kind="points_redeemed",
                    business_time=ctx.business_time,
                    key=f"{key}:redeem",
                    scope="pos",
                    timezone=ctx.tz,
                    refs=refs,
                    legs=[
                        ledger.Leg(mine.points, -q.points_redeemed),
                        ledger.Leg(merchant.points_redeemed, q.points_redeemed),
                    ],
                ),
            )
        )
    if q.points_earned:
        points.append(
            (
                "earn",
                await accounts.award_entry(
                    uow,
                    ctx.member_id,
                    q.points_earned,
                    programme=ctx.programme,
                    reason="points_earned",
                    key=f"{key}:earn",
                    business_time=ctx.business_time,
                    pending=ctx.programme.points.pending_days > 0,
                    refs=refs,
                ),
            )
        )
    for (name, _), e in zip(points, await ledger.post_all(uow, [p for _, p in points]), strict=True):
        entries[name], period, late = str(e.id), e.period, e.late
    return entries, period, late


def _sale_row(
    tenant: uuid.UUID,
    ctx: SaleContext,
    basket: schemas.Basket,
    q: pricing.Quote,
    sale_id: uuid.UUID,
    *,
    offline: bool,
    entries: dict[str, str],
    coupons: list[tuple[Coupon, pricing.CouponTerms]],
    voucher: dict[str, object] | None = None,
) -> queries.SaleRow:
    lines = basket.lines
    return queries.SaleRow(
        tenant_id=tenant,
        id=sale_id,
        member_id=ctx.member_id,
        branch_id=ctx.branch_id,
        business_time=ctx.business_time,
        currency=ctx.currency,
        gross=q.gross,
        promotion_discount=q.promotion_discount,
        member_discount=q.member_discount,
        coupon_total=q.coupons_total,
        points_redeemed=q.points_redeemed,
        points_cash=q.points_cash,
        sv_principal=q.stored_value.principal,
        sv_bonus=q.stored_value.bonus,
        due=q.due,
        qualifying_spend=q.qualifying_spend,
        points_earned=q.points_earned if ctx.member_id else 0,
        payment_method=basket.payment_method,
        programme_version=ctx.programme_version,
        offline=offline,
        entries=_json(entries),
        coupons=_json([c.code for c, _ in coupons]),
        promotions=_json(list(q.promotions)),
        applied_promotions=_json(msgspec.to_builtins(applied_out(q.applied_promotions))),
        alliance_voucher=_json(voucher) if voucher is not None else None,
        skus=[x.sku for x in lines],
        categories=[x.category for x in lines],
        qtys=[x.qty for x in lines],
        unit_prices=[x.unit_price for x in lines],
    )


@retry_transient
async def sale(
    db: Database,
    tenant: uuid.UUID,
    basket: schemas.Basket,
    key: str,
    branch_id: uuid.UUID | None,
    *,
    offline: bool = False,
) -> tuple[schemas.SaleOut, bool]:
    """Record a sale exactly once. Returns (response, replayed)."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.sale", msgspec.to_builtins(basket), str(branch_id))
    async with db.uow(tenant) as uow:
        ctx = await claim_and_load(uow, basket, branch_id, idempotency.Claim("pos.sale", key, fp))
        if isinstance(ctx, idempotency.StoredResponse):
            return msgspec.convert(ctx.body, schemas.SaleOut), True
        if ctx.joins:
            assert basket.join_phone is not None
            ctx.member_id = await _enrol_at_till(uow, basket.join_phone, ctx.branch_id)
            ctx.profile = await profile(uow, ctx.member_id, lock=True)
            await rules.on_signup(
                uow, ctx.member_id, at=ctx.business_time, branch_id=ctx.branch_id, programme=ctx.programme
            )
            await webhooks.emit(
                uow,
                "member.joined",
                {"member_id": str(ctx.member_id), "branch_id": str(ctx.branch_id)},
                subscribed=ctx.hooked,
            )
        q, state, coupons = await price(uow, basket, ctx, lock=True)
        sale_id = uuid.uuid4()
        entries: dict[str, str] = {}
        period, late = domain_period(ctx), False
        member = ctx.member_id
        if member is not None:
            entries, period, late = await _book(uow, ctx, q, key, sale_id)
            await _record_saving(uow, ctx, q, sale_id, coupons)
        voucher = None
        if ctx.voucher is not None:  # redeemed in this transaction: a refused voucher refuses the sale
            voucher = await offers.redeem_in_sale(
                uow,
                tenant,
                ctx.voucher,
                sale_id=sale_id,
                branch_id=ctx.branch_id,
                at=ctx.business_time,
                sale_amount=q.gross - q.promotion_discount - q.member_discount,
                discount=q.voucher_discount,
            )
        row = _sale_row(
            tenant, ctx, basket, q, sale_id, offline=offline, entries=entries, coupons=coupons, voucher=voucher
        )
        for c, _ in coupons:
            await coupon_svc.mark_redeemed(uow, c, sale_id, ctx.business_time)
        out = schemas.SaleOut(
            sale_id=sale_id,
            member_id=member,
            branch_id=ctx.branch_id,
            business_time=ctx.business_time,
            quote=quote_out(q, ctx, state),
            tier=None,
            tier_changed=False,
            balances=None,
            period=period,
            late=late,
        )
        previous_tier = (ctx.profile.tier_code or base_tier(ctx.programme)) if ctx.profile is not None else None
        if member is None:
            await queries.insert_guest_sale(uow, row)
            await idempotency.store(uow, "pos.sale", key, 201, msgspec.to_builtins(out))
        else:
            tier, set_tier, changed = await _after_purchase(uow, ctx, q, key)
            mine = await accounts.member_accounts(uow, member, ctx.currency)
            out = msgspec.structs.replace(out, tier=tier, tier_changed=changed)
            b = await queries.insert_member_sale(
                uow,
                row,
                accounts=mine.ids,
                set_tier=set_tier,
                tier=tier,
                body_json=_json(msgspec.to_builtins(out)),
                key=key,
            )
            out = msgspec.structs.replace(
                out,
                balances=schemas.Balances(b.points, b.points_available, b.points_pending, b.sv_principal, b.sv_bonus),
            )
        await _announce(uow, out, ctx, q.gross, offline=offline, previous_tier=previous_tier)
        metrics.count_sale(uow, ctx.currency, q.gross, member=member is not None)
        await uow.commit()
        fault_point("pos.sale.after_commit")  # kill -9 tests: booked, and the till never hears of it
        return out, False


async def _announce(
    uow: UnitOfWork, out: schemas.SaleOut, ctx: SaleContext, gross: int, *, offline: bool, previous_tier: str | None
) -> None:
    """The sale's outbound webhooks (``platform/webhooks``), in its transaction: ids and amounts only;
    no round trip for the events no subscription wants (the context read found which are)."""
    await webhooks.emit(
        uow,
        "sale.recorded",
        {
            "sale_id": str(out.sale_id),
            "branch_id": str(out.branch_id),
            "member_id": str(out.member_id) if out.member_id else None,
            "amount": {"minor": gross, "currency": ctx.currency},
            "business_time": out.business_time.isoformat(),
            "offline": offline,
        },
        subscribed=ctx.hooked,
    )
    if out.tier_changed and out.member_id is not None:
        await webhooks.tier_changed(
            uow, out.member_id, previous_tier, out.tier, "sale", subscribed=ctx.hooked, sale_id=str(out.sale_id)
        )


async def _record_saving(
    uow: UnitOfWork,
    ctx: SaleContext,
    q: pricing.Quote,
    sale_id: uuid.UUID,
    coupons: list[tuple[Coupon, pricing.CouponTerms]],
) -> None:
    """What the member's paid membership saved on this sale, for the portal's value-back meter: the
    discount over the earned tier's, the extra points and their cash value, coupons from its packs.
    One statement, only for a paid member whose perks saved something."""
    if ctx.paid is None or ctx.member_id is None:
        return
    from_packs = {c.code for c, _ in coupons if c.source == MEMBERSHIP_COUPON_SOURCE}
    coupon_saving = sum(amount for code, amount in q.coupon_discounts if code in from_packs)
    if not (q.membership_discount or q.membership_points or coupon_saving):
        return
    value = round_minor(
        Decimal(q.membership_points) * ctx.programme.points.cash_value_per_point * 100, RoundingMode.FLOOR
    )
    await queries.insert_saving(
        uow,
        queries.SavingRow(
            sale_id=sale_id,
            member_id=ctx.member_id,
            term_id=ctx.paid.term_id,
            business_time=ctx.business_time,
            discount=q.membership_discount,
            extra_points=q.membership_points,
            points_value=value,
            coupons=coupon_saving,
        ),
    )


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def domain_period(ctx: SaleContext) -> str:
    """The accounting period (``YYYY-MM`` in the merchant's zone) of a sale that posts no ledger entry."""
    local = ctx.business_date
    return f"{local.year:04d}-{local.month:02d}"
