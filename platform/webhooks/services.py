"""Webhooks' use cases (one unit of work each) and building blocks (take a ``uow``, never commit).

* :func:`emit` — the building block the business use cases call in their own transaction: the event
  and its deliveries are rows of that transaction, and each delivery's job is an outbox row of it, so
  a rolled-back sale sends nothing and a committed one is never lost.
* :func:`attempt` — one POST of one delivery (the ``webhooks_deliver`` job), its log row and the
  delivery's next state, in the job's transaction.
* subscriptions (the secret is returned once, at creation and rotation, and stored sealed), the
  delivery log, replay, test send, and :func:`tick` which queues retries whose back-off has passed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lianka.platform import audit, metrics, outbox, secrets
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import ValidationFailed
from lianka.platform.log import get_logger
from lianka.platform.settings import get_settings
from lianka.platform.webhooks import domain, queries, sender
from lianka.platform.webhooks.errors import (
    DeliveryNotFound,
    SubscriptionNotFound,
    UnknownEventType,
    UnsafeWebhookURL,
)

log = get_logger(__name__)
ACTOR = "webhooks_deliver"
QUEUE = "webhooks"
#: the event a test send delivers (to the one subscription, whatever it subscribed to)
TEST_EVENT = "webhook.test"


def default_policy() -> sender.Policy:
    return sender.Policy(production=get_settings().is_production)


# --- building blocks ----------------------------------------------------------------------------------


async def emit(
    uow: UnitOfWork, event_type: str, data: dict[str, Any], *, subscribed: Collection[str] | None = None
) -> int:
    """Record ``event_type`` with ``data`` for every subscription that wants it and queue its delivery,
    in ``uow``. Returns how many deliveries were queued (0 writes nothing).

    ``subscribed``: the event types active subscriptions want, when the caller already read them in
    its transaction (the sale's context read does): an event nobody wants then costs no round trip.
    A subscription created after that read and before the commit does not get this event — the
    action happened before it subscribed."""
    assert event_type in domain.EVENT_TYPES, event_type
    if subscribed is not None and event_type not in subscribed:
        return 0
    ids = await queries.emit(uow, event_type, data)
    for delivery_id in ids:
        await outbox.enqueue(uow, ACTOR, queue=QUEUE, delivery_id=str(delivery_id))
    return len(ids)


async def tier_changed(
    uow: UnitOfWork,
    member: uuid.UUID,
    old: str | None,
    new: str | None,
    cause: str,
    *,
    subscribed: Collection[str] | None = None,
    **refs: str,
) -> int:
    """``member.tier_changed`` for every way a tier changes — ``cause`` ``sale`` (with ``sale_id``),
    ``review`` (the nightly review) or ``staff`` (a grant) — with one payload shape."""
    assert cause in {"sale", "review", "staff"}, cause
    data: dict[str, Any] = {"member_id": str(member), "tier": new, "previous_tier": old, "cause": cause, **refs}
    return await emit(uow, "member.tier_changed", data, subscribed=subscribed)


async def attempt(
    uow: UnitOfWork, delivery_id: uuid.UUID, now: datetime, policy: sender.Policy, rng: random.Random | None = None
) -> str | None:
    """One POST of the delivery if it is due; returns its new status (None: nothing to do — already
    delivered or failed, not yet due, or its subscription was switched off)."""
    d = await queries.to_send(uow, delivery_id)
    if d is None or d.status != "pending" or (d.next_attempt_at is not None and d.next_attempt_at > now):
        return None
    if not d.active:
        return None  # switched off after the event: kept pending; switching it on again makes it due
    health = domain.Health(d.consecutive_failures, d.failing_since, d.paused_until)
    held = (
        health.open()
        and d.event_type != TEST_EVENT  # a test send is the owner's own probe
        and not await queries.claim_probe(uow, d.subscription_id, now, now + domain.BREAKER_COOLDOWN)
    )
    if held:  # another attempt is the probe: wait for its verdict
        pause = d.paused_until if d.paused_until and d.paused_until > now else now + domain.BREAKER_COOLDOWN
        await queries.postpone(uow, d.id, pause)
        metrics.count_webhook_delivery(uow, "paused")
        return None
    assert uow.tenant_id is not None
    body = domain.body(d.event_id, d.event_type, d.event_created_at, uow.tenant_id, d.data)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Lianka-Webhooks/1",
        domain.SIGNATURE_HEADER: domain.sign_all(_signing_secrets(d, now), int(time.time()), body),
        domain.EVENT_ID_HEADER: str(d.event_id),
        domain.DELIVERY_ID_HEADER: str(d.id),
    }
    result = await sender.post(d.url, headers, body, policy)
    number = d.attempts + 1
    outcome = domain.after_attempt(result.status, number, now, rng)
    if result.error.startswith("refused"):  # the address is not allowed now: retrying will not help
        outcome = domain.Outcome("failed", None)
    await queries.record_attempt(
        uow,
        queries.AttemptRow(
            delivery_id=d.id,
            attempt=number,
            status_code=result.status,
            duration_ms=result.duration_ms,
            error=result.error,
            response_snippet=result.snippet,
            outcome=outcome.status,
            next_attempt_at=outcome.next_attempt_at,
        ),
    )
    await _breaker(uow, d.subscription_id, outcome.status == "delivered", now)
    metrics.count_webhook_delivery(uow, "retry" if outcome.status == "pending" else outcome.status)
    log.info(
        "webhook attempt", delivery_id=str(d.id), attempt=number, http_status=result.status, outcome=outcome.status
    )
    return outcome.status


def _signing_secrets(d: queries.ToSend, now: datetime) -> list[str]:
    """The current secret, and the one a rotation replaced while its overlap lasts."""
    out = [secrets.open_sealed(d.secret_sealed)]
    if d.previous_secret_sealed and d.previous_secret_until and d.previous_secret_until > now:
        out.append(secrets.open_sealed(d.previous_secret_sealed))
    return out


async def _breaker(uow: UnitOfWork, sub_id: uuid.UUID, delivered: bool, now: datetime) -> None:
    """The subscription's breaker after an attempt: a 2xx closes it (held deliveries become due); a
    failure counts, opens it at the threshold and, after days of nothing but failures, switches the
    subscription off (audited; the console shows why)."""
    if delivered:
        await queries.healthy(uow, sub_id, now)
        return
    health, off = domain.after_failure(domain.Health(*await queries.health_for_update(uow, sub_id)), now)
    assert health.failing_since is not None
    await queries.failed(uow, sub_id, health.consecutive_failures, health.failing_since, health.paused_until, off)
    if off:
        details = {"failing_since": health.failing_since.isoformat(), "failures": health.consecutive_failures}
        await audit.record(
            uow, audit.system("webhooks"), "webhook.switched_off", object_kind="webhook_subscription",
            object_id=sub_id, details=details,
        )  # fmt: skip
        log.warning("webhook subscription switched off", subscription_id=str(sub_id), **details)
        await _tell_owners(uow, sub_id, health.failing_since)


async def _tell_owners(uow: UnitOfWork, sub_id: uuid.UUID, since: datetime) -> None:
    """An e-mail to each owner (through the outbox, with the switch-off's transaction) saying what
    happened and where to switch it on again, in Chinese and English."""
    from lianka.platform.identity.staff import owner_emails

    sub = await queries.subscription(uow, sub_id)
    assert sub is not None
    page = f"{get_settings().identity.public_url}/console/settings/webhooks"
    body = (
        f"联卡已停用您的 Webhook 订阅：{sub.url}\n自 {since:%Y-%m-%d %H:%M} (UTC) 起，接收端没有一次成功应答。"
        f"修复接收端后，请在此重新启用：{page}\n未送达的消息会保留，重新启用后补发。\n\n"
        f"Lianka switched off your webhook subscription to {sub.url}: its receiver has not answered with a 2xx "
        f"since {since:%Y-%m-%d %H:%M} UTC. Fix the receiver, then switch it on again at {page} — the "
        "deliveries that waited are sent then.\n"
    )
    for to in await owner_emails(uow):
        await outbox.enqueue(
            uow, "send_email", queue="messages", to=to, subject="联卡 Webhook 已停用 / Lianka webhook switched off",
            body=body,
        )  # fmt: skip


# --- use cases -------------------------------------------------------------------------------------


def _events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(domain.EVENT_TYPES))
    if unknown or not events:
        raise UnknownEventType(
            f"Unknown event type(s): {', '.join(unknown) or '(none given)'}", field="events", events=unknown
        )
    return sorted(set(events))


async def _safe_url(url: str, policy: sender.Policy) -> str:
    url = url.strip()
    try:
        await sender.check(url, policy)
    except domain.UnsafeURL as e:
        raise UnsafeWebhookURL(f"This URL cannot receive webhooks ({e.reason})", field="url", reason=e.reason) from e
    return url


@dataclass(frozen=True)
class Created:
    subscription: queries.Subscription
    secret: str  # shown once


async def subscribe(
    db: Database,
    tenant: uuid.UUID,
    url: str,
    events: list[str],
    description: str = "",
    policy: sender.Policy | None = None,
) -> Created:
    policy = policy or default_policy()
    url, chosen = await _safe_url(url, policy), _events(events)
    secret = domain.new_secret()
    async with db.uow(tenant) as uow:
        sub = await queries.insert_subscription(uow, url, chosen, description.strip()[:200], secrets.seal(secret))
        await uow.commit()
    return Created(sub, secret)


async def change(
    db: Database,
    tenant: uuid.UUID,
    sub_id: uuid.UUID,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    policy: sender.Policy | None = None,
) -> queries.Subscription:
    policy = policy or default_policy()
    async with db.uow(tenant) as uow:
        sub = await queries.subscription(uow, sub_id)
        if sub is None:
            raise SubscriptionNotFound()
        new_url = await _safe_url(url, policy) if url is not None else sub.url
        changed = await queries.update_subscription(
            uow,
            sub_id,
            new_url,
            _events(events) if events is not None else sub.events,
            description.strip()[:200] if description is not None else sub.description,
            active if active is not None else sub.active,
        )
        assert changed is not None
        if changed.active and not sub.active:  # what waited while it was off goes out now
            await queries.release_pending(uow, sub_id, datetime.now(UTC))
        await uow.commit()
    return changed


async def rotate_secret(
    db: Database, tenant: uuid.UUID, sub_id: uuid.UUID, overlap: timedelta = domain.ROTATION_OVERLAP
) -> str:
    """A new secret, signing from the next attempt on; the old one signs beside it for ``overlap``
    (24 hours by default, so the receiver can switch without losing a message; zero when it leaked)."""
    if not timedelta(0) <= overlap <= domain.MAX_ROTATION_OVERLAP:
        raise ValidationFailed("The overlap is 0 to 168 hours", field="overlap_hours")
    secret = domain.new_secret()
    async with db.uow(tenant) as uow:
        if not await queries.set_secret(uow, sub_id, secrets.seal(secret), overlap):
            raise SubscriptionNotFound()
        await uow.commit()
    return secret


async def list_subscriptions(db: Database, tenant: uuid.UUID) -> list[queries.Subscription]:
    async with db.uow(tenant) as uow:
        return await queries.subscriptions(uow)


async def list_deliveries(
    db: Database, tenant: uuid.UUID, subscription_id: uuid.UUID | None = None, limit: int = 50
) -> list[queries.Delivery]:
    async with db.uow(tenant) as uow:
        return await queries.deliveries(uow, subscription_id, max(1, min(limit, 200)))


async def delivery_log(
    db: Database, tenant: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[queries.Delivery, list[queries.Attempt]]:
    async with db.uow(tenant) as uow:
        d = await queries.delivery(uow, delivery_id)
        if d is None:
            raise DeliveryNotFound()
        return d, await queries.attempts(uow, delivery_id)


async def replay(db: Database, tenant: uuid.UUID, delivery_id: uuid.UUID) -> queries.Delivery:
    """Send a delivery's event again, as a new delivery (its own attempts) with the same event id."""
    async with db.uow(tenant) as uow:
        new_id = await queries.replay(uow, delivery_id)
        if new_id is None:
            raise DeliveryNotFound()
        await outbox.enqueue(uow, ACTOR, queue=QUEUE, delivery_id=str(new_id))
        d = await queries.delivery(uow, new_id)
        assert d is not None
        await uow.commit()
    return d


async def test_send(db: Database, tenant: uuid.UUID, sub_id: uuid.UUID) -> queries.Delivery:
    """A ``webhook.test`` event to this subscription only (active ones; it is logged like any other)."""
    async with db.uow(tenant) as uow:
        sub = await queries.subscription(uow, sub_id)
        if sub is None:
            raise SubscriptionNotFound()
        ids = await queries.emit(uow, TEST_EVENT, {"subscription_id": str(sub_id)}, only=sub_id)
        if not ids:
            raise SubscriptionNotFound("The subscription is switched off")
        await outbox.enqueue(uow, ACTOR, queue=QUEUE, delivery_id=str(ids[0]))
        d = await queries.delivery(uow, ids[0])
        assert d is not None
        await uow.commit()
    return d


async def tick(db: Database, tenant: uuid.UUID, now: datetime, limit: int = 500) -> int:
    """Queue the attempts of deliveries whose back-off has passed (the ``webhooks-retry`` job)."""
    async with db.uow(tenant) as uow:
        ids = await queries.claim_due(uow, now, limit)
        for delivery_id in ids:
            await outbox.enqueue(uow, ACTOR, queue=QUEUE, delivery_id=str(delivery_id))
        await uow.commit()
    return len(ids)


async def prune(db: Database, tenant: uuid.UUID, now: datetime, days: int | None = None) -> int:
    """The ``webhooks-prune`` job for one merchant: forget deliveries finished more than ``days``
    (``LIANKA_WEBHOOK_RETENTION_DAYS``, 30 by default) ago — their attempts, and the events nothing
    points at any more. Pending deliveries stay whatever their age. Returns the deliveries deleted."""
    keep = get_settings().webhook_retention_days if days is None else days
    async with db.uow(tenant) as uow:
        n = await queries.prune(uow, now - timedelta(days=keep))
        await uow.commit()
    if n:
        log.info("webhook deliveries pruned", tenant=str(tenant), deliveries=n, days=keep)
    return n
