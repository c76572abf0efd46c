"""Counters in Redis for lockouts and rate limits (shared by every web process).

Keys hold hashes, never raw e-mails or phone numbers. A counter starts its window at the first hit
(fixed window): simple, and good enough to stop guessing.

Count *before* the expensive check: ``hit`` is one atomic ``INCR``, so of N parallel attempts
exactly the first ``limit`` see a count within the limit, whatever the interleaving. Reading a count
and incrementing it after a slow password hash lets every parallel attempt through.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

PREFIX = "lk:rl:"

#: take one attempt back without creating the key (a bare DECR would make a key with no expiry)
_UNDO = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


def _key(kind: str, subject: str) -> str:
    return PREFIX + kind + ":" + hashlib.sha256(subject.encode()).hexdigest()[:32]


class Limiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def hit(self, kind: str, subject: str, window: int) -> int:
        """Count one event; returns the count in the current window (this event included)."""
        key = _key(kind, subject)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=window, nx=True)  # opens the window (EXPIRE NX needs Redis 7)
            pipe.incr(key)
            _, count = await pipe.execute()
        return int(count)

    async def undo(self, kind: str, subject: str) -> None:
        """Take back one event counted by :meth:`hit` (an attempt that turned out to be legitimate)."""
        await self.redis.eval(_UNDO, 1, _key(kind, subject))

    async def once(self, kind: str, subject: str, window: int) -> bool:
        """True for the first caller in ``window`` seconds, False for every other (e.g. one notice
        per lockout)."""
        return bool(await self.redis.set(_key(kind, subject), 1, ex=window, nx=True))

    async def count(self, kind: str, subject: str) -> int:
        value = await self.redis.get(_key(kind, subject))
        return int(value) if value else 0

    async def retry_after(self, kind: str, subject: str) -> int:
        return max(1, int(await self.redis.ttl(_key(kind, subject))))

    async def reset(self, kind: str, subject: str) -> None:
        await self.redis.delete(_key(kind, subject))
