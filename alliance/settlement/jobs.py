"""Month-end close as a job: queued from the API, and for every chain on the 1st of each month
(the previous month, in the merchant's time zone; ``lianka jobs run close-chains-monthly`` by hand).
The close itself is idempotent and resumable, so dramatiq's at-least-once delivery and retries are
safe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy import text

from lianka.alliance.settlement import close, scopes
from lianka.platform.db import Database
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target

log = get_logger(__name__)


async def close_scope(kind: str, book: str, period: str, db: Database | None = None) -> str:
    db = db or get_database()
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


async def close_previous_month(db: Database, target: Target, as_of: datetime) -> int:
    """Close the chain's previous month (in its time zone); 1 when this closed it, 0 when it already was."""
    assert target.id is not None  # every_merchant's targets are merchants
    async with db.uow(target.id) as uow:
        tz = await uow.session.scalar(text("SELECT timezone FROM merchants WHERE id = :m"), {"m": target.id})
        period = previous_month(as_of, tz or "Asia/Shanghai")
        status = await uow.session.scalar(text(
            "SELECT status FROM settlement_runs WHERE tenant_id = :b AND period = :p"), {"b": target.id, "p": period})
    if status == "closed":
        return 0
    await close_scope("chain", str(target.id), period, db)
    return 1


declare("close-chains-monthly", "0 3 1 * *", step=close_previous_month, queue="settlement",
        summary="Close every chain's previous month (its time zone): statements per branch, one net each "
                "(idempotent, resumes after a crash).")
