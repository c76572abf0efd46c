"""Ledger rules, pure: units, balanced postings, lot consumption, expiry dates, periods.

Units are strings: an ISO 4217 currency (``"CNY"``) for money in minor units, or ``"PTS:<scheme>"``
for a point scheme (``PTS:<merchant id>`` for a merchant's own points, ``PTS:alliance:<id>`` for an
alliance's points). Amounts are integers; a posting never has amount 0.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lianka.platform.errors import ValidationFailed

#: |amount| of one posting; sums over an account stay far below 2**63
MAX_AMOUNT = 10**15
_UNIT = re.compile(r"^([A-Z]{3}|PTS:[A-Za-z0-9:_-]{1,60})$")


def is_points(unit: str) -> bool:
    return unit.startswith("PTS:")


def check_unit(unit: str) -> str:
    if not _UNIT.match(unit):
        raise ValidationFailed(f"not a ledger unit: {unit!r} (a currency like CNY, or PTS:<scheme>)")
    return unit


@dataclass(frozen=True)
class Posting:
    account_id: uuid.UUID
    unit: str
    amount: int


def check_balanced(postings: Sequence[Posting]) -> None:
    """Every amount is a non-zero int within range, and per unit the amounts sum to zero."""
    if len(postings) < 2:
        raise ValidationFailed("an entry needs at least two postings")
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        if isinstance(p.amount, bool) or not isinstance(p.amount, int):
            raise ValidationFailed("posting amounts must be integers")
        if p.amount == 0:
            raise ValidationFailed("a posting amount must not be zero")
        if abs(p.amount) > MAX_AMOUNT:
            raise ValidationFailed(f"a posting amount must be at most {MAX_AMOUNT} in size")
        sums[p.unit] += p.amount
    unbalanced = {u: s for u, s in sums.items() if s != 0}
    if unbalanced:
        raise ValidationFailed(f"postings do not balance per unit: {unbalanced}")


# --- lots ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotState:
    id: uuid.UUID
    remaining: int
    expires_at: datetime | None
    available_at: datetime
    earned_at: datetime


def consume(lots: Iterable[LotState], amount: int, at: datetime) -> list[tuple[uuid.UUID, int]]:
    """Take ``amount`` from the lots available at ``at``, first-expiring first (never-expiring last,
    then oldest first). Returns (lot id, taken) pairs; raises ValueError if they do not suffice."""
    if amount <= 0:
        raise ValueError("consume a positive amount")
    usable = sorted(
        (
            lot
            for lot in lots
            if lot.remaining > 0 and lot.available_at <= at and (lot.expires_at is None or lot.expires_at > at)
        ),
        key=lambda lot: (lot.expires_at is None, lot.expires_at or at, lot.earned_at, str(lot.id)),
    )
    taken: list[tuple[uuid.UUID, int]] = []
    left = amount
    for lot in usable:
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot.id, take))
        left -= take
    if left:
        raise ValueError(f"lots short by {left}")
    return taken


def available(lots: Iterable[LotState], at: datetime) -> int:
    return sum(
        lot.remaining
        for lot in lots
        if lot.remaining > 0 and lot.available_at <= at and (lot.expires_at is None or lot.expires_at > at)
    )


# --- expiry rules --------------------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def expiry_for(
    earned: datetime, kind: str, *, months: int = 12, extra_years: int = 0, tz: str = "Asia/Shanghai"
) -> datetime | None:
    """When points earned at ``earned`` expire, at local midnight at the end of the last valid day.

    ``rolling_months``: N months after the earn day. ``end_of_year``: the end of 31 Dec of the earn
    year (+ ``extra_years``). ``never``: None.
    """
    zone = ZoneInfo(tz)
    local = earned.astimezone(zone).date()
    if kind == "never":
        return None
    if kind == "rolling_months":
        last_day = add_months(local, months)
    elif kind == "end_of_year":
        last_day = date(local.year + extra_years, 12, 31)
    else:
        raise ValidationFailed(f"unknown expiry policy {kind!r}")
    return datetime.combine(last_day + timedelta(days=1), time(0), zone)


# --- periods -------------------------------------------------------------------------------------


#: an accounting period as written everywhere (URLs, forms, the API): ``YYYY-MM``
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def check_period(period: str) -> str:
    """``period`` when it is a ``YYYY-MM`` month, else a 400 naming the field."""
    if not isinstance(period, str) or not PERIOD.match(period):
        raise ValidationFailed("period is YYYY-MM", field="period")
    return period


def period_of(business_time: datetime, tz: str) -> str:
    """The accounting period (``YYYY-MM``) of a business time in the owner's time zone."""
    if business_time.tzinfo is None:
        raise ValidationFailed("business time needs a time zone")
    local = business_time.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


def next_period(period: str) -> str:
    y, m = int(period[:4]), int(period[5:])
    return f"{y + (m // 12):04d}-{m % 12 + 1:02d}"


def landing_period(business_period: str, closed: set[str]) -> tuple[str, bool]:
    """Where an entry lands: its own period if open, else the first later one that is open (late)."""
    p, late = business_period, False
    while p in closed:
        p, late = next_period(p), True
    return p, late
