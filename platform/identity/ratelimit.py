"""Counters in Redis for lockouts and rate limits (shared by every web process).

Keys hold hashes, never raw e-mails or phone numbers. A counter starts its window at the first hit
(fixed window): simple, and good enough to stop guessing.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

PREFIX = "lk:rl:"


def _key(kind: str, subject: str) -> str:
    return PREFIX + kind + ":" + hashlib.sha256(subject.encode()).hexdigest()[:32]


class Limiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def hit(self, kind: str, subject: str, window: int) -> int:
        """Count one event; returns the count in the current window."""
        key = _key(kind, subject)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=window, nx=True)  # opens the window (EXPIRE NX needs Redis 7)
            pipe.incr(key)
            _, count = await pipe.execute()
        return int(count)

    async def count(self, kind: str, subject: str) -> int:
        value = await self.redis.get(_key(kind, subject))
        return int(value) if value else 0

    async def retry_after(self, kind: str, subject: str) -> int:
        return max(1, int(await self.redis.ttl(_key(kind, subject))))

    async def reset(self, kind: str, subject: str) -> None:
        await self.redis.delete(_key(kind, subject))
