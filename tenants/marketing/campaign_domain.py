"""Campaign rules that need no database: the message template and its whitelisted variables, quiet
hours, retry back-off, and the attribution arithmetic of the results page (pure; decision 0038).

Templates are ``str.format`` text whose fields may only be the names in :data:`VARIABLES` — no
attribute access, no indexing, no conversion or format spec — so a merchant's template can neither
reach into Python objects nor break on a member's data. It is checked when saved and rendered with
``format_map`` over plain strings.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from lianka.platform.money import RoundingMode, round_minor

#: the variables a template may use, with a sample value the console's preview shows
VARIABLES: dict[str, str] = {
    "name": "张三",
    "tier": "gold",
    "points": "1200",
    "expiring_points": "300",
    "expiring_date": "2026-12-31",
    "coupon_code": "ABCD1234",
    "link": "https://example.com/m/shop",
    "merchant": "Shop",
}
MAX_TEMPLATE = 1000
QUIET_START, QUIET_END = time(21, 0), time(9, 0)
MAX_ATTEMPTS = 5
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)


class TemplateError(ValueError):
    pass


def check_template(text: str) -> str:
    """The template, or :class:`TemplateError` saying what is wrong with it."""
    if not text.strip():
        raise TemplateError("the message is empty")
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"at most {MAX_TEMPLATE} characters")
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        raise TemplateError(f"bad braces: {e}") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in VARIABLES:
            raise TemplateError(f"unknown variable {{{field}}}; use one of {', '.join(VARIABLES)}")
        if spec or conversion:
            raise TemplateError(f"{{{field}}} takes no format or conversion")
    return text


def render(text: str, values: dict[str, str]) -> str:
    """A checked template with the member's values (a missing one renders empty)."""
    return check_template(text).format_map({k: values.get(k, "") for k in VARIABLES})


def sample(text: str) -> str:
    return render(text, VARIABLES)


def after_quiet_hours(at: datetime, tz: str) -> datetime:
    """``at``, or 09:00 local when ``at`` falls in quiet hours (21:00–09:00 in ``tz``); UTC-aware result."""
    local = at.astimezone(ZoneInfo(tz))
    clock = local.timetz().replace(tzinfo=None)
    if QUIET_END <= clock < QUIET_START:
        return at
    day = local.date() if clock < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=ZoneInfo(tz))


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s doubling, at most an hour."""
    wait: timedelta = BASE_BACKOFF * (2 ** max(attempts - 1, 0))
    return min(wait, MAX_BACKOFF)


@dataclass(frozen=True)
class Group:
    """One side of the comparison: members, those with a sale in the window, their sales (fen)."""

    members: int
    converted: int
    sales: int

    @property
    def rate(self) -> Fraction:
        return Fraction(self.converted, self.members) if self.members else Fraction(0)


@dataclass(frozen=True)
class Attribution:
    recipients: Group
    control: Group
    #: recipients' rate minus the control group's (a fraction: 0.05 = 5 points)
    uplift: Fraction
    #: recipients' sales minus what they would have bought at the control group's sales per member
    incremental_sales: int
    coupon_cost: int
    message_cost: int
    #: (incremental sales − coupon cost) / cost, where cost = messages + coupons; None without cost
    roi: Fraction | None


def attribute(recipients: Group, control: Group, *, coupon_cost: int, message_cost: int) -> Attribution:
    """Compare the recipients with the holdout control group. Without a control group there is no
    baseline: the incremental sales are then all of the recipients' sales (said on the page)."""
    expected = (
        round_minor(Fraction(control.sales * recipients.members, control.members), RoundingMode.HALF_EVEN)
        if control.members
        else 0
    )
    incremental = recipients.sales - expected
    cost = coupon_cost + message_cost
    roi = Fraction(incremental - coupon_cost, cost) if cost else None
    return Attribution(recipients, control, recipients.rate - control.rate, incremental, coupon_cost, message_cost, roi)
