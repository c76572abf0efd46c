"""Pricing a sale: discounts, coupons, points as cash, stored value, and the points it earns.

Pure: takes the programme, the member's state and the cashier's intent, returns a :class:`Quote`.
The POS ``quote`` endpoint returns it as is; ``sale`` books exactly the same numbers, so what the
cashier was shown is what happens.

Order of application (documented to merchants):
0. price promotions (:mod:`promotions`: item promotions, then 满减, then member day — decision 0043);
1. the tier's member discount on what the promotions left — the higher of the earned tier and the tier a paid
   membership grants — then the paid membership's extra discount on what is left (both are the sale's
   ``member_discount``; what the membership added is ``membership_discount``);
2. coupons, in the order given, each on what is left (percent coupons are capped; a non-stackable
   coupon must be the only one; minimum spend is checked against the amount after step 1), then an
   alliance offer's voucher (a fixed amount, minimum spend checked the same way — decision 0044);
3. points as cash, at most ``cash_max_share_percent`` of what is left;
4. stored value (split into principal and bonus per the programme's consumption order);
5. the rest is due in cash/card.

Qualifying spend for points = amount after discounts and coupons − points-as-cash − the bonus part
of the stored-value payment (unless the programme counts bonus as spend). Points earned =
qualifying spend (major units) × earn rate × tier multiplier × promotions × birthday multiplier,
rounded **once** with the programme's rounding mode. A paid membership's points multiplier multiplies
too; ``membership_points`` is what it (and a granted tier) added over the member's own tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from enum import StrEnum

from lianka.platform.errors import RuleViolation, ValidationFailed
from lianka.platform.money import RoundingMode, round_minor
from lianka.tenants.domain import promotions as promos
from lianka.tenants.domain.programme import Consumption, EarningRule, Programme, RuleKind, Tier


class CouponKind(StrEnum):
    FIXED = "fixed"  # amount off
    PERCENT = "percent"  # percent off, capped
    GIFT = "gift"  # one unit of a gift item free


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    unit_price: int
    category: str = ""

    @property
    def total(self) -> int:
        return self.qty * self.unit_price


@dataclass(frozen=True)
class CouponTerms:
    code: str
    kind: CouponKind
    amount_off: int = 0
    percent_off: int = 0
    cap: int | None = None
    min_spend: int = 0
    gift_sku: str = ""
    stackable: bool = True


@dataclass(frozen=True)
class VoucherTerms:
    """An alliance offer's voucher (decision 0044) as pricing uses it: a fixed amount off, after the
    merchant's own coupons, with a minimum spend checked like a coupon's (after the member discount)."""

    code: str
    amount_off: int
    min_spend: int = 0


@dataclass(frozen=True)
class PaidPerks:
    """The perks of the member's live paid-membership term (``billing/membership``), as pricing uses them."""

    product: str
    tier: str | None = None
    extra_discount_percent: int = 0
    points_multiplier: Decimal = Decimal(1)


@dataclass(frozen=True)
class MemberState:
    tier: str | None
    points_available: int
    sv_principal: int
    sv_bonus: int
    birthday_today: bool = False
    paid: PaidPerks | None = None
    #: a member (or a customer joining with this sale); False for a guest — members-only promotions
    member: bool = True
    #: how many of the member's sales (not wholly refunded) got each promotion that has a per-member limit
    promotion_uses: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Intent:
    points: int = 0
    stored_value: int = 0
    coupons: tuple[CouponTerms, ...] = ()
    voucher: VoucherTerms | None = None


@dataclass(frozen=True)
class SaleContext:
    business_date: date
    branch_code: str
    #: the local time of day (None: unknown — promotions limited to hours do not apply)
    local_time: time | None = None


@dataclass(frozen=True)
class StoredValueSplit:
    principal: int
    bonus: int

    @property
    def total(self) -> int:
        return self.principal + self.bonus


@dataclass(frozen=True)
class Quote:
    gross: int
    member_discount: int
    coupon_discounts: tuple[tuple[str, int], ...]
    points_redeemed: int
    points_cash: int
    max_points_usable: int
    stored_value: StoredValueSplit
    due: int
    qualifying_spend: int
    base_points: int
    multiplier: Decimal
    points_earned: int
    promotions: tuple[str, ...] = field(default=())
    #: the tier the sale was priced at (a paid membership's granted tier when it is higher)
    tier: str | None = None
    #: what the paid membership saved: discount over the earned tier's, and points over its multiplier
    membership_discount: int = 0
    membership_points: int = 0
    #: the price promotions applied, in the order they were taken (decision 0043)
    applied_promotions: tuple[promos.Applied, ...] = ()
    #: what an alliance voucher took off (also the last entry of ``coupon_discounts``)
    voucher_discount: int = 0

    @property
    def promotion_discount(self) -> int:
        return sum(a.discount for a in self.applied_promotions)

    @property
    def coupons_total(self) -> int:
        return sum(a for _, a in self.coupon_discounts)

    @property
    def net(self) -> int:
        """What the member pays, by any means (gross minus promotions, discounts and coupons)."""
        return self.gross - self.promotion_discount - self.member_discount - self.coupons_total


class CouponNotApplicable(RuleViolation):
    type_slug = "coupon-not-applicable"
    title = "The coupon cannot be used for this sale"


class VoucherNotApplicable(RuleViolation):
    type_slug = "alliance-voucher-not-valid"
    title = "This voucher cannot be used here"


class InsufficientPoints(RuleViolation):
    type_slug = "insufficient-points"
    title = "Not enough points"


class InsufficientStoredValue(RuleViolation):
    type_slug = "insufficient-stored-value"
    title = "Not enough stored value"


class PaymentExceedsBill(RuleViolation):
    type_slug = "payment-exceeds-bill"
    title = "The payment is more than the bill"


def split_stored_value(amount: int, principal: int, bonus: int, order: Consumption) -> StoredValueSplit:
    """Which part of a stored-value payment comes from principal and which from bonus.

    Proportional: principal share = amount × principal / (principal + bonus), rounded half-even,
    the bonus takes the remainder — so the parts always add up exactly.
    """
    if amount < 0:
        raise ValidationFailed("stored-value amount must not be negative")
    if amount > principal + bonus:
        raise InsufficientStoredValue(available=principal + bonus, requested=amount)
    if amount == 0:
        return StoredValueSplit(0, 0)
    if order == Consumption.PRINCIPAL_FIRST:
        p = min(amount, principal)
        return StoredValueSplit(p, amount - p)
    p = round_minor(Decimal(amount) * Decimal(principal) / Decimal(principal + bonus), RoundingMode.HALF_EVEN)
    p = min(p, principal)
    b = amount - p
    if b > bonus:  # rounding can only move a single fen; keep both parts within balance
        p, b = p + (b - bonus), bonus
    return StoredValueSplit(p, b)


def _rule_applies(rule: EarningRule, ctx: SaleContext, tier: str | None) -> bool:
    if not rule.active:
        return False
    if rule.weekdays and ctx.business_date.weekday() not in rule.weekdays:
        return False
    if rule.branches and ctx.branch_code not in rule.branches:
        return False
    if rule.tiers and tier not in rule.tiers:
        return False
    if rule.starts and ctx.business_date < rule.starts:
        return False
    return not (rule.ends and ctx.business_date > rule.ends)


def _coupon_discount(c: CouponTerms, remaining: int, after_member: int, lines: tuple[Line, ...]) -> int:
    if after_member < c.min_spend:
        raise CouponNotApplicable(f"coupon {c.code} needs a minimum spend of {c.min_spend}", coupon=c.code)
    if c.kind == CouponKind.FIXED:
        return min(c.amount_off, remaining)
    if c.kind == CouponKind.PERCENT:
        off = round_minor(Decimal(remaining) * Decimal(c.percent_off) / 100, RoundingMode.FLOOR)
        return min(off, c.cap) if c.cap is not None else off
    gift = next((ln for ln in lines if ln.sku == c.gift_sku), None)
    return min(gift.unit_price, remaining) if gift else 0


def quote(
    programme: Programme,
    basket_amount: int,
    lines: tuple[Line, ...],
    member: MemberState,
    intent: Intent,
    ctx: SaleContext,
) -> Quote:
    if basket_amount <= 0:
        raise ValidationFailed("the basket amount must be positive", field="amount")
    if lines and sum(ln.total for ln in lines) != basket_amount:
        raise ValidationFailed("the lines do not add up to the basket amount", field="lines")
    if intent.points < 0 or intent.stored_value < 0:
        raise ValidationFailed("payments must not be negative")

    own = programme.tier(member.tier)
    tier = effective_tier(programme, member)
    paid = member.paid

    when = promos.When(ctx.business_date, ctx.branch_code, ctx.local_time)
    applied = promos.apply(
        [
            p
            for p in programme.promotions
            if promos.eligible(p, programme, member=member.member, tier=tier, when=when, uses=member.promotion_uses)
        ],
        lines,
        basket_amount,
    )
    after_promotions = basket_amount - sum(a.discount for a in applied)

    def tier_discount(t: Tier | None) -> int:
        return round_minor(
            Decimal(after_promotions) * Decimal(t.discount_percent if t else 0) / 100, RoundingMode.FLOOR
        )

    member_discount = tier_discount(tier)
    if paid and paid.extra_discount_percent:
        member_discount += round_minor(
            Decimal(after_promotions - member_discount) * Decimal(paid.extra_discount_percent) / 100,
            RoundingMode.FLOOR,
        )
    membership_discount = member_discount - tier_discount(own) if paid else 0
    after_member = after_promotions - member_discount

    codes = [c.code for c in intent.coupons]
    if len(set(codes)) != len(codes):
        raise CouponNotApplicable("the same coupon twice")
    if len(intent.coupons) > 1 and any(not c.stackable for c in intent.coupons):
        raise CouponNotApplicable("a non-stackable coupon cannot be combined with others")
    remaining = after_member
    coupon_discounts = []
    for c in intent.coupons:
        off = _coupon_discount(c, remaining, after_member, lines)
        coupon_discounts.append((c.code, off))
        remaining -= off
    voucher_discount = 0
    if intent.voucher is not None:
        v = intent.voucher
        if after_member <= 0 or after_member < v.min_spend:
            raise VoucherNotApplicable(f"the sale must be at least {v.min_spend} fen", field="alliance_voucher")
        voucher_discount = min(v.amount_off, remaining)
        coupon_discounts.append((v.code, voucher_discount))
        remaining -= voucher_discount

    pc = programme.points
    per_point_minor = pc.cash_value_per_point * 100
    max_cash = round_minor(Decimal(remaining) * Decimal(pc.cash_max_share_percent) / 100, RoundingMode.FLOOR)
    max_points_usable = min(
        member.points_available, round_minor(Decimal(max_cash) / per_point_minor, RoundingMode.FLOOR)
    )
    if intent.points:
        if intent.points > member.points_available:
            raise InsufficientPoints(available=member.points_available, requested=intent.points)
        if intent.points < pc.cash_min_points:
            raise RuleViolation(f"at least {pc.cash_min_points} points per redemption")
        if intent.points > max_points_usable:
            raise RuleViolation(
                f"at most {max_points_usable} points can pay for this bill", max_points_usable=max_points_usable
            )
    points_cash = round_minor(Decimal(intent.points) * per_point_minor, RoundingMode.FLOOR)
    remaining -= points_cash

    if intent.stored_value > remaining:
        raise PaymentExceedsBill(f"stored value {intent.stored_value} exceeds the {remaining} left to pay")
    sv = split_stored_value(
        intent.stored_value, member.sv_principal, member.sv_bonus, programme.stored_value.consumption
    )
    due = remaining - sv.total

    qualifying = after_member - sum(a for _, a in coupon_discounts) - points_cash
    if not programme.stored_value.bonus_counts_as_spend:
        qualifying -= sv.bonus
    tier_code = tier.code if tier else member.tier
    multiplier, promotions = _multiplier(programme, tier, tier_code, member.birthday_today, ctx, applied)
    base_exact = Decimal(qualifying) / 100 * pc.earn_per_major
    base_points = round_minor(base_exact, pc.rounding)
    earned = round_minor(base_exact * multiplier, pc.rounding)
    membership_points = 0
    if paid:
        multiplier *= paid.points_multiplier
        without = round_minor(
            base_exact * _multiplier(programme, own, member.tier, member.birthday_today, ctx, applied)[0], pc.rounding
        )
        earned = round_minor(base_exact * multiplier, pc.rounding)
        membership_points = max(earned - max(without, 0), 0)
    return Quote(
        gross=basket_amount,
        member_discount=member_discount,
        coupon_discounts=tuple(coupon_discounts),
        points_redeemed=intent.points,
        points_cash=points_cash,
        max_points_usable=max_points_usable,
        stored_value=sv,
        due=due,
        qualifying_spend=qualifying,
        base_points=base_points,
        multiplier=multiplier,
        points_earned=max(earned, 0),
        promotions=tuple(promotions),
        tier=tier_code,
        membership_discount=membership_discount,
        membership_points=membership_points,
        applied_promotions=applied,
        voucher_discount=voucher_discount,
    )


def effective_tier(programme: Programme, member: MemberState) -> Tier | None:
    """The member's own tier, or the tier their paid membership grants when that one ranks higher."""
    own = programme.tier(member.tier)
    granted = programme.tier(member.paid.tier) if member.paid and member.paid.tier else None
    if granted is not None and (own is None or granted.rank > own.rank):
        return granted
    return own


def _multiplier(
    programme: Programme,
    tier: Tier | None,
    tier_code: str | None,
    birthday: bool,
    ctx: SaleContext,
    applied: tuple[promos.Applied, ...],
) -> tuple[Decimal, list[str]]:
    """The points multiplier and the codes of every promotion that shaped the sale: points
    promotions (rules), then the price promotions applied (a member day may multiply points too)."""
    multiplier = tier.points_multiplier if tier else Decimal(1)
    promotions = []
    for rule in programme.rules:
        if rule.kind == RuleKind.PROMOTION and _rule_applies(rule, ctx, tier_code):
            multiplier *= rule.multiplier
            promotions.append(rule.code)
    for a in applied:
        multiplier *= a.multiplier
        promotions.append(a.code)
    if birthday and tier:
        multiplier *= tier.birthday_multiplier
    return multiplier, promotions
