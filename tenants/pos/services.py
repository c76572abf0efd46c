"""POS use cases: quote, sale, top-up, refund, offline batch.

Each write is one unit of work (one transaction) and exactly-once under its Idempotency-Key: the
key is claimed first, the sale row, its lines, the ledger entries (points redeemed, stored value
paid, points earned), the coupons, the member's spend and tier all change together, and the
response is stored with the key — a retried call returns it, a different body with the same key is a
409. The numbers booked are the ones :func:`lianka.tenants.domain.pricing.quote` computed, so a
quote shown to the cashier is what the sale books.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, select, text

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import DomainError, NotFound, RuleViolation, ValidationFailed
from lianka.platform.identity.members import is_valid_card_number, new_card_number, normalise_phone
from lianka.platform.money import RoundingMode, largest_remainder, round_minor
from lianka.tenants.domain import pricing, tiers, times
from lianka.tenants.domain.lifecycle import join_eligibility
from lianka.tenants.domain.programme import Programme
from lianka.tenants.pos import schemas
from lianka.tenants.pos.models import Refund, Sale, SaleLine, TopUp
from lianka.tenants.services import accounts, rules
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import VERSION_AT_SQL, programme_at, programme_version


class NotAMember(RuleViolation):
    type_slug = "not-eligible-to-join"
    title = "The customer cannot join (yet)"


class RefundTooLarge(RuleViolation):
    type_slug = "refund-exceeds-sale"
    title = "The refund is more than what is left of the sale"


class NothingToRefund(RuleViolation):
    """A stored-value refund for a member who holds no principal: nothing can be paid back (the
    bonus never is), so the cashier is told so rather than shown a refund of 0."""

    type_slug = "nothing-to-refund"
    title = "The member has no stored-value principal to refund"


@dataclass
class _Context:
    programme_version: int
    programme: Programme
    currency: str
    tz: str
    branch_id: uuid.UUID
    branch_code: str
    business_time: datetime
    member_id: uuid.UUID | None
    joins: bool
    profile: _Profile | None
    #: the member's tier-window standing before this sale (read with the balances, after the lock)
    standing: tiers.Standing | None = None


async def _branch(uow: UnitOfWork, branch_id: uuid.UUID | None) -> tuple[uuid.UUID, str]:
    if branch_id is None:
        raise ValidationFailed("which branch? give branch_id (or use a branch-bound terminal)")
    code = await uow.session.scalar(text("SELECT code FROM branches WHERE id = :b"), {"b": branch_id})
    if code is None:
        raise NotFound("branch not found", field="branch_id")
    return branch_id, str(code)


async def _member_by_card(uow: UnitOfWork, card: str) -> uuid.UUID:
    card = card.strip()
    found = await uow.session.scalar(text(
        "SELECT ms.member_id FROM memberships ms JOIN members m ON m.id = ms.member_id WHERE m.card_number = :c"),
        {"c": card}) if is_valid_card_number(card) else None
    if found is None:
        raise NotFound("member not found", field="card")
    return uuid.UUID(str(found))


@dataclass
class _Profile:
    """The member's profile fields a sale reads (the row is locked for a sale)."""

    birthday: date | None
    tier_code: str | None
    tier_floor: str | None
    tier_floor_until: date | None
    purchase_count: int
    referrer_member_id: uuid.UUID | None


_PROFILE_COLUMNS = "birthday, tier_code, tier_floor, tier_floor_until, purchase_count, referrer_member_id"


async def _profile(uow: UnitOfWork, member_id: uuid.UUID, *, lock: bool) -> _Profile:
    conn = await uow.driver()
    sql = f"SELECT {_PROFILE_COLUMNS} FROM member_profiles WHERE member_id = $1" + (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(sql, member_id)
    if row is None:  # a member with no profile yet (enrolled by the API, the portal) buys for the first time:
        # the join branch is the enrolment's, never the branch of this first purchase
        await conn.execute("INSERT INTO member_profiles (tenant_id, member_id, join_branch_id) "
                           "SELECT $1, $2, branch_id FROM memberships WHERE member_id = $2 ON CONFLICT DO NOTHING",
                           uow.tenant_id, member_id)
        row = await conn.fetchrow(sql, member_id)
    return _Profile(**dict(row))


def _context_sql(lock: bool) -> str:
    """What a sale needs to know before pricing, and the member's profile (locked for a sale), in one
    round trip; RLS scopes every part to the merchant. Nothing here changes with a concurrent sale of
    the same member, so the statement's snapshot, taken before the lock, is good enough for it — the
    balances are read by the next statement."""
    return (
        "SELECT m.currency, m.timezone, (SELECT code FROM branches WHERE id = $2) AS branch_code, "
        f"({VERSION_AT_SQL.removeprefix('SELECT ').replace('$1', '$3')}) AS programme_version, "
        "(SELECT true FROM memberships WHERE member_id = $4) AS member_known, "
        f"p.found AS profile_found, {', '.join('p.' + c for c in _PROFILE_COLUMNS.split(', '))} "
        f"FROM merchants m LEFT JOIN LATERAL (SELECT true AS found, {_PROFILE_COLUMNS} FROM member_profiles "
        f"WHERE member_id = $4{' FOR UPDATE' if lock else ''}) p ON true WHERE m.id = $1")


_CONTEXT_SQL = {True: _context_sql(True), False: _context_sql(False)}


async def _context(uow: UnitOfWork, basket: schemas.Basket, branch_id: uuid.UUID | None, *,
                   lock: bool) -> _Context:
    bt = times.business_time(basket.business_time)
    branch = basket.branch_id or branch_id
    if branch is None:
        raise ValidationFailed("which branch? give branch_id (or use a branch-bound terminal)")
    member = basket.member_id if basket.member_id is not None else (
        await _member_by_card(uow, basket.card) if basket.card is not None else None)
    row = await (await uow.driver()).fetchrow(_CONTEXT_SQL[lock], uow.tenant_id, branch, bt, member)
    if row is None:
        raise NotFound("merchant not found")
    if row["branch_code"] is None:
        raise NotFound("branch not found", field="branch_id")
    if member is not None and not row["member_known"]:
        raise NotFound("member not found", field="member_id")
    currency, tz = str(row["currency"]), str(row["timezone"])
    accounts.remember_merchant_info(uow, currency, tz)
    version = int(row["programme_version"])
    programme = await programme_version(uow, version)
    joins = False
    if member is None and basket.join_phone:
        eligibility = join_eligibility(programme.join, purchase=basket.amount, cumulative=basket.amount,
                                       today=bt.astimezone(ZoneInfo(tz)).date())
        if not eligibility.eligible:
            raise NotAMember(eligibility.reason, reason=eligibility.reason)
        joins = True
    profile = None
    if member is not None:
        profile = _Profile(**{c: row[c] for c in _PROFILE_COLUMNS.split(", ")}) if row["profile_found"] \
            else await _profile(uow, member, lock=lock)
    return _Context(version, programme, currency, tz, branch, str(row["branch_code"]), bt, member, joins, profile)


async def _member_state(uow: UnitOfWork, ctx: _Context, *, standing: bool = False) -> pricing.MemberState:
    """Balances (and, for a sale, the tier-window standing) in one round trip, after the profile lock."""
    if ctx.member_id is None or ctx.profile is None:
        return pricing.MemberState(tier=None, points_available=0, sv_principal=0, sv_bonus=0)
    mine = await accounts.member_accounts(uow, ctx.member_id, ctx.currency)
    args: list[Any] = [mine.points.id, mine.sv_principal.id, mine.sv_bonus.id, ctx.business_time]
    sql = accounts.balances_sql(1)
    if standing:
        sql = f"SELECT * FROM ({sql}) b, ({_STANDING_SQL.replace('$1', '$5').replace('$2', '$6')}) st"
        args += [ctx.member_id, _window_start(ctx.programme, ctx.business_time)]
    row = await (await uow.driver()).fetchrow(sql, *args)
    b = accounts.balances_of(row)
    if standing:
        ctx.standing = tiers.Standing(spend=int(row["spend"]), points_earned=int(row["pts"]))
    today = ctx.business_time.astimezone(ZoneInfo(ctx.tz)).date()
    bday = ctx.profile.birthday
    tier = ctx.profile.tier_code or _base_tier(ctx.programme)
    return pricing.MemberState(tier=tier, points_available=max(b.points_available, 0), sv_principal=b.sv_principal,
                               sv_bonus=b.sv_bonus,
                               birthday_today=bool(bday and (bday.month, bday.day) == (today.month, today.day)))


def _base_tier(p: Programme) -> str | None:
    ordered = p.tiers_by_rank()
    return ordered[0].code if ordered and ordered[0].threshold == 0 else None


def _lines(basket: schemas.Basket) -> tuple[pricing.Line, ...]:
    return tuple(pricing.Line(x.sku, x.qty, x.unit_price, x.category) for x in basket.lines)


def _quote_out(q: pricing.Quote, ctx: _Context, state: pricing.MemberState) -> schemas.QuoteOut:
    return schemas.QuoteOut(
        gross=q.gross, member_discount=q.member_discount, coupons=list(q.coupon_discounts),
        points_redeemed=q.points_redeemed, points_cash=q.points_cash, max_points_usable=q.max_points_usable,
        sv_principal=q.stored_value.principal, sv_bonus=q.stored_value.bonus, due=q.due,
        qualifying_spend=q.qualifying_spend, base_points=q.base_points, multiplier=str(q.multiplier),
        points_earned=q.points_earned if (ctx.member_id or ctx.joins) else 0,
        points_pending=ctx.programme.points.pending_days > 0, promotions=list(q.promotions), tier=state.tier,
        member_id=ctx.member_id, joins=ctx.joins,
    )


async def _price(uow: UnitOfWork, basket: schemas.Basket, ctx: _Context, *, lock: bool
                 ) -> tuple[pricing.Quote, pricing.MemberState, list[tuple[Any, pricing.CouponTerms]]]:
    if (basket.points or basket.stored_value or basket.coupons) and ctx.member_id is None:
        raise ValidationFailed("points, stored value and coupons need a member")
    state = await _member_state(uow, ctx, standing=lock)  # a sale (the lock) decides the tier too
    coupons = await coupon_svc.terms_for_sale(uow, basket.coupons, ctx.member_id, ctx.branch_code,
                                              ctx.business_time, lock=lock) if basket.coupons and ctx.member_id \
        else []
    q = pricing.quote(ctx.programme, basket.amount, _lines(basket), state,
                      pricing.Intent(points=basket.points, stored_value=basket.stored_value,
                                     coupons=tuple(t for _, t in coupons)),
                      pricing.SaleContext(ctx.business_time.astimezone(ZoneInfo(ctx.tz)).date(), ctx.branch_code))
    return q, state, coupons


async def quote(db: Database, tenant: uuid.UUID, basket: schemas.Basket, branch_id: uuid.UUID | None
                ) -> schemas.QuoteOut:
    """What a sale would do, without writing anything."""
    async with db.uow(tenant) as uow:
        ctx = await _context(uow, basket, branch_id, lock=False)
        q, state, _ = await _price(uow, basket, ctx, lock=False)
        return _quote_out(q, ctx, state)


async def _enrol_at_till(uow: UnitOfWork, phone_raw: str, branch_id: uuid.UUID) -> uuid.UUID:
    """Enrol inside the sale's own transaction (the global person row needs system scope)."""
    phone = normalise_phone(phone_raw)
    tenant = uow.tenant_id
    assert tenant is not None
    await uow.set_system()
    member_id = await uow.session.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
    while member_id is None:
        member_id = await uow.session.scalar(text(
            "INSERT INTO members (phone, card_number, qr_secret) VALUES (:p, :c, :q) ON CONFLICT DO NOTHING "
            "RETURNING id"), {"p": phone, "c": new_card_number(), "q": secrets.token_bytes(32)})
        if member_id is None:  # phone raced in, or the card number was taken: look again
            member_id = await uow.session.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
    await uow.set_tenant(tenant)
    await uow.session.execute(text(
        "INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b) ON CONFLICT DO NOTHING"),
        {"t": tenant, "m": member_id, "b": branch_id})
    await uow.session.execute(text(  # the membership's branch: this one, unless the person had already joined
        "INSERT INTO member_profiles (tenant_id, member_id, join_branch_id, source) SELECT :t, :m, branch_id, 'till' "
        "FROM memberships WHERE member_id = :m ON CONFLICT DO NOTHING"), {"t": tenant, "m": member_id})
    return uuid.UUID(str(member_id))


async def _balances_out(uow: UnitOfWork, member_id: uuid.UUID, at: datetime) -> schemas.Balances:
    b = await accounts.balances(uow, member_id, at)
    return schemas.Balances(b.points, b.points_available, b.points_pending, b.sv_principal, b.sv_bonus)


#: the member's spend and points earned in the tier window, counting refunds pro rata
_STANDING_SQL = (
    "SELECT coalesce(sum(qualifying_spend * (gross - member_discount - coupon_total - refunded) "
    "/ nullif(gross - member_discount - coupon_total, 0)), 0) AS spend, coalesce(sum(points_earned), 0) AS pts "
    "FROM sales WHERE member_id = $1 AND business_time > $2")


def _window_start(p: Programme, at: datetime) -> datetime:
    return at - timedelta(days=31 * p.tier_policy.window_months)


async def _after_purchase(uow: UnitOfWork, ctx: _Context, q: pricing.Quote, key: str
                          ) -> tuple[str | None, bool, bool]:
    """Tier upgrade and referral reward for this purchase (the profile's counters and tier are written
    with the sale row). Returns (tier, whether the profile's tier column changes, whether a tier change
    was recorded)."""
    assert ctx.member_id is not None and ctx.profile is not None and ctx.standing is not None
    prof = ctx.profile
    net = q.gross - q.member_discount - q.coupons_total
    # the window as it will be once this sale is in: what the standing query would now return
    standing = tiers.Standing(spend=ctx.standing.spend + (q.qualifying_spend if net else 0),
                              points_earned=ctx.standing.points_earned + q.points_earned)
    current = prof.tier_code or _base_tier(ctx.programme)
    change = tiers.on_activity(ctx.programme, current, standing, floor=prof.tier_floor,
                               floor_until=prof.tier_floor_until,
                               today=ctx.business_time.astimezone(ZoneInfo(ctx.tz)).date())
    changed = change.new != prof.tier_code
    if changed:
        if change.changed:
            await (await uow.driver()).execute(
                "INSERT INTO tier_changes (tenant_id, member_id, old_tier, new_tier, reason, actor) "
                "VALUES ($1, $2, $3, $4, $5, 'pos')", uow.tenant_id, ctx.member_id, change.old, change.new,
                change.reason)
        prof.tier_code = change.new
        await rules.on_tier_change(uow, ctx.programme, ctx.member_id, change.old, change.new, at=ctx.business_time,
                                   branch_code=ctx.branch_code)
    if prof.purchase_count == 0 and prof.referrer_member_id:
        await rules.on_referral(uow, ctx.programme, prof.referrer_member_id, ctx.member_id,
                                spend=q.qualifying_spend, key=key, at=ctx.business_time, branch_code=ctx.branch_code)
    return prof.tier_code, changed, change.changed


def _sale_sql(first: int) -> str:
    """CTEs ``s`` and ``l``: the sale row and its lines, parameters ``$first`` … ``$first+25``."""
    n = [f"${first + i}" for i in range(26)]
    return (
        "WITH s AS (INSERT INTO sales (tenant_id, id, member_id, branch_id, business_time, currency, gross, "
        "member_discount, coupon_total, points_redeemed, points_cash, sv_principal, sv_bonus, due, qualifying_spend, "
        "points_earned, refunded, payment_method, programme_version, status, offline, entries, coupons, promotions) "
        f"VALUES ({', '.join(n[:16])}, 0, {n[16]}, {n[17]}, 'completed', {n[18]}, {n[19]}::jsonb, {n[20]}::jsonb, "
        f"{n[21]}::jsonb)), "
        "l AS (INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, category, qty, unit_price, refunded_qty) "
        f"SELECT {n[0]}, {n[1]}, k - 1, sku, category, qty, price, 0 "
        f"FROM unnest({n[22]}::text[], {n[23]}::text[], {n[24]}::int[], {n[25]}::bigint[]) "
        "WITH ORDINALITY AS x(sku, category, qty, price, k)) ")


#: a member's sale: the sale and lines, the profile's counters and tier, the balances after it (which
#: earlier statements of the transaction posted) and the stored response — one statement
_MEMBER_SALE_SQL = (
    _sale_sql(5)
    + ", p AS (UPDATE member_profiles SET cumulative_spend = cumulative_spend + $19, "
    "purchase_count = purchase_count + 1, first_purchase_at = coalesce(first_purchase_at, $9), "
    "last_purchase_at = greatest(coalesce(last_purchase_at, $9), $9), "
    "tier_code = CASE WHEN $31 THEN $32 ELSE tier_code END, tier_since = CASE WHEN $31 THEN $9 ELSE tier_since END, "
    "updated_at = now() WHERE member_id = $7), "
    f"b AS ({accounts.balances_sql(1)}), "
    "k AS (UPDATE idempotency_keys SET status = 201, body = $33::jsonb || jsonb_build_object('balances', "
    "(SELECT jsonb_build_object('points', coalesce(points, 0), 'points_available', available, "
    "'points_pending', pending, 'sv_principal', coalesce(principal, 0), 'sv_bonus', coalesce(bonus, 0)) FROM b)) "
    "WHERE tenant_id = $5 AND scope = 'pos.sale' AND key = $34) "
    "SELECT * FROM b")


async def sale(db: Database, tenant: uuid.UUID, basket: schemas.Basket, key: str, branch_id: uuid.UUID | None,
               *, offline: bool = False) -> tuple[schemas.SaleOut, bool]:
    """Record a sale exactly once. Returns (response, replayed)."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.sale", msgspec.to_builtins(basket), str(branch_id))
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, "pos.sale", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.SaleOut), True
        ctx = await _context(uow, basket, branch_id, lock=True)
        if ctx.joins:
            assert basket.join_phone is not None
            ctx.member_id = await _enrol_at_till(uow, basket.join_phone, ctx.branch_id)
            ctx.profile = await _profile(uow, ctx.member_id, lock=True)
            await rules.on_signup(uow, ctx.member_id, at=ctx.business_time, branch_id=ctx.branch_id,
                                  programme=ctx.programme)
        q, state, coupons = await _price(uow, basket, ctx, lock=True)
        sale_id = uuid.uuid4()
        entries: dict[str, str] = {}
        period, late = domain_period(ctx), False
        member = ctx.member_id
        if member is not None:
            mine = await accounts.member_accounts(uow, member, ctx.currency)
            merchant = await accounts.merchant_accounts(uow, ctx.currency)
            refs = {"sale": str(sale_id)}
            if q.stored_value.total:
                legs = [ledger.Leg(merchant.sales, q.stored_value.total)]
                if q.stored_value.principal:
                    legs.append(ledger.Leg(mine.sv_principal, -q.stored_value.principal))
                if q.stored_value.bonus:
                    legs.append(ledger.Leg(mine.sv_bonus, -q.stored_value.bonus))
                e = await ledger.post(uow, kind="stored_value_spent", business_time=ctx.business_time,
                                      key=f"{key}:sv", scope="pos", timezone=ctx.tz, refs=refs, legs=legs)
                entries["stored_value"], period, late = str(e.id), e.period, e.late
                c = await clearing.post_consumed(uow, currency=ctx.currency, tz=ctx.tz, branch=ctx.branch_id,
                                                 principal=q.stored_value.principal, sv_entry=e,
                                                 funder=ctx.programme.stored_value.bonus_funder, key=key, refs=refs)
                if c is not None:
                    entries["clearing"] = str(c.id)
            # points paid and points earned: two entries, one round trip (redeemed first: the points
            # earned now are never the ones spent)
            points: list[tuple[str, ledger.Prepared]] = []
            if q.points_redeemed:
                points.append(("redeem", ledger.prepare(
                    uow, kind="points_redeemed", business_time=ctx.business_time, key=f"{key}:redeem", scope="pos",
                    timezone=ctx.tz, refs=refs, legs=[ledger.Leg(mine.points, -q.points_redeemed),
                                                      ledger.Leg(merchant.points_redeemed, q.points_redeemed)])))
            if q.points_earned:
                points.append(("earn", await accounts.award_entry(
                    uow, member, q.points_earned, programme=ctx.programme, reason="points_earned", key=f"{key}:earn",
                    business_time=ctx.business_time, pending=ctx.programme.points.pending_days > 0, refs=refs)))
            for (name, _), e in zip(points, await ledger.post_all(uow, [p for _, p in points]), strict=True):
                entries[name], period, late = str(e.id), e.period, e.late
        lines = basket.lines
        sale_args = [tenant, sale_id, member, ctx.branch_id, ctx.business_time, ctx.currency, q.gross,
                     q.member_discount, q.coupons_total, q.points_redeemed, q.points_cash, q.stored_value.principal,
                     q.stored_value.bonus, q.due, q.qualifying_spend, q.points_earned if member else 0,
                     basket.payment_method, ctx.programme_version, offline, _json(entries),
                     _json([c.code for c, _ in coupons]), _json(list(q.promotions)), [x.sku for x in lines],
                     [x.category for x in lines], [x.qty for x in lines], [x.unit_price for x in lines]]
        for c, _ in coupons:
            await coupon_svc.mark_redeemed(uow, c, sale_id, ctx.business_time)
        out = schemas.SaleOut(sale_id=sale_id, member_id=member, branch_id=ctx.branch_id,
                              business_time=ctx.business_time, quote=_quote_out(q, ctx, state), tier=None,
                              tier_changed=False, balances=None, period=period, late=late)
        conn = await uow.driver()
        if member is None:
            await conn.execute(_sale_sql(1) + "SELECT 1", *sale_args)
            await idempotency.store(uow, "pos.sale", key, 201, msgspec.to_builtins(out))
        else:
            tier, set_tier, changed = await _after_purchase(uow, ctx, q, key)
            mine = await accounts.member_accounts(uow, member, ctx.currency)
            out = msgspec.structs.replace(out, tier=tier, tier_changed=changed)
            body = msgspec.to_builtins(out)
            row = await conn.fetchrow(
                _MEMBER_SALE_SQL, mine.points.id, mine.sv_principal.id, mine.sv_bonus.id, ctx.business_time,
                *sale_args, set_tier, tier, _json(body), key)
            b = accounts.balances_of(row)
            out = msgspec.structs.replace(out, balances=schemas.Balances(
                b.points, b.points_available, b.points_pending, b.sv_principal, b.sv_bonus))
        await uow.commit()
        return out, False


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def domain_period(ctx: _Context) -> str:
    local = ctx.business_time.astimezone(ZoneInfo(ctx.tz))
    return f"{local.year:04d}-{local.month:02d}"


async def top_up(db: Database, tenant: uuid.UUID, body: schemas.TopUpIn, key: str, branch_id: uuid.UUID | None
                 ) -> tuple[schemas.TopUpOut, bool]:
    """A stored-value plan bought at the till: principal and bonus tracked apart."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.top_up", msgspec.to_builtins(body), str(branch_id))
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, "pos.top_up", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.TopUpOut), True
        bt = times.business_time(body.business_time)
        branch, _ = await _branch(uow, body.branch_id or branch_id)
        currency, tz = await accounts.merchant_info(uow)
        _, programme = await programme_at(uow, bt)
        plan = next((p for p in programme.stored_value.plans if p.code == body.plan and p.active), None)
        if plan is None:
            raise NotFound(f"no active stored-value plan {body.plan!r}", field="plan")
        if await uow.session.scalar(text("SELECT 1 FROM memberships WHERE member_id = :m"),
                                    {"m": body.member_id}) is None:
            raise NotFound("member not found", field="member_id")
        mine = await accounts.member_accounts(uow, body.member_id, currency)
        merchant = await accounts.merchant_accounts(uow, currency)
        legs = [ledger.Leg(mine.sv_principal, plan.pay), ledger.Leg(merchant.cash, -plan.pay)]
        if plan.bonus:
            legs += [ledger.Leg(mine.sv_bonus, plan.bonus), ledger.Leg(merchant.bonus_expense, -plan.bonus)]
        legs += await clearing.top_up_legs(uow, currency, branch, plan.pay)
        top_up_id = uuid.uuid4()
        e = await ledger.post(uow, kind="stored_value_top_up", business_time=bt, key=f"{key}:top_up", scope="pos",
                              timezone=tz, refs={"top_up": str(top_up_id), "branch": str(branch)}, legs=legs)
        uow.session.add(TopUp(tenant_id=tenant, id=top_up_id, member_id=body.member_id, branch_id=branch,
                              plan_code=plan.code, currency=currency, principal=plan.pay, bonus=plan.bonus,
                              payment_method=body.payment_method, business_time=bt, entry_id=e.id))
        await uow.session.flush()
        out = schemas.TopUpOut(top_up_id=top_up_id, member_id=body.member_id, principal=plan.pay, bonus=plan.bonus,
                               balances=await _balances_out(uow, body.member_id, bt))
        await idempotency.store(uow, "pos.top_up", key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


async def refund_stored_value(db: Database, tenant: uuid.UUID, body: schemas.StoredValueRefundIn, key: str,
                              branch_id: uuid.UUID | None) -> tuple[schemas.StoredValueRefundOut, bool]:
    """Unused principal paid back at the till (never the bonus: the bonus that came with it is forfeited
    in the same proportion, so a top-up cannot be turned into free money). The branch that pays out is
    reimbursed by HQ through clearing. A member with no principal at all gets ``nothing-to-refund``
    (422) rather than a refund of 0; asking for more than the principal is ``insufficient-stored-value``."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.sv_refund", msgspec.to_builtins(body), str(branch_id))
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, "pos.sv_refund", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.StoredValueRefundOut), True
        bt = times.business_time(body.business_time)
        branch, _ = await _branch(uow, body.branch_id or branch_id)
        if await uow.session.scalar(text("SELECT 1 FROM memberships WHERE member_id = :m"),
                                    {"m": body.member_id}) is None:
            raise NotFound("member not found", field="member_id")
        currency, tz = await accounts.merchant_info(uow)
        mine = await accounts.member_accounts(uow, body.member_id, currency)
        merchant = await accounts.merchant_accounts(uow, currency)
        have = await accounts.balances(uow, body.member_id, bt)
        if have.sv_principal <= 0:
            raise NothingToRefund("the member holds no stored-value principal (a bonus is never paid out)",
                                  available=0)
        amount = have.sv_principal if body.amount is None else body.amount
        if amount > have.sv_principal:
            raise pricing.InsufficientStoredValue(available=have.sv_principal, requested=amount)
        # the bonus forfeited in proportion, rounded towards −∞ (the member keeps the fraction)
        forfeit = round_minor(Fraction(amount * have.sv_bonus, have.sv_principal), RoundingMode.FLOOR) \
            if amount < have.sv_principal else have.sv_bonus
        legs = [ledger.Leg(mine.sv_principal, -amount), ledger.Leg(merchant.cash, amount)]
        if forfeit:
            legs += [ledger.Leg(mine.sv_bonus, -forfeit), ledger.Leg(merchant.bonus_expense, forfeit)]
        legs += await clearing.sv_refund_legs(uow, currency, branch, amount)
        await ledger.post(uow, kind="stored_value_refunded", business_time=bt, key=f"{key}:sv_refund", scope="pos",
                          timezone=tz, refs={"branch": str(branch), "payment_method": body.payment_method},
                          legs=legs)
        out = schemas.StoredValueRefundOut(member_id=body.member_id, principal_refunded=amount,
                                           bonus_forfeited=forfeit,
                                           balances=await _balances_out(uow, body.member_id, bt))
        await idempotency.store(uow, "pos.sv_refund", key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


def _part(total: int, before: int, after: int, net: int) -> int:
    """This refund's part of ``total`` when the refunded amount goes from ``before`` to ``after`` of
    ``net``: the cumulative pro-rata target minus what earlier refunds took, so partial refunds add up
    to exactly ``total`` once the sale is fully refunded."""
    def target(refunded: int) -> int:
        return round_minor(Decimal(total) * Decimal(refunded) / Decimal(net), RoundingMode.HALF_EVEN) if net else 0
    return target(after) - target(before)


async def _sale_branch(uow: UnitOfWork, sale_id: uuid.UUID, branches: frozenset[uuid.UUID] | None) -> uuid.UUID:
    """The branch of a sale the caller may see and refund, or NotFound exactly as for a stranger's
    sale. ``branches`` is the caller's branch limit (None: every branch). A branch-limited caller
    (manager, cashier, branch terminal) reaches only its branches' sales — unless the programme in
    force now says ``refunds.anywhere`` (the refund is then booked at the selling branch)."""
    branch = await uow.session.scalar(text("SELECT branch_id FROM sales WHERE id = :s"), {"s": sale_id})
    if branch is None:
        raise NotFound("sale not found")
    if branches is not None and branch not in branches and not (await programme_at(uow))[1].refunds.anywhere:
        raise NotFound("sale not found")
    return uuid.UUID(str(branch))


async def refund(db: Database, tenant: uuid.UUID, sale_id: uuid.UUID, body: schemas.RefundIn, key: str,
                 branches: frozenset[uuid.UUID] | None) -> tuple[schemas.RefundOut, bool]:
    """Refund all or part of a sale: the points it earned come back (pro rata; a clawback debt when
    already spent and the programme allows it), redeemed points and stored value go back to the member
    (to principal and bonus as consumed), coupons are given back on a full refund (per policy).

    Who may refund is :func:`_sale_branch`'s rule; the refund is always booked at the selling branch
    (its row, and the clearing that undoes the sale's), whoever hands the money back."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.refund", str(sale_id), msgspec.to_builtins(body))
    async with db.uow(tenant) as uow:
        await _sale_branch(uow, sale_id, branches)  # before the replay: a replay shows the refund too
        replay = await idempotency.claim(uow, "pos.refund", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.RefundOut), True
        s = (await uow.session.scalars(select(Sale).where(Sale.id == sale_id).with_for_update())).one()
        bt = times.business_time(body.business_time)
        if body.business_time is not None and bt < s.business_time:  # a skewed till's own sale stays refundable
            raise ValidationFailed("business_time is before the sale", field="business_time")
        currency, tz = await accounts.merchant_info(uow)
        _, programme = await programme_at(uow, bt)
        remaining = s.net - s.refunded
        lines_out: list[dict[str, int]] = []
        if body.lines:
            if body.amount is not None:
                raise ValidationFailed("give amount or lines, not both")
            sale_lines = {x.line_no: x for x in await uow.session.scalars(
                select(SaleLine).where(SaleLine.sale_id == sale_id).with_for_update())}
            gross_lines = 0
            for rl in body.lines:
                line = sale_lines.get(rl.line_no)
                if line is None:
                    raise NotFound(f"sale has no line {rl.line_no}", field="lines")
                if rl.qty > line.qty - line.refunded_qty:
                    raise RefundTooLarge(f"line {rl.line_no} has {line.qty - line.refunded_qty} left to refund")
                line.refunded_qty += rl.qty
                gross_lines += rl.qty * line.unit_price
                lines_out.append({"line_no": rl.line_no, "qty": rl.qty})
            # what the member paid for those lines: their share of the net (discounts spread pro rata)
            amount = round_minor(Decimal(gross_lines) * Decimal(s.net) / Decimal(s.gross), RoundingMode.HALF_EVEN)
            amount = min(amount, remaining)
        else:
            amount = body.amount if body.amount is not None else remaining
        if amount <= 0 or amount > remaining:
            raise RefundTooLarge(f"{remaining} is left to refund on this sale", remaining=remaining)
        before, after = s.refunded, s.refunded + amount
        claw = _part(s.points_earned, before, after, s.net)
        restore_pts = _part(s.points_redeemed, before, after, s.net)
        restore_p = _part(s.sv_principal, before, after, s.net)
        restore_b = _part(s.sv_bonus, before, after, s.net)
        entries: dict[str, str] = {}
        debt = 0
        refund_id = uuid.uuid4()
        refs = {"sale": str(sale_id), "refund": str(refund_id)}
        if s.member_id is not None:
            mine = await accounts.member_accounts(uow, s.member_id, currency)
            merchant = await accounts.merchant_accounts(uow, currency)
            if claw:
                over = frozenset({mine.points.id}) if programme.refunds.clawback else frozenset()
                e = await ledger.post(uow, kind="points_clawed_back", business_time=bt, key=f"{key}:claw", scope="pos",
                                      timezone=tz, refs=refs, overdraw=over,
                                      legs=[ledger.Leg(mine.points, -claw), ledger.Leg(merchant.points_issued, claw)])
                entries["clawback"] = str(e.id)
                debt = max(0, -await ledger.balance(uow, mine.points))
            if restore_pts:
                e = await accounts.award_points(uow, s.member_id, restore_pts, programme=programme,
                                                reason="points_restored", key=f"{key}:restore", business_time=bt,
                                                refs=refs)
                entries["points_restored"] = str(e.id)
            if restore_p or restore_b:
                # bonus goes back into lots of the branches that issued it, so a later spend charges them again
                issuers = await clearing.bonus_issuers(uow, uuid.UUID(s.entries["stored_value"]))
                names = sorted(issuers) or [""]
                shares = largest_remainder(restore_b, [issuers.get(n, 1) for n in names])
                for i, (issuer, share) in enumerate(zip(names, shares, strict=True)):
                    p_part = restore_p if i == 0 else 0
                    if not (p_part or share):
                        continue
                    legs = [ledger.Leg(merchant.sales, -(p_part + share))]
                    if p_part:
                        legs.append(ledger.Leg(mine.sv_principal, p_part))
                    if share:
                        legs.append(ledger.Leg(mine.sv_bonus, share))
                    e = await ledger.post(uow, kind="stored_value_restored", business_time=bt,
                                          key=f"{key}:sv" if i == 0 else f"{key}:sv:{i}", scope="pos", timezone=tz,
                                          refs={**refs, "branch": issuer} if issuer else refs, legs=legs)
                    entries["stored_value_restored" if i == 0 else f"stored_value_restored_{i}"] = str(e.id)
                if "clearing" in s.entries:
                    c = await clearing.post_restored(
                        uow, currency=currency, tz=tz, original=uuid.UUID(s.entries["clearing"]), principal=restore_p,
                        bonus=restore_b, orig_principal=s.sv_principal, orig_bonus=s.sv_bonus, key=key,
                        business_time=bt, refs={**refs, "branch": str(s.branch_id)})
                    if c is not None:
                        entries["clearing"] = str(c.id)
        s.refunded = after
        s.status = "refunded" if after == s.net else "partially_refunded"
        if s.status == "refunded":
            await coupon_svc.restore(uow, sale_id, reissue=programme.refunds.reissue_coupons)
        if s.member_id is not None:
            await uow.session.execute(text(
                "UPDATE member_profiles SET cumulative_spend = greatest(cumulative_spend - :q, 0), updated_at = now() "
                "WHERE member_id = :m"),
                {"q": _part(s.qualifying_spend, before, after, s.net),
                 "m": s.member_id})
        uow.session.add(Refund(tenant_id=tenant, id=refund_id, sale_id=sale_id, branch_id=s.branch_id,
                               amount=amount, lines=lines_out, points_clawed_back=claw, points_restored=restore_pts,
                               sv_principal_restored=restore_p, sv_bonus_restored=restore_b, points_debt=debt,
                               business_time=bt, entries=entries))
        await uow.session.flush()
        out = schemas.RefundOut(refund_id=refund_id, sale_id=sale_id, amount=amount, points_clawed_back=claw,
                                points_restored=restore_pts, sv_principal_restored=restore_p,
                                sv_bonus_restored=restore_b, points_debt=debt, sale_status=s.status,
                                balances=await _balances_out(uow, s.member_id, bt) if s.member_id else None)
        await idempotency.store(uow, "pos.refund", key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


async def get_sale(db: Database, tenant: uuid.UUID, sale_id: uuid.UUID,
                   branches: frozenset[uuid.UUID] | None) -> dict[str, Any]:
    """A sale with its lines, for a caller who may refund it (the same branch rule as :func:`refund`)."""
    async with db.uow(tenant) as uow:
        await _sale_branch(uow, sale_id, branches)
        s = await uow.session.get(Sale, (tenant, sale_id))
        assert s is not None
        lines = (await uow.session.scalars(select(SaleLine).where(SaleLine.sale_id == sale_id)
                                           .order_by(SaleLine.line_no))).all()
        refunds = await uow.session.scalar(select(func.count()).select_from(Refund).where(Refund.sale_id == sale_id))
        return {
            "id": s.id, "member_id": s.member_id, "branch_id": s.branch_id, "business_time": s.business_time,
            "currency": s.currency, "gross": s.gross, "member_discount": s.member_discount,
            "coupon_total": s.coupon_total, "points_redeemed": s.points_redeemed, "points_cash": s.points_cash,
            "sv_principal": s.sv_principal, "sv_bonus": s.sv_bonus, "due": s.due, "points_earned": s.points_earned,
            "refunded": s.refunded, "status": s.status, "offline": s.offline, "coupons": s.coupons,
            "lines": [{"line_no": x.line_no, "sku": x.sku, "qty": x.qty, "unit_price": x.unit_price,
                       "refunded_qty": x.refunded_qty} for x in lines],
            "refunds": int(refunds or 0),
        }


async def offline_batch(db: Database, tenant: uuid.UUID, batch: schemas.OfflineBatchIn,
                        branch_id: uuid.UUID | None) -> schemas.OfflineBatchOut:
    """Sales a terminal recorded offline: each in its own transaction under its own key, keeping its
    business time (late items land in the next open period). Seen keys are duplicates; failures are
    reported per item and do not stop the batch."""
    results: list[schemas.OfflineResult] = []
    for item in batch.items:
        try:
            out, replayed = await sale(db, tenant, item.sale, item.key, branch_id, offline=True)
            results.append(schemas.OfflineResult(item.key, "duplicate" if replayed else "created", out))
        except DomainError as exc:
            results.append(schemas.OfflineResult(item.key, "error", problem={
                "type": exc.type_uri, "title": exc.title, "status": exc.status, "detail": exc.detail, **exc.extra}))
    return schemas.OfflineBatchOut(
        created=sum(r.status == "created" for r in results), duplicates=sum(r.status == "duplicate" for r in results),
        errors=sum(r.status == "error" for r in results), results=results)
