"""Report speed at scale (issue 17): a year of activity for a 40-branch chain — N journal entries
(default 10,000,000) and N/10 members (1,000,000) — generated set-based with ``generate_series`` in
SQL as the owner, shaped like the application's own entries:

- sales (10% without a member) at the 40 branches, each member sale with its ``points_earned`` entry
  (member ``points`` +, merchant ``points_issued`` −; ``refs`` naming the sale and the branch);
- ``points_redeemed`` entries (member ``points`` −, merchant ``points_redeemed`` +) at a branch;
- stored-value top-ups (a ``top_ups`` row and its ``stored_value_top_up`` entry: member
  ``sv_principal`` +, merchant ``sv_float`` −) at a branch;
- ``expiry`` entries (member ``points`` −, merchant ``points_breakage`` +) that belong to no branch;
- every member's profile with a tier (the tier distribution counts them);
- every member account's balance row: the dashboard reads what members hold from the rollups
  (decision 0047), and the bench checks it equal to these balances.

Two postings per entry. Triggers — the ledger's per-row commit-time checks (balanced entries, known
accounts) and the foreign keys' — do not fire while loading (``session_replication_role = replica``,
the bench connects as the superuser owner): the rows are balanced and consistent by construction, and
on again before anything is timed.

Then, in the same run, through the application's RLS-bound role:

1. **the HQ dashboard** (``tenants/reports/dashboard.py``, last month against the month before, every
   branch) — all its queries, in total, median of REPEATS — against **the same figures computed by raw
   aggregate SQL over the journal and the POS tables** (sales, points issued / redeemed / expired,
   top-ups, per day and branch, for both months). Target: ≤ 200 ms and ≤ 0.05×.
2. **a rollup rebuild from scratch** (``lianka reports rebuild``'s use case) against the raw aggregate
   of the same figures over the whole year. Target: ≤ 2×.

Printed along: every statement of one dashboard view with its time (and the slowest three's plans),
the reads decision 0055 replaced (the buyers from the sales, the tiers counted from the profiles) with
their time and checked equal to the dashboard's figures, and the rebuild's time per statement.

``python -m bench reports --entries 1000000`` (or ``BENCH_REPORT_ENTRIES``) for a smaller run;
``--reuse`` times again on the last run's data (kept in its database until the next run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from rich.table import Table
from sqlalchemy import event, text

from bench.common import bench_database, console
from lianka.platform.db import Database, asyncpg_params
from lianka.tenants.reports import dashboard as dash
from lianka.tenants.reports import dashboard_queries as dq
from lianka.tenants.reports import rollups
from lianka.tenants.reports.domain import PeriodKind

REPEATS = 5
BRANCHES = 40
TZ = "Asia/Shanghai"
NOW = datetime.now(UTC)
#: the year of activity ends now
START = NOW - timedelta(days=365)


def reuse() -> bool:
    """``--reuse`` (or ``BENCH_REPORT_REUSE=1``): time again on the data an earlier run generated (its
    database is kept until the next run without the flag), migrated to head — for a change to the
    dashboard without generating 10M entries again."""
    return "--reuse" in sys.argv or os.environ.get("BENCH_REPORT_REUSE") == "1"


def entries_wanted() -> int:
    args = sys.argv
    if "--entries" in args:
        return int(args[args.index("--entries") + 1])
    return int(os.environ.get("BENCH_REPORT_ENTRIES", "10000000"))


def shares(n: int) -> dict[str, int]:
    """How many entries of each kind make ``n`` (earns 40%, redemptions 30%, top-ups 20%, expiries 10%),
    the sales behind the earns (a tenth of sales have no member) and the members (n / 10)."""
    earn, redeem, topup = n * 40 // 100, n * 30 // 100, n * 20 // 100
    return {
        "earn": earn,
        "redeem": redeem,
        "topup": topup,
        "expiry": n - earn - redeem - topup,
        "sales": earn * 10 // 9,
        "members": max(n // 10, 1),
    }


#: a business time in the year from an integer: the day from i, the second of the day spread over
#: shop hours (09:00–21:00 local, 01:00–13:00 UTC)
_BT = "($3::timestamptz + ((i % 365) || ' days')::interval + ((3600 + (i * 7919) % 43200) || ' seconds')::interval)"

# $1 tenant, $2 branches uuid[], $3 start, $4 count / members
_GENERATE: list[tuple[str, str]] = [
    (
        "members",
        """INSERT INTO members (id, phone, card_number, qr_secret)
           SELECT gen_random_uuid(), '+86138' || lpad(i::text, 8, '0'), (200000000000 + i)::text, '\\x00'::bytea
           FROM generate_series(1, $4::bigint) i WHERE $1::uuid IS NOT NULL AND $2::uuid[] IS NOT NULL
             AND $3::timestamptz IS NOT NULL""",
    ),
    (
        "member index",
        """CREATE UNLOGGED TABLE bench_m AS
           SELECT (card_number::bigint - 200000000000) AS n, id FROM members
            WHERE $1::uuid IS NOT NULL AND $2::uuid[] IS NOT NULL AND $3::timestamptz IS NOT NULL AND $4::bigint > 0""",
    ),
    ("member index key", "ALTER TABLE bench_m ADD PRIMARY KEY (n)"),
    (
        "memberships",
        """INSERT INTO memberships (tenant_id, member_id, branch_id, joined_at)
           SELECT $1, id, ($2::uuid[])[1 + (n % 40)], $3::timestamptz - ((n % 700) || ' days')::interval
           FROM bench_m WHERE $4::bigint > 0""",
    ),
    (
        "member profiles",
        """INSERT INTO member_profiles (tenant_id, member_id, tier_code)
           SELECT $1, id, (ARRAY['silver', 'gold', 'platinum', NULL])[1 + (n % 4)]
           FROM bench_m WHERE $2::uuid[] IS NOT NULL AND $3::timestamptz IS NOT NULL AND $4::bigint > 0""",
    ),
    (
        "member accounts",
        """INSERT INTO ledger_accounts (tenant_id, owner_kind, owner_id, kind, unit, tracked)
           SELECT $1, 'member', m.id, k.kind, CASE k.kind WHEN 'points' THEN 'PTS:' || replace($1::uuid::text, '-', '')
                  ELSE 'CNY' END, true
           FROM bench_m m CROSS JOIN (VALUES ('points'), ('sv_principal')) k(kind)
           WHERE $2::uuid[] IS NOT NULL AND $3::timestamptz IS NOT NULL AND $4::bigint > 0""",
    ),
    (
        "merchant accounts",
        """INSERT INTO ledger_accounts (tenant_id, owner_kind, owner_id, kind, unit, allow_negative)
           SELECT $1, 'merchant', $1, k.kind, CASE WHEN k.kind LIKE 'points%' THEN 'PTS:' || replace($1::uuid::text, '-', '')
                  ELSE 'CNY' END, true
           FROM (VALUES ('points_issued'), ('points_redeemed'), ('points_breakage'), ('sv_float')) k(kind)
           WHERE $2::uuid[] IS NOT NULL AND $3::timestamptz IS NOT NULL AND $4::bigint >= 0""",
    ),
    (
        "sales",
        f"""INSERT INTO sales (tenant_id, id, member_id, branch_id, business_time, currency, gross, due,
                               qualifying_spend, points_earned, programme_version)
            SELECT $1, gen_random_uuid(), CASE WHEN i % 10 = 0 THEN NULL ELSE m.id END, ($2::uuid[])[1 + (i % 40)],
                   {_BT}, 'CNY', 1000 + (i * 37) % 20000, 1000 + (i * 37) % 20000, 1000 + (i * 37) % 20000,
                   (1000 + (i * 37) % 20000) / 100, 1
            FROM generate_series(1, $4::bigint) i
            JOIN bench_m m ON m.n = 1 + (i * 7919) % (SELECT count(*) FROM bench_m)""",
    ),
]

#: the staged movements: one row per entry (its two postings are derived from it)
_STAGE = [
    (
        "stage earns",
        """CREATE UNLOGGED TABLE bench_e AS
           SELECT gen_random_uuid() AS id, 'points_earned'::text AS kind, s.id AS sale_id, s.branch_id,
                  s.business_time AS bt, s.member_id, s.points_earned AS amount, 'points'::text AS acct
             FROM sales s WHERE s.member_id IS NOT NULL AND s.points_earned > 0
              AND $1::uuid IS NOT NULL AND $2::uuid[] IS NOT NULL AND $3::timestamptz IS NOT NULL AND $4::bigint >= 0""",
    ),
    (
        "stage redemptions",
        f"""INSERT INTO bench_e SELECT gen_random_uuid(), 'points_redeemed', NULL, ($2::uuid[])[1 + (i % 40)],
                   {_BT}, m.id, -(1 + (i * 13) % 50), 'points'
            FROM generate_series(1, $4::bigint) i JOIN bench_m m ON m.n = 1 + (i * 104729) % (SELECT count(*) FROM bench_m)
            WHERE $1::uuid IS NOT NULL""",
    ),
    (
        "stage top-ups",
        f"""INSERT INTO bench_e SELECT gen_random_uuid(), 'stored_value_top_up', NULL, ($2::uuid[])[1 + (i % 40)],
                   {_BT}, m.id, 10000 * (1 + i % 5), 'sv_principal'
            FROM generate_series(1, $4::bigint) i JOIN bench_m m ON m.n = 1 + (i * 15485863) % (SELECT count(*) FROM bench_m)
            WHERE $1::uuid IS NOT NULL""",
    ),
    (
        "stage expiries",
        f"""INSERT INTO bench_e SELECT gen_random_uuid(), 'expiry', NULL, NULL, {_BT}, m.id, -(1 + (i * 17) % 30), 'points'
            FROM generate_series(1, $4::bigint) i JOIN bench_m m ON m.n = 1 + (i * 32452843) % (SELECT count(*) FROM bench_m)
            WHERE $1::uuid IS NOT NULL AND $2::uuid[] IS NOT NULL""",
    ),
]

_LOAD = [
    (
        "top_ups",
        """INSERT INTO top_ups (tenant_id, member_id, branch_id, plan_code, currency, principal, bonus, payment_method,
                                business_time, entry_id, created_at)
           SELECT $1, member_id, branch_id, 'bench', 'CNY', amount, 0, 'cash', bt, id, bt FROM bench_e
            WHERE kind = 'stored_value_top_up'""",
    ),
    (
        "journal entries",
        """INSERT INTO ledger_entries (tenant_id, id, idempotency_scope, idempotency_key, request_hash, kind,
                                       business_time, posted_at, period, refs)
           SELECT $1, id, 'bench:' || kind, id::text, 'bench', kind, bt, bt,
                  to_char(bt AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'),
                  jsonb_strip_nulls(jsonb_build_object('sale', sale_id, 'branch', branch_id))
             FROM bench_e""",
    ),
    (
        "journal postings",
        """INSERT INTO ledger_postings (tenant_id, entry_id, seq, account_id, unit, amount, posted_at)
           SELECT $1, e.id, k.seq, CASE k.seq WHEN 1 THEN a.id ELSE c.id END, a.unit,
                  CASE k.seq WHEN 1 THEN e.amount ELSE -e.amount END, e.bt
             FROM bench_e e CROSS JOIN (VALUES (1), (2)) k(seq)
             JOIN ledger_accounts a ON a.tenant_id = $1 AND a.owner_kind = 'member' AND a.owner_id = e.member_id
                                   AND a.kind = e.acct
             JOIN ledger_accounts c ON c.tenant_id = $1 AND c.owner_kind = 'merchant'
                                   AND c.kind = CASE e.kind WHEN 'points_earned' THEN 'points_issued'
                                                            WHEN 'points_redeemed' THEN 'points_redeemed'
                                                            WHEN 'expiry' THEN 'points_breakage' ELSE 'sv_float' END""",
    ),
    ("triggers on", "SET session_replication_role = DEFAULT"),
    (
        "balances",
        """INSERT INTO ledger_balances (tenant_id, account_id, balance)
           SELECT $1, a.id, COALESCE(sum(p.amount), 0)
             FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
            WHERE a.tenant_id = $1 AND a.tracked GROUP BY a.id""",
    ),
    ("clean up", "DROP TABLE bench_e, bench_m"),
]

#: the dashboard's day/branch figures straight from the journal and the POS tables over [:lo, :hi):
#: sales (member, non-member), points issued / redeemed / expired (member points postings), top-ups
RAW = text("""
WITH s AS (
  SELECT (business_time AT TIME ZONE :tz)::date AS day, branch_id,
         COALESCE(sum(gross - member_discount - coupon_total) FILTER (WHERE member_id IS NOT NULL), 0) AS sm,
         COALESCE(sum(gross - member_discount - coupon_total) FILTER (WHERE member_id IS NULL), 0) AS sn
    FROM sales WHERE business_time >= :lo AND business_time < :hi GROUP BY 1, 2),
p AS (
  SELECT (e.business_time AT TIME ZONE :tz)::date AS day,
         COALESCE(CAST(NULLIF(e.refs->>'branch', '') AS uuid), CAST(:nil AS uuid)) AS branch_id,
         COALESCE(sum(p.amount) FILTER (WHERE p.amount > 0), 0) AS pi,
         COALESCE(-sum(p.amount) FILTER (WHERE p.amount < 0 AND e.kind <> 'expiry'), 0) AS pr,
         COALESCE(-sum(p.amount) FILTER (WHERE p.amount < 0 AND e.kind = 'expiry'), 0) AS pe
    FROM ledger_entries e
    JOIN ledger_postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
    JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
                          AND a.owner_kind = 'member' AND a.kind = 'points'
   WHERE e.business_time >= :lo AND e.business_time < :hi GROUP BY 1, 2),
t AS (
  SELECT (business_time AT TIME ZONE :tz)::date AS day, branch_id, sum(principal) AS tp
    FROM top_ups WHERE business_time >= :lo AND business_time < :hi GROUP BY 1, 2)
SELECT day, branch_id, sum(sm) AS sales_member, sum(sn) AS sales_nonmember, sum(pi) AS points_issued,
       sum(pr) AS points_redeemed, sum(pe) AS points_expired, sum(tp) AS topup_principal
  FROM (SELECT day, branch_id, sm, sn, 0 AS pi, 0 AS pr, 0 AS pe, 0 AS tp FROM s
        UNION ALL SELECT day, branch_id, 0, 0, pi, pr, pe, 0 FROM p
        UNION ALL SELECT day, branch_id, 0, 0, 0, 0, 0, tp FROM t) u
 GROUP BY 1, 2
""")


#: what members hold straight from their balance rows (what the dashboard read before decision 0047)
BALANCES = text("""
SELECT a.kind, COALESCE(sum(b.balance), 0) AS amount
  FROM ledger_accounts a JOIN ledger_balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
 WHERE a.owner_kind = 'member' AND a.kind IN ('points', 'sv_principal', 'sv_bonus')
   AND (a.kind = 'points' OR a.unit = 'CNY')
 GROUP BY a.kind
""")


@contextlib.contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any, float]]]:
    """Every statement run on ``db`` inside the block, with its parameters and time."""
    seen: list[tuple[str, Any, float]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters, time.perf_counter() - conn.info["bench_t0"].pop()))

    sync = db.engine.sync_engine
    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", before)
        event.remove(sync, "after_cursor_execute", after)


def _short(statement: str) -> str:
    return " ".join(statement.split())[:110]


async def profile(db: Database, tenant: uuid.UUID, ask: dash.Request) -> None:
    """Each statement one dashboard view runs, with its time, then EXPLAIN ANALYZE of the slowest."""
    with statements(db) as seen:
        await dash.dashboard(db, tenant, None, ask, now=NOW)
    table = Table(title="one dashboard view, statement by statement")
    table.add_column("ms", justify="right")
    table.add_column("statement")
    for statement, _, took in seen:
        table.add_row(f"{took * 1000:.1f}", _short(statement))
    console.print(table)
    slowest = sorted((x for x in seen if x[0].lstrip().upper().startswith(("SELECT", "WITH"))), key=lambda x: -x[2])
    async with db.uow(tenant) as uow:
        conn = await uow.session.connection()
        for statement, parameters, took in slowest[:3]:
            plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            console.print(f"[bold]{took * 1000:.1f} ms[/bold] " + _short(statement))
            console.print("\n".join(r[0] for r in plan), markup=False, highlight=False)


def rebuild_breakdown(seen: list[tuple[str, Any, float]]) -> None:
    """A rebuild's time per statement, summed over its chunks: where the rebuild's time goes."""
    total: dict[str, tuple[int, float]] = {}
    for statement, _, took in seen:
        n, t = total.get(_short(statement), (0, 0.0))
        total[_short(statement)] = (n + 1, t + took)
    table = Table(title="the rebuild, statement by statement (summed over its chunks)")
    for col in ("s", "runs", "statement"):
        table.add_column(col, justify="left" if col == "statement" else "right")
    for text_, (n, t) in sorted(total.items(), key=lambda x: -x[1][1])[:8]:
        table.add_row(f"{t:.2f}", str(n), text_)
    console.print(table)


#: the tier distribution counted from the profiles (what the dashboard read before decision 0055)
PROFILE_TIERS = text(
    "SELECT COALESCE(tier_code, '') AS tier, count(*) AS n FROM member_profiles GROUP BY 1 ORDER BY 2 DESC, 1"
)


async def replaced(db: Database, tenant: uuid.UUID, board: dash.Dashboard) -> tuple[bool, bool]:
    """The reads decision 0055 replaced, timed, and their figures against the dashboard's: the buyers of
    both periods from the sales (decision 0047's statement) and the tiers counted from the profiles."""
    scope = dq.Scope(board.period.first, board.period.last, None)
    periods = (
        (_utc(board.period.first, ZONE), _utc(board.period.last + timedelta(days=1), ZONE)),
        (_utc(board.previous.first, ZONE), _utc(board.previous.last + timedelta(days=1), ZONE)),
    )
    async with db.uow(tenant) as uow:
        t = time.perf_counter()
        read = await dq.buyers(uow, scope, *periods)
        buyers_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        counted = [(r.tier, int(r.n)) for r in await uow.session.execute(PROFILE_TIERS)]
        tiers_ms = (time.perf_counter() - t) * 1000
    console.print(
        f"  replaced reads: buyers of both periods from the sales {buyers_ms:.1f} ms, "
        f"tiers counted from the profiles {tiers_ms:.1f} ms"
    )
    rows = {b.branch_id: b.members for b in board.branches if b.members}
    buyers_agree = (
        read.period == (board.kpis.active_members, _repeat(board.kpis))
        and read.previous == (board.previous_kpis.active_members, _repeat(board.previous_kpis))
        and read.per_branch == rows
    )
    return buyers_agree, board.tiers == counted


def _repeat(k: Any) -> int:
    """Members who bought twice, back from the repeat rate (exact: the rate is their Decimal ratio)."""
    return 0 if k.repeat_rate is None else int(k.repeat_rate * k.active_members + Decimal("0.5"))


async def _run_steps(conn: asyncpg.Connection, steps: list[tuple[str, str]], *args: Any) -> None:
    for name, sql in steps:
        t = time.perf_counter()
        await conn.execute(sql, *args) if "$" in sql else await conn.execute(sql)
        console.print(f"  generated {name} in {time.perf_counter() - t:.1f} s")


async def generate(url: str, n: int) -> uuid.UUID:
    c = shares(n)
    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        # no per-row trigger (the ledger's commit-time checks, foreign keys) while loading: the rows are
        # balanced and consistent by construction (joins), and the foreign-key checks dominated the load
        await conn.execute("SET session_replication_role = replica")
        tenant = uuid.uuid4()
        await conn.execute(
            "INSERT INTO merchants (id, slug, name, timezone) VALUES ($1, 'bench-reports', 'Bench 报表', $2)",
            tenant,
            TZ,
        )
        branches = [
            await conn.fetchval(
                "INSERT INTO branches (tenant_id, code, name) VALUES ($1, $2, $2) RETURNING id", tenant, f"B{i:02d}"
            )
            for i in range(BRANCHES)
        ]
        await _run_steps(conn, _GENERATE[:6], tenant, branches, START, c["members"])
        await _run_steps(conn, _GENERATE[6:7], tenant, branches, START, 0)  # merchant accounts
        await _run_steps(conn, _GENERATE[7:], tenant, branches, START, c["sales"])
        await _run_steps(conn, _STAGE[:1], tenant, branches, START, 0)
        for (name, sql), count in zip(_STAGE[1:], (c["redeem"], c["topup"], c["expiry"]), strict=True):
            await _run_steps(conn, [(name, sql)], tenant, branches, START, count)
        await _run_steps(conn, _LOAD, tenant)
        await conn.execute("VACUUM ANALYZE")  # as autovacuum would have by then: index-only scans work
        entries = await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE tenant_id = $1", tenant)
        members = await conn.fetchval("SELECT count(*) FROM memberships WHERE tenant_id = $1", tenant)
        console.print(f"  data: {entries:,} journal entries, {members:,} members, {BRANCHES} branches")
        return tenant
    finally:
        await conn.close()


ZONE = ZoneInfo(TZ)


def _utc(day: date, zone: ZoneInfo) -> datetime:
    """A local day's start in UTC."""
    return datetime.combine(day, dtime(), tzinfo=zone).astimezone(UTC)


async def _timed(fn: Callable[[], Awaitable[object]], repeats: int = REPEATS, warm: bool = True) -> list[float]:
    if warm:
        await fn()  # warm the cache and the plans
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return times


async def reused(url: str) -> uuid.UUID:
    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        tenant = await conn.fetchval("SELECT id FROM merchants WHERE slug = 'bench-reports'")
        if tenant is None:
            raise SystemExit("--reuse: no data from an earlier run here; run without --reuse first")
        entries = await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE tenant_id = $1", tenant)
        members = await conn.fetchval("SELECT count(*) FROM memberships WHERE tenant_id = $1", tenant)
        console.print(f"  reused: {entries:,} journal entries, {members:,} members, {BRANCHES} branches")
        return uuid.UUID(str(tenant))
    finally:
        await conn.close()


async def main_async(url: str, db: Database, n: int) -> None:
    t0 = time.perf_counter()
    tenant = await (reused(url) if reuse() else generate(url, n))
    generated_s = time.perf_counter() - t0
    console.print(f"  generated in {generated_s:.1f} s")
    # the nightly RFM job and the dashboard's member snapshot it writes (decision 0058), timed
    from lianka.tenants.marketing.services import rfm_scores

    t = time.perf_counter()
    scored = await rfm_scores(db, tenant, NOW)
    console.print(
        f"  nightly RFM scores + member snapshot: {scored:,} members scored in {time.perf_counter() - t:.1f} s"
    )

    t = time.perf_counter()
    built = await rollups.rebuild(db, tenant)
    rebuild_s = time.perf_counter() - t
    console.print(f"  first rollup: {built.days} days, {built.rows:,} rows in {rebuild_s:.1f} s")

    ask = dash.Request(kind=PeriodKind.LAST_MONTH)
    board = await dash.dashboard(db, tenant, None, ask, now=NOW)
    lo = _utc(board.previous.first, ZONE)
    hi = _utc(board.period.last + timedelta(days=1), ZONE)

    async def hq() -> object:
        return await dash.dashboard(db, tenant, None, ask, now=NOW)

    async def raw(lo: datetime, hi: datetime) -> list[Any]:
        async with db.uow(tenant) as uow:
            params = {"tz": TZ, "lo": lo, "hi": hi, "nil": uuid.UUID(int=0)}
            return list(await uow.session.execute(RAW, params))

    await profile(db, tenant, ask)
    buyers_agree, tiers_agree = await replaced(db, tenant, board)
    async with db.uow(tenant) as uow:
        balances = {r.kind: int(r.amount) for r in await uow.session.execute(BALANCES)}
    held_agree = board.held is not None and (
        board.held.points == balances.get("points", 0)
        and board.held.sv_principal == balances.get("sv_principal", 0)
        and board.held.sv_bonus == balances.get("sv_bonus", 0)
    )

    hq_t = await _timed(hq)
    raw_t = await _timed(lambda: raw(lo, hi))
    console.print(
        f"  dashboard {statistics.median(hq_t) * 1000:.0f} ms, raw {statistics.median(raw_t) * 1000:.0f} ms: "
        f"{statistics.median(hq_t) / statistics.median(raw_t):.3f}×"
    )
    # the figures agree: the dashboard's period totals against the raw aggregate's
    rows = await raw(_utc(board.period.first, ZONE), hi)
    agree = (
        sum(int(r.sales_member) for r in rows) == board.kpis.sales_member
        and sum(int(r.points_issued) for r in rows) == sum(d.points_issued for d in board.daily)
        and sum(int(r.points_redeemed) for r in rows) == sum(d.points_redeemed for d in board.daily)
        and sum(int(r.points_expired) for r in rows) == sum(d.points_expired for d in board.daily)
    )

    async def rebuild() -> object:
        return await rollups.rebuild(db, tenant)

    year = (START - timedelta(days=2), NOW + timedelta(days=2))
    # the raw year just before and just after the rebuild (their mean is the baseline): the 2 cores are
    # shared, and a load that changes over minutes would otherwise tilt the ratio either way
    raw_year_t = await _timed(lambda: raw(*year), repeats=1)
    with statements(db) as seen:
        rebuild_t = await _timed(rebuild, repeats=1, warm=False)  # the first rollup above warmed it
    raw_year_t += await _timed(lambda: raw(*year), repeats=1, warm=False)
    rebuild_breakdown(seen)
    console.print(
        f"  rebuild {rebuild_t[0]:.1f} s, raw year before/after {raw_year_t[0]:.1f} s / {raw_year_t[1]:.1f} s"
    )

    hq_ms, raw_ms = statistics.median(hq_t) * 1000, statistics.median(raw_t) * 1000
    rb_s, ry_s = statistics.median(rebuild_t), statistics.mean(raw_year_t)
    table = Table(title=f"reports over {n:,} entries, {shares(n)['members']:,} members, {BRANCHES} branches")
    for col in ("measure", "time", "ratio", "target", "met"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row(
        f"HQ dashboard, all queries (median of {REPEATS})",
        f"{hq_ms:.1f} ms",
        f"{hq_ms / raw_ms:.3f}×",
        "≤ 0.05×, ≤ 200 ms",
        "yes" if hq_ms / raw_ms <= 0.05 and hq_ms <= 200 else "NO",
    )
    table.add_row("  raw aggregate over the journal, same 2 months", f"{raw_ms:.1f} ms", "1.000×", "", "")
    table.add_row(
        "rollup rebuild from scratch (a year)",
        f"{rb_s:.2f} s",
        f"{rb_s / ry_s:.2f}×",
        "≤ 2×",
        "yes" if rb_s / ry_s <= 2 else "NO",
    )
    table.add_row("  raw aggregate over the journal, the year", f"{ry_s:.2f} s", "1.00×", "", "")
    console.print(table)
    console.print(
        f"  headline: dashboard = {hq_ms / raw_ms:.3f}× the raw aggregate ({hq_ms:.0f} ms); "
        f"rebuild = {rb_s / ry_s:.2f}× the raw aggregate; figures agree: {agree}; "
        f"held (rollups) = balance rows: {held_agree}; buyers (rollups) = sales read: {buyers_agree}; "
        f"tiers (kept) = profiles: {tiers_agree}; data generated in {generated_s:.0f} s"
    )
    await db.dispose()


def run() -> None:
    n = entries_wanted()
    with bench_database("lianka_bench_reports", keep=reuse()) as s:
        console.print(f"[bold]reports[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s), n))


if __name__ == "__main__":
    run()
