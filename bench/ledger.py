"""Ledger throughput: earns per second as a ratio to the raw database baseline R (issue 4, issue 12).

An earn is one transaction — one unit of work posting member points (+lot, balance row) against an
issued-points account, 2 postings — so the headline compares transactions with transactions:

- **earns/s ÷ R**, R being the bundled ``pgbench`` running its standard TPC-B-like write
  transaction (3 UPDATEs, 1 SELECT, 1 INSERT) with the same number of clients, on the same database,
  in the same run;
- **the service path ÷ its ceiling**: the same earn as ``ledger_post`` called straight through bare
  asyncpg connections (one autocommit statement: what the database alone can do for it), measured in
  the same run — what the application's unit of work costs on top of the database.

Postings/s stay as a secondary column (2 per earn): they are not transactions, so they are never
divided by R. "Uncontended": every worker earns against its own liability account.
"Pool-contended": 100% of earns post against ONE alliance pool account (untracked: no balance row).
For context the table also shows a single-row INSERT per transaction through asyncpg.

Every figure is taken in two halves — R before and after the ledger runs, which alternate among
themselves — so a shared machine's drift during the run favours none of them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg

from bench.common import Run, bench_database, console, drive, merge, table
from lianka.alliance.ledger import contract
from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database, asyncpg_params
from lianka.tenants.models import Merchant

WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
Op = Callable[[int, int], Awaitable[None]]


async def baseline(owner_url: str) -> Run:
    params = asyncpg_params(owner_url)
    conns = [await asyncpg.connect(**params) for _ in range(WORKERS)]
    await conns[0].execute(
        "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, tenant_id uuid, "
        "v bigint, at timestamptz DEFAULT now())"
    )
    tenant = uuid.uuid4()

    async def op(w: int, i: int) -> None:
        await conns[w].execute("INSERT INTO bench_raw (tenant_id, v) VALUES ($1, $2)", tenant, i)

    try:
        return await drive("single-row INSERT tx (asyncpg)", WORKERS, SECONDS, op)
    finally:
        for c in conns:
            await c.close()


def pgbench(owner_url: str, seconds: float = SECONDS, *, init: bool = True) -> Run:
    """TPC-B-like transactions per second from the bundled pgbench (scale 1, same client count);
    ``init=False`` runs again on the tables of an earlier call."""
    from sqlalchemy.engine import make_url

    from lianka.platform.devservices import pg_bin_dir

    params = asyncpg_params(owner_url)
    conn = ["-h", str(params["host"]), "-U", str(params["user"])]
    if params.get("port"):
        conn += ["-p", str(params["port"])]
    env = {**os.environ, "PGPASSWORD": str(params.get("password") or "")}
    db = str(make_url(owner_url).database)
    exe = str(pg_bin_dir() / "pgbench")
    if init:
        subprocess.run([exe, *conn, "-i", "-q", "-s", "1", db], check=True, capture_output=True, env=env)
    whole = max(1, round(seconds))
    out = subprocess.run(
        [exe, *conn, "-n", "-c", str(WORKERS), "-j", "2", "-T", str(whole), "-r", db],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    # leave nothing for autovacuum to do while the next runs are measured (two shared cores)
    psql = str(pg_bin_dir() / "psql")
    subprocess.run([psql, *conn, "-d", db, "-qc", "VACUUM ANALYZE"], check=True, capture_output=True, env=env)
    subprocess.run([psql, *conn, "-d", db, "-qc", "CHECKPOINT"], check=True, capture_output=True, env=env)
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))  # type: ignore[union-attr]
    console.print(f"  pgbench: {tps:,.0f} TPC-B-like tx/s, average latency {latency:.2f} ms")
    return Run("R: pgbench TPC-B-like tx", int(tps * whole), whole, [])


@asynccontextmanager
async def bare_ledger_post(
    owner_url: str, tenant: uuid.UUID, members: list[ledger.Account], liabilities: list[ledger.Account]
) -> AsyncIterator[Callable[[str], Op]]:
    """The ceiling: ``ledger_post`` through bare asyncpg connections (app role), one autocommit
    statement each — the same earn as the service path, built with the same contract
    (alliance/ledger/contract.py). Yields a factory of ``drive`` operations (keys tagged apart)."""
    params = {**asyncpg_params(owner_url), "user": "lianka_app", "password": None}
    conns = [await asyncpg.connect(**params) for _ in range(WORKERS)]
    now = datetime.now(UTC)

    def make(tag: str) -> Op:
        async def op(w: int, i: int) -> None:
            m, li = members[w], liabilities[w]
            entry = contract.PostEntry(
                scope="raw",
                key=f"{tag}-{w}-{i}",
                hash="h",
                kind="earn",
                business_time=now,
                tz="Asia/Shanghai",
                legs=[
                    contract.PostLeg(m.id, m.unit, 10, tracked=m.tracked, lots=m.lots),
                    contract.PostLeg(li.id, li.unit, -10, tracked=li.tracked, lots=li.lots),
                ],
            )
            await conns[w].fetchval(
                "SELECT set_config('app.tenant_id', $1, true), ledger_post($2::jsonb)",
                str(tenant),
                contract.encode(entry),
            )

        return op

    try:
        yield make
    finally:
        for c in conns:
            await c.close()


#: entries booked before anything is measured: enough that no table the earn touches is small enough
#: for a sequential scan to look cheapest (see :func:`warm_up`)
WARM_ENTRIES = int(os.environ.get("BENCH_WARM_ENTRIES", "4000"))


async def warm_up(
    db: Database, tenant: uuid.UUID, members: list[ledger.Account], liabilities: list[ledger.Account]
) -> None:
    """Give the fresh tables rows and statistics first, as a live database has them. A session plans
    the foreign-key checks ``ledger_post``'s inserts make once and keeps the plan until the table is
    analysed again: on a table of a few pages a sequential scan is the cheapest, and a connection that
    planned it then kept scanning the whole growing table for every earn (5 ms instead of 0.5 ms) — two
    of eight pooled connections in one run, at random, in either the service's pool or the ceiling's.
    The connections opened afterwards (both) plan on thousands of rows."""
    now = datetime.now(UTC)

    async def book(w: int) -> None:
        for i in range(w, WARM_ENTRIES, WORKERS):
            await ledger.post_alone(
                db,
                tenant,
                kind="earn",
                business_time=now,
                key=f"warm-{i}",
                legs=[ledger.Leg(members[w], 1), ledger.Leg(liabilities[w], -1)],
            )

    await asyncio.gather(*(book(w) for w in range(WORKERS)))
    c = await asyncpg.connect(**asyncpg_params(os.environ["DATABASE_URL"]))
    try:
        await c.execute("VACUUM ANALYZE")
    finally:
        await c.close()
    await db.engine.dispose()  # fresh connections plan with these statistics


async def earn_runs(db: Database, owner_url: str) -> list[Run]:
    async with db.uow(system=True) as uow:
        m = Merchant(slug=f"bench-{uuid.uuid4().hex[:8]}", name="bench")
        uow.session.add(m)
        await uow.commit()
    tenant = m.id
    unit = f"PTS:{tenant.hex[:8]}"
    async with db.uow(tenant) as uow:
        members = [
            await ledger.open_account(uow, owner_kind="member", owner_id=uuid.uuid4(), kind="points", unit=unit)
            for _ in range(WORKERS)
        ]
        own = [
            await ledger.open_account(
                uow, owner_kind="branch", owner_id=uuid.uuid4(), kind="points_issued", unit=unit, allow_negative=True
            )
            for _ in range(WORKERS)
        ]
        pool = await ledger.open_account(
            uow, owner_kind="alliance", owner_id=tenant, kind="points_pool", unit=unit, allow_negative=True
        )
        await uow.commit()
    now = datetime.now(UTC)
    await warm_up(db, tenant, members, own)

    def make(liability: list[ledger.Account], tag: str) -> Op:
        async def op(w: int, i: int) -> None:
            async with db.uow(tenant) as uow:
                await ledger.post(
                    uow,
                    kind="earn",
                    business_time=now,
                    key=f"{tag}-{w}-{i}",
                    legs=[ledger.Leg(members[w], 10), ledger.Leg(liability[w], -10)],
                )
                await uow.commit()

        return op

    def alone(liability: list[ledger.Account], tag: str) -> Op:
        """The same earn as its own transaction: ``ledger.post_alone`` (one statement, decision 0053)."""

        async def op(w: int, i: int) -> None:
            await ledger.post_alone(
                db,
                tenant,
                kind="earn",
                business_time=now,
                key=f"{tag}-{w}-{i}",
                legs=[ledger.Leg(members[w], 10), ledger.Leg(liability[w], -10)],
            )

        return op

    # interleaved (u, c, a, p, k, …) and merged, so drift on a shared machine favours none of them
    rounds = []
    async with bare_ledger_post(owner_url, tenant, members, own) as bare:
        for r in range(2):
            rounds.append(await drive("u", WORKERS, SECONDS / 2, make(own, f"u{r}"), per_op=2))
            rounds.append(await drive("c", WORKERS, SECONDS / 2, make([pool] * WORKERS, f"c{r}"), per_op=2))
            rounds.append(await drive("a", WORKERS, SECONDS / 2, alone(own, f"a{r}"), per_op=2))
            rounds.append(await drive("p", WORKERS, SECONDS / 2, alone([pool] * WORKERS, f"p{r}"), per_op=2))
            rounds.append(await drive("k", WORKERS, SECONDS / 2, bare(f"k{r}"), per_op=2))
    ceiling = merge("ledger_post via bare driver (DB ceiling)", [x for x in rounds if x.name == "k"])
    uncontended = merge("ledger earn in a unit of work, uncontended", [x for x in rounds if x.name == "u"])
    contended = merge("ledger earn in a unit of work, 100% on one pool", [x for x in rounds if x.name == "c"])
    alone_u = merge("ledger earn, post_alone, uncontended", [x for x in rounds if x.name == "a"])
    alone_c = merge("ledger earn, post_alone, 100% on one pool", [x for x in rounds if x.name == "p"])
    for x in (uncontended, contended, alone_u, alone_c):
        x.ceiling = ceiling
    return [uncontended, contended, alone_u, alone_c, ceiling]


def headline(r: Run, unc: Run, con: Run, alone_u: Run, alone_c: Run, ceiling: Run) -> list[str]:
    """What the run says, transactions against transactions first."""
    return [
        f"[bold]targets[/bold]: post_alone (an earn as its own transaction) runs at "
        f"{alone_u.rate / ceiling.rate:.2f} of the bare-driver ceiling (target ≥ 0.8), contended / uncontended "
        f"= {alone_c.rate / alone_u.rate:.2f} (target ≥ 0.9); inside a unit of work (BEGIN with the scope, "
        f"ledger_post, COMMIT) {unc.rate / ceiling.rate:.2f}",
        f"[bold]headline[/bold]: a ledger earn (one transaction) runs at {unc.rate / r.rate:.2f} R uncontended "
        f"and {con.rate / r.rate:.2f} R with every earn on one pool account; the service path is "
        f"{unc.rate / ceiling.rate:.2f} of the ledger_post ceiling (bare driver: {ceiling.rate / r.rate:.2f} R), "
        "all measured in this run",
        f"contended / uncontended = {con.rate / unc.rate:.2f} (target ≥ 0.9)",
        f"secondary: {unc.unit_rate:,.0f} postings/s uncontended ({unc.per_op} per earn); postings are not "
        "transactions, so they are not compared with R",
    ]


async def main_async(settings_url: str, app_db: Database) -> None:
    # R in two halves, before and after the ledger runs, for the same reason they are interleaved
    before = await asyncio.to_thread(pgbench, settings_url, SECONDS / 2)
    unc, con, alone_u, alone_c, ceiling = await earn_runs(app_db, settings_url)
    after = await asyncio.to_thread(pgbench, settings_url, SECONDS / 2, init=False)
    r = merge("R: pgbench TPC-B-like tx", [before, after])
    runs = [unc, con, alone_u, alone_c, ceiling, await baseline(settings_url)]
    table(
        f"Ledger throughput ({WORKERS} concurrent clients, {SECONDS:.0f}s each)",
        r,
        runs,
        "tx",
        headline(r, unc, con, alone_u, alone_c, ceiling),
        secondary="postings",
    )
    await app_db.dispose()


def run() -> None:
    with bench_database() as s:
        console.print(f"[bold]ledger[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s)))


if __name__ == "__main__":
    run()
