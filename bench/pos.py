"""POS sales through HTTP (issue 5): a real server process, a concurrent client on loopback.

R is the bundled pgbench (TPC-B-like) on the same database in the same run, as in ``bench.ledger``.
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
from typing import Any

import aiohttp
import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import bench_database, console, drive, table
from bench.ledger import SECONDS, WORKERS, pgbench
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import PointsConfig, Programme, Tier
from lianka.tenants.models import Merchant
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

MEMBERS = 200
#: web processes serving the benchmark (the machine has 2 cores; the client shares them)
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))


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
                await accounts.award_points(uow, uuid.UUID(member), 1_000_000, programme=programme,
                                            reason="opening", key=f"open-{i}", business_time=_now())
            await uow.commit()
        pos = await kit.pos(m.id, ["pos"], branch=branch)
        owner = create_async_engine(settings.database_url)  # statistics, as a live database has them
        async with owner.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
        await owner.dispose()
        return pos.headers, members, m.id
    finally:
        await redis.aclose()
        await db.dispose()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def run_sales(base: str, headers: dict[str, str], members: list[str]) -> tuple[Any, Any]:
    # aiohttp, not httpx: on a 2-core machine the load generator shares the cores with the server and
    # PostgreSQL, and httpx alone tops out near 900 requests/s here (aiohttp ~4,200 on /healthz)
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        failures = 0

        async def op(w: int, i: int) -> None:
            nonlocal failures
            member = members[(w * 9973 + i) % len(members)]
            async with client.post("/api/v1/pos/sales", headers={"Idempotency-Key": f"b-{w}-{i}-{uuid.uuid4().hex}"},
                                   json={"amount": 8_800, "member_id": member, "points": 100,
                                         "lines": [{"sku": "milk-tea", "qty": 2, "unit_price": 4_400}]}) as r:
                body = await r.read()
                if r.status != 201:
                    failures += 1
                    if failures < 3:
                        console.print(f"  sale failed: {r.status} {body[:300]!r}")

        run = await drive("POS sale via HTTP", WORKERS, SECONDS, op, warmup=2.0)
        if failures:
            console.print(f"  [red]{failures} sales failed[/red]")

        async def ping(w: int, i: int) -> None:
            async with client.get("/api/v1/branches") as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"branches: {r.status}")

        # the same server, client and token on the lightest authenticated read: the framework's ceiling
        ceiling = await drive("authenticated GET /branches (ceiling)", WORKERS, SECONDS / 2, ping, warmup=1.0)
        return run, ceiling


def run() -> None:
    port = _free_port()
    os.environ["LIANKA_PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # the tokens' issuer is the server's URL
    with bench_database("lianka_bench_pos") as s:
        headers, members, _ = asyncio.run(setup(s))
        env = {**os.environ, "LIANKA_PORT": str(port), "LIANKA_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, "-m", "lianka.cli", "serve", "--workers", str(WEB_WORKERS)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            sales, ceiling = asyncio.run(run_sales(base, headers, members))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        r = pgbench(s.database_url)
        table(f"POS sale through HTTP ({WORKERS} concurrent clients on loopback, {WEB_WORKERS} server "
              f"process(es), "
              f"{SECONDS:.0f}s)", r, [sales, ceiling], "sales",
              [f"sales / R = {sales.rate / r.rate:.2f} (target ≥ 0.5); the lightest authenticated read on the same "
               f"server reaches {ceiling.rate / r.rate:.2f} R"])


if __name__ == "__main__":
    run()
