"""Scheduled programme jobs (daily, in every merchant) and the reminder consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer, get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.scheduler import periodic
from lianka.tenants.services import maintenance

log = get_logger(__name__)
Task = Callable[[Database, Any, datetime], Awaitable[int]]


async def for_every_merchant(task: Task, fire_time: str) -> dict[str, int]:
    now = datetime.fromisoformat(fire_time) if fire_time else datetime.now(UTC)
    db = get_database()
    done = {}
    async for tenant, _tz in maintenance.merchants(db):
        done[str(tenant)] = await task(db, tenant, now)
    log.info("daily job done", task=task.__name__, merchants=len(done), total=sum(done.values()))
    return done


def _daily(name: str, task: Task, cron: str) -> None:
    async def run(fire_time: str = "", **_: Any) -> None:
        await for_every_merchant(task, fire_time)

    run.__name__ = name
    declare: Any = dramatiq.actor(actor_name=name, queue_name="maintenance", max_retries=5, broker=get_broker())
    declare(run)
    periodic(name.replace("_", "-"), name, cron, queue="maintenance")


_daily("review_tiers", maintenance.review_tiers, "30 2 * * *")
_daily("birthday_rewards", maintenance.birthday_rewards, "0 8 * * *")
_daily("expiry_reminders", maintenance.expiry_reminders, "0 10 * * *")
_daily("expire_coupons", maintenance.expire_coupons, "10 0 * * *")


@consumer(queue="messages")
async def points_expiry_reminder(uow: UnitOfWork, member_id: str, points: int, expires_on: str, **_: Any) -> None:
    """Until the messaging channels land (campaigns issue), the reminder is recorded in the log."""
    log.info("points expiry reminder", member_id=member_id, points=points, expires_on=expires_on)


async def _run_member_import(tenant: str, import_id: str, **_: Any) -> None:
    """A CSV import (queued through the outbox by the API): resumable, so redelivery is harmless."""
    import uuid

    from lianka.tenants.services import member_imports

    done = await member_imports.run(get_database(), uuid.UUID(tenant), uuid.UUID(import_id))
    log.info("member import finished", import_id=import_id, created=done["created_members"], total=done["total"])


run_member_import: Any = dramatiq.actor(actor_name="run_member_import", queue_name="default", max_retries=10,
                                        broker=get_broker())(_run_member_import)
