"""Ledger throughput against the raw database baseline R (issue 4).

R: the bundled ``pgbench`` running its standard TPC-B-like write transaction (3 UPDATEs, 1 SELECT,
1 INSERT) with the same number of clients, on the same database, in the same run. For context the
table also shows a single-row INSERT per transaction through asyncpg, and ``ledger_post`` called
straight through the driver (the database's own ceiling for the posting engine, without the
application's per-request unit of work).
Earn: one unit of work posting member points (+lot, balance row) against the merchant's issued-points
account — 2 postings. "Uncontended": every worker earns against its own liability account.
"Pool-contended": 100% of earns post against ONE alliance pool account (untracked: no balance row).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.common import Run, bench_database, console, drive, merge, table
from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database, asyncpg_params
from lianka.tenants.models import Merchant

WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


async def baseline(owner_url: str) -> Run:
    params = asyncpg_params(owner_url)
    conns = [await asyncpg.connect(**params) for _ in range(WORKERS)]
    await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, tenant_id uuid, "
                           "v bigint, at timestamptz DEFAULT now())")
    tenant = uuid.uuid4()

    async def op(w: int, i: int) -> None:
        await conns[w].execute("INSERT INTO bench_raw (tenant_id, v) VALUES ($1, $2)", tenant, i)

    try:
        return await drive("single-row INSERT tx (asyncpg)", WORKERS, SECONDS, op)
    finally:
        for c in conns:
            await c.close()


def pgbench(owner_url: str) -> Run:
    """TPC-B-like transactions per second from the bundled pgbench (scale 1, same client count)."""
    from sqlalchemy.engine import make_url

    from lianka.platform.devservices import pg_bin_dir

    params = asyncpg_params(owner_url)
    conn = ["-h", str(params["host"]), "-U", str(params["user"])]
    if params.get("port"):
        conn += ["-p", str(params["port"])]
    env = {**os.environ, "PGPASSWORD": str(params.get("password") or "")}
    db = str(make_url(owner_url).database)
    exe = str(pg_bin_dir() / "pgbench")
    subprocess.run([exe, *conn, "-i", "-q", "-s", "1", db], check=True, capture_output=True, env=env)
    out = subprocess.run([exe, *conn, "-n", "-c", str(WORKERS), "-j", "2", "-T", str(int(SECONDS)), "-r", db],
                         check=True, capture_output=True, text=True, env=env).stdout
    # leave nothing for autovacuum to do while the next runs are measured (two shared cores)
    psql = str(pg_bin_dir() / "psql")
    subprocess.run([psql, *conn, "-d", db, "-qc", "VACUUM ANALYZE"], check=True, capture_output=True, env=env)
    subprocess.run([psql, *conn, "-d", db, "-qc", "CHECKPOINT"], check=True, capture_output=True, env=env)
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))  # type: ignore[union-attr]
    console.print(f"  pgbench: {tps:,.0f} TPC-B-like tx/s, average latency {latency:.2f} ms")
    return Run("R: pgbench TPC-B-like tx", int(tps * SECONDS), SECONDS, [])


async def raw_ledger_post(owner_url: str, tenant: uuid.UUID, members: list[ledger.Account],
                          liabilities: list[ledger.Account]) -> Run:
    """``ledger_post`` through bare asyncpg connections (app role), one autocommit statement each."""
    params = {**asyncpg_params(owner_url), "user": "lianka_app", "password": None}
    conns = [await asyncpg.connect(**params) for _ in range(WORKERS)]
    now = datetime.now(UTC).isoformat()

    async def op(w: int, i: int) -> None:
        m, li = members[w], liabilities[w]
        payload = {"scope": "raw", "key": f"raw-{w}-{i}", "hash": "h", "kind": "earn", "business_time": now,
                   "tz": "Asia/Shanghai", "period": None, "refs": {}, "reverses": None,
                   "legs": [{"account": str(m.id), "unit": m.unit, "amount": 10, "tracked": True, "lots": True},
                            {"account": str(li.id), "unit": li.unit, "amount": -10, "tracked": False,
                             "lots": False}]}
        await conns[w].fetchval("SELECT set_config('app.tenant_id', $1, true), ledger_post($2::jsonb)",
                                str(tenant), json.dumps(payload))

    try:
        return await drive("ledger_post via bare driver (DB ceiling)", WORKERS, SECONDS, op, per_op=2)
    finally:
        for c in conns:
            await c.close()


async def warm_up(db: Database, tenant: uuid.UUID, members: list[ledger.Account],
                  liabilities: list[ledger.Account]) -> None:
    """Give the fresh tables some rows and statistics first, as a live database has (plans that
    PL/pgSQL caches per connection are chosen from them)."""
    now = datetime.now(UTC)
    for i in range(200):
        async with db.uow(tenant) as uow:
            await ledger.post(uow, kind="earn", business_time=now, key=f"warm-{i}",
                              legs=[ledger.Leg(members[i % WORKERS], 1), ledger.Leg(liabilities[i % WORKERS], -1)])
            await uow.commit()
    c = await asyncpg.connect(**asyncpg_params(os.environ["DATABASE_URL"]))
    try:
        await c.execute("ANALYZE")
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
        members = [await ledger.open_account(uow, owner_kind="member", owner_id=uuid.uuid4(), kind="points",
                                             unit=unit) for _ in range(WORKERS)]
        own = [await ledger.open_account(uow, owner_kind="branch", owner_id=uuid.uuid4(), kind="points_issued",
                                         unit=unit, allow_negative=True) for _ in range(WORKERS)]
        pool = await ledger.open_account(uow, owner_kind="alliance", owner_id=tenant, kind="points_pool",
                                         unit=unit, allow_negative=True)
        await uow.commit()
    now = datetime.now(UTC)
    await warm_up(db, tenant, members, own)

    def make(liability: list[ledger.Account], tag: str):  # type: ignore[no-untyped-def]
        async def op(w: int, i: int) -> None:
            async with db.uow(tenant) as uow:
                await ledger.post(uow, kind="earn", business_time=now, key=f"{tag}-{w}-{i}",
                                  legs=[ledger.Leg(members[w], 10), ledger.Leg(liability[w], -10)])
                await uow.commit()
        return op

    # interleaved (u, c, u, c) and merged, so drift on a shared machine does not favour either
    rounds = []
    for r in range(2):
        rounds.append(await drive("u", WORKERS, SECONDS / 2, make(own, f"u{r}"), per_op=2))
        rounds.append(await drive("c", WORKERS, SECONDS / 2, make([pool] * WORKERS, f"c{r}"), per_op=2))
    uncontended = merge("ledger earn, uncontended", [x for x in rounds if x.name == "u"])
    contended = merge("ledger earn, 100% on one pool", [x for x in rounds if x.name == "c"])
    ceiling = await raw_ledger_post(owner_url, tenant, members, own)
    return [uncontended, contended, ceiling]


async def main_async(settings_url: str, app_db: Database) -> None:
    r = await asyncio.to_thread(pgbench, settings_url)
    runs = await earn_runs(app_db, settings_url)
    unc, con, _ = runs
    runs = [*runs, await baseline(settings_url)]
    table(f"Ledger throughput ({WORKERS} concurrent clients, {SECONDS:.0f}s each)", r, runs, "postings",
          [f"uncontended / R = {unc.unit_rate / r.rate:.2f} postings per raw tx (target ≥ 0.8); "
           f"{unc.rate / r.rate:.2f} earns per raw tx",
           f"contended / uncontended = {con.unit_rate / unc.unit_rate:.2f} (target ≥ 0.9)"])
    await app_db.dispose()


def run() -> None:
    with bench_database() as s:
        console.print(f"[bold]ledger[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s)))


if __name__ == "__main__":
    run()
