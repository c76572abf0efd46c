"""The dashboard's pure rules: periods, what each is compared with, changes, the KPIs and the points
liability in money."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lianka.tenants.reports import domain
from lianka.tenants.reports.domain import Period, PeriodKind

TODAY = date(2026, 3, 31)


def test_periods_and_what_they_are_compared_with() -> None:
    this = domain.period_of(PeriodKind.THIS_MONTH, TODAY)
    assert this == Period(date(2026, 3, 1), date(2026, 3, 31))
    # this month so far against the month before over the same days, clipped to February's end
    assert domain.previous_of(PeriodKind.THIS_MONTH, this) == Period(date(2026, 2, 1), date(2026, 2, 28))
    early = domain.period_of(PeriodKind.THIS_MONTH, date(2026, 3, 10))
    assert domain.previous_of(PeriodKind.THIS_MONTH, early) == Period(date(2026, 2, 1), date(2026, 2, 10))
    last = domain.period_of(PeriodKind.LAST_MONTH, date(2026, 1, 15))
    assert last == Period(date(2025, 12, 1), date(2025, 12, 31))
    assert domain.previous_of(PeriodKind.LAST_MONTH, last) == Period(date(2025, 11, 1), date(2025, 11, 30))
    thirty = domain.period_of(PeriodKind.LAST_30, TODAY)
    assert thirty == Period(date(2026, 3, 2), TODAY) and thirty.days == 30
    assert domain.previous_of(PeriodKind.LAST_30, thirty) == Period(date(2026, 1, 31), date(2026, 3, 1))
    custom = domain.period_of(PeriodKind.CUSTOM, TODAY, date(2026, 2, 1), date(2026, 2, 7))
    assert domain.previous_of(PeriodKind.CUSTOM, custom) == Period(date(2026, 1, 25), date(2026, 1, 31))
    assert len(custom.each_day()) == 7


@pytest.mark.parametrize(
    ("first", "last"),
    [(None, date(2026, 1, 1)), (date(2026, 2, 1), date(2026, 1, 1)), (date(2024, 1, 1), date(2026, 1, 1))],
)
def test_a_bad_custom_period_is_refused(first: date | None, last: date) -> None:
    with pytest.raises(domain.BadPeriod):
        domain.period_of(PeriodKind.CUSTOM, TODAY, first, last)


def test_changes_kpis_and_liability() -> None:
    assert domain.change_pct(150, 100) == Decimal("50.0")
    assert domain.change_pct(50, 100) == Decimal("-50.0")
    assert domain.change_pct(-50, -100) == Decimal("50.0")  # a smaller loss is up
    assert domain.change_pct(5, 0) is None
    k = domain.kpis(
        {"sales_member": 3_000, "sales_nonmember": 1_000, "sales_count_member": 3, "sales_count_nonmember": 0},
        active_members=4,
        repeat_members=1,
    )
    assert k.sales == 4_000 and k.member_share == Decimal("0.75")
    assert k.avg_ticket_member == 1_000 and k.avg_ticket_nonmember is None
    assert k.repeat_rate == Decimal("0.25")
    assert domain.kpis({}, 0, 0).member_share is None
    assert domain.average(1_001, 2) == 500  # half-even
    assert domain.points_liability(476, Decimal("0.01")) == 476
    assert domain.points_liability(333, Decimal("0.015")) == 499  # rounded down, as the till does
