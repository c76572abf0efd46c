"""The SQL of the alliance dashboard: the daily rollup of an alliance's book (days written since the
mark, whole days rewritten, the mark itself) and the dashboard's read models. Every statement runs in
the alliance's book (its unit of work's tenant is the alliance); none commits.

A day is a local day in the alliance's time zone (``:tz``) of the entry's *business* time; what marks
it as new is its write time (``posted_at``), compared with the mark (decision 0046, after 0037).

Partners are merchants: a clearing account belongs to a branch (``alliance_spokes`` names its
merchant) or to the partner itself (``owner_kind = 'partner'``, its monthly fee). A point's issuer is
the merchant of the branch whose entry created its lot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

#: the rollup's per-partner figures, in the table's column order
FIGURES = (
    "points_issued",
    "points_accepted",
    "issue_cost",
    "reimbursed",
    "fees",
    "points_expired",
    "breakage_returned",
    "sv_collected",
    "sv_consumed",
    "net",
)

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('alliance_report'), hashtext(CAST(CAST(:t AS uuid) AS text)))")
_MARK = text("SELECT mark FROM alliance_report_marks WHERE tenant_id = :t")
_SET_MARK = text("""
INSERT INTO alliance_report_marks (tenant_id, mark) VALUES (:t, :m)
ON CONFLICT (tenant_id) DO UPDATE SET mark = GREATEST(alliance_report_marks.mark, EXCLUDED.mark), updated_at = now()
""")
_NOW = text("SELECT now()")
_DAYS = text("""
SELECT DISTINCT (business_time AT TIME ZONE :tz)::date AS d FROM ledger_entries
 WHERE tenant_id = :t AND posted_at > COALESCE(CAST(:since AS timestamptz), '-infinity'::timestamptz)
 ORDER BY d
""")
_DELETE_DAYS = (
    text("DELETE FROM alliance_report_daily WHERE tenant_id = :t AND day = ANY(:days)"),
    text("DELETE FROM alliance_report_flows WHERE tenant_id = :t AND day = ANY(:days)"),
)
_DELETE_ALL = (
    text("DELETE FROM alliance_report_daily WHERE tenant_id = :t"),
    text("DELETE FROM alliance_report_flows WHERE tenant_id = :t"),
)

#: the entries of :days (exact), found through the business-time range :lo..:hi (for the index)
_ENTRIES = """
e AS (
  SELECT id, kind, reverses_id, refs, (business_time AT TIME ZONE :tz)::date AS day
    FROM ledger_entries
   WHERE tenant_id = :t AND business_time >= :lo AND business_time < :hi
     AND (business_time AT TIME ZONE :tz)::date = ANY(:days))"""

#: per partner and day: the money and point lines of its clearing accounts, and the expired points
#: of its issue (an expiry's lot moves, by the lots' issuing branch)
_ROLLUP_DAILY = text(
    "WITH"
    + _ENTRIES
    + """,
pa AS (
  SELECT e.day, COALESCE(s.merchant_id, CASE WHEN a.owner_kind = 'partner' THEN a.owner_id END) AS partner,
         a.kind, p.amount
    FROM e
    JOIN ledger_postings p ON p.tenant_id = :t AND p.entry_id = e.id
    JOIN ledger_accounts a ON a.tenant_id = :t AND a.id = p.account_id
    LEFT JOIN alliance_spokes s ON s.alliance_id = :t AND a.owner_kind = 'branch' AND s.branch_id = a.owner_id
   WHERE a.owner_kind IN ('branch', 'partner') AND (a.kind LIKE 'clr\\_%' OR a.kind LIKE 'qty\\_%')),
lines AS (
  SELECT day, partner,
         COALESCE(-sum(amount) FILTER (WHERE kind = 'qty_points_issued'), 0) AS points_issued,
         COALESCE(sum(amount) FILTER (WHERE kind = 'qty_points_redeemed'), 0) AS points_accepted,
         COALESCE(-sum(amount) FILTER (WHERE kind = 'clr_points_issued'), 0) AS issue_cost,
         COALESCE(sum(amount) FILTER (WHERE kind = 'clr_points_redeemed'), 0) AS reimbursed,
         COALESCE(-sum(amount) FILTER (WHERE kind = 'clr_fee'), 0) AS fees,
         COALESCE(sum(amount) FILTER (WHERE kind = 'clr_points_expired'), 0) AS breakage_returned,
         COALESCE(-sum(amount) FILTER (WHERE kind = 'clr_stored_value_collected'), 0) AS sv_collected,
         COALESCE(sum(amount) FILTER (WHERE kind = 'clr_stored_value_consumed_principal'), 0) AS sv_consumed,
         COALESCE(sum(amount) FILTER (WHERE kind LIKE 'clr\\_%'), 0) AS net
    FROM pa WHERE partner IS NOT NULL GROUP BY 1, 2),
ex AS (
  SELECT e.day, s.merchant_id AS partner, -sum(m.amount) AS points_expired
    FROM e
    JOIN ledger_lot_moves m ON m.tenant_id = :t AND m.entry_id = e.id
    JOIN ledger_lots l ON l.tenant_id = :t AND l.id = m.lot_id
    JOIN ledger_accounts a ON a.tenant_id = :t AND a.id = l.account_id AND a.kind = 'alliance_points'
    JOIN ledger_entries le ON le.tenant_id = :t AND le.id = l.entry_id
    JOIN alliance_spokes s ON s.alliance_id = :t AND s.branch_id = CAST(NULLIF(le.refs->>'branch', '') AS uuid)
   WHERE e.kind = 'expiry'
   GROUP BY 1, 2),
u AS (
  SELECT day, partner, points_issued, points_accepted, issue_cost, reimbursed, fees, 0 AS points_expired,
         breakage_returned, sv_collected, sv_consumed, net FROM lines
  UNION ALL SELECT day, partner, 0, 0, 0, 0, 0, points_expired, 0, 0, 0, 0 FROM ex)
INSERT INTO alliance_report_daily (tenant_id, day, partner_id, points_issued, points_accepted, issue_cost, reimbursed,
                                   fees, points_expired, breakage_returned, sv_collected, sv_consumed, net)
SELECT CAST(:t AS uuid), day, partner, sum(points_issued), sum(points_accepted), sum(issue_cost), sum(reimbursed),
       sum(fees), sum(points_expired), sum(breakage_returned), sum(sv_collected), sum(sv_consumed), sum(net)
  FROM u GROUP BY day, partner
"""
)

#: per day, issuer and redeemer: the points of an issuer's lots a redemption took (a reversal of one
#: counts negative on its own day, for the lots of the redemption it reverses), and the redemption's
#: reimbursement split over its issuers in proportion to their points (largest remainder, ties to the
#: lower issuer id), so the flows of a redemption add up to its reimbursement exactly
_ROLLUP_FLOWS = text(
    "WITH"
    + _ENTRIES
    + """,
rd AS (
  SELECT e.day, COALESCE(o.id, e.id) AS base, CASE WHEN o.id IS NULL THEN 1 ELSE -1 END AS sign,
         CAST(NULLIF(COALESCE(o.refs, e.refs)->>'merchant', '') AS uuid) AS redeemer
    FROM e LEFT JOIN ledger_entries o ON o.tenant_id = :t AND o.id = e.reverses_id
   WHERE COALESCE(o.kind, e.kind) = 'alliance_points_redeemed'),
taken AS (
  SELECT b.base, s.merchant_id AS issuer, -sum(m.amount) AS pts
    FROM (SELECT DISTINCT base FROM rd) b
    JOIN ledger_lot_moves m ON m.tenant_id = :t AND m.entry_id = b.base
    JOIN ledger_lots l ON l.tenant_id = :t AND l.id = m.lot_id
    JOIN ledger_entries le ON le.tenant_id = :t AND le.id = l.entry_id
    JOIN alliance_spokes s ON s.alliance_id = :t AND s.branch_id = CAST(NULLIF(le.refs->>'branch', '') AS uuid)
   GROUP BY 1, 2),
reimb AS (
  SELECT p.entry_id AS base, sum(p.amount) AS amount
    FROM (SELECT DISTINCT base FROM rd) b
    JOIN ledger_postings p ON p.tenant_id = :t AND p.entry_id = b.base
    JOIN ledger_accounts a ON a.tenant_id = :t AND a.id = p.account_id AND a.kind = 'clr_points_redeemed'
   GROUP BY 1),
sh AS (
  SELECT t.base, t.issuer, t.pts, COALESCE(r.amount, 0) AS amount,
         COALESCE(r.amount, 0) * t.pts / sum(t.pts) OVER w AS fl,
         COALESCE(r.amount, 0) * t.pts % sum(t.pts) OVER w AS rem
    FROM taken t LEFT JOIN reimb r USING (base)
  WINDOW w AS (PARTITION BY t.base)),
rk AS (
  SELECT base, issuer, pts, fl,
         row_number() OVER (PARTITION BY base ORDER BY rem DESC, issuer) AS rn,
         amount - sum(fl) OVER (PARTITION BY base) AS left_over
    FROM sh),
split AS (SELECT base, issuer, pts, fl + CASE WHEN rn <= left_over THEN 1 ELSE 0 END AS yuan FROM rk)
INSERT INTO alliance_report_flows (tenant_id, day, issuer_id, redeemer_id, points, amount)
SELECT CAST(:t AS uuid), rd.day, split.issuer, rd.redeemer, sum(rd.sign * split.pts), sum(rd.sign * split.yuan)
  FROM rd JOIN split USING (base)
 WHERE rd.redeemer IS NOT NULL
 GROUP BY rd.day, split.issuer, rd.redeemer
"""
)

_SHARED = text("SELECT merchant_id, shared, total FROM lianka_alliance_shared_members(:t)")

_TOTALS = text("""
SELECT partner_id, sum(points_issued) AS points_issued, sum(points_accepted) AS points_accepted,
       sum(issue_cost) AS issue_cost, sum(reimbursed) AS reimbursed, sum(fees) AS fees,
       sum(points_expired) AS points_expired, sum(breakage_returned) AS breakage_returned,
       sum(sv_collected) AS sv_collected, sum(sv_consumed) AS sv_consumed, sum(net) AS net
  FROM alliance_report_daily
 WHERE tenant_id = :t AND day BETWEEN :first AND :last
   AND (CAST(:p AS uuid) IS NULL OR partner_id = :p)
 GROUP BY partner_id
""")
_DAILY = text("""
SELECT day, sum(points_issued) AS points_issued, sum(points_accepted) AS points_accepted,
       sum(issue_cost) AS issue_cost, sum(reimbursed) AS reimbursed, sum(fees) AS fees,
       sum(points_expired) AS points_expired, sum(breakage_returned) AS breakage_returned,
       sum(sv_collected) AS sv_collected, sum(sv_consumed) AS sv_consumed, sum(net) AS net
  FROM alliance_report_daily
 WHERE tenant_id = :t AND day BETWEEN :first AND :last
   AND (CAST(:p AS uuid) IS NULL OR partner_id = :p)
 GROUP BY day
""")
#: every day up to :last: the partner's position (what it owes is its negative)
_POSITIONS = text("""
SELECT partner_id, sum(net) AS net FROM alliance_report_daily
 WHERE tenant_id = :t AND day <= :last AND (CAST(:p AS uuid) IS NULL OR partner_id = :p)
 GROUP BY partner_id
""")
_FLOWS = text("""
SELECT issuer_id, redeemer_id, sum(points) AS points, sum(amount) AS amount
  FROM alliance_report_flows
 WHERE tenant_id = :t AND day BETWEEN :first AND :last
   AND (CAST(:p AS uuid) IS NULL OR issuer_id = :p OR redeemer_id = :p)
 GROUP BY issuer_id, redeemer_id
HAVING sum(points) <> 0 OR sum(amount) <> 0
 ORDER BY issuer_id, redeemer_id
""")
_PARTNER_NAMES = text("""
SELECT merchant_id, name, role, status FROM alliance_partners WHERE alliance_id = :t ORDER BY joined_at, merchant_id
""")


class Flow(NamedTuple):
    issuer_id: uuid.UUID
    redeemer_id: uuid.UUID
    points: int
    amount: int


class PartnerName(NamedTuple):
    merchant_id: uuid.UUID
    name: str
    role: str
    status: str


class Shared(NamedTuple):
    merchant_id: uuid.UUID
    shared: int
    total: int


@dataclass(frozen=True)
class DaysToRoll:
    alliance: uuid.UUID
    tz: str
    days: list[date]
    #: UTC bounds of the business times of those days (a superset, for the index)
    lo: datetime
    hi: datetime


@dataclass(frozen=True)
class Window:
    """Days ``first``..``last`` of an alliance's rollups; ``partner`` None: every partner."""

    alliance: uuid.UUID
    first: date
    last: date
    partner: uuid.UUID | None


async def lock(uow: UnitOfWork, alliance: uuid.UUID) -> None:
    """One rollup of an alliance at a time (the job's tick and a rebuild): held to the commit."""
    await uow.session.execute(_LOCK, {"t": alliance})


async def now(uow: UnitOfWork) -> datetime:
    value: datetime = await uow.session.scalar(_NOW)
    return value


async def mark(uow: UnitOfWork, alliance: uuid.UUID) -> datetime | None:
    found: datetime | None = await uow.session.scalar(_MARK, {"t": alliance})
    return found


async def set_mark(uow: UnitOfWork, alliance: uuid.UUID, value: datetime) -> None:
    """Advance the mark (never back: a rebuild racing a tick keeps the later one)."""
    await uow.session.execute(_SET_MARK, {"t": alliance, "m": value})


async def days_written_since(uow: UnitOfWork, alliance: uuid.UUID, tz: str, since: datetime | None) -> list[date]:
    rows = await uow.session.execute(_DAYS, {"t": alliance, "tz": tz, "since": since})
    return [r.d for r in rows]


async def rewrite_days(uow: UnitOfWork, d: DaysToRoll) -> int:
    """Delete the days' rows and roll them up again from the journal; the rows written."""
    for statement in _DELETE_DAYS:
        await uow.session.execute(statement, {"t": d.alliance, "days": d.days})
    params = {"t": d.alliance, "tz": d.tz, "days": d.days, "lo": d.lo, "hi": d.hi}
    written = 0
    for statement in (_ROLLUP_DAILY, _ROLLUP_FLOWS):
        result = await uow.session.execute(statement, params)
        written += int(getattr(result, "rowcount", 0) or 0)
    return written


async def delete_all(uow: UnitOfWork, alliance: uuid.UUID) -> None:
    for statement in _DELETE_ALL:
        await uow.session.execute(statement, {"t": alliance})


def _figures(row: object) -> dict[str, int]:
    return {name: int(getattr(row, name)) for name in FIGURES}


async def totals(uow: UnitOfWork, w: Window) -> dict[uuid.UUID, dict[str, int]]:
    rows = await uow.session.execute(_TOTALS, {"t": w.alliance, "first": w.first, "last": w.last, "p": w.partner})
    return {r.partner_id: _figures(r) for r in rows}


async def daily(uow: UnitOfWork, w: Window) -> dict[date, dict[str, int]]:
    rows = await uow.session.execute(_DAILY, {"t": w.alliance, "first": w.first, "last": w.last, "p": w.partner})
    return {r.day: _figures(r) for r in rows}


async def positions(uow: UnitOfWork, w: Window) -> dict[uuid.UUID, int]:
    """Each partner's clearing position over every day up to ``w.last`` (``date.max``: now; negative:
    it owes)."""
    rows = await uow.session.execute(_POSITIONS, {"t": w.alliance, "last": w.last, "p": w.partner})
    return {r.partner_id: int(r.net) for r in rows}


async def flows(uow: UnitOfWork, w: Window) -> list[Flow]:
    """Issuer → redeemer over the window; a partner's window keeps its flows in and out."""
    rows = await uow.session.execute(_FLOWS, {"t": w.alliance, "first": w.first, "last": w.last, "p": w.partner})
    return [Flow(r.issuer_id, r.redeemer_id, int(r.points), int(r.amount)) for r in rows]


async def partner_names(uow: UnitOfWork, alliance: uuid.UUID) -> list[PartnerName]:
    return [PartnerName(*r) for r in await uow.session.execute(_PARTNER_NAMES, {"t": alliance})]


async def shared_members(uow: UnitOfWork, alliance: uuid.UUID) -> list[Shared]:
    """Per partner, its members holding a card at another partner too, and the alliance's total."""
    return [
        Shared(r.merchant_id, int(r.shared), int(r.total)) for r in await uow.session.execute(_SHARED, {"t": alliance})
    ]


# --- system scope: which alliances the job works through -------------------------------------------

_ALLIANCES = text("""
SELECT id, code FROM alliances WHERE CAST(:m AS uuid) IS NULL OR operator_merchant_id = :m ORDER BY id
""")
_ALLIANCE_BY_CODE = text("SELECT id FROM alliances WHERE code = :c")


class AllianceRef(NamedTuple):
    id: uuid.UUID
    code: str


async def every_alliance(uow: UnitOfWork, operator: uuid.UUID | None) -> list[AllianceRef]:
    """(system scope) Every alliance, or those ``operator`` operates."""
    return [AllianceRef(*r) for r in await uow.session.execute(_ALLIANCES, {"m": operator})]


async def alliance_by_code(uow: UnitOfWork, code: str) -> uuid.UUID | None:
    """(system scope) An alliance's id by its code."""
    found: uuid.UUID | None = await uow.session.scalar(_ALLIANCE_BY_CODE, {"c": code})
    return found
