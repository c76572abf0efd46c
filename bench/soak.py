"""Soak (issue 18): ``python -m bench soak [--minutes 30] [--every S] [--clients N]``.

A served deployment — ``lianka serve``, ``lianka worker`` and ``lianka relay`` started as processes,
on a fresh benchmark database — takes mixed traffic for ``--minutes`` (30 by default, as in
``make bench``; ``BENCH_SOAK_MINUTES``): POS sales (60 %), partial refunds of earlier sales (10 %),
stored-value top-ups (10 %) and portal reads by signed-in members (20 %), from ``--clients``
concurrent tills, plus one month close (of last month) at an eighth of the run, queued through the outbox, relayed and run by
the worker, and awaited until closed.

Every ``--every`` seconds (10) it samples each process's resident memory (the process and its
children, e.g. dramatiq's worker processes) and the database's connection count
(``pg_stat_activity``, the sampler's own connection left out). It prints the samples, then a
verdict: a least-squares line through the samples after the first quarter (warm-up: pools, caches
and the allocator settle) must not grow — over the measured span, memory by at most
max(5 % of its mean, 8 MiB) per process and connections by less than one — and no request may fail.
Sales/s is printed as a ratio to R, the bundled pgbench (TPC-B-like) on the same database, measured
in the same run after the soak (as in ``bench.pos``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil
from redis.asyncio import Redis
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import bench_database, console
from bench.ledger import pgbench
from bench.pos import _free_port, _wait_ready
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import PointsConfig, Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.models import Merchant
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

MEMBERS = 100
PORTAL_MEMBERS = 20
#: the mix: (kind, weight)
MIX = [("sale", 60), ("refund", 10), ("top-up", 10), ("portal", 20)]
#: a memory line may rise by this share of its mean over the measured span, or by GROWTH_MIB
GROWTH_SHARE = 0.05
GROWTH_MIB = 8.0


def _flag(name: str, default: float) -> float:
    args = sys.argv
    if name in args:
        return float(args[args.index(name) + 1])
    return default


@dataclass
class World:
    tenant: uuid.UUID
    pos: dict[str, str]
    owner: dict[str, str]
    members: list[str]
    portal: list[dict[str, str]]
    slug: str


@dataclass
class Traffic:
    ops: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    sales: list[str] = field(default_factory=list)

    def done(self, kind: str, ok: bool, what: str = "") -> None:
        target = self.ops if ok else self.errors
        target[kind] = target.get(kind, 0) + 1
        if not ok and sum(e.startswith(kind + ":") for e in self.examples) < 2:
            self.examples.append(f"{kind}: {what}")


async def setup(settings: Settings) -> World:
    db = Database.from_settings(settings)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with db.uow(system=True) as uow:
            # opened 40 days ago, so last month is on its book and can be closed
            m = Merchant(
                slug=f"soak-{uuid.uuid4().hex[:6]}", name="soak tea", created_at=datetime.now(UTC) - timedelta(days=40)
            )
            uow.session.add(m)
            await uow.commit()
        kit = AuthKit(db, settings, redis)
        branch = await kit.branch(m.id, "SH01")
        await kit.branch(m.id, "SH02")
        programme = Programme(
            points=PointsConfig(),
            tiers=[Tier(code="regular", name="普通", rank=0)],
            stored_value=StoredValueConfig(
                plans=[StoredValuePlan(code="100-110", name="储值", pay=10_000, get=11_000)]
            ),
        )
        async with db.uow(m.id) as uow:
            await set_programme(uow, programme)
            await uow.commit()
        members, portal = [], []
        for i in range(MEMBERS):
            creds = await kit.member(m.id, phone=f"+86136{i:08d}")
            members.append(str(creds.subject_id))
            if i < PORTAL_MEMBERS:
                portal.append(creds.headers)
        async with db.uow(m.id) as uow:
            for i, member in enumerate(members):
                await accounts.award_points(
                    uow,
                    uuid.UUID(member),
                    10_000_000,
                    programme=programme,
                    reason="opening",
                    key=f"open-{i}",
                    business_time=datetime.now(UTC),
                )
            await uow.commit()
        pos = await kit.pos(m.id, ["pos"], branch=branch)
        owner = await kit.staff(m.id, "owner")
        return World(m.id, pos.headers, owner.headers, members, portal, m.slug)
    finally:
        await redis.aclose()
        await db.dispose()


async def traffic(base: str, world: World, clients: int, stop_at: float, result: Traffic) -> None:
    session = aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=60))
    kinds = [k for k, w in MIX for _ in range(w)]
    try:

        async def one(w: int, i: int, rng: random.Random) -> None:
            kind = rng.choice(kinds)
            member = rng.choice(world.members)
            key = {"Idempotency-Key": f"soak-{w}-{i}-{uuid.uuid4().hex}"}
            if kind == "refund" and not result.sales:
                kind = "sale"
            if kind == "sale":
                body = {
                    "amount": 8_800,
                    "member_id": member,
                    "points": 100,
                    "lines": [{"sku": "tea", "qty": 2, "unit_price": 4_400}],
                }
                async with session.post("/api/v1/pos/sales", json=body, headers={**world.pos, **key}) as r:
                    out = await r.json(content_type=None)
                    result.done(kind, r.status == 201, f"{r.status} {out}")
                    if r.status == 201:
                        result.sales.append(out["sale_id"])
            elif kind == "refund":
                sale = result.sales.pop(rng.randrange(len(result.sales)))
                url = f"/api/v1/pos/sales/{sale}/refunds"
                async with session.post(url, json={"amount": 1_000}, headers={**world.pos, **key}) as r:
                    result.done(kind, r.status == 201, f"{r.status} {await r.text()}")
            elif kind == "top-up":
                body = {"member_id": member, "plan": "100-110"}
                async with session.post("/api/v1/pos/top-ups", json=body, headers={**world.pos, **key}) as r:
                    result.done(kind, r.status == 201, f"{r.status} {await r.text()}")
            else:
                headers = rng.choice(world.portal)
                mine = f"/api/v1/portal/merchants/{world.slug}"
                url = rng.choice(["/api/v1/portal/me", f"{mine}/coupons", f"{mine}/checkin", f"{mine}/redemptions"])
                async with session.get(url, headers=headers) as r:
                    result.done(kind, r.status == 200, f"{url} {r.status} {await r.text()}")

        async def loop(w: int) -> None:
            rng = random.Random(w)
            i = 0
            while time.monotonic() < stop_at:
                try:
                    await one(w, i, rng)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.done("transport", False, repr(exc))
                i += 1

        await asyncio.gather(*[loop(w) for w in range(clients)])
    finally:
        await session.close()


async def month_close(base: str, world: World, at: float, result: Traffic) -> None:
    """At ``at``, close last month (queued: outbox → relay → worker) and wait until it is closed."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    now = datetime.now(UTC)
    period = f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"
    async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=60)) as session:
        url = f"/api/v1/settlement/periods/{period}"
        async with session.post(url + "/close", headers={**world.owner, "Idempotency-Key": uuid.uuid4().hex}) as r:
            if r.status not in (200, 202):
                result.done("month-close", False, f"{r.status} {await r.text()}")
                return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with session.get(url, headers=world.owner) as r:
                body = await r.json(content_type=None)
                if r.status == 200 and body.get("status") == "closed":
                    result.done("month-close", True)
                    return
            await asyncio.sleep(1)
        result.done("month-close", False, f"{period} not closed within 120 s: {body}")


def _rss_mib(pid: int) -> float:
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for q in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += q.memory_info().rss
    return total / 2**20


async def sample(
    settings: Settings, database: str, procs: dict[str, subprocess.Popen[bytes]], every: float, stop_at: float
) -> list[tuple[float, dict[str, float]]]:
    engine = create_async_engine(settings.database_url, pool_size=1)
    samples: list[tuple[float, dict[str, float]]] = []
    start = time.monotonic()
    try:
        while time.monotonic() < stop_at:
            row: dict[str, float] = {name: _rss_mib(p.pid) for name, p in procs.items()}
            async with engine.connect() as conn:
                count = await conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    (database,),
                )
                row["connections"] = float(count.scalar_one())
            samples.append((time.monotonic() - start, row))
            await asyncio.sleep(max(0.0, min(every, stop_at - time.monotonic())))
    finally:
        await engine.dispose()
    return samples


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per second)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


async def soak(
    settings: Settings,
    base: str,
    world: World,
    procs: dict[str, subprocess.Popen[bytes]],
    seconds: float,
    every: float,
    clients: int,
) -> tuple[Traffic, list[tuple[float, dict[str, float]]], float]:
    result = Traffic()
    start = time.monotonic()
    stop_at = start + seconds
    database = str(settings.database_url.rsplit("/", 1)[-1]).split("?")[0]
    _, samples, _ = await asyncio.gather(
        traffic(base, world, clients, stop_at, result),
        sample(settings, database, procs, every, stop_at),
        # early enough that the pools and caches it warms are warm before the measured span begins
        month_close(base, world, start + seconds / 8, result),
    )
    return result, samples, time.monotonic() - start


def run() -> None:
    minutes = _flag("--minutes", float(os.environ.get("BENCH_SOAK_MINUTES", "30")))
    every = _flag("--every", 10.0)
    clients = int(_flag("--clients", 4))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ["LIANKA_PUBLIC_URL"] = base
    with bench_database("lianka_bench_soak") as s:
        world = asyncio.run(setup(s))
        env = {**os.environ, "LIANKA_PORT": str(port), "LIANKA_LOG_LEVEL": "WARNING"}
        exe = [sys.executable, "-m", "lianka.cli"]
        logs = Path(tempfile.mkdtemp(prefix="lianka-soak-"))
        procs = {
            name: subprocess.Popen(
                [*exe, *args], env=env, stdout=subprocess.DEVNULL, stderr=(logs / f"{name}.log").open("wb")
            )
            for name, args in {"web": ["serve", "--workers", "1"], "worker": ["worker"], "relay": ["relay"]}.items()
        }
        try:
            _wait_ready(base, procs["web"])
            result, samples, elapsed = asyncio.run(soak(s, base, world, procs, minutes * 60, every, clients))
            died = [f"{name} (exit {p.returncode})" for name, p in procs.items() if p.poll() is not None]
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs.values():
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        r = pgbench(s.database_url)
    report(result, samples, elapsed, r.rate, died, minutes, clients)
    console.print(f"  the processes' logs (warnings and errors): {logs}")


def report(
    result: Traffic,
    samples: list[tuple[float, dict[str, float]]],
    elapsed: float,
    r_rate: float,
    died: list[str],
    minutes: float,
    clients: int,
) -> None:
    names = list(samples[0][1]) if samples else []
    t = Table(
        title=f"Soak: {minutes:g} min of mixed traffic, {clients} clients (RSS MiB per process tree; connections)"
    )
    t.add_column("t (s)", justify="right")
    for name in names:
        t.add_column(name, justify="right")
    for at, row in samples:
        t.add_row(f"{at:.0f}", *[f"{row[n]:.1f}" if n != "connections" else f"{row[n]:.0f}" for n in names])
    console.print(t)

    measured = [(at, row) for at, row in samples if at >= samples[-1][0] / 4] if samples else []
    span = measured[-1][0] - measured[0][0] if len(measured) > 1 else 0.0
    verdicts = []
    ok = True
    for name in names:
        points = [(at, row[name]) for at, row in measured]
        growth = slope(points) * span
        mean = sum(y for _, y in points) / len(points) if points else 0.0
        limit = 1.0 if name == "connections" else max(GROWTH_SHARE * mean, GROWTH_MIB)
        good = growth < limit
        ok &= good
        unit = "" if name == "connections" else " MiB"
        verdicts.append(
            f"{name}: trend {growth:+.2f}{unit} over {span:.0f}s (slope {slope(points) * 3600:+.2f}{unit}/h; "
            f"limit {limit:.2f}{unit}) {'ok' if good else 'GROWS'}"
        )
    total = sum(result.ops.values())
    errors = sum(result.errors.values())
    sales = result.ops.get("sale", 0) / elapsed
    console.print(
        "  requests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.ops.items()))
        + f" ({total / elapsed:.0f}/s); errors: {errors} {dict(result.errors) if errors else ''}"
    )
    for e in result.examples:
        console.print(f"  error: {e[:300]}", markup=False, style="red")
    console.print(f"  sales/s {sales:.0f} = {sales / r_rate:.2f} R (R = pgbench TPC-B {r_rate:,.0f} tps, same run)")
    for v in verdicts:
        console.print(f"  {v}")
    if died:
        console.print(f"  processes died: {', '.join(died)}", style="red")
    closed = result.ops.get("month-close", 0) == 1
    good = ok and not errors and not died and closed
    console.print(
        f"  verdict: {'PASS' if good else 'FAIL'} — no growth trend (memory ≤ max({GROWTH_SHARE:.0%} of mean, "
        f"{GROWTH_MIB:g} MiB), connections < 1 over the span after warm-up), zero errors, month closed: "
        f"{'yes' if closed else 'no'}",
        style="bold green" if good else "bold red",
    )
