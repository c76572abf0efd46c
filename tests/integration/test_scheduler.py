"""One active scheduler; one enqueue per tick even with two schedulers racing."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import cast

import pytest
from dramatiq.brokers.redis import RedisBroker
from redis import Redis

from lianka.platform.jobs import get_broker
from lianka.platform.scheduler import LeaderLease, Periodic, fire

pytestmark = pytest.mark.integration


@pytest.fixture
def redis(settings) -> Redis:
    return Redis.from_url(settings.redis_url)


def test_only_one_leader_at_a_time(redis: Redis) -> None:
    key = f"test:leader:{uuid.uuid4().hex}"
    a, b = LeaderLease(redis, key, lease_ms=2000), LeaderLease(redis, key, lease_ms=2000)
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.renew()
    assert not b.renew()  # b cannot extend a lease it does not hold
    b.release()  # nor release it
    assert redis.get(key) == a.token.encode()
    a.release()
    assert b.try_acquire()


def test_expired_leader_is_replaced(redis: Redis) -> None:
    key = f"test:leader:{uuid.uuid4().hex}"
    a, b = LeaderLease(redis, key, lease_ms=50), LeaderLease(redis, key, lease_ms=2000)
    assert a.try_acquire()
    redis.pexpire(key, 1)  # a "dies": its lease lapses without renewal
    threading.Event().wait(0.01)
    assert b.try_acquire()
    assert not a.renew()


def test_a_tick_is_enqueued_once(redis: Redis) -> None:
    broker = cast(RedisBroker, get_broker())  # the app's broker is always Redis's
    queue = f"sched_test_{uuid.uuid4().hex[:8]}"
    broker.declare_queue(queue)
    job = Periodic(name=f"job-{uuid.uuid4().hex[:8]}", actor="prune_outbox", cron="* * * * *", queue=queue)
    tick = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    results = []
    threads = [threading.Thread(target=lambda: results.append(fire(redis, broker, job, tick))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert fire(redis, broker, job, tick.replace(minute=1)) is True
    assert broker.client.llen(f"lianka:{queue}") == 2
