"""The dashboard's read models: sums of the daily rollups over a period and the one before it
(optionally some branches only); the buyers of both — summed from the buyer rollups when both periods
are month-aligned (decision 0055), else straight from the sales (distinct members cannot be summed
from arbitrary days); what members hold (from the rollups too), the tier distribution (from the kept
tier counts) and each branch's clearing this month. A view is a handful of statements, none reading a
row per member (decisions 0047, 0055). Every statement runs in the merchant's unit of work (row-level
security) and none commits."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.reports.queries import FIGURES, NO_BRANCH

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

#: the period's and the previous period's rollup rows in one read (decision 0047): each period's
#: totals (``part`` 't'), the period's days ('d') and its branches ('b'); ``cur`` tells the two apart
_FIGURES = text(f"""
SELECT cur, CASE WHEN GROUPING(day) = 0 THEN 'd' WHEN GROUPING(branch_id) = 0 THEN 'b' ELSE 't' END AS part,
       day, branch_id, {_SUMS}
  FROM (SELECT *, day >= :lo AS cur FROM report_daily
         WHERE (day BETWEEN :lo AND :hi OR day BETWEEN :plo AND :phi) AND {_BRANCHES}) AS r
 GROUP BY GROUPING SETS ((cur), (cur, day), (cur, branch_id))
HAVING cur OR GROUPING(day) + GROUPING(branch_id) = 2
""")
#: members who bought in the period [:lo, :hi) and in the previous one [:plo, :phi) — two range scans
#: of the covering index ``ix_sales_business_time`` (index-only), one grouping: per period how many
#: bought and how many of them more than once (``branch_id`` NULL), per branch how many bought in the
#: period
_BUYERS = text(f"""
WITH s AS (
  SELECT true AS cur, member_id, branch_id FROM sales
   WHERE member_id IS NOT NULL AND business_time >= :lo AND business_time < :hi AND {_BRANCHES}
  UNION ALL
  SELECT false, member_id, branch_id FROM sales
   WHERE member_id IS NOT NULL AND business_time >= :plo AND business_time < :phi AND {_BRANCHES}),
m AS (SELECT cur, member_id, branch_id, count(*) AS n FROM s GROUP BY 1, 2, 3)
SELECT cur, CAST(NULL AS uuid) AS branch_id, count(*) AS active, count(*) FILTER (WHERE n >= 2) AS repeat
  FROM (SELECT cur, member_id, sum(n) AS n FROM m GROUP BY 1, 2) AS per_member GROUP BY cur
UNION ALL
SELECT true, branch_id, count(*), 0 FROM m WHERE cur GROUP BY branch_id
""")
#: the buyers of two month-aligned periods summed from the buyer rollups (decision 0055): per period and
#: row kind (the nil branch: the merchant as a whole; else a branch), Σ firsts = members who bought,
#: Σ seconds = of them those who bought at least twice
_BUYER_SUMS = text(f"""
SELECT day >= :lo AS cur, branch_id, sum(firsts) AS active, sum(seconds) AS repeat
  FROM report_buyers
 WHERE (day BETWEEN :lo AND :hi OR day BETWEEN :plo AND :phi) AND (branch_id = :nil OR {_BRANCHES})
 GROUP BY 1, 2
""")
#: the buyers' grouping holds a row per (member, branch) of two periods: in memory, not spilled to disk
_GROUPING_MEMORY = text("SELECT set_config('work_mem', '64MB', true)")
#: what the members hold, as of the rollups' mark: every day's net of members' points postings
#: (issued − redeemed − expired nets each of them exactly once) and stored-value postings, summed —
#: O(days × branches) rollup rows, never a row per member (decision 0047)
_HELD = text("""
SELECT COALESCE(sum(points_issued - points_redeemed - points_expired), 0) AS points,
       COALESCE(sum(sv_principal_change), 0) AS sv_principal, COALESCE(sum(sv_bonus_change), 0) AS sv_bonus
  FROM report_daily
""")
#: members per tier: the kept counts (one row per tier) plus the changes not folded yet — O(tiers +
#: profile changes since the last tick), exact at this instant (decision 0055)
_TIERS = text(
    "SELECT tier_code AS tier, sum(members) AS n FROM report_tier_counts GROUP BY 1 HAVING sum(members) <> 0"
    " ORDER BY 2 DESC, 1"
)
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


@dataclass(frozen=True)
class Figures:
    """The rollups' sums: the period's and the previous period's totals, the period per day and per branch."""

    totals: dict[str, int]
    previous: dict[str, int]
    daily: dict[date, dict[str, int]]
    per_branch: dict[uuid.UUID, dict[str, int]]


async def figures(uow: UnitOfWork, scope: Scope, before: Scope) -> Figures:
    """One read of the rollups for the period (``scope``) and the one it is compared with (``before``,
    the same branches, wholly before it)."""
    params = scope.params() | {"plo": before.lo, "phi": before.hi}
    out = Figures(dict.fromkeys(FIGURES, 0), dict.fromkeys(FIGURES, 0), {}, {})
    for r in await uow.session.execute(_FIGURES, params):
        if r.part == "t":
            (out.totals if r.cur else out.previous).update(_figures(r))
        elif r.part == "d":
            out.daily[r.day] = _figures(r)
        else:
            out.per_branch[r.branch_id] = _figures(r)
    return out


@dataclass(frozen=True)
class Buyers:
    """Members who bought: (how many, of them those who bought at least twice) in the period and in the
    previous one, and how many bought at each branch in the period."""

    period: tuple[int, int]
    previous: tuple[int, int]
    per_branch: dict[uuid.UUID, int]


async def buyers(
    uow: UnitOfWork, scope: Scope, period: tuple[datetime, datetime], previous: tuple[datetime, datetime]
) -> Buyers:
    """``period`` and ``previous``: [start, end) in UTC, ``previous`` wholly before ``period``."""
    params = scope.params() | {"lo": period[0], "hi": period[1], "plo": previous[0], "phi": previous[1]}
    await uow.session.execute(_GROUPING_MEMORY)
    counts: dict[bool, tuple[int, int]] = {True: (0, 0), False: (0, 0)}
    per_branch: dict[uuid.UUID, int] = {}
    for r in await uow.session.execute(_BUYERS, params):
        if r.branch_id is None:
            counts[bool(r.cur)] = (int(r.active), int(r.repeat))
        else:
            per_branch[r.branch_id] = int(r.active)
    return Buyers(counts[True], counts[False], per_branch)


async def summed_buyers(uow: UnitOfWork, scope: Scope, before: Scope) -> Buyers:
    """The same as :func:`buyers` for two month-aligned periods (each within one calendar month, from its
    first day) and every branch or exactly one (``scope.branches`` None or a single branch): sums of the
    buyer rollups — O(days × branches) rows, as of the rollups' mark."""
    if scope.branches is not None and len(scope.branches) != 1:
        raise ValueError("buyers of several branches together cannot be summed per branch")
    one = None if scope.branches is None else next(iter(scope.branches))
    params = scope.params() | {"plo": before.lo, "phi": before.hi, "nil": NO_BRANCH}
    counts: dict[bool, tuple[int, int]] = {True: (0, 0), False: (0, 0)}
    per_branch: dict[uuid.UUID, int] = {}
    for r in await uow.session.execute(_BUYER_SUMS, params):
        if r.branch_id == NO_BRANCH:
            if one is None:
                counts[bool(r.cur)] = (int(r.active), int(r.repeat))
            continue
        if r.branch_id == one:
            counts[bool(r.cur)] = (int(r.active), int(r.repeat))
        if r.cur:
            per_branch[r.branch_id] = int(r.active)
    return Buyers(counts[True], counts[False], per_branch)


async def held(uow: UnitOfWork) -> dict[str, int]:
    """Points, stored value principal and bonus the merchant's members hold (as of the rollups' mark)."""
    row = (await uow.session.execute(_HELD)).one()
    return {"points": int(row.points), "sv_principal": int(row.sv_principal), "sv_bonus": int(row.sv_bonus)}


async def tiers(uow: UnitOfWork) -> list[tuple[str, int]]:
    return [(r.tier, int(r.n)) for r in await uow.session.execute(_TIERS)]


async def clearing(uow: UnitOfWork, currency: str, period: str) -> dict[uuid.UUID, int]:
    rows = await uow.session.execute(_CLEARING, {"currency": currency, "period": period})
    return {r.branch_id: int(r.net) for r in rows}


async def branch_list(uow: UnitOfWork) -> list[tuple[uuid.UUID, str, str]]:
    return [(r.id, r.code, r.name) for r in await uow.session.execute(_BRANCH_LIST)]


# --- member panels: the nightly snapshot, and the period's tier movements, rewards and campaigns ----

_SAVE_SNAPSHOT = text("""
INSERT INTO report_member_snapshots (tenant_id, computed_at, total, lifecycle, rfm)
VALUES (:t, :at, :total, CAST(:lifecycle AS jsonb), CAST(:rfm AS jsonb))
ON CONFLICT (tenant_id) DO UPDATE SET computed_at = excluded.computed_at, total = excluded.total,
       lifecycle = excluded.lifecycle, rfm = excluded.rfm
""")
_SNAPSHOT = text("SELECT computed_at, total, lifecycle, rfm FROM report_member_snapshots WHERE tenant_id = :t")
#: tier movements whose time falls in [lo, hi): (from, to, members)
_TIER_MOVES = text("""
SELECT coalesce(old_tier, '') AS old, coalesce(new_tier, '') AS new, count(*) AS n FROM tier_changes
 WHERE tenant_id = :t AND at >= :lo AND at < :hi AND coalesce(old_tier, '') <> coalesce(new_tier, '')
 GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20
""")
#: the rewards most redeemed in [lo, hi) (a cancelled redemption does not count)
_TOP_REWARDS = text("""
SELECT r.code, r.name, count(*) AS n, sum(x.points) AS points FROM reward_redemptions x
  JOIN rewards r ON r.tenant_id = x.tenant_id AND r.id = x.reward_id
 WHERE x.tenant_id = :t AND x.created_at >= :lo AND x.created_at < :hi AND x.status <> 'cancelled'
 GROUP BY r.code, r.name ORDER BY 3 DESC, 1 LIMIT 5
""")
#: campaigns started in [lo, hi), newest first: what they reached (their results page has the rest)
_CAMPAIGNS = text("""
SELECT id, name, channel, status, started_at, recipients FROM campaigns
 WHERE tenant_id = :t AND started_at >= :lo AND started_at < :hi AND status <> 'automation'
 ORDER BY started_at DESC, id LIMIT 5
""")


@dataclass(frozen=True)
class MemberSnapshot:
    computed_at: datetime
    total: int
    #: members per lifecycle stage (new, active, at_risk, dormant)
    lifecycle: dict[str, int]
    #: (recency, frequency, members) per RFM cell that has any
    rfm: list[tuple[int, int, int]]


@dataclass(frozen=True)
class RewardRow:
    code: str
    name: str
    redemptions: int
    points: int


@dataclass(frozen=True)
class CampaignRow:
    id: uuid.UUID
    name: str
    channel: str
    status: str
    started_at: datetime
    recipients: int


async def save_member_snapshot(uow: UnitOfWork, at: datetime, snapshot: MemberSnapshot) -> None:
    await uow.session.execute(
        _SAVE_SNAPSHOT,
        {
            "t": uow.tenant_id,
            "at": at,
            "total": snapshot.total,
            "lifecycle": json.dumps(snapshot.lifecycle),
            "rfm": json.dumps([list(cell) for cell in snapshot.rfm]),
        },
    )


async def member_snapshot(uow: UnitOfWork) -> MemberSnapshot | None:
    row = (await uow.session.execute(_SNAPSHOT, {"t": uow.tenant_id})).first()
    if row is None:
        return None
    cells = [(int(r), int(f), int(n)) for r, f, n in row.rfm]
    return MemberSnapshot(row.computed_at, int(row.total), {k: int(v) for k, v in row.lifecycle.items()}, cells)


async def tier_moves(uow: UnitOfWork, lo: datetime, hi: datetime) -> list[tuple[str, str, int]]:
    rows = await uow.session.execute(_TIER_MOVES, {"t": uow.tenant_id, "lo": lo, "hi": hi})
    return [(r.old, r.new, int(r.n)) for r in rows]


async def top_rewards(uow: UnitOfWork, lo: datetime, hi: datetime) -> list[RewardRow]:
    rows = await uow.session.execute(_TOP_REWARDS, {"t": uow.tenant_id, "lo": lo, "hi": hi})
    return [RewardRow(r.code, r.name, int(r.n), int(r.points)) for r in rows]


async def campaigns(uow: UnitOfWork, lo: datetime, hi: datetime) -> list[CampaignRow]:
    rows = await uow.session.execute(_CAMPAIGNS, {"t": uow.tenant_id, "lo": lo, "hi": hi})
    return [CampaignRow(r.id, r.name, r.channel, r.status, r.started_at, int(r.recipients)) for r in rows]
