"""PostgreSQL and Redis restarting, going away or hanging under a running app.

These stop, restart and freeze real servers, so they use an embedded PostgreSQL and Redis of their
own (a separate data directory, migrated here) and leave the suite's shared ones alone. The app is
the real one (``create_app``) with its own pool, asked through its test client.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.devservices import EmbeddedPostgres, EmbeddedRedis
from lianka.platform.identity.testing import AuthKit, Creds
from lianka.platform.migrate import upgrade
from lianka.platform.settings import Settings
from lianka.web.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, EmbeddedPostgres, EmbeddedRedis]]:
    data = tmp_path_factory.mktemp("outage")
    pg, rd = EmbeddedPostgres(data), EmbeddedRedis(data)
    pg.start()
    rd.start()
    try:
        upgrade(pg.url())
        yield (
            Settings.from_env(
                {**os.environ, "DATABASE_URL": pg.url(), "REDIS_URL": rd.url(), "LIANKA_DATA_DIR": str(data)}
            ),
            pg,
            rd,
        )
    finally:
        pg.stop()
        rd.stop()


@pytest.fixture
async def running(
    services: tuple[Settings, EmbeddedPostgres, EmbeddedRedis],
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], Creds]]:
    settings, pg, rd = services
    pg.start()  # a failed test may have left them stopped
    rd.start()
    # the test client serves the app on a loop of its own: set-up uses its own connections
    db, redis = Database.from_settings(settings), Redis.from_url(settings.redis_url)
    try:
        async with db.uow(system=True) as uow:
            tenant = await uow.session.scalar(
                text("INSERT INTO merchants (slug, name) VALUES (:s, 'Outage') RETURNING id"),
                {"s": f"o-{uuid.uuid4().hex[:12]}"},
            )
            await uow.commit()
        creds = await AuthKit(db, settings, redis).staff(tenant, "owner")
    finally:
        await db.dispose()
        await redis.aclose()
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client, creds


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a server and every process it started (the server hangs, nothing refuses)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for p in procs:
        p.suspend()
    try:
        yield
    finally:
        for p in procs:
            p.resume()


def _redis_pid(rd: EmbeddedRedis) -> int:
    return int((rd.dir / "redis.pid").read_text())


async def _get_all(client: AsyncTestClient[Litestar], url: str, creds: Creds, n: int = 6) -> list[int]:
    responses = await asyncio.gather(*[client.get(url, headers=creds.headers) for _ in range(n)])
    return [r.status_code for r in responses]


def _assert_unavailable(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/service-unavailable")
    assert int(r.headers["retry-after"]) > 0


async def test_database_restart_outage_and_hang(services: Any, running: Any) -> None:
    _, pg, _ = services
    client, creds = running
    assert await _get_all(client, "/api/v1/branches", creds) == [200] * 6  # several connections pooled

    # restarted while nobody asked: the pooled connections are dead, the next requests must not see it
    pg.stop()
    pg.start()
    assert await _get_all(client, "/api/v1/branches", creds) == [200] * 6

    pg.stop()
    started = time.monotonic()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error")
    assert ready.json()["checks"]["redis"] == "ok"
    _assert_unavailable(await client.get("/api/v1/branches", headers=creds.headers))
    assert time.monotonic() - started < 5
    pg.start()
    assert await _get_all(client, "/api/v1/branches", creds) == [200] * 6
    assert (await client.get("/readyz")).status_code == 200

    # hung, not down: readiness answers 503 in about its 2 s instead of waiting with it
    pid = pg.postmaster_pid()
    assert pid is not None
    with frozen(pid):
        started = time.monotonic()
        ready = await client.get("/readyz")
        assert time.monotonic() - started < 4
        assert ready.status_code == 503
        assert "no answer" in ready.json()["checks"]["database"]
    assert (await client.get("/readyz")).status_code == 200


async def test_redis_outage_and_hang(services: Any, running: Any) -> None:
    _, _, rd = services
    client, _ = running
    sign_in = {"email": "nobody@example.com", "password": "not the password"}
    assert (await client.post("/api/v1/auth/token", json=sign_in)).status_code == 401  # uses Redis: rate limits

    rd.stop()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "redis": ready.json()["checks"]["redis"]}
    assert ready.json()["checks"]["redis"].startswith("error")
    _assert_unavailable(await client.post("/api/v1/auth/token", json=sign_in))
    rd.start()
    assert (await client.post("/api/v1/auth/token", json=sign_in)).status_code == 401
    assert (await client.get("/readyz")).status_code == 200

    with frozen(_redis_pid(rd)):
        started = time.monotonic()
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "no answer" in ready.json()["checks"]["redis"]
        _assert_unavailable(await client.post("/api/v1/auth/token", json=sign_in))
        assert time.monotonic() - started < 7
    assert (await client.get("/readyz")).status_code == 200
