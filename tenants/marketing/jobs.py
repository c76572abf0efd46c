"""Marketing's periodic jobs: the nightly RFM scores (``lianka jobs run rfm-scores``)."""

from __future__ import annotations

from datetime import datetime

from lianka.platform.db import Database
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.tenants.marketing import services


async def rfm_scores(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None  # every_merchant's targets are merchants
    return await services.rfm_scores(db, target.id, as_of)


declare(
    "rfm-scores",
    "20 3 * * *",
    step=rfm_scores,
    summary="RFM: recency, frequency and monetary scores 1-5 (quintiles per merchant, ntile(5) over the last "
    "12 months of sales) for every member who bought in that window; members who did not lose their scores.",
)
