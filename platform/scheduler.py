"""Periodic jobs: APScheduler cron triggers that enqueue dramatiq messages.

Exactly one scheduler is active at a time: each instance must hold a Redis leader lease
(``SET NX PX``, renewed every few seconds, released on exit) before it fires anything; a standby
instance takes over within one lease period when the leader dies. As a second guard, every firing
is claimed with ``SET NX`` on ``(job, fire time)`` so even two leaders in a split second cannot
enqueue the same tick twice. Jobs themselves are idempotent actors, so a late duplicate is harmless.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import dramatiq
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from redis import Redis

from lianka.platform.db import Database
from lianka.platform.log import get_logger

log = get_logger(__name__)
LEADER_KEY = "lianka:scheduler:leader"
LEASE_MS = 15_000


@dataclass(frozen=True)
class Target:
    """One unit of a periodic job's work: a merchant, a ledger book, or the whole platform (``id`` None)."""

    id: uuid.UUID | None
    label: str


#: the units a job works through as of a time, limited to one merchant when one is given
Targets: TypeAlias = Callable[[Database, datetime, uuid.UUID | None], Awaitable[list[Target]]]
#: one unit's work as of a time; how many things it did (None when the job does not count)
Step: TypeAlias = Callable[[Database, Target, datetime], Awaitable[int | None]]


@dataclass(frozen=True)
class Periodic:
    """A job the scheduler fires on ``cron`` by enqueueing ``actor``. Jobs with ``targets`` and
    ``step`` also run by hand (``lianka jobs run``, see ``lianka.platform.periodic``)."""

    name: str
    actor: str
    cron: str
    queue: str = "default"
    timezone: str = "Asia/Shanghai"
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    targets: Targets | None = None
    step: Step | None = None


REGISTRY: dict[str, Periodic] = {}


def periodic(
    name: str,
    actor: str,
    cron: str,
    *,
    queue: str = "default",
    timezone: str = "Asia/Shanghai",
    summary: str = "",
    targets: Targets | None = None,
    step: Step | None = None,
    **kwargs: Any,
) -> Periodic:
    """Register a periodic job (called at import time by each area's ``jobs`` module)."""
    job = Periodic(name, actor, cron, queue, timezone, kwargs, summary, targets, step)
    REGISTRY[name] = job
    return job


class LeaderLease:
    def __init__(self, redis: Redis, key: str = LEADER_KEY, lease_ms: int = LEASE_MS) -> None:
        self.redis, self.key, self.lease_ms = redis, key, lease_ms
        self.token = uuid.uuid4().hex
        self._renew = redis.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
        )
        self._release = redis.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
        )

    def try_acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.lease_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.token, self.lease_ms]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])


def fire(redis: Redis, broker: dramatiq.Broker, job: Periodic, fire_time: datetime) -> bool:
    """Enqueue one tick of ``job`` unless this tick was already enqueued (by anyone)."""
    tick = fire_time.isoformat()
    if not redis.set(f"lianka:scheduler:tick:{job.name}:{tick}", "1", nx=True, ex=7 * 86400):
        return False
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lianka:periodic:{job.name}:{tick}"))
    broker.enqueue(
        dramatiq.Message(
            queue_name=job.queue,
            actor_name=job.actor,
            args=(),
            kwargs={**job.kwargs, "fire_time": tick},
            options={},
            message_id=message_id,
        )
    )
    log.info("periodic job enqueued", job=job.name, fire_time=tick)
    return True


def run_scheduler(redis: Redis, broker: dramatiq.Broker, stop: threading.Event | None = None) -> None:
    """Block: wait for leadership, then run the registry's triggers until stopped or deposed."""
    stop = stop or threading.Event()
    lease = LeaderLease(redis)
    while not stop.is_set():
        if not lease.try_acquire():
            stop.wait(LEASE_MS / 3000)
            continue
        log.info("scheduler is leader", jobs=sorted(REGISTRY))
        sched = BlockingScheduler()
        for job in REGISTRY.values():
            trigger = CronTrigger.from_crontab(job.cron, timezone=job.timezone)

            def _run(job: Periodic = job, trigger: CronTrigger = trigger) -> None:
                fire(redis, broker, job, datetime.now(trigger.timezone).replace(second=0, microsecond=0))

            sched.add_job(_run, trigger, id=job.name, misfire_grace_time=300, coalesce=True)
        runner = threading.Thread(target=sched.start, daemon=True)
        runner.start()
        try:
            while not stop.wait(LEASE_MS / 3000):
                if not lease.renew():
                    log.warning("scheduler lost its leader lease; standing by")
                    break
        finally:
            sched.shutdown(wait=False)
            lease.release()
        time.sleep(0.1)
