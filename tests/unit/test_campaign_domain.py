"""Campaign rules without a database: whitelisted templates, quiet hours, back-off, attribution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.tenants.marketing import campaign_domain as cd


def test_template_renders_only_whitelisted_variables() -> None:
    assert cd.render("{name}，{points}分将于{expiring_date}到期", {"name": "李雷", "points": "80",
                     "expiring_date": "2026-12-31"}) == "李雷，80分将于2026-12-31到期"  # fmt: skip
    assert cd.render("{coupon_code}", {}) == ""  # a value the member lacks renders empty
    for bad in ("{name.__class__}", "{name[0]}", "{secret}", "{name!r}", "{points:>10}", "{", "  "):
        with pytest.raises(cd.TemplateError):
            cd.check_template(bad)
    assert cd.render("{{name}}", {"name": "x"}) == "{name}"  # escaped braces stay text


SHANGHAI = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), datetime(2026, 11, 23, 2, 0, tzinfo=UTC)),  # 10:00 stays
        (datetime(2026, 11, 23, 12, 59, tzinfo=UTC), datetime(2026, 11, 23, 12, 59, tzinfo=UTC)),  # 20:59
        (datetime(2026, 11, 23, 13, 0, tzinfo=UTC), datetime(2026, 11, 24, 1, 0, tzinfo=UTC)),  # 21:00 → 09:00
        (datetime(2026, 11, 23, 18, 0, tzinfo=UTC), datetime(2026, 11, 24, 1, 0, tzinfo=UTC)),  # 02:00 → 09:00
        (datetime(2026, 11, 24, 0, 59, tzinfo=UTC), datetime(2026, 11, 24, 1, 0, tzinfo=UTC)),  # 08:59 → 09:00
    ],
)
def test_quiet_hours_in_the_merchants_zone(utc: datetime, expected: datetime) -> None:
    assert cd.after_quiet_hours(utc, SHANGHAI) == expected


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)))
def test_never_sent_in_quiet_hours_and_never_earlier(at: datetime) -> None:
    out = cd.after_quiet_hours(at, "America/New_York")
    assert out >= at and out - at < timedelta(hours=13)
    local = out.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).time()
    assert cd.QUIET_END <= local < cd.QUIET_START


def test_backoff_doubles_and_is_capped() -> None:
    assert [cd.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert cd.backoff(30) == cd.MAX_BACKOFF


def test_attribution_scales_the_control_group_to_the_recipients() -> None:
    a = cd.attribute(cd.Group(90, 18, 90_000), cd.Group(10, 1, 5_000), coupon_cost=2_000, message_cost=900)
    assert a.uplift == Fraction(18, 90) - Fraction(1, 10)
    assert a.incremental_sales == 90_000 - 45_000
    assert a.roi == Fraction(45_000 - 2_000, 2_900)
    none = cd.attribute(cd.Group(5, 0, 0), cd.Group(0, 0, 0), coupon_cost=0, message_cost=0)
    assert none.incremental_sales == 0 and none.roi is None and none.control.rate == 0
