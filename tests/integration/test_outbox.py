"""The transactional outbox: nothing sent on rollback, nothing lost on a crash, nothing applied twice.

Real PostgreSQL, real Redis, a real dramatiq worker and, for the crash, a real relay process killed
with SIGKILL right after it handed a message to Redis and before it could commit.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import dramatiq
import pytest
from sqlalchemy import text

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer, get_broker
from lianka.platform.outbox import enqueue, relay_forever, relay_once

pytestmark = pytest.mark.integration

broker = get_broker()


@consumer(queue="outbox_test")
async def outbox_test_record(uow: UnitOfWork, code: str, **_: Any) -> None:
    """Effect that would break (unique key) if a message were applied twice."""
    await uow.session.execute(
        text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, 'from outbox')"),
        {"t": uow.tenant_id, "c": code},
    )


async def _write(db: Database, tenant: uuid.UUID, codes: list[str], *, commit: bool) -> None:
    async with db.uow(tenant) as uow:
        for code in codes:
            await enqueue(uow, "outbox_test_record", queue="outbox_test", code=code)
        if commit:
            await uow.commit()


async def _unsent(db: Database, tenant: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) or 0)


async def _drain(db: Database) -> int:
    total = 0
    while sent := await relay_once(db, broker, batch_size=50):
        total += sent
    return total


def _work_until_idle(timeout: float = 60) -> None:
    worker = dramatiq.Worker(broker, queues={"outbox_test"}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join("outbox_test", timeout=int(timeout * 1000))
        worker.join()
    finally:
        worker.stop()


async def _codes(db: Database, tenant: uuid.UUID) -> list[str]:
    async with db.uow(tenant) as uow:
        return list(
            (
                await uow.session.execute(text("SELECT code FROM branches WHERE name = 'from outbox' ORDER BY code"))
            ).scalars()
        )


async def test_rollback_sends_nothing(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    await _write(db, t, ["RB1", "RB2"], commit=False)
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM outbox")) == 0
    await _drain(db)
    await asyncio.to_thread(_work_until_idle)
    assert await _codes(db, t) == []


async def test_committed_messages_are_delivered_once(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    await _write(db, t, ["OK1", "OK2", "OK3"], commit=True)
    assert await _drain(db) >= 3
    assert await _unsent(db, t) == 0
    await asyncio.to_thread(_work_until_idle)
    assert await _codes(db, t) == ["OK1", "OK2", "OK3"]


async def test_redelivered_message_is_applied_once(db: Database, tenant_factory) -> None:
    """Send the very same outbox row twice (as a relay restarted before its commit would)."""
    t = await tenant_factory()
    await _write(db, t, ["DUP"], commit=True)
    async with db.uow(t) as uow:
        await uow.session.execute(text("UPDATE outbox SET sent_at = NULL"))
        await uow.commit()
    await _drain(db)
    async with db.uow(t) as uow:  # forget that it was sent: the relay "crashed" before its commit
        await uow.session.execute(text("UPDATE outbox SET sent_at = NULL"))
        await uow.commit()
    await _drain(db)
    await asyncio.to_thread(_work_until_idle)
    assert await _codes(db, t) == ["DUP"]
    async with db.uow(t) as uow:
        assert (
            await uow.session.scalar(text("SELECT count(*) FROM processed_messages WHERE actor = 'outbox_test_record'"))
            == 1
        )


async def test_relay_killed_mid_batch_loses_nothing(db: Database, tenant_factory, project_root) -> None:
    t = await tenant_factory()
    codes = [f"K{i:03d}" for i in range(40)]
    await _write(db, t, codes, commit=True)
    env = {**os.environ, "LIANKA_FAULTS": "relay.after_enqueue=13", "LIANKA_RELAY_BATCH_SIZE": "10"}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "lianka.cli", "relay"],
        env=env,
        cwd=project_root,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]  # died by SIGKILL inside batch 2
    unsent = await _unsent(db, t)
    assert unsent == 30  # batch 1 committed; batch 2 handed 3 messages to Redis but never committed
    started = time.monotonic()
    assert await _drain(db) >= 30
    assert await _unsent(db, t) == 0
    await asyncio.to_thread(_work_until_idle)
    assert await _codes(db, t) == codes
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM processed_messages")) == 40
    assert time.monotonic() - started < 90


async def test_relay_that_cannot_listen_polls_instead_of_exiting(db: Database, tenant_factory) -> None:
    """PostgreSQL unreachable for the LISTEN connection (down when the relay starts, or restarted under
    it): the relay keeps relaying by polling and tries to listen again, instead of exiting (decision
    0050; `lianka relay` started during a database restart used to die here)."""
    t = await tenant_factory()
    await _write(db, t, ["POLL1", "POLL2"], commit=True)
    stop = asyncio.Event()
    relay = asyncio.create_task(
        relay_forever(
            db,
            broker,
            batch_size=10,
            poll_seconds=0.1,
            listen_url="postgresql+asyncpg://nobody@/lianka?host=/nonexistent-lianka-socket-dir",
            stop=stop,
        )
    )
    try:
        deadline = time.monotonic() + 30
        while await _unsent(db, t):
            assert not relay.done(), relay.exception()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        await _write(db, t, ["POLL3"], commit=True)  # a later message too: the relay is still at work
        while await _unsent(db, t):
            assert not relay.done(), relay.exception()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(relay, 10)
    await asyncio.to_thread(_work_until_idle)
    assert await _codes(db, t) == ["POLL1", "POLL2", "POLL3"]
