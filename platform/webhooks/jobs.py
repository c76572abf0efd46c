"""Webhooks' jobs: the actor that makes one delivery attempt, the every-minute retry tick and the nightly
retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.platform.webhooks import sender, services

_policy: sender.Policy | None = None


def _send_policy() -> sender.Policy:
    global _policy  # the process's settings, read once per worker process
    if _policy is None:
        _policy = services.default_policy()
    return _policy


@consumer(queue=services.QUEUE)
async def webhooks_deliver(uow: UnitOfWork, delivery_id: str) -> None:
    """One attempt of a delivery (its log row and next state commit with the message's inbox row; a
    redelivered message finds the delivery done or not yet due and posts nothing)."""
    await services.attempt(uow, uuid.UUID(delivery_id), datetime.now(UTC), _send_policy())


async def webhooks_retry(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None
    return await services.tick(db, target.id, as_of)


declare(
    "webhooks-retry",
    "* * * * *",
    step=webhooks_retry,
    summary="Webhooks: queue the next attempt of deliveries whose back-off has passed (5xx, 408, 429, "
    "timeouts and refused connections are retried with exponential back-off and jitter, 8 attempts at most).",
)


async def webhooks_prune(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None
    return await services.prune(db, target.id, as_of)


declare(
    "webhooks-prune",
    "40 3 * * *",
    step=webhooks_prune,
    summary="Webhooks: delete deliveries finished more than LIANKA_WEBHOOK_RETENTION_DAYS (30) days ago, "
    "their attempts and the events no delivery references (pending deliveries are kept).",
)
