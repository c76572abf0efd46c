"""POS sales through HTTP (issue 5): a real server process, a concurrent client on loopback.

R is the bundled pgbench (TPC-B-like) on the same database in the same run, as in ``bench.ledger``;
R, the sale through HTTP and R_sale are each measured in two interleaved halves (:func:`measure`).
Each sale: a member pays ¥88.00 with 100 points off, earns points (tier multiplier), coupons none —
one transaction with its idempotency record, the sale row and lines, three ledger entries and the
member's spend and tier.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import uvloop
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    Run,
    bench_database,
    console,
    drive,
    machine_cpu,
    merge,
    open_loop,
    postgres_pids,
    process_cpu,
    table,
)
from bench.ledger import SECONDS, WORKERS, pgbench
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import PointsConfig, Programme, Tier
from lianka.tenants.models import Merchant
from lianka.tenants.pos import schemas
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

MEMBERS = 200
#: sales booked in the set-up, before the servers start (see :func:`_warm_sales`)
WARM_SALES = int(os.environ.get("BENCH_WARM_SALES", "3000"))
#: web processes serving the benchmark (the machine has 2 cores; the client and PostgreSQL share them)
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
#: concurrent tills, as pgbench's clients
TILLS = int(os.environ.get("BENCH_TILLS", str(WORKERS)))
#: the open-loop run's arrival rate, as a share of the closed-loop peak measured just before it
OPEN_LOAD = float(os.environ.get("BENCH_OPEN_LOAD", "0.7"))
#: database connections per web process (LIANKA_DB_POOL_SIZE, no overflow): with the default 10 + 20 a
#: backlog in the open loop let ~60 transactions fight over two cores and the latency collapsed
#: (p50 358 ms at 70 % of peak); 4 per process keeps the database at the tills' concurrency (decision 0053)
WEB_POOL = os.environ.get("BENCH_WEB_POOL", "4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def setup(settings: Settings) -> tuple[dict[str, str], list[str], uuid.UUID]:
    db = Database.from_settings(settings)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with db.uow(system=True) as uow:
            m = Merchant(slug=f"bench-pos-{uuid.uuid4().hex[:6]}", name="bench tea")
            uow.session.add(m)
            await uow.commit()
        kit = AuthKit(db, settings, redis)
        branch = await kit.branch(m.id, "SH01")
        programme = Programme(points=PointsConfig(), tiers=[Tier(code="regular", name="普通", rank=0)])
        async with db.uow(m.id) as uow:
            await set_programme(uow, programme)
            await uow.commit()
        members = []
        for i in range(MEMBERS):
            creds = await kit.member(m.id, phone=f"+86137{i:08d}")
            members.append(str(creds.subject_id))
        async with db.uow(m.id) as uow:  # everyone starts with points to pay with
            for i, member in enumerate(members):
                await accounts.award_points(
                    uow,
                    uuid.UUID(member),
                    1_000_000,
                    programme=programme,
                    reason="opening",
                    key=f"open-{i}",
                    business_time=_now(),
                )
            await uow.commit()
        pos = await kit.pos(m.id, ["pos"], branch=branch)
        await _warm_sales(db, m.id, branch, members)
        # statistics and a visibility map, as a live database has them (and autovacuum, woken by the
        # set-up's inserts, does not run in the middle of the measurement)
        owner = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
        async with owner.connect() as conn:
            await conn.exec_driver_sql("VACUUM ANALYZE")
        await owner.dispose()
        return pos.headers, members, m.id
    finally:
        await redis.aclose()
        await db.dispose()


async def _warm_sales(db: Database, tenant: uuid.UUID, branch: uuid.UUID, members: list[str]) -> None:
    """Sales before anything is measured, so that every table a sale writes holds thousands of rows
    when the servers' connections first plan their statements. A session keeps its plan of a foreign
    key's check until the table is analysed again; planned on a table of a few pages it is a sequential
    scan, which then reads the whole growing table for every sale (bench.ledger.warm_up, decision 0053)."""
    from lianka.tenants.pos import sales

    async def till(w: int) -> None:
        for i in range(w, WARM_SALES, TILLS):
            await sales.sale(db, tenant, _basket(members[i % len(members)]), f"warm-{i}", branch)

    with console.status(f"warming up: {WARM_SALES:,} sales"):
        await asyncio.gather(*(till(w) for w in range(TILLS)))


def _basket(member: str) -> schemas.Basket:
    """The benchmark's sale (the module docstring's) for the service function; the HTTP tills send it
    as JSON."""
    return schemas.Basket(
        amount=8_800,
        member_id=uuid.UUID(member),
        points=100,
        lines=[schemas.LineIn(sku="milk-tea", qty=2, unit_price=4_400)],
    )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def measure(
    settings: Settings,
    bases: list[str],
    headers: dict[str, str],
    members: list[str],
    tenant: uuid.UUID,
    web_pids: list[int],
) -> tuple[Run, Run, Run, Run, Run, Run]:
    """Every figure of the table, in one process and one event loop, with the servers up.

    The three the headline divides — R, the sale through HTTP and R_sale — are each taken in two
    halves, interleaved as R, HTTP, R_sale, R_sale, HTTP, R, and merged: a shared host's drift during
    the run then favours none of them (as ``bench.ledger`` does). Returns (R, HTTP sales, the open
    loop, the authenticated GET, the sale in-process, R_sale)."""
    # One server process per core, each on its own port, and the tills spread over them evenly, as a
    # load balancer in front of them would. (Processes sharing one listening socket are not balanced
    # for a handful of keep-alive connections: the first to wake accepts them all, and identical runs
    # measured one core or two — 200 to 320 sales/s.) aiohttp rather than httpx: the client shares
    # the two cores, and httpx alone tops out near 900 requests/s here (aiohttp ~4,200 on /healthz).
    sessions = [
        aiohttp.ClientSession(
            base, headers=headers, timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(limit=TILLS)
        )
        for base in bases
    ]
    try:
        failures = 0

        async def op(w: int, i: int, session: aiohttp.ClientSession | None = None) -> None:
            nonlocal failures
            member = members[(w * 9973 + i) % len(members)]
            async with (session or sessions[w % len(sessions)]).post(
                "/api/v1/pos/sales",
                headers={"Idempotency-Key": f"b-{w}-{i}-{uuid.uuid4().hex}"},
                json={
                    "amount": 8_800,
                    "member_id": member,
                    "points": 100,
                    "lines": [{"sku": "milk-tea", "qty": 2, "unit_price": 4_400}],
                },
            ) as r:
                body = await r.read()
                if r.status != 201:
                    failures += 1
                    if failures < 3:
                        console.print(f"  sale failed: {r.status} {body[:300]!r}")

        def probe() -> dict[str, float]:
            return {
                "database": process_cpu(postgres_pids()),
                "web": process_cpu(web_pids),
                "client": process_cpu([os.getpid()]),
                "machine": machine_cpu(),
            }

        service, templates = await in_process(settings, tenant, members)
        halves: dict[str, list[Run]] = {"r": [], "http": [], "raw": []}
        async with replayer(settings, templates, members, tenant) as replay:

            async def r_half(init: bool) -> None:
                halves["r"].append(await asyncio.to_thread(pgbench, settings.database_url, SECONDS / 2, init=init))

            async def http_half() -> None:
                halves["http"].append(await drive("POS sale via HTTP", TILLS, SECONDS / 2, op, warmup=2.0, probe=probe))

            async def raw_half() -> None:
                halves["raw"].append(
                    await drive(
                        "R_sale: the sale's SQL replayed raw (asyncpg)",
                        TILLS,
                        SECONDS / 2,
                        replay,
                        warmup=1.0,
                        probe=probe,
                    )
                )

            await r_half(True)
            await http_half()
            await raw_half()
            await raw_half()
            await http_half()
            await r_half(False)
        if failures:
            console.print(f"  [red]{failures} sales failed[/red]")
        r = merge("R: pgbench TPC-B-like tx", halves["r"])
        sales = merge("POS sale via HTTP", halves["http"])
        raw = merge("R_sale: the sale's SQL replayed raw (asyncpg)", halves["raw"])

        # open loop: sales arrive at a fixed rate, OPEN_LOAD of the closed-loop peak just measured,
        # whether or not earlier ones are done (independent tills). A connection each when needed, as
        # many tills would have; latency counts from each sale's due time.
        rate = max(1.0, OPEN_LOAD * sales.rate)
        many = [
            aiohttp.ClientSession(
                base, headers=headers, timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=0)
            )
            for base in bases
        ]
        try:

            async def arrive(i: int) -> None:
                await op(10_000 + i % TILLS, i, many[i % len(many)])

            opened = await open_loop(
                f"open loop at {OPEN_LOAD:.0%} of peak ({rate:,.0f}/s offered)", rate, SECONDS, arrive, warmup=2.0
            )
        finally:
            for session in many:
                await session.close()
        if failures:
            console.print(f"  [red]{failures} sales failed (all runs)[/red]")

        async def ping(w: int, i: int) -> None:
            async with sessions[w % len(sessions)].get("/api/v1/branches") as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"branches: {resp.status}")

        # the same servers, client and token on the lightest authenticated read: the framework's ceiling
        ceiling = await drive(
            "authenticated GET /branches (ceiling)", TILLS, SECONDS / 2, ping, warmup=1.0, probe=probe
        )
        return r, sales, opened, ceiling, service, raw
    finally:
        for session in sessions:
            await session.close()


#: per member: (the recorded sale's Idempotency-Key, its sale id, every statement it sent with its arguments)
Templates = dict[str, tuple[str, uuid.UUID, list[tuple[str, str, tuple[Any, ...]]]]]


async def in_process(settings: Settings, tenant: uuid.UUID, members: list[str]) -> tuple[Run, Templates]:
    """The same sale through the service function with no HTTP; then one real sale per member recorded
    at the driver (every statement the sale sends, with its arguments: BEGIN with the tenant setting,
    SQLAlchemy's prepared statements and the hot path's own, COMMIT) for :func:`replayer`."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement
    from sqlalchemy import text

    from lianka.tenants.pos import sales

    db = Database.from_settings(settings)
    try:
        async with db.uow(tenant) as uow:
            branch = await uow.session.scalar(text("SELECT id FROM branches"))

        async def op(w: int, i: int) -> None:
            await sales.sale(
                db, tenant, _basket(members[(w * 9973 + i) % len(members)]), f"s-{w}-{i}-{uuid.uuid4().hex}", branch
            )

        service = await drive("the sale service in-process (no HTTP)", TILLS, SECONDS / 2, op, warmup=1.0)

        templates: Templates = {}
        recorded: list[tuple[str, str, tuple[Any, ...]]] = []
        originals = {name: getattr(asyncpg.Connection, name) for name in ("execute", "fetch", "fetchrow", "fetchval")}

        def recorder(name: str) -> Any:
            async def call(self: Any, query: str, *args: Any, **kw: Any) -> Any:
                recorded.append((name, query, args))
                return await originals[name](self, query, *args, **kw)

            return call

        # SQLAlchemy's statements (the ORM's, the unit of work's) run as prepared statements: record
        # them too, so the replay sends everything the sale sent — BEGIN (with the tenant) and COMMIT
        # included — and nothing else
        prepared = {name: getattr(PreparedStatement, name) for name in ("fetch", "fetchrow", "fetchval")}

        def prepared_recorder(name: str) -> Any:
            async def call(self: Any, *args: Any, **kw: Any) -> Any:
                recorded.append((name, self.get_query(), args))
                return await prepared[name](self, *args, **kw)

            return call

        for name in originals:
            setattr(asyncpg.Connection, name, recorder(name))
        for name in prepared:
            setattr(PreparedStatement, name, prepared_recorder(name))
        try:
            for member in members:
                recorded.clear()
                key = f"t-{uuid.uuid4().hex}"
                out, _ = await sales.sale(db, tenant, _basket(member), key, branch)
                templates[member] = (key, out.sale_id, list(recorded))
        finally:
            for name, fn in originals.items():
                setattr(asyncpg.Connection, name, fn)
            for name, fn in prepared.items():
                setattr(PreparedStatement, name, fn)
    finally:
        await db.dispose()
    return service, templates


@asynccontextmanager
async def replayer(
    settings: Settings, templates: Templates, members: list[str], tenant: uuid.UUID
) -> AsyncIterator[Callable[[int, int], Awaitable[None]]]:
    """R_sale's operation: a recorded sale's statements replayed exactly through bare asyncpg
    connections with a fresh idempotency key and sale id, by as many tills — what the database alone
    can do for this transaction. No Python of ours runs in it."""
    import asyncpg

    from lianka.platform.db import asyncpg_params

    def swap(value: Any, old: tuple[str, uuid.UUID], new: tuple[str, uuid.UUID]) -> Any:
        """The recorded key and sale id replaced by the new ones, in strings and in arrays of them: the
        ledger's entries travel as one ``jsonb[]`` whose keys derive from the sale's key — unswapped,
        every replayed ``ledger_post`` was an idempotent replay that booked nothing."""
        if isinstance(value, str):
            return value.replace(old[0], new[0]).replace(str(old[1]), str(new[1]))
        if isinstance(value, list | tuple):
            return type(value)(swap(v, old, new) for v in value)
        return new[1] if value == old[1] else value

    calls = {name: getattr(asyncpg.Connection, name) for name in ("execute", "fetch", "fetchrow", "fetchval")}

    async def keep(_: asyncpg.Connection) -> None:
        """Nothing to reset between sales (the recorded COMMIT ends each). asyncpg's default reset sends
        ``RESET ALL`` and friends on every release: a round trip per sale that neither the app's pool
        nor the sale has (an interleaved A/B replayed 531 sales/s with it, 594 without: decision 0053)."""

    pool = await asyncpg.create_pool(
        **asyncpg_params(settings.resolved_app_database_url()), min_size=TILLS, max_size=TILLS, reset=keep
    )
    replayed = 0
    try:

        async def replay(w: int, i: int) -> None:
            nonlocal replayed
            key, sale_id, statements = templates[members[(w * 9973 + i) % len(members)]]
            new = (f"r-{w}-{i}-{uuid.uuid4().hex}", uuid.uuid4())
            async with pool.acquire() as conn:  # BEGIN (with the tenant) … COMMIT are among the statements
                for name, query, args in statements:
                    await calls[name](conn, query, *(swap(a, (key, sale_id), new) for a in args))
            replayed += 1

        yield replay
        await _check_replayed(pool, tenant, templates, replayed)
    finally:
        await pool.close()


async def _check_replayed(pool: Any, tenant: uuid.UUID, templates: Templates, replayed: int) -> None:
    """Every replayed sale booked what the recorded one did — its sale row, its stored response and as
    many ledger entries — or R_sale measured something lighter than a sale (it once did: see ``swap``)."""
    _, _, statements = next(iter(templates.values()))
    entries = sum(len(args[0]) for _, query, args in statements if "ledger_post" in query)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE 'r-%') AS entries, "
            "(SELECT count(*) FROM idempotency_keys k JOIN sales s ON s.tenant_id = k.tenant_id "
            " AND s.id = (k.body->>'sale_id')::uuid WHERE k.key LIKE 'r-%' AND k.status = 201) AS sales"
        )
    if not entries or row["entries"] != replayed * entries or row["sales"] != replayed:
        raise RuntimeError(
            f"R_sale replayed {replayed:,} sales but booked {row['entries']:,} ledger entries (expected "
            f"{replayed * entries:,}) and {row['sales']:,} sales: the replay is not the sale"
        )


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def run() -> None:
    # the client and the in-process runs on uvloop, as the servers are: the load generator shares the
    # two cores it measures, and R_sale's replay gets the same loop as the sale it is compared with
    ports = [_free_port() for _ in range(WEB_WORKERS)]
    os.environ["LIANKA_PUBLIC_URL"] = f"http://127.0.0.1:{ports[0]}"  # the tokens' issuer (same for all)
    with bench_database("lianka_bench_pos") as s:
        headers, members, tenant = asyncio.run(setup(s))
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "lianka.cli", "serve", "--workers", "1"],
                env={
                    **os.environ,
                    "LIANKA_PORT": str(port),
                    "LIANKA_LOG_LEVEL": "WARNING",
                    "LIANKA_DB_POOL_SIZE": WEB_POOL,
                    "LIANKA_DB_MAX_OVERFLOW": "0",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for port in ports
        ]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for base, server in zip(bases, servers, strict=True):
                _wait_ready(base, server)
            r, sales, opened, ceiling, service, raw = uvloop.run(
                measure(s, bases, headers, members, tenant, [server.pid for server in servers])
            )
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                server.wait(30)
        table(
            f"POS sale through HTTP ({TILLS} tills on loopback, {WEB_WORKERS} server process(es) with "
            f"{WEB_POOL} database connections each, {SECONDS:.0f}s)",
            r,
            [sales, opened, ceiling, service, raw],
            "sales",
            [
                f"[bold]headline[/bold]: through HTTP the sale runs at {sales.rate / raw.rate:.2f} of R_sale "
                f"(target ≥ 0.7); R_sale = {raw.rate / r.rate:.2f} R (target ≥ 0.6); open loop at "
                f"{OPEN_LOAD:.0%} of peak: p99 = {opened.pct(0.99) / max(opened.pct(0.5), 1e-9):.1f} × p50 "
                f"(target ≤ 3), {opened.ops:,} of {opened.offered or 0:,} sales offered in {opened.seconds:.0f} s completed",
                f"sales / R = {sales.rate / r.rate:.2f}; the lightest authenticated read on the same "
                f"servers reaches {ceiling.rate / r.rate:.2f} R, the sale without HTTP {service.rate / r.rate:.2f} R",
                f"the sale's own SQL, replayed raw, reaches {raw.rate / r.rate:.2f} R: one sale costs the database "
                f"{r.rate / raw.rate:.1f} TPC-B transactions; through HTTP the sale runs at "
                f"{sales.rate / raw.rate:.2f} of R_sale",
                *cpu_notes(sales, raw, ceiling),
            ],
        )


def cpu_notes(sales: Run, raw: Run, ceiling: Run) -> list[str]:
    """Where each sale's CPU went on this machine (PostgreSQL's processes, the web processes, this
    benchmark's client), and what the 0.7 × R_sale target leaves the web processes: the machine's busy
    CPU per sale at that rate, less what the database and the client used per HTTP sale."""
    if not sales.cpu or not sales.cpu.get("machine"):
        return ["CPU per sale: not measured (no /proc on this machine)"]
    budget = (sales.cpu["machine"] / sales.seconds) / (0.7 * raw.rate) * 1000
    left = budget - sales.cpu_ms("database") - sales.cpu_ms("client")
    local = "" if sales.cpu_ms("database") else " (the database is not on this machine)"
    return [
        f"CPU per sale, ms — database / web / client / whole machine{local}: through HTTP "
        f"{sales.cpu_ms('database'):.2f} / {sales.cpu_ms('web'):.2f} / {sales.cpu_ms('client'):.2f} / "
        f"{sales.cpu_ms('machine'):.2f}; R_sale {raw.cpu_ms('database'):.2f} / — / {raw.cpu_ms('client'):.2f} / "
        f"{raw.cpu_ms('machine'):.2f}; GET /branches {ceiling.cpu_ms('database'):.2f} / {ceiling.cpu_ms('web'):.2f} "
        f"/ {ceiling.cpu_ms('client'):.2f} / {ceiling.cpu_ms('machine'):.2f}",
        f"at 0.7 × R_sale the machine's busy CPU would leave the web processes {left:.2f} ms per sale; they "
        f"used {sales.cpu_ms('web'):.2f}",
    ]


if __name__ == "__main__":
    run()
