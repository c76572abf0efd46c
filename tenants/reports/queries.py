"""The SQL of the reports: the daily rollup (days written since the mark, rewriting whole days, the
mark itself) and the dashboard's read models. Every statement runs in the merchant's unit of work
(row-level security scopes it); none commits.

A day is a local day in the merchant's time zone (``:tz``) of the movement's *business* time, so an
offline sale synced days late lands on the day it was made; what marks it as new is its *write*
time (``created_at`` / ``posted_at``), compared with the mark."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import column, insert, table, text

from lianka.platform.db import UnitOfWork

#: the branch of movements that belong to none (a points expiry, a coupon sent from the console)
NO_BRANCH = uuid.UUID(int=0)

#: the rollup's figures, in the table's column order
FIGURES = (
    "sales_count_member",
    "sales_count_nonmember",
    "sales_member",
    "sales_nonmember",
    "refunds",
    "buying_members",
    "new_members",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "topup_principal",
    "topup_bonus",
    "sv_consumed_principal",
    "sv_consumed_bonus",
    "coupons_issued",
    "coupons_redeemed",
)
#: per day and branch, the net of every posting on members' stored-value accounts (principal, bonus)
#: in the merchant's currency: summed over all days, the float members hold (decision 0047)
CHANGES = ("sv_principal_change", "sv_bonus_change")

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('report_rollup'), hashtext(CAST(CAST(:t AS uuid) AS text)))")
_MARK = text("SELECT mark FROM report_marks WHERE tenant_id = :t")
_SET_MARK = text("""
INSERT INTO report_marks (tenant_id, mark) VALUES (:t, :m)
ON CONFLICT (tenant_id) DO UPDATE SET mark = GREATEST(report_marks.mark, EXCLUDED.mark), updated_at = now()
""")
_NOW = text("SELECT now()")

#: the local days that rows written after :since (every row when NULL) belong to
_DAYS = text("""
WITH since AS (SELECT COALESCE(CAST(:since AS timestamptz), '-infinity'::timestamptz) AS s)
SELECT DISTINCT d FROM (
  SELECT (business_time AT TIME ZONE :tz)::date FROM sales, since WHERE tenant_id = :t AND created_at > since.s
  UNION ALL
  SELECT (business_time AT TIME ZONE :tz)::date FROM refunds, since WHERE tenant_id = :t AND created_at > since.s
  UNION ALL
  SELECT (business_time AT TIME ZONE :tz)::date FROM top_ups, since WHERE tenant_id = :t AND created_at > since.s
  UNION ALL
  SELECT (business_time AT TIME ZONE :tz)::date FROM ledger_entries, since
   WHERE tenant_id = :t AND posted_at > since.s
  UNION ALL
  SELECT (joined_at AT TIME ZONE :tz)::date FROM memberships, since WHERE tenant_id = :t AND joined_at > since.s
  UNION ALL
  SELECT (issued_at AT TIME ZONE :tz)::date FROM coupons, since WHERE tenant_id = :t AND issued_at > since.s
  UNION ALL
  SELECT (redeemed_at AT TIME ZONE :tz)::date FROM coupons, since WHERE tenant_id = :t AND redeemed_at > since.s
) AS x(d)
ORDER BY d
""")

_DELETE_DAYS = text("DELETE FROM report_daily WHERE tenant_id = :t AND day = ANY(:days)")
_DELETE_ALL = text("DELETE FROM report_daily WHERE tenant_id = :t")

#: the days :days rolled up from scratch, straight from the journal and the POS tables. :lo/:hi bound
#: the business times (a superset of the days, for the indexes); the day test is exact.
_ROLLUP_SQL = """
WITH
s AS (
  SELECT (business_time AT TIME ZONE :tz)::date AS day, branch_id,
         count(*) FILTER (WHERE member_id IS NOT NULL) AS sales_count_member,
         count(*) FILTER (WHERE member_id IS NULL) AS sales_count_nonmember,
         COALESCE(sum(gross - promotion_discount - member_discount - coupon_total) FILTER (WHERE member_id IS NOT NULL), 0) AS sales_member,
         COALESCE(sum(gross - promotion_discount - member_discount - coupon_total) FILTER (WHERE member_id IS NULL), 0) AS sales_nonmember,
         count(DISTINCT member_id) AS buying_members,
         sum(sv_principal) AS sv_p, sum(sv_bonus) AS sv_b
    FROM sales
   WHERE tenant_id = :t AND business_time >= :lo AND business_time < :hi
     AND (business_time AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1, 2),
r AS (
  SELECT (r.business_time AT TIME ZONE :tz)::date AS day, r.branch_id,
         COALESCE(sum(r.amount) FILTER (WHERE s.member_id IS NOT NULL), 0) AS member_amount,
         COALESCE(sum(r.amount) FILTER (WHERE s.member_id IS NULL), 0) AS nonmember_amount,
         sum(r.sv_principal_restored) AS sv_p, sum(r.sv_bonus_restored) AS sv_b
    FROM refunds r JOIN sales s ON s.tenant_id = r.tenant_id AND s.id = r.sale_id
   WHERE r.tenant_id = :t AND r.business_time >= :lo AND r.business_time < :hi
     AND (r.business_time AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1, 2),
tu AS (
  SELECT (business_time AT TIME ZONE :tz)::date AS day, branch_id, sum(principal) AS p, sum(bonus) AS b
    FROM top_ups
   WHERE tenant_id = :t AND business_time >= :lo AND business_time < :hi
     AND (business_time AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1, 2),
m AS (
  SELECT (joined_at AT TIME ZONE :tz)::date AS day, COALESCE(branch_id, CAST(:nil AS uuid)) AS branch_id, count(*) AS n
    FROM memberships
   WHERE tenant_id = :t AND joined_at >= :lo AND joined_at < :hi AND (joined_at AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1, 2),
pm AS (
  SELECT (e.business_time AT TIME ZONE :tz)::date AS day,
         COALESCE(CAST(NULLIF(e.refs->>'branch', '') AS uuid),
                  (SELECT sa.branch_id FROM sales sa
                    WHERE sa.tenant_id = e.tenant_id AND sa.id = CAST(NULLIF(e.refs->>'sale', '') AS uuid)),
                  CAST(:nil AS uuid)) AS branch_id,
         e.kind, (e.reverses_id IS NOT NULL OR e.kind = 'points_clawed_back') AS undo, a.kind AS account, p.amount
    FROM ledger_entries e
    JOIN ledger_postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
    JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id AND a.owner_kind = 'member'
                          AND (a.kind = 'points' OR (a.kind IN ('sv_principal', 'sv_bonus') AND a.unit = :currency))
   WHERE e.tenant_id = :t AND e.business_time >= :lo AND e.business_time < :hi
     AND (e.business_time AT TIME ZONE :tz)::date = ANY(:days)),
pts AS (
  SELECT day, branch_id,
         COALESCE(sum(amount) FILTER (WHERE account = 'points' AND amount > 0 AND NOT undo), 0)
           + COALESCE(sum(amount) FILTER (WHERE account = 'points' AND amount < 0 AND undo), 0) AS issued,
         COALESCE(-sum(amount) FILTER (WHERE account = 'points' AND amount < 0 AND NOT undo AND kind <> 'expiry'), 0)
           - COALESCE(sum(amount) FILTER (WHERE account = 'points' AND amount > 0 AND undo), 0) AS redeemed,
         COALESCE(-sum(amount) FILTER (WHERE account = 'points' AND amount < 0 AND NOT undo AND kind = 'expiry'), 0)
           AS expired,
         COALESCE(sum(amount) FILTER (WHERE account = 'sv_principal'), 0) AS svp,
         COALESCE(sum(amount) FILTER (WHERE account = 'sv_bonus'), 0) AS svb
    FROM pm GROUP BY 1, 2),
ci AS (
  SELECT (issued_at AT TIME ZONE :tz)::date AS day, CAST(:nil AS uuid) AS branch_id, count(*) AS n
    FROM coupons
   WHERE tenant_id = :t AND issued_at >= :lo AND issued_at < :hi AND (issued_at AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1),
cr AS (
  SELECT (c.redeemed_at AT TIME ZONE :tz)::date AS day, COALESCE(s.branch_id, CAST(:nil AS uuid)) AS branch_id, count(*) AS n
    FROM coupons c LEFT JOIN sales s ON s.tenant_id = c.tenant_id AND s.id = c.redeemed_sale_id
   WHERE c.tenant_id = :t AND c.redeemed_at >= :lo AND c.redeemed_at < :hi
     AND (c.redeemed_at AT TIME ZONE :tz)::date = ANY(:days)
   GROUP BY 1, 2),
u AS (
  SELECT day, branch_id, sales_count_member, sales_count_nonmember, sales_member, sales_nonmember,
         0 AS refunds, buying_members, 0 AS new_members, 0 AS pi, 0 AS pr, 0 AS pe, 0 AS tp, 0 AS tb,
         sv_p AS cp, sv_b AS cb, 0 AS ci, 0 AS cr, 0 AS svp, 0 AS svb FROM s
  UNION ALL SELECT day, branch_id, 0, 0, -member_amount, -nonmember_amount, member_amount + nonmember_amount,
         0, 0, 0, 0, 0, 0, 0, -sv_p, -sv_b, 0, 0, 0, 0 FROM r
  UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, p, b, 0, 0, 0, 0, 0, 0 FROM tu
  UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM m
  UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, 0, 0, issued, redeemed, expired, 0, 0, 0, 0, 0, 0, svp, svb FROM pts
  UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n, 0, 0, 0 FROM ci
  UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n, 0, 0 FROM cr)
INSERT INTO report_daily (tenant_id, day, branch_id, currency, sales_count_member, sales_count_nonmember,
                          sales_member, sales_nonmember, refunds, buying_members, new_members, points_issued,
                          points_redeemed, points_expired, topup_principal, topup_bonus, sv_consumed_principal,
                          sv_consumed_bonus, coupons_issued, coupons_redeemed, sv_principal_change, sv_bonus_change)
SELECT CAST(:t AS uuid), day, branch_id, CAST(:currency AS text), sum(sales_count_member), sum(sales_count_nonmember), sum(sales_member),
       sum(sales_nonmember), sum(refunds), sum(buying_members), sum(new_members), sum(pi), sum(pr), sum(pe),
       sum(tp), sum(tb), sum(cp), sum(cb), sum(ci), sum(cr), sum(svp), sum(svb)
  FROM u GROUP BY day, branch_id
"""
_ROLLUP = text(_ROLLUP_SQL)
#: every day in [:lo, :hi) rolled up — the bounds are exactly local midnights, so the per-row day test
#: is dropped: the rebuild's set-based form, whose row estimates then let the planner pick one scan of
#: the range (decision 0047). Derived from the statement above so the two can never disagree.
_DAY_TEST = re.compile(r"\s+AND \([\w.]+ AT TIME ZONE :tz\)::date = ANY\(:days\)")
#: … and, without its ``INSERT`` head, a plain ``SELECT``: PostgreSQL never runs the query part of an
#: ``INSERT … SELECT`` with parallel workers, a ``SELECT`` it may (half the time of a quarter's chunk at
#: 2M entries — decision 0055); the chunk's few hundred rows are then inserted by the client
_INSERT_HEAD = re.compile(r"INSERT INTO report_daily \(([^)]*)\)")
_DAILY_COLUMNS = tuple(c.strip() for c in _INSERT_HEAD.findall(_ROLLUP_SQL)[0].split(","))
_ROLLUP_RANGE = text(_INSERT_HEAD.sub("", _DAY_TEST.sub("", _ROLLUP_SQL)))
assert len(_DAY_TEST.findall(_ROLLUP_SQL)) == 7 and ":days" not in _ROLLUP_RANGE.text
assert ("tenant_id", "day", "branch_id", "currency", *FIGURES, *CHANGES) == _DAILY_COLUMNS
assert "INSERT" not in _ROLLUP_RANGE.text
#: the chunk's rows inserted by the client — an ORM-free core insert, so its SQL is SQLAlchemy's own
_INSERT_DAILY = insert(table("report_daily", *(column(c) for c in _DAILY_COLUMNS)))
#: the local days of the merchant's first and last movement (any source), for a rebuild
_SPAN = text("""
SELECT min(d) AS first, max(d) AS last FROM (
  SELECT (min(business_time) AT TIME ZONE :tz)::date, (max(business_time) AT TIME ZONE :tz)::date
    FROM sales WHERE tenant_id = :t
  UNION ALL SELECT (min(business_time) AT TIME ZONE :tz)::date, (max(business_time) AT TIME ZONE :tz)::date
    FROM refunds WHERE tenant_id = :t
  UNION ALL SELECT (min(business_time) AT TIME ZONE :tz)::date, (max(business_time) AT TIME ZONE :tz)::date
    FROM top_ups WHERE tenant_id = :t
  UNION ALL SELECT (min(business_time) AT TIME ZONE :tz)::date, (max(business_time) AT TIME ZONE :tz)::date
    FROM ledger_entries WHERE tenant_id = :t
  UNION ALL SELECT (min(joined_at) AT TIME ZONE :tz)::date, (max(joined_at) AT TIME ZONE :tz)::date
    FROM memberships WHERE tenant_id = :t
  UNION ALL SELECT (min(issued_at) AT TIME ZONE :tz)::date, (max(issued_at) AT TIME ZONE :tz)::date
    FROM coupons WHERE tenant_id = :t
  UNION ALL SELECT (min(redeemed_at) AT TIME ZONE :tz)::date, (max(redeemed_at) AT TIME ZONE :tz)::date
    FROM coupons WHERE tenant_id = :t
) AS x(lo, hi), LATERAL (VALUES (lo), (hi)) AS y(d)
""")
#: a rebuild's range statement sorts and hashes a quarter of the journal: in memory, not on disk
_ROOMY = text("SELECT set_config('work_mem', '256MB', true)")


async def lock(uow: UnitOfWork, tenant: uuid.UUID) -> None:
    """One rollup of a merchant at a time (the job's tick and a rebuild): held to the commit."""
    await uow.session.execute(_LOCK, {"t": tenant})


async def now(uow: UnitOfWork) -> datetime:
    """The transaction's start (``now()``): what a row written before this snapshot is stamped with."""
    value: datetime = await uow.session.scalar(_NOW)
    return value


async def mark(uow: UnitOfWork, tenant: uuid.UUID) -> datetime | None:
    found: datetime | None = await uow.session.scalar(_MARK, {"t": tenant})
    return found


async def set_mark(uow: UnitOfWork, tenant: uuid.UUID, value: datetime) -> None:
    """Advance the mark (never back: a rebuild racing a tick keeps the later one)."""
    await uow.session.execute(_SET_MARK, {"t": tenant, "m": value})


async def days_written_since(uow: UnitOfWork, tenant: uuid.UUID, tz: str, since: datetime | None) -> list[date]:
    """The local days of the movements written after ``since`` (every day with a movement: None)."""
    rows = await uow.session.execute(_DAYS, {"t": tenant, "tz": tz, "since": since})
    return [r.d for r in rows]


@dataclass(frozen=True)
class DaysToRoll:
    tenant: uuid.UUID
    tz: str
    currency: str
    days: list[date]
    #: UTC bounds of the business times of those days (a superset, for the indexes)
    lo: datetime
    hi: datetime


async def rewrite_days(uow: UnitOfWork, d: DaysToRoll) -> int:
    """Delete the days' rows and roll them up again from scratch; the rows written."""
    await uow.session.execute(_DELETE_DAYS, {"t": d.tenant, "days": d.days})
    result = await uow.session.execute(
        _ROLLUP,
        {"t": d.tenant, "tz": d.tz, "currency": d.currency, "days": d.days, "lo": d.lo, "hi": d.hi, "nil": NO_BRANCH},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_days(uow: UnitOfWork, tenant: uuid.UUID, days: list[date]) -> None:
    await uow.session.execute(_DELETE_DAYS, {"t": tenant, "days": days})


async def span(uow: UnitOfWork, tenant: uuid.UUID, tz: str) -> tuple[date, date] | None:
    """The local days of the merchant's first and last movement (None: it has none)."""
    row = (await uow.session.execute(_SPAN, {"t": tenant, "tz": tz})).one()
    return None if row.first is None else (row.first, row.last)


async def rewrite_range(uow: UnitOfWork, d: DaysToRoll) -> int:
    """Roll up every day of ``d.days`` — consecutive days, whose rows were deleted — in one set-based
    ``SELECT`` over exactly their business times ``[d.lo, d.hi)`` (parallel-capable), its rows then
    inserted in one batch; the rows written."""
    await uow.session.execute(_ROOMY)
    result = await uow.session.execute(
        _ROLLUP_RANGE, {"t": d.tenant, "tz": d.tz, "currency": d.currency, "lo": d.lo, "hi": d.hi, "nil": NO_BRANCH}
    )
    rows = [dict(zip(_DAILY_COLUMNS, r, strict=True)) for r in result]
    if rows:
        await uow.session.execute(_INSERT_DAILY, rows)
    return len(rows)


async def delete_all(uow: UnitOfWork, tenant: uuid.UUID) -> None:
    await uow.session.execute(_DELETE_ALL, {"t": tenant})


#: per local day from :first and branch, the members whose first / second purchase of the calendar month
#: (merchant time zone) that was — ranked among their purchases at that branch; on the nil branch,
#: among all their purchases (the merchant as a whole: a member buying at two branches counts once).
#: A purchase is a sale with a member, as the dashboard's buyers have always been (a refund does not
#: undo it). Reads the sales of [:mlo, :hi) — :mlo the start of :first's month, so a rank sees every
#: earlier purchase of the month — of the members who bought in [:lo, :hi) (:lo = :first's start);
#: rows are written for days from :first only (decision 0055)
_BUYERS_SQL = """
WITH
ms AS (
  SELECT member_id, branch_id, id, business_time, (business_time AT TIME ZONE :tz)::date AS day
    FROM sales
   WHERE tenant_id = :t AND member_id IS NOT NULL AND business_time >= :mlo AND business_time < :hi
     AND member_id IN (SELECT member_id FROM sales
                        WHERE tenant_id = :t AND member_id IS NOT NULL AND business_time >= :lo AND business_time < :hi)),
ranked AS (
  SELECT day, branch_id,
         row_number() OVER (PARTITION BY member_id, date_trunc('month', day) ORDER BY business_time, id) AS hq,
         row_number() OVER (PARTITION BY member_id, branch_id, date_trunc('month', day) ORDER BY business_time, id) AS br
    FROM ms),
kept AS (SELECT * FROM ranked WHERE day >= :first AND (hq <= 2 OR br <= 2))
INSERT INTO report_buyers (tenant_id, day, branch_id, firsts, seconds)
SELECT CAST(:t AS uuid), day, branch_id, count(*) FILTER (WHERE br = 1), count(*) FILTER (WHERE br = 2)
  FROM kept WHERE br <= 2 GROUP BY day, branch_id
UNION ALL
SELECT CAST(:t AS uuid), day, CAST(:nil AS uuid), count(*) FILTER (WHERE hq = 1), count(*) FILTER (WHERE hq = 2)
  FROM kept WHERE hq <= 2 GROUP BY day
"""
_BUYERS = text(_BUYERS_SQL)
#: the rebuild's form: every member of [:mlo, :hi) (``:lo`` = ``:mlo``), no need to pick them first
_WHO_BOUGHT = re.compile(r"\s+AND member_id IN \(SELECT member_id FROM sales\s+WHERE [^)]*\)\)")
_BUYERS_ALL = text(_WHO_BOUGHT.sub(")", _BUYERS_SQL))
assert len(_WHO_BOUGHT.findall(_BUYERS_SQL)) == 1 and ":lo" not in _BUYERS_ALL.text
_DELETE_BUYERS = text("DELETE FROM report_buyers WHERE tenant_id = :t AND day >= :first AND day < :end")
_DELETE_ALL_BUYERS = text("DELETE FROM report_buyers WHERE tenant_id = :t")
#: the local days of the sales written after :since — the only movements that change who bought
_SALE_DAYS = text("""
SELECT DISTINCT (business_time AT TIME ZONE :tz)::date AS d FROM sales
 WHERE tenant_id = :t AND created_at > COALESCE(CAST(:since AS timestamptz), '-infinity'::timestamptz)
 ORDER BY 1
""")
#: the tier counts' changes folded into one row per tier, in one statement (one snapshot: a change
#: committed meanwhile is neither deleted nor summed, it stays a row of its own)
_FOLD_TIERS = text("""
WITH gone AS (DELETE FROM report_tier_counts WHERE tenant_id = :t RETURNING tier_code, members)
INSERT INTO report_tier_counts (tenant_id, tier_code, members)
SELECT CAST(:t AS uuid), tier_code, sum(members) FROM gone GROUP BY tier_code HAVING sum(members) <> 0
""")
#: the tier counts recounted from the profiles, in one statement (one snapshot, as above)
_RECOUNT_TIERS = text("""
WITH gone AS (DELETE FROM report_tier_counts WHERE tenant_id = :t)
INSERT INTO report_tier_counts (tenant_id, tier_code, members)
SELECT CAST(:t AS uuid), COALESCE(tier_code, ''), count(*) FROM member_profiles WHERE tenant_id = :t GROUP BY 2
""")


@dataclass(frozen=True)
class BuyerDays:
    """Local days ``first`` .. ``end`` (excluded) to roll the buyers up for; ``mlo`` / ``lo`` / ``hi``: the
    UTC starts of ``first``'s month, of ``first`` and of ``end``."""

    tenant: uuid.UUID
    tz: str
    first: date
    end: date
    mlo: datetime
    lo: datetime
    hi: datetime


async def sale_days_since(uow: UnitOfWork, tenant: uuid.UUID, tz: str, since: datetime | None) -> list[date]:
    """The local days of the sales written after ``since`` (every sale's: None)."""
    rows = await uow.session.execute(_SALE_DAYS, {"t": tenant, "tz": tz, "since": since})
    return [r.d for r in rows]


async def rewrite_buyers(uow: UnitOfWork, d: BuyerDays, *, everyone: bool = False) -> int:
    """Delete the buyer rows of ``d.first`` .. ``d.end`` and roll them up again; ``everyone``: ``d.first``
    starts a month (or the merchant's history) — every member's sales are read, none picked first."""
    await uow.session.execute(_DELETE_BUYERS, {"t": d.tenant, "first": d.first, "end": d.end})
    params = {"t": d.tenant, "tz": d.tz, "first": d.first, "mlo": d.mlo, "hi": d.hi, "nil": NO_BRANCH}
    if everyone:
        result = await uow.session.execute(_BUYERS_ALL, params)
    else:
        result = await uow.session.execute(_BUYERS, params | {"lo": d.lo})
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_all_buyers(uow: UnitOfWork, tenant: uuid.UUID) -> None:
    await uow.session.execute(_DELETE_ALL_BUYERS, {"t": tenant})


async def fold_tiers(uow: UnitOfWork, tenant: uuid.UUID) -> None:
    await uow.session.execute(_FOLD_TIERS, {"t": tenant})


async def recount_tiers(uow: UnitOfWork, tenant: uuid.UUID) -> None:
    await uow.session.execute(_RECOUNT_TIERS, {"t": tenant})
