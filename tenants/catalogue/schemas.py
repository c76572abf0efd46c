"""Request and response bodies of the catalogue: coupon templates and coupons, earning-rule events,
check-ins, rewards and redemptions (msgspec; decoded strictly: amounts are integers of minor units,
points are integers)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from lianka.tenants.domain.pricing import CouponKind

Minor = Annotated[int, msgspec.Meta(ge=0, le=10**11)]
PositiveMinor = Annotated[int, msgspec.Meta(gt=0, le=10**11)]
PositivePoints = Annotated[int, msgspec.Meta(gt=0, le=10**11)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10**9)]
PositiveCount = Annotated[int, msgspec.Meta(gt=0, le=10**9)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
BranchCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
TierCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
Reference = Annotated[str, msgspec.Meta(max_length=200)]


# --- coupon templates and coupons ----------------------------------------------------------------


class TemplateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A coupon template (代金券). ``fixed``: ``amount_off``; ``percent``: ``percent_off`` with an
    optional ``cap``; ``gift``: ``gift_sku``. Validity: ``valid_until`` (fixed dates, with an optional
    ``valid_from``) and/or ``valid_days`` from issue (the earlier end wins)."""

    code: Code
    name: Name
    kind: CouponKind
    amount_off: Minor = 0
    percent_off: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    cap: Minor | None = None
    gift_sku: Annotated[str, msgspec.Meta(max_length=64)] = ""
    min_spend: Minor = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None
    #: branch codes where the coupon can be used; empty = every branch
    branches: list[BranchCode] = []
    stackable: bool = True
    per_member_limit: PositiveCount | None = None
    stock_total: Count | None = None
    #: offered to members in the portal's coupon centre (领券中心), where they claim it themselves
    claimable: bool = False


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    amount_off: int
    percent_off: int
    cap: int | None
    gift_sku: str
    min_spend: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    branches: list[str]
    stackable: bool
    per_member_limit: int | None
    stock_total: int | None
    issued_count: int
    #: left to issue (None: unlimited)
    remaining: int | None
    active: bool
    created_at: datetime
    #: offered in the portal's coupon centre
    claimable: bool = False


class IssueIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    member_id: uuid.UUID


class CouponOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    member_id: uuid.UUID
    template_id: uuid.UUID
    template_code: str
    name: str
    kind: str
    amount_off: int
    percent_off: int
    cap: int | None
    min_spend: int
    gift_sku: str
    branches: list[str]
    stackable: bool
    status: str
    source: str
    valid_from: datetime
    valid_until: datetime | None
    issued_at: datetime
    redeemed_at: datetime | None


# --- earning-rule events ---------------------------------------------------------------------------


class EventIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A custom event (the CUSTOM rules whose ``event`` is this name award the member)."""

    event: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    member_id: uuid.UUID
    branch_id: uuid.UUID | None = None
    reference: Reference = ""
    business_time: datetime | None = None


class ReviewIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The member wrote a review (``reference``: where, e.g. the review's id on a platform)."""

    member_id: uuid.UUID
    branch_id: uuid.UUID | None = None
    reference: Reference = ""
    business_time: datetime | None = None


class AwardOut(msgspec.Struct):
    rule: str
    kind: str
    #: awarded, replayed (given before under the same key) or skipped (``reason``)
    status: str
    points: int
    coupon: str | None
    reason: str


class EventOut(msgspec.Struct):
    event: str
    member_id: uuid.UUID
    points_awarded: int
    awards: list[AwardOut]
    points_balance: int


# --- check-in (签到) ---------------------------------------------------------------------------------


class CheckinOut(msgspec.Struct):
    day: date
    streak: int
    points: int
    base_points: int
    streak_bonus: int
    #: True when today's check-in had already been made (a retry changes nothing)
    already: bool
    points_balance: int


class NextBonus(msgspec.Struct):
    streak: int
    points: int


class CheckinStatus(msgspec.Struct):
    offered: bool
    today: date
    checked_in_today: bool
    #: consecutive days up to today (or yesterday, while today's check-in is still open)
    streak: int
    points_today: int
    #: what the next check-in gives (today's if still open, else tomorrow's)
    next_points: int
    next_bonus: NextBonus | None
    reason: str = ""


# --- rewards (积分兑换) -------------------------------------------------------------------------------

RewardKind = Literal["gift", "coupon", "stored_value"]


class RewardIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A catalogue item: a ``gift`` picked up at ``pickup_branch_id``, a ``coupon`` from
    ``coupon_template`` (its code) or ``stored_value`` (``sv_amount`` credited as bonus stored value,
    funded by the merchant)."""

    code: Code
    name: Name
    kind: RewardKind
    points_cost: PositivePoints
    stock_total: Count | None = None
    pickup_branch_id: uuid.UUID | None = None
    coupon_template: Code | None = None
    sv_amount: Minor = 0
    #: tier codes allowed to redeem; empty = every member
    tiers: list[TierCode] = []
    per_member_limit: PositiveCount | None = None
    active: bool = True


class RewardPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields to change; ``null`` clears ``stock_total`` (unlimited), ``per_member_limit`` and
    ``pickup_branch_id``."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    points_cost: PositivePoints | msgspec.UnsetType = msgspec.UNSET
    stock_total: Count | msgspec.UnsetType | None = msgspec.UNSET
    pickup_branch_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET
    sv_amount: PositiveMinor | msgspec.UnsetType = msgspec.UNSET
    tiers: list[TierCode] | msgspec.UnsetType = msgspec.UNSET
    per_member_limit: PositiveCount | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class RewardOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    points_cost: int
    stock_total: int | None
    redeemed_count: int
    #: left in stock (None: unlimited)
    remaining: int | None
    pickup_branch_id: uuid.UUID | None
    coupon_template: str | None
    sv_amount: int
    tiers: list[str]
    per_member_limit: int | None
    active: bool
    created_at: datetime


class CatalogueItem(msgspec.Struct):
    """A reward as one member sees it: can they redeem it now, and if not, why."""

    reward: RewardOut
    affordable: bool
    tier_allowed: bool
    in_stock: bool
    #: how many more this member may redeem (None: no limit)
    left_for_member: int | None
    can_redeem: bool
    reason: str


class CatalogueOut(msgspec.Struct):
    points_available: int
    tier: str | None
    items: list[CatalogueItem]


class RedeemIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    member_id: uuid.UUID


class RedemptionOut(msgspec.Struct):
    id: uuid.UUID
    reward_id: uuid.UUID
    reward_code: str
    kind: str
    member_id: uuid.UUID
    points: int
    #: awaiting_pickup (gifts), delivered, cancelled
    status: str
    channel: str
    coupon_code: str | None
    sv_amount: int
    pickup_branch_id: uuid.UUID | None
    created_at: datetime
    picked_up_at: datetime | None
    cancelled_at: datetime | None
    #: the member's points after this change (on writes)
    points_balance: int | None = None
