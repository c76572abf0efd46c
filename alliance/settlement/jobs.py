"""Month-end close as a job: queued from the API, and for every chain on the 1st of each month
(the previous month, in the merchant's time zone). The close itself is idempotent and resumable, so
dramatiq's at-least-once delivery and retries are safe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq

from lianka.alliance.settlement import close, scopes
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.scheduler import periodic
from lianka.tenants.services import maintenance

log = get_logger(__name__)


async def close_scope(kind: str, book: str, period: str) -> str:
    db = get_database()
    book_id = uuid.UUID(book)
    scope = await (scopes.chain_scope(db, book_id) if kind == "chain" else scopes.alliance_scope(db, book_id))
    done = await close.close(db, scope, period)
    log.info("period closed", scope=kind, book=book, period=period, checksum=done.checksum)
    return done.checksum


async def _close_period(kind: str, book: str, period: str, **_: Any) -> None:
    await close_scope(kind, book, period)


close_period: Any = dramatiq.actor(actor_name="close_period", queue_name="settlement", max_retries=10,
                                   broker=get_broker())(_close_period)


def previous_month(now: datetime, tz: str) -> str:
    local = now.astimezone(ZoneInfo(tz))
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


async def _close_chains(fire_time: str = "", **_: Any) -> None:
    now = datetime.fromisoformat(fire_time) if fire_time else datetime.now(UTC)
    async for tenant, tz in maintenance.merchants(get_database()):
        close_period.send("chain", str(tenant), previous_month(now, tz))


dramatiq.actor(actor_name="close_chains_monthly", queue_name="settlement", max_retries=5,
               broker=get_broker())(_close_chains)
periodic("close-chains-monthly", "close_chains_monthly", "0 3 1 * *", queue="settlement")
