"""A short-lived, per-process cache of API-client principals (POS terminals, integrations).

A till sends every request with the same client token; reading the client row and the revocation
list for each one costs a transaction (four round trips) on the hottest path we have. So a verified
client principal is remembered for ``ttl`` seconds, keyed by (merchant, client row, token id), and
never past the client's own expiry. The token's signature and ``exp`` are still checked on every
request; only the database lookup is saved.

Revocation stays prompt (docs/decisions/0011-pos-hot-path.md):

- in the process that revokes, the cache is dropped at once (:func:`revoked`);
- every process compares a generation counter in Redis at most every ``recheck`` seconds and drops
  its cache when another process has bumped it — so a revoked client or token stops working
  everywhere within about a second;
- when Redis cannot be read the cache is not used at all (the database decides).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lianka.platform.identity.principal import Principal

GENERATION_KEY = "lianka:auth:generation"
log = structlog.get_logger(__name__)

CacheKey = tuple[uuid.UUID, uuid.UUID, str]


@dataclass
class _Entry:
    principal: Principal
    until: float  # monotonic
    client_expires_at: datetime | None


class ClientPrincipalCache:
    def __init__(self, ttl: float = 30.0, recheck: float = 1.0) -> None:
        self.ttl = ttl
        self.recheck = recheck
        self._entries: dict[CacheKey, _Entry] = {}
        self._generation: bytes | str | None = None
        self._checked_at = float("-inf")
        #: bumped by every clear: a lookup that began before a revocation must not cache its result
        self.epoch = 0

    def clear(self) -> None:
        self._entries.clear()
        self.epoch += 1

    async def _fresh(self, redis: Redis) -> bool:
        """Whether cached entries may be used: the generation was checked within ``recheck``."""
        now = time.monotonic()
        if now - self._checked_at < self.recheck:
            return True
        try:
            generation = await redis.get(GENERATION_KEY)
        except (RedisError, OSError) as exc:
            log.warning("auth_cache.redis_unavailable", error=type(exc).__name__)
            self.clear()
            return False
        if generation != self._generation:
            self.clear()
            self._generation = generation
        self._checked_at = now
        return True

    async def get(self, redis: Redis, key: CacheKey) -> Principal | None:
        if self.ttl <= 0 or not await self._fresh(redis):
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.until < time.monotonic() or (
            entry.client_expires_at is not None and entry.client_expires_at <= datetime.now(UTC)
        ):
            del self._entries[key]
            return None
        return entry.principal

    def put(self, key: CacheKey, principal: Principal, client_expires_at: datetime | None, *, epoch: int) -> None:
        """Remember a principal read from the database by a lookup that began at ``epoch``."""
        if self.ttl <= 0 or epoch != self.epoch:
            return
        if len(self._entries) > 10_000:  # many terminals, or someone minting tokens: start over
            self._entries.clear()
        self._entries[key] = _Entry(principal, time.monotonic() + self.ttl, client_expires_at)


#: one per process: every app in the process sees a revocation made by any of them
clients = ClientPrincipalCache()


async def revoked(redis: Redis) -> None:
    """Call after a revocation commits: this process forgets at once, the others within ``recheck``."""
    clients.clear()
    try:
        await redis.incr(GENERATION_KEY)
    except (RedisError, OSError) as exc:  # the others fall back to their TTL
        log.warning("auth_cache.publish_failed", error=type(exc).__name__)
