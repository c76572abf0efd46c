"""Billing's actors: process a stored webhook event, the clock (trial and grace expiry), and the
daily metered-usage report to Stripe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from lianka.billing import domain, services, usage
from lianka.billing import queries as q
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.platform.settings import get_settings


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


async def merchants_with_customer(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    async with db.uow(system=True) as uow:
        rows = await q.merchants_with_customer(uow, merchant)
    return [Target(tenant, slug) for tenant, slug in rows]


async def billing_usage(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None
    return len((await usage.report_day(db, get_settings(), target.id, as_of)).sent)


declare(
    "billing-usage",
    "20 1 * * *",
    targets=merchants_with_customer,
    step=billing_usage,
    summary=(
        "Metered usage: yesterday's messages sent and active members of each merchant with a Stripe "
        "customer, reported once to Stripe's billing meter events (a rerun reports nothing twice)."
    ),
)
