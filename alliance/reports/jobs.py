"""The alliance dashboard's rollups as a periodic job (``lianka jobs run alliance-report-rollups``):
every minute, each alliance's days touched by entries posted since its mark are rolled up again
(``rollups.refresh``, decision 0046)."""

from __future__ import annotations

import uuid
from datetime import datetime

from lianka.alliance.reports import queries, rollups
from lianka.platform.db import Database
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target


async def every_alliance(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    """Every alliance (with ``--merchant``: the alliances that merchant operates)."""
    async with db.uow(system=True) as uow:
        found = await queries.every_alliance(uow, merchant)
    return [Target(a.id, a.code) for a in found]


async def roll_up(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None  # every_alliance's targets are alliances
    return (await rollups.refresh(db, target.id)).days


declare(
    "alliance-report-rollups",
    "* * * * *",
    targets=every_alliance,
    step=roll_up,
    summary="Alliance dashboard rollups: per alliance, the local days touched by entries posted in its book "
    "since the last run are rolled up again from the journal, and the mark advanced in the same transaction.",
)
