"""Which months a book may close (issue 11): only months that have ended in the book's time zone,
none before the book, and in order — the pure rule, with the clock given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.alliance.settlement.domain import (
    calendar,
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


def test_the_calendar_of_a_book_never_closed() -> None:
    """Every month from the book's first to the current one, newest first: the current month is not
    over; every ended one may be the first close, folding the months before it."""
    got = calendar(first="2026-08", runs={}, statuses={}, tz="Asia/Shanghai", now=NOW)
    assert [m.period for m in got] == ["2026-12", "2026-11", "2026-10", "2026-09", "2026-08"]
    current = got[0]
    assert (current.closable, current.refusal, current.ended) == (False, "period-not-ended", False)
    assert current.ends_at == period_end("2026-12", "Asia/Shanghai")
    assert [(m.period, m.closable, m.folds) for m in got[1:]] == [
        ("2026-11", True, ("2026-08", "2026-09", "2026-10")),
        ("2026-10", True, ("2026-08", "2026-09")),
        ("2026-09", True, ("2026-08",)),
        ("2026-08", True, ()),
    ]
    assert all(m.status == "open" and not m.statements for m in got)


def test_the_calendar_after_a_first_close_and_during_a_close() -> None:
    folded = {"2026-08": "closed", "2026-09": "closed", "2026-10": "closed"}
    got = {m.period: m for m in calendar(first="2026-08", runs={"2026-10": True}, statuses=folded, tz="UTC", now=NOW)}
    assert (got["2026-10"].status, got["2026-10"].statements, got["2026-10"].closable) == ("closed", True, False)
    for p in ("2026-08", "2026-09"):  # closed with October's first close, no statements of their own
        assert (got[p].status, got[p].statements, got[p].folded_into, got[p].closable) == (
            "closed",
            False,
            "2026-10",
            False,
        )
    assert got["2026-11"].closable and got["2026-11"].folds == ()
    # November's close began and did not finish: it may be resumed; December has not ended
    running = calendar(first="2026-08", runs={"2026-10": True, "2026-11": False}, statuses=folded, tz="UTC", now=NOW)
    nov = next(m for m in running if m.period == "2026-11")
    assert (nov.status, nov.closable, nov.statements) == ("closing", True, False)
    later = calendar(
        first="2026-08",
        runs={"2026-10": True, "2026-11": False},
        statuses=folded,
        tz="UTC",
        now=datetime(2027, 1, 2, tzinfo=UTC),
    )
    dec = next(m for m in later if m.period == "2026-12")
    assert (dec.closable, dec.refusal, dec.close_first, dec.ended) == (False, "period-out-of-order", "2026-11", True)


@given(
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    closed=st.integers(min_value=0, max_value=6),
)
def test_the_calendar_says_what_the_close_would(now: datetime, tz: str, closed: int) -> None:
    """A month is offered for closing exactly when the close's own rule lets it start."""
    first = previous_period(previous_period(previous_period(period_of(now, tz))))
    runs = {p: True for p in months(first, period_of(now, tz))[:closed] if period_end(p, tz) <= now}

    def refusal(period: str) -> str | None:
        try:
            closable(period, tz=tz, now=now, first=first, runs=runs)
        except (PeriodNotEnded, PeriodOutOfOrder, PeriodBeforeBook) as refused:
            return refused.type_slug
        return None

    for m in calendar(first=first, runs=runs, statuses={}, tz=tz, now=now):
        if m.period in runs:
            assert m.statements and not m.closable
        else:
            assert (m.closable, m.refusal) == (refusal(m.period) is None, refusal(m.period))
