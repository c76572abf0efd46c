"""Payouts' actor: send a month's Stripe transfers (queued by the console's "pay all owed" in the
transaction that made the payouts). Idempotent: each attempt is sent with its own Idempotency-Key,
and only attempts still ``sending`` are sent, so a redelivered message pays nothing twice."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq

from lianka.billing.payouts import services
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.settings import get_settings


async def _payouts_send(book: str, period: str, **_: Any) -> None:
    await services.send_pending(get_database(), get_settings(), uuid.UUID(book), period)


payouts_send: Any = dramatiq.actor(
    actor_name=services.SEND_ACTOR, queue_name=services.QUEUE, max_retries=10, broker=get_broker()
)(_payouts_send)
