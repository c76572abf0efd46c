"""Which months a book may close (issue 11): only months that have ended in the book's time zone,
none before the book, and in order — the pure rule, with the clock given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.alliance.settlement.domain import (
    closable,
    months,
    next_period,
    period_end,
    period_of,
    previous_period,
)
from lianka.alliance.settlement.errors import PeriodBeforeBook, PeriodNotEnded, PeriodOutOfOrder

ZONES = [
    "Asia/Shanghai",
    "UTC",
    "America/Los_Angeles",
    "Pacific/Pago_Pago",
    "Pacific/Kiritimati",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Europe/London",
]
# 1 Dec 2026, 07:00 UTC: November is over in Shanghai (15:00 on the 1st), not in Los Angeles (23:00
# on the 30th of November) nor in Pago Pago
NOW = datetime(2026, 12, 1, 7, tzinfo=UTC)


def test_month_arithmetic() -> None:
    assert next_period("2026-12") == "2027-01" and next_period("2026-01") == "2026-02"
    assert previous_period("2027-01") == "2026-12" and previous_period("2026-03") == "2026-02"
    assert months("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert months("2026-11", "2026-10") == []
    assert period_end("2026-11", "Asia/Shanghai") == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert period_of(datetime(2026, 11, 30, 16, tzinfo=UTC), "Asia/Shanghai") == "2026-12"
    assert period_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), "Asia/Shanghai") == "2026-11"


@pytest.mark.parametrize(
    ("period", "tz"),
    [
        ("2026-12", "Asia/Shanghai"),  # the current month
        ("2027-01", "Asia/Shanghai"),  # a future month
        ("2099-01", "UTC"),
        ("2026-11", "America/Los_Angeles"),  # over in Shanghai, not yet where this book is
        ("2026-11", "Pacific/Pago_Pago"),
    ],
)
def test_a_month_that_has_not_ended_in_the_books_zone_is_refused(period: str, tz: str) -> None:
    with pytest.raises(PeriodNotEnded) as refused:
        closable(period, tz=tz, now=NOW, first="2026-01", runs={})
    assert refused.value.status == 422 and refused.value.type_uri.endswith("/period-not-ended")
    assert refused.value.extra["ends_at"] == period_end(period, tz).isoformat()


def test_the_month_is_closable_from_its_last_instant_on() -> None:
    end = period_end("2026-11", "America/Los_Angeles")
    with pytest.raises(PeriodNotEnded):
        closable("2026-11", tz="America/Los_Angeles", now=end - timedelta(microseconds=1), first="2026-11", runs={})
    assert closable("2026-11", tz="America/Los_Angeles", now=end, first="2026-11", runs={}) == []
    assert closable("2026-11", tz="Asia/Shanghai", now=NOW, first="2026-11", runs={}) == []


@pytest.mark.parametrize("period", ["1999-01", "2026-09"])
def test_a_month_before_the_book_is_refused(period: str) -> None:
    with pytest.raises(PeriodBeforeBook) as refused:
        closable(period, tz="Asia/Shanghai", now=NOW, first="2026-10", runs={})
    assert refused.value.type_uri.endswith("/period-before-book") and refused.value.extra["first_period"] == "2026-10"


def test_months_close_in_order() -> None:
    runs = {"2026-08": True, "2026-09": True}
    assert closable("2026-10", tz="UTC", now=NOW, first="2026-08", runs=runs) == []
    with pytest.raises(PeriodOutOfOrder, match="close 2026-10 first"):  # a gap would leave October on no statement
        closable("2026-11", tz="UTC", now=NOW, first="2026-08", runs=runs)
    with pytest.raises(PeriodOutOfOrder, match="2026-09 is already closed"):  # November would not see it
        closable("2026-07", tz="UTC", now=NOW, first="2026-01", runs=runs)
    with pytest.raises(PeriodOutOfOrder, match="has not finished"):
        closable("2026-10", tz="UTC", now=NOW, first="2026-08", runs={"2026-08": True, "2026-09": False})


def test_a_books_first_close_folds_the_months_before_it() -> None:
    assert closable("2026-10", tz="UTC", now=NOW, first="2026-07", runs={}) == ["2026-07", "2026-08", "2026-09"]
    assert closable("2026-07", tz="UTC", now=NOW, first="2026-07", runs={}) == []


@given(
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
)
def test_only_ended_months_pass(now: datetime, tz: str) -> None:
    """The month of ``now`` in the book's zone never passes; the one before it always has ended."""
    current = period_of(now, tz)
    with pytest.raises(PeriodNotEnded):
        closable(current, tz=tz, now=now, first="1990-01", runs={})
    previous = previous_period(current)
    assert period_end(previous, tz) <= now
    closable(previous, tz=tz, now=now, first=previous, runs={})
