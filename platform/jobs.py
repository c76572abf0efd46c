"""Dramatiq broker and the consumer decorator.

The broker is configured from settings the first time it is needed; only the worker, the relay and
the scheduler need it (the web app writes outbox rows and never talks to Redis for jobs).

Delivery is at-least-once, so every actor must be idempotent. :func:`consumer` makes that the
default for database effects: it records the message id in ``processed_messages`` inside the same
transaction as the handler's writes; a redelivered message finds the row and does nothing.

A worker that dies (``kill -9``, a lost machine) leaves its fetched messages acknowledged to nobody.
dramatiq's Redis broker gives them back once the worker's heartbeat is older than
``heartbeat_timeout`` — but only during "maintenance", which it runs on a random 0.1 % of its Redis
commands, so a job could sit for many minutes. :class:`Recovery` makes every worker process beat and
sweep its queues every few seconds, so a dead worker's messages are back within the heartbeat
timeout + the requeue interval (settings ``job_heartbeat_timeout_ms``, ``job_requeue_interval_s``:
20 s and 5 s unless ``LIANKA_JOB_HEARTBEAT_TIMEOUT_MS`` / ``LIANKA_JOB_REQUEUE_INTERVAL_S`` say
otherwise; docs/decisions/0014-operations.md).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import AsyncIO, CurrentMessage
from sqlalchemy import text

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.log import bind_context, clear_context, get_logger
from lianka.platform.metrics import JOB_LATENCY
from lianka.platform.settings import get_settings
from lianka.platform.tracing import TRACEPARENT, job_span

log = get_logger(__name__)
_broker: dramatiq.Broker | None = None
_databases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Database] = weakref.WeakKeyDictionary()

# A worker whose last heartbeat is older than ``settings.job_heartbeat_timeout_ms`` is dead and its
# unacknowledged messages are requeued. Live workers beat every ``settings.job_requeue_interval_s``
# from a thread of their own, so a long job never looks dead; the margin covers a process stalled for
# a few seconds (a redelivery to a live worker would still be harmless: every actor is idempotent).
#: messages whose retries are exhausted stay in the dead-letter queue this long for an operator
DEAD_MESSAGE_TTL_MS = 7 * 86_400_000


def get_broker() -> dramatiq.Broker:
    global _broker
    if _broker is None:
        settings = get_settings()
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set (run through `lianka`, which starts embedded Redis)")
        broker = RedisBroker(
            url=settings.redis_url,
            namespace="lianka",  # type: ignore[no-untyped-call]
            heartbeat_timeout=settings.job_heartbeat_timeout_ms,
            dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        )
        broker.add_middleware(AsyncIO())
        broker.add_middleware(CurrentMessage())
        broker.add_middleware(Recovery(settings.job_requeue_interval_s))
        dramatiq.set_broker(broker)
        _broker = broker
    return _broker


def sweep(broker: RedisBroker) -> None:
    """Beat for this process and requeue the unacknowledged messages of dead workers, on every queue
    this broker declared (and their delay queues, where retries wait).

    This is dramatiq's own maintenance (its ``dispatch`` script with the maintenance flag set and a
    command that does nothing else), forced instead of left to chance. The argument layout is the
    script's, dramatiq 2.2 (pinned); ``tests/integration/test_job_recovery.py`` kills a worker for real.
    """
    dispatch = broker.scripts["dispatch"]
    for queue in sorted(broker.get_declared_queues() | broker.get_declared_delay_queues()):
        dispatch(
            keys=[broker.namespace],
            args=[
                "maintain",
                current_millis(),
                queue,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                1,
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            ],
        )


class Recovery(dramatiq.Middleware):
    """In each worker: a thread that runs :func:`sweep` every ``interval`` seconds until shutdown."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stops: dict[int, threading.Event] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        stop = self._stops[id(worker)] = threading.Event()

        def loop() -> None:
            while True:
                try:
                    sweep(broker)
                except Exception as exc:  # Redis away for a moment: the next sweep tries again
                    log.warning("job recovery sweep failed", error=f"{type(exc).__name__}: {exc}")
                if stop.wait(self.interval):
                    return

        threading.Thread(target=loop, name="lianka-job-recovery", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        stop = self._stops.pop(id(worker), None)
        if stop is not None:
            stop.set()


def get_database() -> Database:
    """The database handle of the running event loop (asyncpg connections belong to one loop; a
    worker has one loop for its life, tests start several)."""
    loop = asyncio.get_running_loop()
    db = _databases.get(loop)
    if db is None:
        db = _databases[loop] = Database.from_settings(get_settings())
    return db


Handler = Callable[..., Awaitable[object]]
#: every consumer's handler by actor name: ``lianka jobs run`` calls a periodic one directly
HANDLERS: dict[str, Handler] = {}


def consumer(*, queue: str = "default", max_retries: int = 10, **actor_options: Any) -> Callable[[Handler], Any]:
    """Declare an idempotent dramatiq actor whose handler gets a tenant-scoped unit of work.

    The handler is ``async def handler(uow, **payload)``; it must not commit — the decorator
    commits its writes together with the message's inbox row.
    """

    def decorate(fn: Handler) -> Any:
        name = fn.__name__

        @functools.wraps(fn)
        async def run(**payload: Any) -> None:
            message = CurrentMessage.get_current_message()
            if message is None:
                raise RuntimeError("consumer called outside a dramatiq worker")
            tenant = message.options.get("tenant_id")
            tenant_id = uuid.UUID(tenant) if tenant else None
            created = message.options.get("outbox_created")
            if isinstance(created, int | float) and not message.options.get("retries"):  # first try: queue wait
                JOB_LATENCY.observe(max(0.0, time.time() - created))
            bind_context(message_id=message.message_id, actor=name)
            try:
                with job_span(name, message.options.get(TRACEPARENT), **{"messaging.message.id": message.message_id}):
                    await _apply(name, fn, tenant_id, message.message_id, payload)
            finally:
                clear_context()

        HANDLERS[name] = fn
        declare: Any = dramatiq.actor(
            actor_name=name, queue_name=queue, max_retries=max_retries, broker=get_broker(), **actor_options
        )
        return declare(run)

    return decorate


async def _apply(name: str, fn: Handler, tenant_id: uuid.UUID | None, message_id: str, payload: dict[str, Any]) -> None:
    """One delivery of a consumer's message: its handler's writes and the inbox row, one transaction."""
    async with get_database().uow(tenant_id, system=tenant_id is None) as uow:
        if not await claim(uow, uuid.UUID(message_id), name):
            log.info("duplicate delivery ignored")
            return
        done = await fn(uow, **payload)
        if "fire_time" in payload:  # a scheduled tick: its run is recorded with its effects
            from lianka.platform.periodic import record_tick

            await record_tick(uow, name, payload["fire_time"], done)
        await uow.commit()


async def claim(uow: UnitOfWork, message_id: uuid.UUID, actor: str) -> bool:
    """Record ``message_id`` as processed in ``uow``; False when it already was."""
    row = await uow.session.execute(
        text(
            "INSERT INTO processed_messages (message_id, tenant_id, actor) VALUES (:m, :t, :a) "
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
        ),
        {"m": message_id, "t": uow.tenant_id, "a": actor},
    )
    return row.first() is not None
