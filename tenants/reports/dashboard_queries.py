"""The dashboard's read models: sums of the daily rollups over a period (optionally some branches
only), the buyers of a period straight from the sales (distinct members cannot be summed from days),
the balances members hold, the tier distribution, and each branch's clearing this month. Every
statement runs in the merchant's unit of work (row-level security) and none commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.reports.queries import FIGURES

#: every figure of ``FIGURES`` summed (spelled out: SQL is never built from values)
_SUMS = (
    "COALESCE(sum(sales_count_member), 0) AS sales_count_member, "
    "COALESCE(sum(sales_count_nonmember), 0) AS sales_count_nonmember, "
    "COALESCE(sum(sales_member), 0) AS sales_member, COALESCE(sum(sales_nonmember), 0) AS sales_nonmember, "
    "COALESCE(sum(refunds), 0) AS refunds, COALESCE(sum(buying_members), 0) AS buying_members, "
    "COALESCE(sum(new_members), 0) AS new_members, COALESCE(sum(points_issued), 0) AS points_issued, "
    "COALESCE(sum(points_redeemed), 0) AS points_redeemed, "
    "COALESCE(sum(points_expired), 0) AS points_expired, "
    "COALESCE(sum(topup_principal), 0) AS topup_principal, COALESCE(sum(topup_bonus), 0) AS topup_bonus, "
    "COALESCE(sum(sv_consumed_principal), 0) AS sv_consumed_principal, "
    "COALESCE(sum(sv_consumed_bonus), 0) AS sv_consumed_bonus, "
    "COALESCE(sum(coupons_issued), 0) AS coupons_issued, "
    "COALESCE(sum(coupons_redeemed), 0) AS coupons_redeemed"
)
_BRANCHES = "(CAST(:all AS boolean) OR branch_id = ANY(CAST(:b AS uuid[])))"

_TOTALS = text(f"SELECT {_SUMS} FROM report_daily WHERE day BETWEEN :lo AND :hi AND {_BRANCHES}")
_DAILY = text(f"""
SELECT day, {_SUMS} FROM report_daily WHERE day BETWEEN :lo AND :hi AND {_BRANCHES} GROUP BY day ORDER BY day
""")
_PER_BRANCH = text(f"""
SELECT branch_id, {_SUMS} FROM report_daily WHERE day BETWEEN :lo AND :hi AND {_BRANCHES} GROUP BY branch_id
""")
#: members who bought in [lo, hi): how many, and how many of them more than once
_BUYERS = text(f"""
SELECT count(*) AS active, count(*) FILTER (WHERE n >= 2) AS repeat FROM (
  SELECT member_id, count(*) AS n FROM sales
   WHERE member_id IS NOT NULL AND business_time >= :lo AND business_time < :hi AND {_BRANCHES}
   GROUP BY member_id) AS m
""")
_BUYERS_PER_BRANCH = text(f"""
SELECT branch_id, count(DISTINCT member_id) AS n FROM sales
 WHERE member_id IS NOT NULL AND business_time >= :lo AND business_time < :hi AND {_BRANCHES}
 GROUP BY branch_id
""")
#: what the members hold now: points, stored value principal and bonus (their balance rows)
_HELD = text("""
SELECT a.kind, COALESCE(sum(b.balance), 0) AS amount
  FROM ledger_accounts a JOIN ledger_balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
 WHERE a.owner_kind = 'member' AND a.kind IN ('points', 'sv_principal', 'sv_bonus')
   AND (a.kind = 'points' OR a.unit = :currency)
 GROUP BY a.kind
""")
_TIERS = text("SELECT COALESCE(tier_code, '') AS tier, count(*) AS n FROM member_profiles GROUP BY 1 ORDER BY 2 DESC")
#: each branch's clearing accounts (``clr_<line>``, money) summed over the month's entries: positive,
#: HQ owes the branch; negative, the branch owes HQ (the settlement's sign)
_CLEARING = text("""
SELECT a.owner_id AS branch_id, sum(p.amount) AS net
  FROM ledger_accounts a
  JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE a.owner_kind = 'branch' AND a.kind LIKE 'clr\\_%' AND a.unit = :currency AND e.period = :period
 GROUP BY 1
""")
_BRANCH_LIST = text("SELECT id, code, name FROM branches ORDER BY code")


@dataclass(frozen=True)
class Scope:
    """Days ``lo``..``hi`` (local, both included) at some branches (None: all, and the nil branch)."""

    lo: date
    hi: date
    branches: frozenset[uuid.UUID] | None

    def params(self) -> dict[str, object]:
        return {"lo": self.lo, "hi": self.hi, "all": self.branches is None, "b": sorted(self.branches or ())}


def _figures(row: object) -> dict[str, int]:
    return {f: int(getattr(row, f)) for f in FIGURES}


async def totals(uow: UnitOfWork, scope: Scope) -> dict[str, int]:
    row = (await uow.session.execute(_TOTALS, scope.params())).one()
    return _figures(row)


async def daily(uow: UnitOfWork, scope: Scope) -> dict[date, dict[str, int]]:
    rows = await uow.session.execute(_DAILY, scope.params())
    return {r.day: _figures(r) for r in rows}


async def per_branch(uow: UnitOfWork, scope: Scope) -> dict[uuid.UUID, dict[str, int]]:
    rows = await uow.session.execute(_PER_BRANCH, scope.params())
    return {r.branch_id: _figures(r) for r in rows}


async def buyers(uow: UnitOfWork, scope: Scope, start: datetime, end: datetime) -> tuple[int, int]:
    """(members who bought, of them those who bought at least twice) in [start, end)."""
    row = (await uow.session.execute(_BUYERS, {**scope.params(), "lo": start, "hi": end})).one()
    return int(row.active), int(row.repeat)


async def buyers_per_branch(uow: UnitOfWork, scope: Scope, start: datetime, end: datetime) -> dict[uuid.UUID, int]:
    rows = await uow.session.execute(_BUYERS_PER_BRANCH, {**scope.params(), "lo": start, "hi": end})
    return {r.branch_id: int(r.n) for r in rows}


async def held(uow: UnitOfWork, currency: str) -> dict[str, int]:
    """Points, stored value principal and bonus the merchant's members hold now."""
    rows = await uow.session.execute(_HELD, {"currency": currency})
    return {"points": 0, "sv_principal": 0, "sv_bonus": 0} | {r.kind: int(r.amount) for r in rows}


async def tiers(uow: UnitOfWork) -> list[tuple[str, int]]:
    return [(r.tier, int(r.n)) for r in await uow.session.execute(_TIERS)]


async def clearing(uow: UnitOfWork, currency: str, period: str) -> dict[uuid.UUID, int]:
    rows = await uow.session.execute(_CLEARING, {"currency": currency, "period": period})
    return {r.branch_id: int(r.net) for r in rows}


async def branch_list(uow: UnitOfWork) -> list[tuple[uuid.UUID, str, str]]:
    return [(r.id, r.code, r.name) for r in await uow.session.execute(_BRANCH_LIST)]
