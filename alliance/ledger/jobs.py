"""Scheduled ledger jobs: daily points expiry (set-based, batched, resumable, idempotent)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import dramatiq

from lianka.alliance.ledger import queries
from lianka.alliance.ledger.services import expire_due
from lianka.platform.db import Database
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.scheduler import periodic

log = get_logger(__name__)


async def expire_book(db: Database, book: uuid.UUID, now: datetime, batch_size: int = 500) -> int:
    """Expire one book's due lots, one committed batch at a time. A crash loses at most the batch in
    flight (rolled back); running again continues where it stopped."""
    from lianka.alliance.alliances.breakage import breakage_hook

    async with db.uow(system=True) as uow:
        tz = await queries.book_timezone(uow, book)
        after = await breakage_hook(uow, book)
    total = 0
    while True:
        async with db.uow(book) as uow:
            n = await expire_due(uow, now, batch_size=batch_size, timezone=tz or "Asia/Shanghai", after=after)
            await uow.commit()
        total += n
        if n < batch_size:
            return total


async def expire_all(db: Database, now: datetime, batch_size: int = 500) -> dict[uuid.UUID, int]:
    """Expire every book's due lots (merchants' points and alliances' points)."""
    async with db.uow(system=True) as uow:
        books = await queries.books_with_due_lots(uow, now)
    done: dict[uuid.UUID, int] = {}
    for book in books:
        done[book] = await expire_book(db, book, now, batch_size)
        log.info("points expired", book=str(book), lots=done[book])
    return done


@dramatiq.actor(actor_name="expire_points", queue_name="maintenance", max_retries=5, broker=get_broker())
async def expire_points(fire_time: str = "", **_: Any) -> None:
    now = datetime.fromisoformat(fire_time) if fire_time else datetime.now(UTC)
    await expire_all(get_database(), now)


periodic("expire-points", "expire_points", "5 0 * * *", queue="maintenance")
