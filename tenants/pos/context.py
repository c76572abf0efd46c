"""What every POS use case reads before it writes: the branch, the member, the sale's context
(merchant, branch, programme version, the member's profile) and the member's state, and the pricing
built on them — the quote a cashier is shown is exactly what a sale books.

Building blocks: every function here takes the unit of work and never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from lianka.platform import idempotency
from lianka.platform.db import UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity.members import is_valid_card_number
from lianka.tenants import queries as tenant_queries
from lianka.tenants.domain import pricing, tiers, times
from lianka.tenants.domain.lifecycle import join_eligibility
from lianka.tenants.domain.programme import Programme
from lianka.tenants.domain.promotions import Applied
from lianka.tenants.domain.rules import base_tier
from lianka.tenants.marketing import offers
from lianka.tenants.models import Coupon
from lianka.tenants.pos import queries, schemas
from lianka.tenants.pos.errors import NotAMember
from lianka.tenants.pos.queries import PaidTerm, Profile
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import programme_version


@dataclass
class SaleContext:
    programme_version: int
    programme: Programme
    currency: str
    tz: str
    branch_id: uuid.UUID
    branch_code: str
    business_time: datetime
    member_id: uuid.UUID | None
    joins: bool
    profile: Profile | None
    #: the member's tier-window standing before this sale (read with the balances, after the lock)
    standing: tiers.Standing | None = None
    #: the member's live paid-membership term (read with the context), None for everyone else
    paid: PaidTerm | None = None
    #: the alliance voucher the basket names, checked (set by :func:`price`)
    voucher: offers.SaleVoucher | None = None
    #: the webhook event types some active subscription wants, as the context read found them (the
    #: sale's events skip the webhooks' round trip when nobody listens)
    hooked: frozenset[str] = frozenset()
    #: the member's balances and tier standing, read with the context when they are current (a sale)
    prefetched: queries.Prefetched | None = None

    @property
    def business_date(self) -> date:
        """The business time's date in the merchant's time zone."""
        return self.business_time.astimezone(ZoneInfo(self.tz)).date()

    @property
    def local_time(self) -> time:
        """The business time's time of day in the merchant's time zone (promotions by the hour)."""
        return self.business_time.astimezone(ZoneInfo(self.tz)).time()


_WHICH_BRANCH = "which branch? give branch_id (or use a branch-bound terminal)"


async def branch(uow: UnitOfWork, branch_id: uuid.UUID | None) -> tuple[uuid.UUID, str]:
    """The branch a write acts at, with its code: a 400 when none is named, a 404 for a stranger's."""
    if branch_id is None:
        raise ValidationFailed(_WHICH_BRANCH)
    code = await tenant_queries.branch_code(uow, branch_id)
    if code is None:
        raise NotFound("branch not found", field="branch_id")
    return branch_id, code


async def member_by_card(uow: UnitOfWork, card: str) -> uuid.UUID:
    card = card.strip()
    found = await queries.member_by_card(uow, card) if is_valid_card_number(card) else None
    if found is None:
        raise NotFound("member not found", field="card")
    return found


async def profile(uow: UnitOfWork, member_id: uuid.UUID, *, lock: bool) -> Profile:
    """The member's profile (locked for a sale), created first if the member has none yet (enrolled by
    the API or the portal, now buying for the first time): its join branch is the enrolment's, never
    the branch of this first purchase."""
    found = await queries.profile(uow, member_id, lock=lock)
    if found is None:
        await tenant_queries.ensure_profile(uow, member_id)
        found = await queries.profile(uow, member_id, lock=lock)
        assert found is not None
    return found


async def load(uow: UnitOfWork, basket: schemas.Basket, branch_id: uuid.UUID | None, *, lock: bool) -> SaleContext:
    """The context of a quote or (``lock``: the member's profile row locked) a sale."""
    found = await _load(uow, basket, branch_id, lock=lock, claim=None)
    assert isinstance(found, SaleContext)  # nothing claimed, nothing replayed
    return found


async def claim_and_load(
    uow: UnitOfWork, basket: schemas.Basket, branch_id: uuid.UUID | None, claim: idempotency.Claim
) -> SaleContext | idempotency.StoredResponse:
    """A sale's first round trip: its Idempotency-Key claimed in the same statement as its context
    (the member's profile locked). The stored response when the key was already used by the same
    request (a replay: nothing else is looked at); 409 when by a different one."""
    return await _load(uow, basket, branch_id, lock=True, claim=claim)


async def _load(
    uow: UnitOfWork, basket: schemas.Basket, branch_id: uuid.UUID | None, *, lock: bool, claim: idempotency.Claim | None
) -> SaleContext | idempotency.StoredResponse:
    bt = times.business_time(basket.business_time)
    branch_id = basket.branch_id or branch_id
    if branch_id is None:
        raise ValidationFailed(_WHICH_BRANCH)
    member = basket.member_id
    if member is None and basket.card is not None:
        if claim is not None:  # a replay must not depend on the card still finding its member: claim first
            stored = await idempotency.claim(uow, claim.scope, claim.key, claim.request_hash)
            if stored is not None:
                return stored
            claim = None
        member = await member_by_card(uow, basket.card)
    prefetch = _prefetch(uow, bt) if claim is not None and member is not None else None
    row = await queries.sale_context(uow, branch_id, bt, member, lock=lock, claim=claim, prefetch=prefetch)
    if claim is not None and row is not None and not row.claimed:
        return await idempotency.replayed(uow, claim)
    if row is None:
        raise NotFound("merchant not found")
    if row.branch_code is None:
        raise NotFound("branch not found", field="branch_id")
    if member is not None and not row.member_known:
        raise NotFound("member not found", field="member_id")
    accounts.remember_merchant_info(uow, row.currency, row.timezone)
    programme = await programme_version(uow, row.programme_version)
    _remember(uow, programme)
    prefetched = row.prefetched
    if prefetched is not None and not (prefetched.fresh and prefetched.window_start == window_start(programme, bt)):
        prefetched = None  # read before a concurrent sale of the member committed, or for another window
    joins = False
    if member is None and basket.join_phone:
        eligibility = join_eligibility(
            programme.join,
            purchase=basket.amount,
            cumulative=basket.amount,
            today=bt.astimezone(ZoneInfo(row.timezone)).date(),
        )
        if not eligibility.eligible:
            raise NotAMember(eligibility.reason, reason=eligibility.reason)
        joins = True
    found = None
    if member is not None:
        found = row.profile if row.profile is not None else await profile(uow, member, lock=lock)
    return SaleContext(
        row.programme_version,
        programme,
        row.currency,
        row.timezone,
        branch_id,
        row.branch_code,
        bt,
        member,
        joins,
        found,
        paid=row.paid if member is not None else None,
        hooked=row.hooked,
        prefetched=prefetched,
    )


#: per merchant, the programme its last sale in this process was priced with: its tier window is the
#: guess a sale's context read reads the standing for (checked against the programme in force)
_last_programme: dict[uuid.UUID, Programme] = {}


def _prefetch(uow: UnitOfWork, at: datetime) -> queries.Prefetch | None:
    """What the context read needs to read the member's balances and standing too — known once a sale
    of the merchant has run here (the first one reads them after the context, as every sale did)."""
    tenant = uow.tenant_id
    programme = _last_programme.get(tenant) if tenant is not None else None
    if tenant is None or programme is None:
        return None
    return queries.Prefetch(accounts.points_unit(tenant), window_start(programme, at))


def _remember(uow: UnitOfWork, programme: Programme) -> None:
    if uow.tenant_id is not None:
        if len(_last_programme) > 5_000:
            _last_programme.clear()
        _last_programme[uow.tenant_id] = programme


def window_start(p: Programme, at: datetime) -> datetime:
    return at - timedelta(days=31 * p.tier_policy.window_months)


async def member_state(uow: UnitOfWork, ctx: SaleContext, *, standing: bool = False) -> pricing.MemberState:
    """Balances (and, for a sale, the tier-window standing into ``ctx.standing``): for a sale, as its
    context read found them when they are current (``ctx.prefetched``: no round trip), else in one round
    trip after the profile lock."""
    if ctx.member_id is None or ctx.profile is None:
        # a customer joining with this sale is priced as a member (the sale enrols them first)
        return pricing.MemberState(tier=None, points_available=0, sv_principal=0, sv_bonus=0, member=ctx.joins)
    mine = (await accounts.member_accounts(uow, ctx.member_id, ctx.currency)).ids
    if standing and ctx.prefetched is not None and ctx.prefetched.accounts == mine:
        b, ctx.standing = ctx.prefetched.balances, ctx.prefetched.standing  # read with the context
    elif standing:
        b, ctx.standing = await queries.balances_and_standing(
            uow, mine, ctx.business_time, ctx.member_id, window_start(ctx.programme, ctx.business_time)
        )
    else:
        b = await tenant_queries.balances(uow, mine, ctx.business_time)
    limited = [p.code for p in ctx.programme.promotions if p.limit_per_member is not None and p.active]
    uses = await queries.promotion_uses(uow, ctx.member_id, limited) if limited else {}
    today = ctx.business_date
    bday = ctx.profile.birthday
    tier = ctx.profile.tier_code or base_tier(ctx.programme)
    return pricing.MemberState(
        tier=tier,
        points_available=max(b.points_available, 0),
        sv_principal=b.sv_principal,
        sv_bonus=b.sv_bonus,
        birthday_today=bool(bday and (bday.month, bday.day) == (today.month, today.day)),
        paid=paid_perks(ctx.paid),
        promotion_uses=uses,
    )


def paid_perks(term: PaidTerm | None) -> pricing.PaidPerks | None:
    if term is None:
        return None
    p = term.perks
    return pricing.PaidPerks(
        product=term.product,
        tier=p.get("tier") or None,
        extra_discount_percent=int(p.get("extra_discount_percent", 0)),
        points_multiplier=Decimal(str(p.get("points_multiplier", "1"))),
    )


def quote_out(q: pricing.Quote, ctx: SaleContext, state: pricing.MemberState) -> schemas.QuoteOut:
    return schemas.QuoteOut(
        gross=q.gross,
        member_discount=q.member_discount,
        coupons=list(q.coupon_discounts),
        points_redeemed=q.points_redeemed,
        points_cash=q.points_cash,
        max_points_usable=q.max_points_usable,
        sv_principal=q.stored_value.principal,
        sv_bonus=q.stored_value.bonus,
        due=q.due,
        qualifying_spend=q.qualifying_spend,
        base_points=q.base_points,
        multiplier=str(q.multiplier),
        points_earned=q.points_earned if (ctx.member_id or ctx.joins) else 0,
        points_pending=ctx.programme.points.pending_days > 0,
        promotions=list(q.promotions),
        tier=q.tier if q.tier is not None else state.tier,
        member_id=ctx.member_id,
        joins=ctx.joins,
        paid_membership=state.paid.product if state.paid else None,
        membership_discount=q.membership_discount,
        membership_points=q.membership_points,
        promotion_discount=q.promotion_discount,
        applied_promotions=applied_out(q.applied_promotions),
        alliance_voucher=(
            schemas.AllianceVoucherOut(
                ctx.voucher.code,
                ctx.voucher.alliance_id,
                ctx.voucher.offer.id,
                ctx.voucher.offer.name,
                q.voucher_discount,
            )
            if ctx.voucher is not None
            else None
        ),
    )


def applied_out(applied: tuple[Applied, ...]) -> list[schemas.AppliedPromotionOut]:
    return [
        schemas.AppliedPromotionOut(a.code, a.name, str(a.kind), a.discount, list(a.lines), str(a.multiplier))
        for a in applied
    ]


async def price(
    uow: UnitOfWork, basket: schemas.Basket, ctx: SaleContext, *, lock: bool
) -> tuple[pricing.Quote, pricing.MemberState, list[tuple[Coupon, pricing.CouponTerms]]]:
    """The quote for ``basket`` (a sale, ``lock``, also reads the standing that decides the tier and
    locks the coupons it uses)."""
    if (basket.points or basket.stored_value or basket.coupons) and ctx.member_id is None:
        raise ValidationFailed("points, stored value and coupons need a member")
    state = await member_state(uow, ctx, standing=lock)
    coupons = (
        await coupon_svc.terms_for_sale(
            uow, basket.coupons, ctx.member_id, ctx.branch_code, ctx.business_time, lock=lock
        )
        if basket.coupons and ctx.member_id
        else []
    )
    if basket.alliance_voucher:
        assert uow.tenant_id is not None
        ctx.voucher = await offers.voucher_for_sale(
            uow, uow.tenant_id, basket.alliance_voucher, basket.alliance_id, ctx.business_time
        )
    lines = tuple(pricing.Line(x.sku, x.qty, x.unit_price, x.category) for x in basket.lines)
    q = pricing.quote(
        ctx.programme,
        basket.amount,
        lines,
        state,
        pricing.Intent(
            points=basket.points,
            stored_value=basket.stored_value,
            coupons=tuple(t for _, t in coupons),
            voucher=ctx.voucher.terms if ctx.voucher is not None else None,
        ),
        pricing.SaleContext(ctx.business_date, ctx.branch_code, ctx.local_time),
    )
    return q, state, coupons


async def balances_out(uow: UnitOfWork, member_id: uuid.UUID, at: datetime) -> schemas.Balances:
    b = await accounts.balances(uow, member_id, at)
    return schemas.Balances(b.points, b.points_available, b.points_pending, b.sv_principal, b.sv_bonus)
