"""Platform housekeeping jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.scheduler import periodic


@consumer(queue="maintenance")
async def prune_outbox(uow: UnitOfWork, fire_time: str = "", keep_days: int = 14, **_: Any) -> None:
    """Delete relayed outbox rows and inbox rows older than ``keep_days`` (they are delivery state,
    not business records; the ledger is never pruned)."""
    await uow.session.execute(
        text("DELETE FROM outbox WHERE sent_at < now() - make_interval(days => :d)"), {"d": keep_days})
    await uow.session.execute(
        text("DELETE FROM processed_messages WHERE processed_at < now() - make_interval(days => :d)"),
        {"d": keep_days})


periodic("prune-outbox", "prune_outbox", "17 4 * * *", queue="maintenance")
