"""The transactional outbox: write a message in the business transaction, send it after commit.

``enqueue`` inserts a row in the caller's unit of work, so a rolled-back transaction sends nothing.
The relay (``lianka relay``) moves committed rows to dramatiq and marks them sent in one transaction
per batch. If it dies after handing a message to Redis but before its commit, the message is sent
again on restart with the *same* message id (derived from the outbox id), and consumers built with
:func:`lianka.platform.jobs.consumer` apply each message id once. So: nothing is sent for a rolled
back transaction, nothing is lost on a crash, and nothing is applied twice.

With tracing on (``platform/tracing.py``) the row also keeps the W3C ``traceparent`` of the span that
wrote it, in its payload; the relay moves it to the message's options, where the worker finds the
parent of the job's span. No trace context is stored when tracing is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import dramatiq
from sqlalchemy import text

from lianka.platform.db import Database, UnitOfWork, asyncpg_params
from lianka.platform.faults import fault_point
from lianka.platform.log import get_logger
from lianka.platform.models import OutboxMessage
from lianka.platform.tracing import TRACEPARENT, current_traceparent

log = get_logger(__name__)
_NS = uuid.UUID("6f1c3b1e-3d1a-4f62-9a55-1c6a7e0b2d10")


def message_id_for(outbox_id: int) -> str:
    return str(uuid.uuid5(_NS, f"outbox:{outbox_id}"))


async def enqueue(uow: UnitOfWork, actor: str, *, queue: str = "default", **payload: Any) -> None:
    """Queue ``actor(**payload)`` to run after ``uow`` commits (in the uow's tenant)."""
    traceparent = current_traceparent()
    if traceparent is not None:
        payload = {**payload, TRACEPARENT: traceparent}
    uow.session.add(OutboxMessage(tenant_id=uow.tenant_id, queue=queue, actor=actor, payload=payload))
    await uow.session.execute(text("NOTIFY lianka_outbox"))


async def relay_once(db: Database, broker: dramatiq.Broker, batch_size: int = 100) -> int:
    """Send one batch of committed, unsent messages; return how many were sent."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT id, tenant_id, queue, actor, payload, "
                    "extract(epoch FROM created_at)::float8 AS created FROM outbox WHERE sent_at IS NULL "
                    "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                ),
                {"n": batch_size},
            )
        ).all()
        if not rows:
            return 0
        for row in rows:
            kwargs = dict(row.payload)
            options = {
                "tenant_id": str(row.tenant_id) if row.tenant_id else None,
                "outbox_id": row.id,
                "outbox_created": row.created,  # the job's queue latency is measured from here
            }
            if (traceparent := kwargs.pop(TRACEPARENT, None)) is not None:
                options[TRACEPARENT] = traceparent
            broker.enqueue(
                dramatiq.Message(
                    queue_name=row.queue,
                    actor_name=row.actor,
                    args=(),
                    kwargs=kwargs,
                    options=options,
                    message_id=message_id_for(row.id),
                )
            )
            fault_point("relay.after_enqueue")
        await uow.session.execute(
            text("UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY(:ids)"),
            {"ids": [r.id for r in rows]},
        )
        await uow.commit()
        return len(rows)


async def relay_forever(
    db: Database,
    broker: dramatiq.Broker,
    *,
    batch_size: int,
    poll_seconds: float,
    listen_url: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Drain the outbox, then wait for a NOTIFY (or the poll interval) and drain again.

    The database going away is not the relay's end: a failed batch is retried after the poll
    interval, and the LISTEN connection is (re)opened whenever it is missing or closed — a relay
    started while PostgreSQL is down, or across a restart of it, polls meanwhile and listens again
    once it can (decision 0050: it used to exit when PostgreSQL was down at its start)."""
    stop = stop or asyncio.Event()
    wake = asyncio.Event()
    conn: Any = None
    try:
        while not stop.is_set():
            if listen_url and (conn is None or conn.is_closed()):
                conn = await _listen(listen_url, wake)
            try:
                sent = await relay_once(db, broker, batch_size)
            except Exception:
                log.exception("outbox relay batch failed; retrying")
                sent = 0
                await asyncio.sleep(poll_seconds)
            if sent:
                log.debug("outbox relayed", count=sent)
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
    finally:
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close()


async def _listen(url: str, wake: asyncio.Event) -> Any:
    """A connection listening for ``lianka_outbox`` that sets ``wake``; None when the database cannot
    be reached (the caller polls meanwhile and tries again on its next round)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(**asyncpg_params(url), timeout=5)
        await conn.add_listener("lianka_outbox", lambda *_: wake.set())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.warning("outbox relay cannot listen; polling", error=f"{type(exc).__name__}: {exc}")
        return None
    return conn
