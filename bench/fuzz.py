"""Schemathesis over the whole OpenAPI with a large budget (issue 18): ``python -m bench fuzz
[--examples N] [--seed S]`` (default 50 examples per operation, or ``BENCH_FUZZ_EXAMPLES``).

The same run as ``tests/api/test_schemathesis.py`` (``bench/fuzzing.py``: four callers, no 5xx,
every response as documented) on a fresh benchmark database, with many more examples per operation.
Not a timing: it prints what it sent, the statuses it got and every distinct failure, and exits 1
when there is one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import httpx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from bench.common import bench_database, console
from bench.fuzzing import Report, build_world, fuzz
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.platform.settings import Settings
from lianka.web.app import create_app


def _flag(name: str, default: int) -> int:
    args = sys.argv
    if name in args:
        return int(args[args.index(name) + 1])
    return default


async def _run(settings: Settings, examples: int, seed: int) -> Report:
    db = Database.from_settings(settings)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:

            async def send(method: str, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
                r = await client.request(method, url, json=body, headers=headers)
                return r.status_code, r.json()

            async def raw(method: str, url: str, headers: dict[str, str], body: bytes | None) -> httpx.Response:
                client.cookies.clear()
                return await client.request(method, url, headers=headers, content=body)

            world = await build_world(db, AuthKit(db, settings, redis), send)
            doc = (await client.get("/schema/openapi.json")).json()
            return await fuzz(doc, world, raw, examples=examples, seed=seed)
    finally:
        await redis.aclose()
        await db.dispose()


def run() -> None:
    examples = _flag("--examples", int(os.environ.get("BENCH_FUZZ_EXAMPLES", "50")))
    seed = _flag("--seed", int(time.time()))
    with bench_database("lianka_bench_fuzz") as s:
        started = time.perf_counter()
        report = asyncio.run(_run(s, examples, seed))
        elapsed = time.perf_counter() - started
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    console.print(
        f"[bold]Schemathesis over the OpenAPI[/bold] (seed {seed}, {examples} examples per operation): "
        f"{report.operations} operations, {report.cases} cases, {report.requests} requests in {elapsed:.0f}s "
        f"(drawing {report.generating:.0f}s, sending {report.sending:.0f}s)"
    )
    console.print(f"  statuses: {statuses}")
    five = sum(n for k, n in report.statuses.items() if k >= 500)
    console.print(f"  5xx: {five}; distinct failures (status, media type, body shape or 5xx): {len(report.failures)}")
    for failure in report.failures:
        console.print(f"  {failure}", markup=False, style="red")
    if report.failures:
        raise SystemExit(1)
