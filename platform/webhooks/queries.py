"""Every SQL statement of the webhooks, each behind a typed function (row types are dataclasses)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime
    secret_rotated_at: datetime
    #: the breaker (decision 0052): attempts in a row without a 2xx, since when, paused until when
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    paused_until: datetime | None = None
    #: why Lianka switched it off itself ("failing"), "" otherwise
    switched_off_reason: str = ""
    #: until when the secret a rotation replaced still signs beside the current one (None: it does not)
    previous_secret_until: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subscription_id: uuid.UUID
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    replay_of: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str
    response_snippet: str
    created_at: datetime


@dataclass(frozen=True)
class ToSend:
    """A delivery locked for its attempt, with what the POST needs."""

    id: uuid.UUID
    status: str
    attempts: int
    next_attempt_at: datetime | None
    event_id: uuid.UUID
    event_type: str
    event_created_at: datetime
    data: dict[str, Any]
    url: str
    secret_sealed: str
    active: bool
    subscription_id: uuid.UUID
    consecutive_failures: int
    failing_since: datetime | None
    paused_until: datetime | None
    previous_secret_sealed: str | None
    previous_secret_until: datetime | None


_SUB = (
    "id, url, events, description, active, created_at, secret_rotated_at, consecutive_failures, failing_since, "
    "paused_until, switched_off_reason, previous_secret_until"
)
_DELIVERY = (
    "d.id, d.event_id, e.type AS event_type, d.subscription_id, s.url, d.status, d.attempts, d.next_attempt_at, "
    "d.last_status, d.replay_of, d.created_at, d.updated_at "
    "FROM webhook_deliveries d JOIN webhook_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id "
    "JOIN webhook_subscriptions s ON s.tenant_id = d.tenant_id AND s.id = d.subscription_id"
)


async def insert_subscription(
    uow: UnitOfWork, url: str, events: list[str], description: str, secret_sealed: str
) -> Subscription:
    row = (
        await uow.session.execute(
            text(
                "INSERT INTO webhook_subscriptions (tenant_id, url, events, description, secret_sealed) "
                f"VALUES (:t, :url, :events, :d, :s) RETURNING {_SUB}"
            ),
            {"t": uow.tenant_id, "url": url, "events": events, "d": description, "s": secret_sealed},
        )
    ).one()
    return Subscription(**row._mapping)


async def subscriptions(uow: UnitOfWork) -> list[Subscription]:
    rows = await uow.session.execute(text(f"SELECT {_SUB} FROM webhook_subscriptions ORDER BY created_at, id"))
    return [Subscription(**r._mapping) for r in rows]


async def subscription(uow: UnitOfWork, sub_id: uuid.UUID) -> Subscription | None:
    row = (
        await uow.session.execute(text(f"SELECT {_SUB} FROM webhook_subscriptions WHERE id = :id"), {"id": sub_id})
    ).first()
    return Subscription(**row._mapping) if row else None


async def update_subscription(
    uow: UnitOfWork, sub_id: uuid.UUID, url: str, events: list[str], description: str, active: bool
) -> Subscription | None:
    row = (
        await uow.session.execute(
            text(
                "UPDATE webhook_subscriptions SET url = :url, events = :events, description = :d, active = :a, "
                # switched on again (by its owner, once the receiver is fixed): the breaker starts closed
                "consecutive_failures = CASE WHEN :a AND NOT active THEN 0 ELSE consecutive_failures END, "
                "failing_since = CASE WHEN :a AND NOT active THEN NULL ELSE failing_since END, "
                "paused_until = CASE WHEN :a AND NOT active THEN NULL ELSE paused_until END, "
                "switched_off_reason = CASE WHEN :a THEN '' ELSE switched_off_reason END "
                f"WHERE id = :id RETURNING {_SUB}"
            ),
            {"id": sub_id, "url": url, "events": events, "d": description, "a": active},
        )
    ).first()
    return Subscription(**row._mapping) if row else None


async def set_secret(uow: UnitOfWork, sub_id: uuid.UUID, secret_sealed: str, overlap: timedelta) -> bool:
    """The new secret; the one it replaces keeps signing beside it for ``overlap`` (none: it stops now).
    A second rotation within the overlap drops the oldest at once: two secrets sign at most."""
    row = await uow.session.execute(
        text(
            "UPDATE webhook_subscriptions SET "
            "previous_secret_sealed = CASE WHEN :overlap > interval '0' THEN secret_sealed END, "
            "previous_secret_until = CASE WHEN :overlap > interval '0' THEN now() + :overlap END, "
            "secret_sealed = :s, secret_rotated_at = now() WHERE tenant_id = :t AND id = :id RETURNING id"
        ),
        {"t": uow.tenant_id, "id": sub_id, "s": secret_sealed, "overlap": overlap},
    )
    return row.first() is not None


async def emit(
    uow: UnitOfWork, event_type: str, data: dict[str, Any], only: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """The event and one delivery per active subscription that wants it, in one round trip; nothing at
    all is written when nobody subscribed (the till's sale pays one indexed read). ``only``: just that
    subscription, whatever its events (a test send)."""
    rows = await uow.session.execute(
        text(
            "WITH subs AS (SELECT id FROM webhook_subscriptions WHERE active AND "
            "(CAST(:only AS uuid) IS NULL AND CAST(:type AS varchar) = ANY(events) OR id = CAST(:only AS uuid))), "
            "ev AS (INSERT INTO webhook_events (tenant_id, type, data) "
            "SELECT CAST(:t AS uuid), CAST(:type AS varchar), CAST(:data AS jsonb) WHERE EXISTS (SELECT 1 FROM subs) RETURNING id) "
            "INSERT INTO webhook_deliveries (tenant_id, event_id, subscription_id) "
            "SELECT CAST(:t AS uuid), ev.id, subs.id FROM ev CROSS JOIN subs RETURNING id"
        ),
        {"t": uow.tenant_id, "type": event_type, "data": json.dumps(data), "only": only},
    )
    return [r.id for r in rows]


async def to_send(uow: UnitOfWork, delivery_id: uuid.UUID) -> ToSend | None:
    row = (
        await uow.session.execute(
            text(
                "SELECT d.id, d.status, d.attempts, d.next_attempt_at, d.event_id, e.type AS event_type, "
                "e.created_at AS event_created_at, e.data, s.url, s.secret_sealed, s.active, "
                "s.id AS subscription_id, s.consecutive_failures, s.failing_since, s.paused_until, "
                "s.previous_secret_sealed, s.previous_secret_until "
                "FROM webhook_deliveries d JOIN webhook_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id "
                "JOIN webhook_subscriptions s ON s.tenant_id = d.tenant_id AND s.id = d.subscription_id "
                "WHERE d.id = :id FOR UPDATE OF d"
            ),
            {"id": delivery_id},
        )
    ).first()
    return ToSend(**row._mapping) if row else None


@dataclass(frozen=True)
class AttemptRow:
    delivery_id: uuid.UUID
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str
    response_snippet: str
    outcome: str
    next_attempt_at: datetime | None


async def record_attempt(uow: UnitOfWork, a: AttemptRow) -> None:
    await uow.session.execute(
        text(
            "WITH log AS (INSERT INTO webhook_attempts "
            "(tenant_id, delivery_id, attempt, status_code, duration_ms, error, response_snippet) "
            "VALUES (:t, :d, :n, :code, :ms, :err, :snip)) "
            "UPDATE webhook_deliveries SET attempts = :n, status = :outcome, next_attempt_at = :next, "
            "last_status = :code, updated_at = now() WHERE id = :d"
        ),
        {
            "t": uow.tenant_id,
            "d": a.delivery_id,
            "n": a.attempt,
            "code": a.status_code,
            "ms": a.duration_ms,
            "err": a.error,
            "snip": a.response_snippet,
            "outcome": a.outcome,
            "next": a.next_attempt_at,
        },
    )


async def claim_probe(uow: UnitOfWork, sub_id: uuid.UUID, now: datetime, until: datetime) -> bool:
    """The open breaker's one probe: true for the one attempt that moves ``paused_until`` from the past
    to ``until`` (a concurrent attempt waits on the row, then finds it in the future)."""
    row = await uow.session.execute(
        text(
            "UPDATE webhook_subscriptions SET paused_until = :until "
            "WHERE tenant_id = :t AND id = :id AND (paused_until IS NULL OR paused_until <= :now) RETURNING id"
        ),
        {"t": uow.tenant_id, "id": sub_id, "now": now, "until": until},
    )
    return row.first() is not None


async def postpone(uow: UnitOfWork, delivery_id: uuid.UUID, until: datetime) -> None:
    """Leave the delivery pending, due when the breaker lets the next attempt through (no attempt spent)."""
    await uow.session.execute(
        text(
            "UPDATE webhook_deliveries SET next_attempt_at = :at, updated_at = now() WHERE tenant_id = :t AND id = :id"
        ),
        {"t": uow.tenant_id, "id": delivery_id, "at": until},
    )


async def health_for_update(uow: UnitOfWork, sub_id: uuid.UUID) -> tuple[int, datetime | None, datetime | None]:
    """(consecutive_failures, failing_since, paused_until), the row locked: concurrent failures of one
    receiver count one after the other."""
    row = (
        await uow.session.execute(
            text(
                "SELECT consecutive_failures, failing_since, paused_until FROM webhook_subscriptions "
                "WHERE tenant_id = :t AND id = :id FOR UPDATE"
            ),
            {"t": uow.tenant_id, "id": sub_id},
        )
    ).one()
    return row.consecutive_failures, row.failing_since, row.paused_until


async def failed(
    uow: UnitOfWork, sub_id: uuid.UUID, failures: int, since: datetime, paused_until: datetime | None, off: bool
) -> None:
    await uow.session.execute(
        text(
            "UPDATE webhook_subscriptions SET consecutive_failures = :n, failing_since = :since, "
            "paused_until = :paused, active = active AND NOT :off, "
            "switched_off_reason = CASE WHEN :off THEN 'failing' ELSE switched_off_reason END "
            "WHERE tenant_id = :t AND id = :id"
        ),
        {"t": uow.tenant_id, "id": sub_id, "n": failures, "since": since, "paused": paused_until, "off": off},
    )


async def healthy(uow: UnitOfWork, sub_id: uuid.UUID, now: datetime) -> None:
    """A 2xx: the breaker closes, and the deliveries it held back are due now (the next tick queues them)."""
    await uow.session.execute(
        text(
            "WITH closed AS (UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL, "
            "paused_until = NULL WHERE tenant_id = :t AND id = :id AND consecutive_failures > 0 RETURNING id) "
            "UPDATE webhook_deliveries SET next_attempt_at = :now WHERE tenant_id = :t "
            "AND subscription_id IN (SELECT id FROM closed) AND status = 'pending' AND next_attempt_at > :now"
        ),
        {"t": uow.tenant_id, "id": sub_id, "now": now},
    )


async def release_pending(uow: UnitOfWork, sub_id: uuid.UUID, now: datetime) -> int:
    """Switched on again: every delivery still pending for it is due now (the next tick queues it),
    including those an attempt found switched off and left without a due time."""
    rows = await uow.session.execute(
        text(
            "UPDATE webhook_deliveries SET next_attempt_at = :now WHERE tenant_id = :t AND subscription_id = :id "
            "AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at > :now) RETURNING id"
        ),
        {"t": uow.tenant_id, "id": sub_id, "now": now},
    )
    return len(rows.all())


async def claim_due(uow: UnitOfWork, now: datetime, limit: int) -> list[uuid.UUID]:
    """Pending deliveries whose back-off has passed; their ``next_attempt_at`` is cleared (the attempt
    is queued), so the next tick does not queue them again."""
    rows = await uow.session.execute(
        text(
            "UPDATE webhook_deliveries SET next_attempt_at = NULL WHERE id IN ("
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= :now "
            "ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING id"
        ),
        {"now": now, "n": limit},
    )
    return [r.id for r in rows]


async def deliveries(uow: UnitOfWork, subscription_id: uuid.UUID | None, limit: int) -> list[Delivery]:
    rows = await uow.session.execute(
        text(
            f"SELECT {_DELIVERY} WHERE (CAST(:sub AS uuid) IS NULL OR d.subscription_id = CAST(:sub AS uuid)) "
            "ORDER BY d.created_at DESC, d.id LIMIT :n"
        ),
        {"sub": subscription_id, "n": limit},
    )
    return [Delivery(**r._mapping) for r in rows]


async def delivery(uow: UnitOfWork, delivery_id: uuid.UUID) -> Delivery | None:
    row = (await uow.session.execute(text(f"SELECT {_DELIVERY} WHERE d.id = :id"), {"id": delivery_id})).first()
    return Delivery(**row._mapping) if row else None


async def attempts(uow: UnitOfWork, delivery_id: uuid.UUID) -> list[Attempt]:
    rows = await uow.session.execute(
        text(
            "SELECT attempt, status_code, duration_ms, error, response_snippet, created_at FROM webhook_attempts "
            "WHERE delivery_id = :d ORDER BY attempt"
        ),
        {"d": delivery_id},
    )
    return [Attempt(**r._mapping) for r in rows]


async def replay(uow: UnitOfWork, delivery_id: uuid.UUID) -> uuid.UUID | None:
    """A new delivery of the same event to the same subscription (the receiver sees the event id again)."""
    row = (
        await uow.session.execute(
            text(
                "INSERT INTO webhook_deliveries (tenant_id, event_id, subscription_id, replay_of) "
                "SELECT tenant_id, event_id, subscription_id, id FROM webhook_deliveries WHERE id = :d RETURNING id"
            ),
            {"d": delivery_id},
        )
    ).first()
    return row.id if row else None


async def prune(uow: UnitOfWork, before: datetime) -> int:
    """Delete the merchant's finished deliveries (with their attempts) last changed before ``before``,
    and the events no delivery references any more (``lianka_webhook_prune``, migration 0042)."""
    return int(await uow.session.scalar(text("SELECT lianka_webhook_prune(:before)"), {"before": before}) or 0)
