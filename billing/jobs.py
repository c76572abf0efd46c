"""Billing's actors: process a stored webhook event, and the clock (trial and grace expiry)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from lianka.billing import domain, services
from lianka.billing import queries as q
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target


@consumer(queue=services.QUEUE)
async def billing_process_event(uow: UnitOfWork, event_row: int, **_: Any) -> None:
    """Apply one stored Stripe event (queued by the webhook endpoint in the transaction that stored it)."""
    await services.process_event_recording_failure(uow, event_row)


async def merchants_due(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    async with db.uow(system=True) as uow:
        rows = await q.merchants_due(uow, as_of, domain.TRIAL_DAYS, merchant)
    return [Target(tenant, slug) for tenant, slug in rows]


async def billing_clock(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None
    return await services.run_clock(db, target.id, as_of)


declare(
    "billing-clock",
    "7 * * * *",
    targets=merchants_due,
    step=billing_clock,
    summary=(
        f"Subscriptions: a trial ended without a subscription becomes past due, and past due becomes "
        f"restricted once its {domain.GRACE_DAYS}-day grace has run out."
    ),
)
