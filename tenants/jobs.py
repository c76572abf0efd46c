"""Scheduled programme jobs (daily, in every merchant) and the reminder consumer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import dramatiq

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer, get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.tenants.services import maintenance

log = get_logger(__name__)
Task = Callable[[Database, uuid.UUID, datetime], Awaitable[int]]


def _daily(name: str, task: Task, cron: str, summary: str) -> None:
    """A job that runs ``task`` in every merchant (``lianka.platform.periodic``)."""

    async def step(db: Database, target: Target, as_of: datetime) -> int:
        assert target.id is not None  # every_merchant's targets are merchants
        return await task(db, target.id, as_of)

    declare(name, cron, step=step, summary=summary)


_daily(
    "review-tiers",
    maintenance.review_tiers,
    "30 2 * * *",
    "Tier retention review (保级): members due keep, lose or regain a tier by their spend in the window.",
)
_daily(
    "birthday-rewards",
    maintenance.birthday_rewards,
    "0 8 * * *",
    "Birthday rules: points and coupons to members whose birthday is today, once a year.",
)
# the points-expiry reminder is the merchant's default automation "积分到期提醒" (automations-daily)
_daily(
    "expire-coupons", maintenance.expire_coupons, "10 0 * * *", "Mark issued coupons past their validity as expired."
)


@consumer(queue="messages")
async def points_expiry_reminder(uow: UnitOfWork, member_id: str, points: int, expires_on: str, **_: Any) -> None:
    """Reminders queued before automations replaced ``expiry-reminders`` (decision 0039): logged."""
    log.info("points expiry reminder", member_id=member_id, points=points, expires_on=expires_on)


async def _run_member_import(tenant: str, import_id: str, **_: Any) -> None:
    """A CSV import (queued through the outbox by the API): resumable, so redelivery is harmless."""
    from lianka.tenants.services import member_imports

    done = await member_imports.run(get_database(), uuid.UUID(tenant), uuid.UUID(import_id))
    log.info("member import finished", import_id=import_id, created=done["created_members"], total=done["total"])


run_member_import: Any = dramatiq.actor(
    actor_name="run_member_import", queue_name="default", max_retries=10, broker=get_broker()
)(_run_member_import)
