"""Month-end close at volume (issue 6): a chain's month of N journal entries, generated in bulk.

Each generated entry is a stored-value clearing entry of the real shape: one posting on a branch's
clearing account (collected, consumed principal or bonus funded) and the opposite on HQ's. The
close under test is the real one (``lianka.alliance.settlement.close``): period lock, aggregate,
statements, checksum, three transactions. The baseline is the raw SQL aggregate the close reads —
the same query run on its own through asyncpg, in the same run, on the same data.

Two volumes (``BENCH_CLOSE_SMALL`` then ``BENCH_CLOSE_ENTRIES``, default 1M and 10M, in two months)
show whether the close's memory stays flat as volume grows (the aggregation runs in PostgreSQL; the
application only ever holds one row per branch and line).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import psutil
from rich.progress import Progress
from rich.table import Table

from bench.common import bench_database, console
from lianka.alliance.settlement import close, queries, scopes
from lianka.alliance.settlement.domain import LineKind
from lianka.platform.db import Database, asyncpg_params

BRANCHES = int(os.environ.get("BENCH_CLOSE_BRANCHES", "40"))
SMALL = int(os.environ.get("BENCH_CLOSE_SMALL", "1000000"))
LARGE = int(os.environ.get("BENCH_CLOSE_ENTRIES", "10000000"))
CHUNK = 500_000
LINES = (LineKind.SV_COLLECTED, LineKind.SV_CONSUMED, LineKind.SV_BONUS_FUNDED)


async def setup(conn: asyncpg.Connection) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID]:
    """A chain merchant, its branches, their clearing accounts and HQ's (as the owner)."""
    tenant = uuid.uuid4()
    await conn.execute(
        "INSERT INTO merchants (id, slug, name) VALUES ($1, $2, 'Bench chain 基准连锁')",
        tenant,
        f"bench-{tenant.hex[:8]}",
    )
    accounts: list[uuid.UUID] = []
    for i in range(BRANCHES):
        branch = uuid.uuid4()
        await conn.execute(
            "INSERT INTO branches (tenant_id, id, code, name) VALUES ($1, $2, $3, $3)", tenant, branch, f"B{i:03d}"
        )
        for line in LINES:
            accounts.append(
                await conn.fetchval(
                    "INSERT INTO ledger_accounts (tenant_id, owner_kind, owner_id, kind, unit, allow_negative) "
                    "VALUES ($1, 'branch', $2, $3, 'CNY', true) RETURNING id",
                    tenant,
                    branch,
                    f"clr_{line.value}",
                )
            )
    hub = await conn.fetchval(
        "INSERT INTO ledger_accounts (tenant_id, owner_kind, owner_id, kind, unit, allow_negative) "
        "VALUES ($1, 'merchant', $1, 'clr_hub', 'CNY', true) RETURNING id",
        tenant,
    )
    return tenant, accounts, hub


async def generate(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    accounts: list[uuid.UUID],
    hub: uuid.UUID,
    period: str,
    n: int,
    first: int,
) -> float:
    """``n`` balanced two-posting entries in ``period``, in chunks, triggers off for the bulk load."""
    start = time.perf_counter()
    year, month = map(int, period.split("-"))
    day = datetime(year, month, 15, 12, tzinfo=timezone(timedelta(hours=8)))
    await conn.execute("SET session_replication_role = replica")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"generating {n:,} entries in {period}", total=n)
        for lo in range(first, first + n, CHUNK):
            hi = min(lo + CHUNK, first + n) - 1
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO ledger_entries (tenant_id, id, idempotency_scope, idempotency_key, request_hash, "
                    "kind, business_time, posted_at, period, refs) "
                    "SELECT $1, md5($2 || g)::uuid, 'bench', 'e' || g, '', 'clearing_sv', $3::timestamptz, "
                    "$3::timestamptz, $4, '{}' FROM generate_series($5::bigint, $6::bigint) g",
                    tenant,
                    str(tenant),
                    day,
                    period,
                    lo,
                    hi,
                )
                await conn.execute(
                    "INSERT INTO ledger_postings (tenant_id, entry_id, seq, account_id, unit, amount, posted_at) "
                    "SELECT $1, md5($2 || g)::uuid, s.seq, CASE s.seq WHEN 0 THEN ($3::uuid[])[1 + g % $4] "
                    "ELSE $5::uuid END, 'CNY', (CASE s.seq WHEN 0 THEN 1 ELSE -1 END) * (1 + g % 99991), "
                    "$6::timestamptz FROM generate_series($7::bigint, $8::bigint) g "
                    "CROSS JOIN (VALUES (0), (1)) s(seq)",
                    tenant,
                    str(tenant),
                    accounts,
                    len(accounts),
                    hub,
                    day,
                    lo,
                    hi,
                )
            bar.update(task, advance=hi - lo + 1)
    await conn.execute("SET session_replication_role = DEFAULT")
    return time.perf_counter() - start


async def raw_aggregate(conn: asyncpg.Connection, tenant: uuid.UUID, period: str) -> tuple[float, int]:
    t = time.perf_counter()
    rows = await queries.period_aggregate(conn, tenant, period)
    return time.perf_counter() - t, len(rows)


async def timed_close(db: Database, tenant: uuid.UUID, period: str) -> tuple[float, float, float, str]:
    """(seconds, Python peak MiB during the close, process RSS MiB after, checksum)."""
    scope = await scopes.chain_scope(db, tenant)
    tracemalloc.start()
    t = time.perf_counter()
    done = await close.close(db, scope, period)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = psutil.Process().memory_info().rss / 2**20
    assert done.summary["sum_with_hub"] == 0
    return seconds, peak / 2**20, rss, done.checksum


async def main_async(owner_url: str, db: Database) -> None:
    conn = await asyncpg.connect(**asyncpg_params(owner_url))
    try:
        tenant, accounts, hub = await setup(conn)
        results = []
        first = 0
        for period, n in (("2026-09", SMALL), ("2026-10", LARGE)):
            gen = await generate(conn, tenant, accounts, hub, period, n, first)
            first += n
            await conn.execute("ANALYZE ledger_entries; ANALYZE ledger_postings; ANALYZE ledger_accounts")
            await raw_aggregate(conn, tenant, period)  # warm the cache for both contestants alike
            raws = [(await raw_aggregate(conn, tenant, period))[0] for _ in range(2)]
            secs, peak, rss, checksum = await timed_close(db, tenant, period)
            raws.append((await raw_aggregate(conn, tenant, period))[0])
            again = await timed_close(db, tenant, period)
            assert again[3] == checksum, "a second close gave a different checksum"
            results.append((period, n, gen, statistics.median(raws), secs, peak, rss, again[0]))
        t = Table(title=f"Month-end close ({BRANCHES} branches, 2 postings per entry)")
        for col in (
            "period",
            "entries",
            "generated s",
            "raw aggregate s",
            "close s",
            "close / raw",
            "close peak MiB (Python)",
            "RSS MiB",
            "second close s",
        ):
            t.add_column(col, justify="right")
        for period, n, gen, raw, secs, peak, rss, second in results:
            t.add_row(
                period,
                f"{n:,}",
                f"{gen:.1f}",
                f"{raw:.2f}",
                f"{secs:.2f}",
                f"{secs / raw:.2f}",
                f"{peak:.2f}",
                f"{rss:.0f}",
                f"{second:.3f}",
            )
        console.print(t)
        console.print(
            "  target: close ≤ 2× the raw aggregate; peak memory flat as volume grows "
            f"({results[0][5]:.2f} MiB at {results[0][1]:,} vs {results[-1][5]:.2f} MiB at "
            f"{results[-1][1]:,} entries)"
        )
    finally:
        await conn.close()
        await db.dispose()


def run() -> None:
    with bench_database("lianka_bench_settlement") as s:
        console.print(f"[bold]settlement[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s)))


if __name__ == "__main__":
    run()
