"""A merchant's programme configuration: one versioned document.

The whole configuration — points, tiers, earning rules, join rules, stored-value plans — is one
immutable document; every change writes a new version with an effective time, so history is kept
and a sale is always priced with the version in force at its business time. Things with their own
state (reward stock, coupon templates' stock, issued coupons) are tables of their own and reference
the programme by id.

All amounts are integer minor units of the merchant's currency; rates are ``Decimal`` strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import msgspec

from lianka.platform.money import RoundingMode

Minor = Annotated[int, msgspec.Meta(ge=0, le=10**13)]
Points = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ExpiryKind(StrEnum):
    ROLLING_MONTHS = "rolling_months"  # N months after the earn
    END_OF_YEAR = "end_of_year"  # 31 Dec of the earn year (+ N years)
    NEVER = "never"


class ExpiryPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: ExpiryKind = ExpiryKind.ROLLING_MONTHS
    months: Annotated[int, msgspec.Meta(ge=1, le=120)] = 12
    #: END_OF_YEAR: how many extra years (0 = this year's 31 Dec)
    extra_years: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    remind_days_before: Annotated[int, msgspec.Meta(ge=0, le=365)] = 30


class PointsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name = "积分"
    #: points per one major unit (¥1) of qualifying spend, e.g. "1" or "0.5"
    earn_per_major: Decimal = Decimal("1")
    #: how earned points are rounded (default FLOOR: never give a fraction away; "down" is read as FLOOR)
    rounding: RoundingMode = RoundingMode.FLOOR
    expiry: ExpiryPolicy = ExpiryPolicy()
    #: points stay pending (not spendable) this many days after the sale: the return window
    pending_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 0
    #: points-as-cash: the money value of one point in major units (e.g. "0.01" = 100 points per ¥1)
    cash_value_per_point: Decimal = Decimal("0.01")
    #: at most this share of a bill may be paid with points
    cash_max_share_percent: Percent = 50
    #: minimum points in one redemption
    cash_min_points: Points = 0


class TierQualification(StrEnum):
    SPEND = "spend"  # cumulative qualifying spend within the window
    POINTS = "points"  # points earned within the window
    PURCHASE = "purchase"  # bought (paid membership)
    INVITATION = "invitation"  # granted by staff


class RetentionAction(StrEnum):
    DOWNGRADE_ONE = "downgrade_one"
    REEVALUATE = "reevaluate"


class Tier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
    name: Name
    rank: Annotated[int, msgspec.Meta(ge=0, le=100)]
    qualification: TierQualification = TierQualification.SPEND
    #: threshold in minor units (spend) or points, reached within ``window_months``
    threshold: Annotated[int, msgspec.Meta(ge=0, le=10**13)] = 0
    points_multiplier: Decimal = Decimal("1")
    discount_percent: Percent = 0
    birthday_multiplier: Decimal = Decimal("1")
    perks: list[str] = []


class TierPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window_months: Annotated[int, msgspec.Meta(ge=1, le=60)] = 12
    review_every_months: Annotated[int, msgspec.Meta(ge=1, le=60)] = 12
    retention: RetentionAction = RetentionAction.DOWNGRADE_ONE


class RuleKind(StrEnum):
    SIGNUP = "signup"
    CHECKIN = "checkin"
    REVIEW = "review"
    REFERRAL = "referral"  # the referrer, on the referee's first qualifying purchase
    BIRTHDAY = "birthday"
    CUSTOM = "custom"  # an event the merchant posts through the API
    PROMOTION = "promotion"  # multiplies the points a sale earns (e.g. double on Tuesdays)
    TIER_UPGRADE = "tier_upgrade"  # when a member moves up into one of the rule's tiers (any tier if none)


class EarningRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}$")]
    kind: RuleKind
    points: Points = 0
    #: PROMOTION: the multiplier applied to a sale's base points
    multiplier: Decimal = Decimal("1")
    #: CHECKIN: extra points on the N-th consecutive day, e.g. {"7": 20}
    streak_bonus: dict[str, Points] = {}
    #: CUSTOM: the event name posted by the merchant
    event: str = ""
    weekdays: list[Annotated[int, msgspec.Meta(ge=0, le=6)]] = []  # Monday = 0; empty = every day
    branches: list[str] = []  # branch codes; empty = all
    tiers: list[str] = []  # tier codes; empty = all
    starts: date | None = None
    ends: date | None = None
    cap_per_day: Points | None = None
    cap_per_member: Points | None = None
    cap_total: Points | None = None
    #: REFERRAL: the referee's first purchase must be at least this much
    min_spend: Minor = 0
    #: a coupon template (its code) issued with the award, e.g. a birthday or tier-upgrade coupon
    coupon_template: Annotated[str, msgspec.Meta(max_length=40)] = ""
    active: bool = True


class JoinPolicy(StrEnum):
    FREE = "free"
    QUALIFYING_PURCHASE = "qualifying_purchase"


class JoinRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    policy: JoinPolicy = JoinPolicy.FREE
    single_purchase_min: Minor = 0  # e.g. 10000 = ¥100
    cumulative_min: Minor = 0  # e.g. 30000 = ¥300
    min_age: Annotated[int, msgspec.Meta(ge=0, le=120)] = 0


class Consumption(StrEnum):
    PROPORTIONAL = "proportional"
    PRINCIPAL_FIRST = "principal_first"


class BonusFunder(StrEnum):
    HQ = "hq"
    ISSUING_BRANCH = "issuing_branch"
    REDEEMING_BRANCH = "redeeming_branch"


class StoredValuePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}$")]
    name: Name
    pay: Annotated[int, msgspec.Meta(gt=0, le=10**11)]  # principal, minor units
    get: Annotated[int, msgspec.Meta(gt=0, le=10**11)]  # principal + bonus
    active: bool = True

    @property
    def bonus(self) -> int:
        return self.get - self.pay


class StoredValueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    consumption: Consumption = Consumption.PROPORTIONAL
    bonus_funder: BonusFunder = BonusFunder.HQ
    plans: list[StoredValuePlan] = []
    #: what counts as spend for points excludes the bonus part of a stored-value payment
    bonus_counts_as_spend: bool = False


class RefundPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: a refund takes back the points the sale earned even when they are spent (negative balance)
    clawback: bool = True
    #: a full refund gives the sale's coupons back (otherwise they are void)
    reissue_coupons: bool = True
    #: branch-limited staff and tills may refund (and look up) sales of every branch, not only their
    #: own; the refund is still booked at the selling branch (its row and clearing)
    anywhere: bool = False


class PromotionKind(StrEnum):
    SPEND_SAVE = "spend_save"  # 满减: spend X save Y, the best step reached applies
    PERCENT_OFF = "percent_off"  # percent off the lines of some SKUs / categories (all lines if none)
    BUY_N_GET_ONE = "buy_n_get_one"  # of the matching units, every (N+1)-th is free, the cheapest ones
    MEMBER_DAY = "member_day"  # on its weekdays, members at or above a tier get percent off and/or points x


class SpendStep(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """满 ``spend`` 减 ``off`` (minor units)."""

    spend: Annotated[int, msgspec.Meta(gt=0, le=10**13)]
    off: Annotated[int, msgspec.Meta(gt=0, le=10**13)]


class Promotion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A price promotion at the till (decision 0043): its kind's terms, who and when it applies to,
    and whether it combines with the others (``stackable``). Dates and hours are the merchant's
    local ones; ``starts``/``ends`` are inclusive days, ``from_time``/``until_time`` a daily window
    (``until_time`` exclusive; either may be empty)."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}$")]
    name: Name
    kind: PromotionKind
    #: PERCENT_OFF, MEMBER_DAY: percent off
    percent_off: Percent = 0
    #: SPEND_SAVE: the steps (满100减10, 满200减30)
    steps: list[SpendStep] = []
    #: BUY_N_GET_ONE: N (buy 2 get 1: every third unit free)
    buy: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    #: MEMBER_DAY: points multiplier on the sale's points (1: none)
    multiplier: Decimal = Decimal("1")
    #: PERCENT_OFF, BUY_N_GET_ONE: the lines it applies to (a SKU or a category matches; none: all lines)
    skus: list[Annotated[str, msgspec.Meta(max_length=64)]] = []
    categories: list[Annotated[str, msgspec.Meta(max_length=64)]] = []
    members_only: bool = False
    #: members at or above this tier (its code; empty: any tier, or everyone unless members_only)
    min_tier: str = ""
    weekdays: list[Annotated[int, msgspec.Meta(ge=0, le=6)]] = []  # Monday = 0; empty = every day
    branches: list[str] = []  # branch codes; empty = all
    starts: date | None = None
    ends: date | None = None
    from_time: time | None = None
    until_time: time | None = None
    stackable: bool = True
    active: bool = True
    #: at most this many of a member's sales (not wholly refunded) get it; members only when set
    limit_per_member: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None


class Programme(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    points: PointsConfig = PointsConfig()
    tiers: list[Tier] = []
    tier_policy: TierPolicy = TierPolicy()
    rules: list[EarningRule] = []
    join: JoinRules = JoinRules()
    stored_value: StoredValueConfig = StoredValueConfig()
    refunds: RefundPolicy = RefundPolicy()
    promotions: list[Promotion] = []

    def tier(self, code: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.code == code), None)

    def tiers_by_rank(self) -> list[Tier]:
        return sorted(self.tiers, key=lambda t: t.rank)


class ProgrammeError(ValueError):
    """The configuration is inconsistent: the message says how, ``field`` where (a path into the
    document in msgspec's notation, ``tiers[1].threshold``) and ``reason`` what kind of mistake it is
    (``duplicate``, ``order``, ``range``, ``required``, ``conflict``, ``format``, ``dates``,
    ``unknown``), so an editor can put a translated message beside the field at fault."""

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


def _first_repeat(values: Sequence[Hashable]) -> int | None:
    """The index of the first value that already occurred earlier in ``values``."""
    seen: set[Hashable] = set()
    for i, v in enumerate(values):
        if v in seen:
            return i
        seen.add(v)
    return None


def _check_tiers(p: Programme) -> None:
    for what, values in (("code", [t.code for t in p.tiers]), ("rank", [t.rank for t in p.tiers])):
        if (i := _first_repeat(values)) is not None:
            raise ProgrammeError(f"tier {what}s must be unique", field=f"tiers[{i}].{what}", reason="duplicate")
    ordered = p.tiers_by_rank()
    for lower, higher in itertools.pairwise(ordered):
        if lower.qualification == higher.qualification and higher.threshold < lower.threshold:
            raise ProgrammeError(
                f"tier {higher.code} has a lower threshold than {lower.code}",
                field=f"tiers[{p.tiers.index(higher)}].threshold",
                reason="order",
            )
    for i, t in enumerate(p.tiers):
        for name in ("points_multiplier", "birthday_multiplier"):
            if not Decimal(0) < getattr(t, name) <= Decimal(20):
                raise ProgrammeError(
                    f"tier {t.code}: multipliers must be in (0, 20]", field=f"tiers[{i}].{name}", reason="range"
                )


def _check_rules(p: Programme) -> None:
    codes = {t.code for t in p.tiers}
    if (i := _first_repeat([r.code for r in p.rules])) is not None:
        raise ProgrammeError("rule codes must be unique", field=f"rules[{i}].code", reason="duplicate")
    for i, r in enumerate(p.rules):
        at = f"rules[{i}]"
        if r.kind == RuleKind.PROMOTION and not Decimal(0) < r.multiplier <= Decimal(20):
            raise ProgrammeError(
                f"rule {r.code}: multiplier must be in (0, 20]", field=f"{at}.multiplier", reason="range"
            )
        if r.kind == RuleKind.CUSTOM and not r.event:
            raise ProgrammeError(
                f"rule {r.code}: a custom rule needs an event name", field=f"{at}.event", reason="required"
            )
        if r.coupon_template and r.kind == RuleKind.PROMOTION:
            raise ProgrammeError(
                f"rule {r.code}: a promotion multiplies a sale's points and issues no coupon",
                field=f"{at}.coupon_template",
                reason="conflict",
            )
        if any(not (k.isdigit() and 1 <= int(k) <= 366) for k in r.streak_bonus):
            raise ProgrammeError(
                f"rule {r.code}: streak_bonus keys are day counts 1..366", field=f"{at}.streak_bonus", reason="format"
            )
        if r.starts and r.ends and r.ends < r.starts:
            raise ProgrammeError(f"rule {r.code}: ends before it starts", field=f"{at}.ends", reason="dates")
        unknown = set(r.tiers) - codes
        if unknown:
            raise ProgrammeError(
                f"rule {r.code}: unknown tiers {sorted(unknown)}", field=f"{at}.tiers", reason="unknown"
            )
    checkins = [i for i, r in enumerate(p.rules) if r.kind == RuleKind.CHECKIN and r.active]
    if len(checkins) > 1:
        raise ProgrammeError("at most one active check-in rule", field=f"rules[{checkins[1]}].kind", reason="duplicate")


def _check_promotion(p: Promotion, at: str, tiers: set[str]) -> None:
    def bad(message: str, name: str, reason: str) -> ProgrammeError:
        return ProgrammeError(f"promotion {p.code}: {message}", field=f"{at}.{name}", reason=reason)

    if p.kind == PromotionKind.PERCENT_OFF and p.percent_off == 0:
        raise bad("percent off must be 1..100", "percent_off", "range")
    if p.kind == PromotionKind.SPEND_SAVE:
        if not p.steps:
            raise bad("a spend-and-save promotion needs at least one step", "steps", "required")
        if (i := _first_repeat([s.spend for s in p.steps])) is not None:
            raise bad("two steps with the same spend", f"steps[{i}].spend", "duplicate")
        for i, step in enumerate(p.steps):
            if step.off > step.spend:
                raise bad("a step saves more than its spend", f"steps[{i}].off", "order")
    if p.kind == PromotionKind.MEMBER_DAY:
        if not p.weekdays:
            raise bad("a member day needs its weekdays", "weekdays", "required")
        if p.percent_off == 0 and p.multiplier == Decimal(1):
            raise bad("a member day gives percent off or a points multiplier", "percent_off", "required")
    if not Decimal(1) <= p.multiplier <= Decimal(20) or (p.kind != PromotionKind.MEMBER_DAY and p.multiplier != 1):
        raise bad("multiplier must be in [1, 20] (member days only)", "multiplier", "range")
    if p.min_tier and p.min_tier not in tiers:
        raise bad(f"unknown tier {p.min_tier!r}", "min_tier", "unknown")
    if p.starts and p.ends and p.ends < p.starts:
        raise bad("ends before it starts", "ends", "dates")
    if p.from_time and p.until_time and p.until_time <= p.from_time:
        raise bad("the daily window ends before it starts", "until_time", "dates")


def _check_promotions(p: Programme) -> None:
    if (i := _first_repeat([x.code for x in p.promotions])) is not None:
        raise ProgrammeError("promotion codes must be unique", field=f"promotions[{i}].code", reason="duplicate")
    tiers = {t.code for t in p.tiers}
    for i, promo in enumerate(p.promotions):
        _check_promotion(promo, f"promotions[{i}]", tiers)


def _check_finite(p: Programme) -> None:
    """Every rate is a number: ``NaN`` or an infinity is refused before any range check compares it
    (comparing a ``NaN`` Decimal raises)."""
    rates = [
        ("points.earn_per_major", p.points.earn_per_major),
        ("points.cash_value_per_point", p.points.cash_value_per_point),
        *((f"tiers[{i}].points_multiplier", t.points_multiplier) for i, t in enumerate(p.tiers)),
        *((f"tiers[{i}].birthday_multiplier", t.birthday_multiplier) for i, t in enumerate(p.tiers)),
        *((f"rules[{i}].multiplier", r.multiplier) for i, r in enumerate(p.rules)),
        *((f"promotions[{i}].multiplier", x.multiplier) for i, x in enumerate(p.promotions)),
    ]
    for at, rate in rates:
        if not rate.is_finite():
            raise ProgrammeError(f"{at} must be a number", field=at, reason="range")


def validate(p: Programme) -> Programme:
    """Cross-field rules msgspec cannot express; raise ProgrammeError, return ``p`` when sound."""
    _check_finite(p)
    _check_tiers(p)
    _check_rules(p)
    _check_promotions(p)
    plans = p.stored_value.plans
    if (i := _first_repeat([pl.code for pl in plans])) is not None:
        raise ProgrammeError(
            "stored-value plan codes must be unique", field=f"stored_value.plans[{i}].code", reason="duplicate"
        )
    for i, pl in enumerate(plans):
        if pl.get < pl.pay:
            raise ProgrammeError(
                f"plan {pl.code}: 'get' must be at least 'pay'", field=f"stored_value.plans[{i}].get", reason="order"
            )
    pc = p.points
    if not Decimal(0) <= pc.earn_per_major <= Decimal(1000):
        raise ProgrammeError(
            "points.earn_per_major must be in [0, 1000]", field="points.earn_per_major", reason="range"
        )
    if not Decimal(0) < pc.cash_value_per_point <= Decimal(100):
        raise ProgrammeError(
            "points.cash_value_per_point must be in (0, 100]", field="points.cash_value_per_point", reason="range"
        )
    return p
