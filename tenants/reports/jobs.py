"""The daily rollups as a periodic job (``lianka jobs run report-rollups``): every minute, each
merchant's days touched since its mark are rolled up again (``rollups.refresh``)."""

from __future__ import annotations

from datetime import datetime

from lianka.platform.db import Database
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.tenants.reports import rollups


async def roll_up(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None  # every_merchant's targets are merchants
    return (await rollups.refresh(db, target.id)).days


declare(
    "report-rollups",
    "* * * * *",
    step=roll_up,
    summary="Dashboard rollups: per merchant, the local days touched by sales, refunds, top-ups, ledger "
    "entries, new members and coupons written since the last run are rolled up again from scratch, "
    "and the mark advanced in the same transaction (a rerun never double-counts).",
)
