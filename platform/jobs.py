"""Dramatiq broker and the consumer decorator.

The broker is configured from settings the first time it is needed; only the worker, the relay and
the scheduler need it (the web app writes outbox rows and never talks to Redis for jobs).

Delivery is at-least-once, so every actor must be idempotent. :func:`consumer` makes that the
default for database effects: it records the message id in ``processed_messages`` inside the same
transaction as the handler's writes; a redelivered message finds the row and does nothing.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, CurrentMessage
from sqlalchemy import text

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.log import bind_context, clear_context, get_logger
from lianka.platform.settings import get_settings

log = get_logger(__name__)
_broker: dramatiq.Broker | None = None
_databases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Database] = weakref.WeakKeyDictionary()


def get_broker() -> dramatiq.Broker:
    global _broker
    if _broker is None:
        settings = get_settings()
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set (run through `lianka`, which starts embedded Redis)")
        broker = RedisBroker(url=settings.redis_url, namespace="lianka")  # type: ignore[no-untyped-call]
        broker.add_middleware(AsyncIO())
        broker.add_middleware(CurrentMessage())
        dramatiq.set_broker(broker)
        _broker = broker
    return _broker


def get_database() -> Database:
    """The database handle of the running event loop (asyncpg connections belong to one loop; a
    worker has one loop for its life, tests start several)."""
    loop = asyncio.get_running_loop()
    db = _databases.get(loop)
    if db is None:
        db = _databases[loop] = Database.from_settings(get_settings())
    return db


Handler = Callable[..., Awaitable[None]]


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
            bind_context(message_id=message.message_id, actor=name)
            try:
                async with get_database().uow(tenant_id, system=tenant_id is None) as uow:
                    if not await claim(uow, uuid.UUID(message.message_id), name):
                        log.info("duplicate delivery ignored")
                        return
                    await fn(uow, **payload)
                    await uow.commit()
            finally:
                clear_context()

        declare: Any = dramatiq.actor(actor_name=name, queue_name=queue, max_retries=max_retries,
                                      broker=get_broker(), **actor_options)
        return declare(run)

    return decorate


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
