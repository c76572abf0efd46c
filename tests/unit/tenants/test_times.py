"""The bounds on times requests carry: inside them a time passes unchanged, outside (or where UTC
cannot hold it) it is a 400 naming the field — never an OverflowError later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain import times

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ZONES = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def test_no_time_is_now_and_times_inside_pass_unchanged() -> None:
    assert times.business_time(None, now=NOW) == NOW
    cst = timezone(timedelta(hours=8))
    for t in (
        times.EARLIEST,
        NOW - timedelta(days=400),
        NOW + times.BUSINESS_TIME_AHEAD,
        datetime(2026, 11, 21, 18, 0, tzinfo=cst),
    ):
        assert times.business_time(t, now=NOW) is t


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),  # past the last UTC instant
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # before the first
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        NOW + times.BUSINESS_TIME_AHEAD + timedelta(seconds=1),
        datetime(2026, 11, 20, 10, 0),  # which zone?
    ],
)
def test_times_outside_are_a_400_naming_the_field(value: datetime) -> None:
    with pytest.raises(ValidationFailed) as caught:
        times.business_time(value, "sale.business_time", now=NOW)
    assert caught.value.extra["field"] == "sale.business_time"


@given(st.datetimes(timezones=ZONES))
def test_whatever_is_accepted_survives_the_arithmetic_downstream(value: datetime) -> None:
    """A sale adds up to 90 pending days and 120 months (or 10 years) of expiry to its time and
    converts it to UTC and to local zones; a setting adds up to 3660 valid days."""
    for check, slack in (
        (lambda v: times.business_time(v, now=NOW), timedelta(days=12 * 366)),
        (lambda v: times.setting(v, "valid_until"), timedelta(days=3660)),
    ):
        try:
            accepted = check(value)
        except ValidationFailed:
            continue
        assert accepted is not None
        utc = accepted.astimezone(UTC)
        assert (utc + slack).astimezone(timezone(timedelta(hours=14))) > utc - slack


def test_settings_run_from_2000_to_2100() -> None:
    assert times.setting(None, "effective_from") is None
    assert times.setting(datetime(2099, 12, 31, tzinfo=UTC), "effective_from") is not None
    with pytest.raises(ValidationFailed):
        times.setting(datetime(2100, 1, 1, 0, 0, 1, tzinfo=UTC), "valid_until")
