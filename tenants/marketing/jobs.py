"""Marketing's jobs: the nightly RFM scores (``lianka jobs run rfm-scores``), the campaign dispatch
(every minute) and the actor that sends one campaign message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.tenants.marketing import automations, campaigns, services


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


async def campaign_dispatch(db: Database, target: Target, as_of: datetime) -> int:
    """Start the merchant's scheduled campaigns that are due and queue its due messages (deferred by
    quiet hours, or retries whose back-off has passed)."""
    assert target.id is not None
    return await campaigns.tick(db, target.id, as_of)


declare(
    "campaign-dispatch",
    "* * * * *",
    step=campaign_dispatch,
    summary="Campaigns: start scheduled campaigns whose time has come; queue messages that are due (after "
    "quiet hours, or a retry's back-off).",
)


async def automations_daily(db: Database, target: Target, as_of: datetime) -> int:
    """The merchant's time-triggered automations (birthdays, expiring points and coupons, win-back,
    low stored value): new occasions fired; due firings acted on. Returns the occasions fired."""
    assert target.id is not None
    return (await automations.run(db, target.id, as_of, automations.TIME_TRIGGERS)).fired


declare(
    "automations-daily",
    "0 9 * * *",
    step=automations_daily,
    summary="Automations, time triggers: birthdays, points and coupons expiring in N days, no purchase for N "
    "days, stored value below X — each fires once per member and occasion, then its wait, message, coupon, points. "
    "Creates the merchant's default automations (生日祝福, 积分到期提醒) the first time.",
)


async def automations_events(db: Database, target: Target, as_of: datetime) -> int:
    """The merchant's event-triggered automations (joined, first purchase, tier up) and every due wait."""
    assert target.id is not None
    return (await automations.run(db, target.id, as_of, automations.EVENT_TRIGGERS)).fired


declare(
    "automations-events",
    "*/10 * * * *",
    step=automations_events,
    summary="Automations, event triggers: members who joined, made a first purchase or moved up a tier since "
    "the automation was created (a set-based scan); also acts on firings whose wait has passed.",
)

_limiter: campaigns.RateLimit | None = None


def _rate_limit() -> campaigns.RateLimit:
    global _limiter  # one Redis client per worker process
    if _limiter is None:
        from redis.asyncio import Redis

        from lianka.platform.settings import get_settings

        _limiter = campaigns.RedisRateLimit(Redis.from_url(get_settings().redis_url))
    return _limiter


@consumer(queue="messages")
async def marketing_send_message(uow: UnitOfWork, campaign_id: str, member_id: str, occasion: str = "") -> None:
    """One campaign or automation message (queued by ``campaign_queries.dispatch_due``); idempotent by
    its row's status."""
    await campaigns.deliver(
        uow, uuid.UUID(campaign_id), uuid.UUID(member_id), datetime.now(UTC), _rate_limit(), occasion
    )
