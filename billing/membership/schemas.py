"""Paid membership's API bodies (msgspec, decoded strictly: prices are integers of minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Price = Annotated[int, msgspec.Meta(gt=0, le=10**9)]
Percent = Annotated[int, msgspec.Meta(ge=0, le=90)]
Method = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{2,32}$")]


class PackItemIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    template: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    count: Annotated[int, msgspec.Meta(gt=0, le=20)]


class ProductIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A product to sell. ``tier``: the programme tier granted for the term (the higher of it and the
    member's own applies); ``coupon_pack``: coupon templates (by code) and how many of each are issued
    every month of the term; ``gifts``: free-text perks shown to members (e.g. free shipping)."""

    code: Code
    name: Name
    period: Literal["monthly", "yearly"]
    price: Price
    tier: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}$")] | None = None
    extra_discount_percent: Percent = 0
    #: e.g. "2" (double points); from 1 to 10
    points_multiplier: Decimal = Decimal(1)
    coupon_pack: Annotated[list[PackItemIn], msgspec.Meta(max_length=10)] = []
    gifts: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=60)]], msgspec.Meta(max_length=10)] = []
    active: bool = True


class ProductPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields to change (the code and period stay); a change applies to purchases from now on."""

    name: Name | None = None
    price: Price | None = None
    tier: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{0,32}$")] | None = None
    extra_discount_percent: Percent | None = None
    points_multiplier: Decimal | None = None
    coupon_pack: Annotated[list[PackItemIn], msgspec.Meta(max_length=10)] | None = None
    gifts: (
        Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=60)]], msgspec.Meta(max_length=10)] | None
    ) = None
    active: bool | None = None


class ProductOut(msgspec.Struct, frozen=True):
    id: uuid.UUID
    code: str
    name: str
    period: str
    months: int
    price: int
    currency: str
    tier: str | None
    extra_discount_percent: int
    points_multiplier: str
    coupon_pack: list[PackItemIn]
    gifts: list[str]
    active: bool


class TillPurchaseIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A membership bought at the counter, paid in cash or by card there."""

    member_id: uuid.UUID
    product: Code
    payment_method: Method = "cash"
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class RefundIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Pay a term's unused whole months back at the counter (``business_time``: when, default now)."""

    business_time: datetime | None = None


class TermOut(msgspec.Struct, frozen=True):
    term_id: uuid.UUID
    member_id: uuid.UUID
    product: str
    product_name: str
    starts_at: datetime
    ends_at: datetime
    months: int
    price: int
    currency: str
    source: str
    auto_renew: bool
    status: str
    recognised_months: int
    refunded_months: int
    refunded_amount: int


class RefundOut(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    refunded: int
    terms: list[TermOut]


class SettingsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refund_policy: Literal["none", "unused_months"]
    reminder_days: Annotated[int, msgspec.Meta(ge=0, le=60)] = 7


class SettingsOut(msgspec.Struct, frozen=True):
    refund_policy: str
    reminder_days: int
    deferred_revenue: int
    currency: str


class MeterOut(msgspec.Struct, frozen=True):
    """The value-back meter: what the perks saved this calendar year (merchant's zone) against the fee."""

    year: int
    saved: int
    discount: int
    points_value: int
    coupons: int
    fee: int
    percent: int
    currency: str


class MembershipOut(msgspec.Struct, frozen=True):
    """A member's paid membership: the live term (if any), every term, the meter."""

    current: TermOut | None
    terms: list[TermOut]
    meter: MeterOut
