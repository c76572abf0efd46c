"""Platform housekeeping jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.periodic import declare, whole_platform
from lianka.platform.scheduler import Target

KEEP_DAYS = 14


async def prune_outbox(db: Database, target: Target, as_of: datetime) -> int:
    """Delete relayed outbox rows and inbox rows older than ``KEEP_DAYS`` (they are delivery state,
    not business records; the ledger is never pruned). Returns how many rows went."""
    async with db.uow(system=True) as uow:
        deleted = 0
        for table, column in (("outbox", "sent_at"), ("processed_messages", "processed_at")):
            result = await uow.session.execute(
                text(f"DELETE FROM {table} WHERE {column} < CAST(:at AS timestamptz) - make_interval(days => :d)"),
                {"at": as_of, "d": KEEP_DAYS},
            )
            deleted += int(getattr(result, "rowcount", 0) or 0)
        await uow.commit()
    return deleted


declare(
    "prune-outbox",
    "17 4 * * *",
    targets=whole_platform,
    step=prune_outbox,
    summary=f"Delete relayed outbox rows and processed-message records older than {KEEP_DAYS} days.",
)
