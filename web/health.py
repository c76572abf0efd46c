"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from redis.asyncio import Redis
from sqlalchemy import text

from lianka.platform.db import Database


class HealthController(Controller):
    include_in_schema = False

    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        """The process is up. Says nothing about its dependencies (that is /readyz)."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Ready to serve: PostgreSQL answers as the app role and Redis answers PING."""
        db: Database = request.app.state.db
        checks: dict[str, str] = {}
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            redis: Redis = request.app.state.redis
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)
