"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from litestar import Controller, Request, Response, get
from redis.asyncio import Redis
from sqlalchemy import text

from lianka.platform.db import Database

#: each readiness check gets this long; they run at the same time, so /readyz answers within it
CHECK_TIMEOUT_SECONDS = 2.0


#: probes given up on, still unwinding (closing a connection can take seconds of its own)
_abandoned: set[asyncio.Future[object]] = set()


def _forget(probe: asyncio.Future[object]) -> None:
    _abandoned.discard(probe)
    if not probe.cancelled():
        probe.exception()  # retrieved: not logged as "never retrieved"


async def _check(probe: Awaitable[object]) -> str:
    """ "ok", or why not, within ``CHECK_TIMEOUT_SECONDS`` — not waiting for a hung probe to unwind
    (``asyncio.wait_for`` would: a cancelled database checkout spends seconds closing its connection)."""
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=CHECK_TIMEOUT_SECONDS)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        return f"error: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    error = task.exception()
    return "ok" if error is None else f"error: {type(error).__name__}"


async def _database(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class HealthController(Controller):
    include_in_schema = False

    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        """The process is up. Says nothing about its dependencies (that is /readyz)."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Ready to serve: PostgreSQL answers as the app role and Redis answers PING — both asked at
        once, each given ``CHECK_TIMEOUT_SECONDS``, so a hung server makes this a prompt 503."""
        db: Database = request.app.state.db
        redis: Redis = request.app.state.redis
        database, cache = await asyncio.gather(_check(_database(db)), _check(redis.ping()))
        checks = {"database": database, "redis": cache}
        ok = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
            headers={} if ok else {"Retry-After": "5"},
        )
