"""POS request and response bodies (msgspec; decoded strictly: amounts are integers of minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

Minor = Annotated[int, msgspec.Meta(ge=0, le=10**11)]
PositiveMinor = Annotated[int, msgspec.Meta(gt=0, le=10**11)]
Points = Annotated[int, msgspec.Meta(ge=0, le=10**11)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class LineIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Code
    qty: Annotated[int, msgspec.Meta(gt=0, le=100_000)]
    unit_price: Minor
    category: Annotated[str, msgspec.Meta(max_length=64)] = ""


class Basket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who, where, what and how the customer wants to pay. ``member_id`` (or ``card``) for a member;
    ``join_phone`` enrols a customer at the till when the programme's join rule allows it."""

    amount: PositiveMinor
    lines: list[LineIn] = []
    member_id: uuid.UUID | None = None
    card: Annotated[str, msgspec.Meta(max_length=19)] | None = None
    join_phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    branch_id: uuid.UUID | None = None
    points: Points = 0
    stored_value: Minor = 0
    coupons: list[Annotated[str, msgspec.Meta(max_length=32)]] = []
    payment_method: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{2,32}$")] = "cash"
    business_time: datetime | None = None
    #: an alliance offer's voucher code (decision 0044): priced after coupons, redeemed in the sale
    alliance_voucher: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    #: the alliance the voucher belongs to; omitted: the merchant's active alliances are searched
    alliance_id: uuid.UUID | None = None


class AllianceVoucherOut(msgspec.Struct, frozen=True):
    """The alliance voucher a quote or sale applies: what it takes off (part of ``coupons`` too)."""

    code: str
    alliance_id: uuid.UUID
    offer_id: uuid.UUID
    name: str
    discount: int


class Balances(msgspec.Struct, frozen=True):
    points: int
    points_available: int
    points_pending: int
    sv_principal: int
    sv_bonus: int


class AppliedPromotionOut(msgspec.Struct, frozen=True):
    """A price promotion applied to a sale (decision 0043): what it took off in all and off each line
    (``[line_no, amount]``, line numbers counted from 0 in the basket's order)."""

    code: str
    name: str
    kind: str
    discount: int
    lines: list[tuple[int, int]] = []
    multiplier: str = "1"


class QuoteOut(msgspec.Struct, frozen=True):
    gross: int
    member_discount: int
    coupons: list[tuple[str, int]]
    points_redeemed: int
    points_cash: int
    max_points_usable: int
    sv_principal: int
    sv_bonus: int
    due: int
    qualifying_spend: int
    base_points: int
    multiplier: str
    points_earned: int
    points_pending: bool
    promotions: list[str]
    tier: str | None
    member_id: uuid.UUID | None
    joins: bool = False
    #: the paid-membership product whose perks priced this sale, and what they saved
    paid_membership: str | None = None
    membership_discount: int = 0
    membership_points: int = 0
    #: the price promotions applied and their sum (taken off before the member discount)
    promotion_discount: int = 0
    applied_promotions: list[AppliedPromotionOut] = []
    #: the alliance voucher applied (its discount is also the last entry of ``coupons``)
    alliance_voucher: AllianceVoucherOut | None = None


class SaleOut(msgspec.Struct, frozen=True):
    sale_id: uuid.UUID
    member_id: uuid.UUID | None
    branch_id: uuid.UUID
    business_time: datetime
    quote: QuoteOut
    tier: str | None
    tier_changed: bool
    balances: Balances | None
    period: str
    late: bool


class TopUpIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    member_id: uuid.UUID
    plan: Code
    payment_method: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{2,32}$")] = "cash"
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class TopUpOut(msgspec.Struct, frozen=True):
    top_up_id: uuid.UUID
    member_id: uuid.UUID
    principal: int
    bonus: int
    balances: Balances


class StoredValueRefundIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hand unused principal back to the member (all of it when ``amount`` is omitted)."""

    member_id: uuid.UUID
    amount: PositiveMinor | None = None
    payment_method: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{2,32}$")] = "cash"
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class StoredValueRefundOut(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    principal_refunded: int
    bonus_forfeited: int
    balances: Balances


class RefundLineIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    line_no: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    qty: Annotated[int, msgspec.Meta(gt=0, le=100_000)]


class RefundIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Refund ``amount`` (of what the member paid, after discounts), or the given ``lines``; neither
    means the whole remaining amount."""

    amount: PositiveMinor | None = None
    lines: list[RefundLineIn] = []
    business_time: datetime | None = None


class RefundOut(msgspec.Struct, frozen=True):
    refund_id: uuid.UUID
    sale_id: uuid.UUID
    amount: int
    points_clawed_back: int
    points_restored: int
    sv_principal_restored: int
    sv_bonus_restored: int
    points_debt: int
    sale_status: str
    balances: Balances | None


class OfflineItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    sale: Basket


class OfflineBatchIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    items: Annotated[list[OfflineItem], msgspec.Meta(min_length=1, max_length=500)]


class OfflineResult(msgspec.Struct, frozen=True):
    key: str
    status: str  # created | duplicate | error
    sale: SaleOut | None = None
    problem: dict[str, object] | None = None


class OfflineBatchOut(msgspec.Struct, frozen=True):
    created: int
    duplicates: int
    errors: int
    results: list[OfflineResult]
