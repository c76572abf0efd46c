"""Paid membership (付费会员), the pure rules: terms in calendar months, the deferred-revenue schedule,
what a refund of unused whole months gives back, and the perks a term carries.

A term runs from ``starts_at`` for ``months`` calendar months of the merchant's zone: month ``i``
(0-based) starts at ``month_start(starts_at, i, tz)`` — always counted from the term's own start, so a
term bought on 31 January has months starting 28/29 February, 31 March, … and never drifts.

The fee is deferred revenue. Month ``i`` earns ``schedule(price, months)[i]``: the price split into
equal whole minor units, the remainder in the **last** month, so the parts always sum to the price
exactly (¥100 over 12 months: eleven months of ¥8.33 and a last of ¥8.37). A month is recognised once
it has *ended* (``recognisable``). A refund by the ``unused_months`` policy pays back the months that
have not *begun*; the month in progress is the merchant's, and is recognised at once with everything
else the term had earned (the term is over).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from lianka.platform.money import RoundingMode, round_minor


class Period(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"

    @property
    def months(self) -> int:
        return 1 if self is Period.MONTHLY else 12


class Status(StrEnum):
    ACTIVE = "active"  # perks now (or from its start, for a renewal bought early); renews if it can
    CANCELED = "canceled"  # will not renew; perks to the end of the term
    REFUNDED = "refunded"  # ended early, unused months paid back
    EXPIRED = "expired"  # ran its course


#: statuses whose perks apply between ``starts_at`` and ``ends_at``
LIVE = (Status.ACTIVE, Status.CANCELED)


class RefundPolicy(StrEnum):
    NONE = "none"  # fees are not paid back
    UNUSED_MONTHS = "unused_months"  # the months that have not begun, pro rata


@dataclass(frozen=True)
class PackItem:
    """``count`` coupons of the template ``template`` (its code) issued each month of the term."""

    template: str
    count: int


@dataclass(frozen=True)
class Perks:
    """What a term gives, copied from the product when it was bought (a later product change applies to
    new purchases only)."""

    tier: str | None = None
    extra_discount_percent: int = 0
    points_multiplier: Decimal = Decimal(1)
    coupon_pack: tuple[PackItem, ...] = ()
    gifts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "extra_discount_percent": self.extra_discount_percent,
            "points_multiplier": str(self.points_multiplier),
            "coupon_pack": [{"template": p.template, "count": p.count} for p in self.coupon_pack],
            "gifts": list(self.gifts),
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Perks:
        return cls(
            tier=data.get("tier") or None,
            extra_discount_percent=int(data.get("extra_discount_percent", 0)),
            points_multiplier=Decimal(str(data.get("points_multiplier", "1"))),
            coupon_pack=tuple(PackItem(str(p["template"]), int(p["count"])) for p in data.get("coupon_pack", [])),
            gifts=tuple(str(g) for g in data.get("gifts", [])),
        )


def add_months(start: datetime, months: int, tz: str) -> datetime:
    """``start`` plus ``months`` calendar months on the merchant's wall clock (the day clamped to the
    month's length), in UTC."""
    local = start.astimezone(ZoneInfo(tz))
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def month_start(starts_at: datetime, i: int, tz: str) -> datetime:
    return add_months(starts_at, i, tz)


def schedule(price: int, months: int) -> list[int]:
    """The fee split over the months: equal whole minor units, the remainder in the last month."""
    if months <= 0 or price < 0:
        raise ValueError("a schedule needs a positive number of months and a price ≥ 0")
    each = round_minor(Fraction(price, months), RoundingMode.FLOOR)
    return [each] * (months - 1) + [price - each * (months - 1)]


def months_begun(starts_at: datetime, months: int, now: datetime, tz: str) -> int:
    """How many of the term's months have begun by ``now`` (0 before the term starts)."""
    return sum(1 for i in range(months) if month_start(starts_at, i, tz) <= now)


def months_ended(starts_at: datetime, months: int, now: datetime, tz: str) -> int:
    """How many of the term's months have ended by ``now``: what may be recognised."""
    return sum(1 for i in range(1, months + 1) if month_start(starts_at, i, tz) <= now)


@dataclass(frozen=True)
class Recognition:
    """Revenue to book for months ``first`` … ``first + len(amounts) - 1`` (0-based)."""

    first: int
    amounts: tuple[int, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(self.amounts)


def recognisable(
    *, price: int, months: int, starts_at: datetime, recognised: int, refunded: int, now: datetime, tz: str
) -> Recognition:
    """The months that have ended and are not yet recognised (nor refunded)."""
    limit = min(months_ended(starts_at, months, now, tz), months - refunded)
    parts = schedule(price, months)
    return Recognition(recognised, tuple(parts[recognised:limit]) if limit > recognised else ())


@dataclass(frozen=True)
class RefundPlan:
    """What ending a term early does: ``refund`` paid back for the ``refunded_months`` that have not
    begun (the schedule's last months, remainder included), ``recognise`` booked now for the months the
    member had begun and were not yet recognised."""

    refunded_months: int
    refund: int
    recognise: Recognition


def refund_plan(
    *, price: int, months: int, starts_at: datetime, recognised: int, now: datetime, tz: str, policy: RefundPolicy
) -> RefundPlan:
    begun = months_begun(starts_at, months, now, tz)
    parts = schedule(price, months)
    unused = months - begun if policy is RefundPolicy.UNUSED_MONTHS else 0
    kept_until = months - unused
    return RefundPlan(
        refunded_months=unused,
        refund=sum(parts[kept_until:]),
        recognise=Recognition(recognised, tuple(parts[recognised:kept_until]) if kept_until > recognised else ()),
    )


def renewal_start(now: datetime, live_ends: list[datetime]) -> datetime:
    """A purchase while a term is live (or already bought ahead) starts when the last one ends."""
    return max([now, *live_ends])


def pack_months_due(starts_at: datetime, months: int, issued: int, now: datetime, tz: str) -> range:
    """The months (0-based) whose coupon pack is due (begun) and not yet issued."""
    return range(issued, months_begun(starts_at, months, now, tz))


def reminder_due(ends_at: datetime, now: datetime, days: int) -> bool:
    return (ends_at - now).total_seconds() <= days * 86_400 and now < ends_at


@dataclass(frozen=True)
class Savings:
    """What the perks saved over a year, against the fee (the value-back meter)."""

    discount: int
    points_value: int
    coupons: int
    fee: int

    @property
    def total(self) -> int:
        return self.discount + self.points_value + self.coupons

    @property
    def percent_of_fee(self) -> int:
        """For the bar: the savings as a percent of the fee, capped at 100."""
        if self.fee <= 0:
            return 0
        return min(100, round_minor(Fraction(self.total * 100, self.fee), RoundingMode.FLOOR))
