"""Scheduled ledger jobs: daily points expiry (set-based, batched, resumable, idempotent)."""

from __future__ import annotations

import uuid
from datetime import datetime

from lianka.alliance.ledger import queries
from lianka.alliance.ledger.services import expire_due
from lianka.platform.db import Database
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target

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


async def books_with_due_lots(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    """Books (merchants' and alliances') holding lots due by ``as_of``; a merchant's own book only when
    one merchant is asked for (an alliance's book belongs to all its partners)."""
    async with db.uow(system=True) as uow:
        due = await queries.books_with_due_lots(uow, as_of, merchant)
    return [Target(d.book, d.label) for d in due]


async def expire_target(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None  # books_with_due_lots' targets are books
    done = await expire_book(db, target.id, as_of)
    log.info("points expired", book=str(target.id), lots=done)
    return done


async def expire_all(db: Database, now: datetime, batch_size: int = 500) -> dict[uuid.UUID, int]:
    """Expire every book's due lots (merchants' points and alliances' points)."""
    return {
        t.id: await expire_book(db, t.id, now, batch_size)
        for t in await books_with_due_lots(db, now, None)
        if t.id is not None
    }


declare(
    "expire-points",
    "5 0 * * *",
    targets=books_with_due_lots,
    step=expire_target,
    summary="Expire what is left of points lots due by now into breakage, in every merchant's and alliance's "
    "book (batched, resumable).",
)
