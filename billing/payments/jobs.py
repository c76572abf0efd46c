"""Member payments' periodic job: the reconciliation poll of orders left pending (a notification
lost, a member who closed the page). Notifications themselves are processed by billing's
``billing_process_event`` actor, which hands member-payment events to this package."""

from __future__ import annotations

import uuid
from datetime import datetime

from lianka.billing.payments import queries as q
from lianka.billing.payments import services
from lianka.platform.db import Database
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.platform.settings import get_settings


async def merchants_with_pending(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    async with db.uow(system=True) as uow:
        rows = await q.merchants_with_pending(uow, as_of - services.POLL_AFTER, merchant)
    return [Target(tenant, slug) for tenant, slug in rows]


async def reconcile_merchant(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None
    settings = get_settings()
    orders = await services.reconcile_pending(db, settings, target.id, as_of)
    return orders + await services.reconcile_refunds(db, settings, target.id, as_of)


declare(
    "payments-reconcile",
    "*/5 * * * *",
    targets=merchants_with_pending,
    step=reconcile_merchant,
    queue="billing",
    summary="Member payments: ask the provider about orders pending, and refunds in flight, for more than five "
    "minutes and apply the answer.",
)
