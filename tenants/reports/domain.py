"""The dashboard's pure rules: periods (this month, last month, the last 30 days, a custom range),
the period each is compared with, changes in percent, the KPIs from summed rollups, and the points
liability in money. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from lianka.platform.money import RoundingMode, round_minor

#: the longest custom range the dashboard draws day by day
MAX_DAYS = 366


class PeriodKind(StrEnum):
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    LAST_30 = "last_30"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


class BadPeriod(ValueError):
    """A custom range that is reversed, too long, or incomplete."""


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _previous_month_start(d: date) -> date:
    return (_month_start(d) - timedelta(days=1)).replace(day=1)


def period_of(kind: PeriodKind, today: date, first: date | None = None, last: date | None = None) -> Period:
    """The days a choice covers, ``today`` being the merchant's local date."""
    if kind is PeriodKind.THIS_MONTH:
        return Period(_month_start(today), today)
    if kind is PeriodKind.LAST_MONTH:
        start = _previous_month_start(today)
        return Period(start, _month_start(today) - timedelta(days=1))
    if kind is PeriodKind.LAST_30:
        return Period(today - timedelta(days=29), today)
    if first is None or last is None:
        raise BadPeriod("a custom period needs its first and last day")
    if last < first:
        raise BadPeriod("the last day is before the first")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadPeriod(f"at most {MAX_DAYS} days")
    return Period(first, last)


def previous_of(kind: PeriodKind, period: Period) -> Period:
    """What a period is compared with: a month (or this month so far) with the month before over the
    same days (clipped to that month's end); any other range with as many days just before it."""
    if kind in (PeriodKind.THIS_MONTH, PeriodKind.LAST_MONTH):
        start = _previous_month_start(period.first)
        month_end = period.first - timedelta(days=1)
        return Period(start, min(start + timedelta(days=period.days - 1), month_end))
    return Period(period.first - timedelta(days=period.days), period.first - timedelta(days=1))


def month_aligned(period: Period) -> bool:
    """Whether a period starts on a month's first day and ends within that month: its buyers are then
    sums of the buyer rollups' "first / second purchase of the month" (decision 0055)."""
    return period.first.day == 1 and (period.last.year, period.last.month) == (period.first.year, period.first.month)


def change_pct(current: int | Decimal | None, previous: int | Decimal | None) -> Decimal | None:
    """The change in percent, one decimal (None when there is nothing to compare with)."""
    if current is None or previous is None or previous == 0:
        return None
    return ((Decimal(current) - Decimal(previous)) * 100 / abs(Decimal(previous))).quantize(Decimal("0.1"))


def ratio(part: int, whole: int) -> Decimal | None:
    """``part / whole`` as a fraction (None for an empty whole)."""
    return None if whole == 0 else Decimal(part) / Decimal(whole)


def average(total: int, count: int) -> int | None:
    """An average amount in minor units (half-even), None for no sales."""
    return None if count == 0 else round_minor(Decimal(total) / Decimal(count), RoundingMode.HALF_EVEN)


def points_liability(points: int, cash_value_per_point: Decimal) -> int:
    """Outstanding points as money, in minor units: points × the programme's cash value per point
    (in yuan), rounded down as the till rounds a points payment."""
    return round_minor(Decimal(points) * cash_value_per_point * 100, RoundingMode.FLOOR)


@dataclass(frozen=True)
class Kpis:
    """The tiles, from a period's summed rollups and its buyer counts (money in minor units)."""

    sales: int
    sales_member: int
    sales_nonmember: int
    member_share: Decimal | None
    avg_ticket_member: int | None
    avg_ticket_nonmember: int | None
    active_members: int
    new_members: int
    repeat_rate: Decimal | None
    #: the coupon funnel: issued in the period, redeemed in the period
    coupons_issued: int = 0
    coupons_redeemed: int = 0

    @property
    def coupon_redemption_rate(self) -> Decimal | None:
        """Redeemed ÷ issued in the period (coupons issued earlier count when redeemed now: a rate
        above 100 % is possible and real)."""
        return ratio(self.coupons_redeemed, self.coupons_issued) if self.coupons_issued else None


def kpis(sums: dict[str, int], active_members: int, repeat_members: int) -> Kpis:
    member, nonmember = sums.get("sales_member", 0), sums.get("sales_nonmember", 0)
    total = member + nonmember
    return Kpis(
        sales=total,
        sales_member=member,
        sales_nonmember=nonmember,
        member_share=ratio(member, total) if total > 0 else None,
        avg_ticket_member=average(member, sums.get("sales_count_member", 0)),
        avg_ticket_nonmember=average(nonmember, sums.get("sales_count_nonmember", 0)),
        active_members=active_members,
        new_members=sums.get("new_members", 0),
        repeat_rate=ratio(repeat_members, active_members),
        coupons_issued=sums.get("coupons_issued", 0),
        coupons_redeemed=sums.get("coupons_redeemed", 0),
    )
