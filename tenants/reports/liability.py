"""Liability and breakage report (month end): points and stored value (principal and bonus apart)
and deferred paid-membership revenue — opening, issued, used, expired, refunded, closing — per
scheme and per branch, from the ledger journal; points also in yuan at the programme's cash value
per point. ``closing = opening + issued - used - expired - refunded`` by construction and equals the
accounts' balances at the month's end (tested against the ledger).

The columns by scheme: points — earned, redeemed, expired; stored value — topped up, spent
(a sale's refund gives back: negative spent), expired, refunded in cash; paid membership — sold,
recognised as revenue, refunded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from lianka.alliance.ledger.domain import check_period
from lianka.platform.db import Database
from lianka.tenants.reports import dashboard_queries
from lianka.tenants.reports import finance_queries as q
from lianka.tenants.reports.domain import points_liability
from lianka.tenants.services.accounts import merchant_info
from lianka.tenants.services.programme import programme_at

SCHEMES = ("points", "sv_principal", "sv_bonus", q.DEFERRED_KIND)
COLUMNS = ("opening", "issued", "used", "expired", "refunded", "closing")
_USED = ("stored_value_spent", "stored_value_restored", "points_redeemed", "membership_revenue_recognised")
_REFUNDED = ("stored_value_refunded", "membership_refunded")


def category(entry_kind: str) -> str:
    """Which column an entry of ``entry_kind`` moves ('' = before the month: the opening). Anything
    unnamed adds to ``issued`` (a top-up, points earned, a reward, a clawback as a negative issue)."""
    if not entry_kind:
        return "opening"
    if entry_kind == "expiry":
        return "expired"
    if entry_kind in _USED or entry_kind.endswith(("_redeemed", "_restored", "_spent")):
        return "used"
    if entry_kind in _REFUNDED:
        return "refunded"
    return "issued"


@dataclass
class Row:
    scheme: str
    #: branch id as text; '' none; '*' every branch (the scheme's total) — in the alliance's report
    #: (``alliance.reports.liability``) the issuing partner's merchant id
    branch: str
    opening: int = 0
    issued: int = 0
    used: int = 0
    expired: int = 0
    refunded: int = 0
    value: dict[str, int] = field(default_factory=dict)  # points rows: each column in minor units

    @property
    def closing(self) -> int:
        return self.opening + self.issued - self.used - self.expired - self.refunded

    def figures(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in COLUMNS}


def add(row: Row, entry_kind: str, amount: int) -> None:
    """Fold one movement of ``amount`` on a liability account, booked by an entry of ``entry_kind``
    ('' = before the month), into the row's column (a decrease of the liability adds to used, expired
    or refunded)."""
    col = category(entry_kind)
    sign = 1 if col in ("opening", "issued") else -1
    setattr(row, col, getattr(row, col) + sign * amount)


def build(moves: Iterable[q.Movement]) -> list[Row]:
    """Rows per (scheme, branch) and a total per scheme (branch ``'*'``), schemes in report order."""
    rows: dict[tuple[str, str], Row] = {}
    for m in moves:
        for key in ((m.account_kind, m.branch), (m.account_kind, "*")):
            add(rows.setdefault(key, Row(*key)), m.entry_kind, m.amount)
    for s in SCHEMES:
        rows.setdefault((s, "*"), Row(s, "*"))
    return sorted(rows.values(), key=lambda r: (SCHEMES.index(r.scheme), r.branch != "*", r.branch))


@dataclass(frozen=True)
class Report:
    period: str
    currency: str
    timezone: str
    cash_value_per_point: Decimal
    rows: tuple[Row, ...]
    branches: dict[str, tuple[str, str]]  # branch id -> (code, name)

    def total(self, scheme: str) -> Row:
        return next(r for r in self.rows if r.scheme == scheme and r.branch == "*")


async def report(db: Database, tenant: uuid.UUID, period: str) -> Report:
    """The month ``period`` (the ledger's months, in the merchant's time zone)."""
    check_period(period)
    async with db.uow(tenant) as uow:
        currency, tz = await merchant_info(uow)
        moves = await q.movements(uow, period)
        _, programme = await programme_at(uow)
        names = {str(b): (code, name) for b, code, name in await dashboard_queries.branch_list(uow)}
    value = programme.points.cash_value_per_point
    rows = build(moves)
    for r in rows:
        if r.scheme == "points":
            r.value = {c: points_liability(v, value) for c, v in r.figures().items()}
    return Report(period, currency, tz, value, tuple(rows), names)
