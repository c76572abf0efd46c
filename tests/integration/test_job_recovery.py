"""A job in flight when its worker is killed comes back and completes exactly once.

Real dramatiq worker processes on the real broker configuration (``lianka.platform.jobs``): two
workers run; one takes a job that holds its transaction open. While both live, the job is not handed
to the other, however long it runs; after a real ``kill -9`` of the process running it, the other
worker gets it back and completes it; its effect and its inbox row exist once.

The workers run with a 6 s heartbeat timeout and a 1.5 s sweep (``LIANKA_JOB_*``) instead of the
default 20 s / 5 s: the same mechanism, about three times faster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.jobs import get_broker

pytestmark = pytest.mark.integration
QUEUE = "recovery_test"
HEARTBEAT_TIMEOUT_MS = 6_000
REQUEUE_INTERVAL_S = 1.5


def _worker(project_root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "lianka.actors",
            "tests.integration.recovery_actors",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            QUEUE,
        ],
        cwd=project_root,
        env={
            **os.environ,
            "LIANKA_JOB_HEARTBEAT_TIMEOUT_MS": str(HEARTBEAT_TIMEOUT_MS),
            "LIANKA_JOB_REQUEUE_INTERVAL_S": str(REQUEUE_INTERVAL_S),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _release(marker: Path) -> None:
    Path(f"{marker}.go").touch()


def _pids(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()] if marker.exists() else []


async def _booked(db: Database, tenant: uuid.UUID, code: str) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM branches WHERE code = :c"), {"c": code}) or 0)


async def test_killed_workers_job_is_redelivered_after_the_heartbeat_timeout_and_applied_once(
    db: Database, tenant_factory, project_root: Path, tmp_path: Path
) -> None:
    tenant, code, marker = await tenant_factory(), f"R{uuid.uuid4().hex[:8]}", tmp_path / "in-flight"
    workers = [_worker(project_root), _worker(project_root)]
    try:
        message = get_broker().enqueue(
            dramatiq.Message(
                queue_name=QUEUE,
                actor_name="recovery_test_job",
                args=(),
                kwargs={"code": code, "marker": str(marker)},
                options={"tenant_id": str(tenant)},
            )
        )
        deadline = time.monotonic() + 60
        while not _pids(marker):
            assert time.monotonic() < deadline, "no worker took the job"
            await asyncio.sleep(0.2)
        # a long job on a live worker: never handed to the other one
        await asyncio.sleep(HEARTBEAT_TIMEOUT_MS / 1000 + 2 * REQUEUE_INTERVAL_S)
        [first] = _pids(marker)
        assert await _booked(db, tenant, code) == 0  # still in flight, uncommitted

        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        _release(marker)  # the next delivery may finish
        while await _booked(db, tenant, code) == 0:
            limit = 30 + HEARTBEAT_TIMEOUT_MS / 1000 + REQUEUE_INTERVAL_S  # + a loaded machine's slack
            assert time.monotonic() - killed < limit, f"not redelivered (pids {_pids(marker)})"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2 * REQUEUE_INTERVAL_S)  # time for a wrong second delivery to show
        pids = _pids(marker)
        assert len(pids) == 2, pids
        assert pids[1] != first
        assert await _booked(db, tenant, code) == 1
        async with db.uow(tenant) as uow:
            assert (
                await uow.session.scalar(
                    text("SELECT count(*) FROM processed_messages WHERE message_id = :m"),
                    {"m": uuid.UUID(message.message_id)},
                )
                == 1
            )
    finally:
        _release(marker)
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()
