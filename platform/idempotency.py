"""Idempotent writes: the ``Idempotency-Key`` contract for POS and API writes.

``claim`` runs first in the business transaction. It inserts the key; the unique index makes a
concurrent twin wait until the first transaction ends. Then:

* the key is new → the caller does the work and calls ``store`` with its response, in the same
  transaction, so the response exists exactly when the effects do;
* the key exists with the same request fingerprint → the stored response is returned, nothing runs;
* the key exists with a different fingerprint → 409 ``IdempotencyConflict``.

A request that fails with an error rolls back its key too: errors are not replayed, a retry after
the member topped up may succeed. Keys are scoped per tenant and per operation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import BadRequest, IdempotencyConflict

MAX_KEY = 200
T = TypeVar("T")


@dataclass(frozen=True)
class StoredResponse:
    #: None only when the key is claimed again inside the claiming transaction, before :func:`store`
    status: int | None
    body: Any


@dataclass(frozen=True)
class KeyRecord:
    """Row type of ``idempotency_keys`` (migration 0004) as a retry reads it. The primary key is
    (``tenant_id``, ``scope``, ``key``); ``request_hash`` is the first request's :func:`fingerprint`;
    ``status`` and ``body`` are its response, NULL until :func:`store` runs in the claiming
    transaction — so a committed row always has them. ``created_at`` is when the key was claimed."""

    request_hash: str
    status: int | None
    body: Any

    @classmethod
    def of(cls, row: Any) -> KeyRecord:
        body = row["body"]
        return cls(
            row["request_hash"], row["status"], msgspec.json.decode(body) if isinstance(body, str | bytes) else body
        )


# the statements on idempotency_keys (the POS sale also stores its response inside its last statement,
# tenants/pos/queries.py, and claims its key inside its context read: claim_sql)
def claim_sql(tenant: int, first: int) -> str:
    """The claim (``INSERT … ON CONFLICT DO NOTHING RETURNING true``: a row only when this request
    owns the key) with the tenant as ``$tenant`` and scope, key and request hash as ``$first`` … —
    for a hot path that sends it as a data-modifying CTE of its first read (one round trip)."""
    return (
        f"INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash) VALUES (${tenant}, ${first}, "
        f"${first + 1}, ${first + 2}) ON CONFLICT (tenant_id, scope, key) DO NOTHING RETURNING true"
    )


_CLAIM = claim_sql(1, 2)
_READ = "SELECT request_hash, status, body FROM idempotency_keys WHERE tenant_id = $1 AND scope = $2 AND key = $3"
_STORE = "UPDATE idempotency_keys SET status = $1, body = $2::jsonb WHERE tenant_id = $3 AND scope = $4 AND key = $5"


@dataclass(frozen=True)
class Claim:
    """What a request claims: its operation (``scope``), its Idempotency-Key and its fingerprint."""

    scope: str
    key: str
    request_hash: str

    @property
    def args(self) -> tuple[str, str, str]:
        """The parameters of :func:`claim_sql` after the tenant, in order."""
        return (self.scope, self.key, self.request_hash)


def fingerprint(*parts: object) -> str:
    """A stable hash of the request: canonical JSON of its parts (msgspec sorts nothing, so we do)."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()


def check_key(key: str | None) -> str:
    if not key:
        raise BadRequest("this write needs an Idempotency-Key header")
    if len(key) > MAX_KEY or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be printable and at most {MAX_KEY} characters")
    return key


async def claim(uow: UnitOfWork, scope: str, key: str, request_hash: str) -> StoredResponse | None:
    """None when this request owns the key; the stored response when it is a replay."""
    check_key(key)
    conn = await uow.driver()  # every POS write starts here: straight to the driver
    if await conn.fetchval(_CLAIM, uow.tenant_id, scope, key, request_hash):
        return None
    return await replayed(uow, Claim(scope, key, request_hash))


async def replayed(uow: UnitOfWork, claim: Claim) -> StoredResponse:
    """The stored response for a key this request did not win (its claim returned no row: the key's
    first transaction has committed, so the row is there with its response) — or 409 when the key
    was used for a different request."""
    record = KeyRecord.of(await (await uow.driver()).fetchrow(_READ, uow.tenant_id, claim.scope, claim.key))
    if record.request_hash != claim.request_hash:
        raise IdempotencyConflict(f"Idempotency-Key {claim.key!r} was used for a different {claim.scope} request")
    return StoredResponse(record.status, record.body)


async def store(uow: UnitOfWork, scope: str, key: str, status: int, body: Any) -> None:
    await (await uow.driver()).execute(_STORE, status, msgspec.json.encode(body).decode(), uow.tenant_id, scope, key)


async def once(
    db: Database,
    tenant: uuid.UUID,
    scope: str,
    key: str,
    request: Sequence[object],
    response: type[T],
    work: Callable[[UnitOfWork], Awaitable[T]],
) -> tuple[T, bool]:
    """An idempotent write as one use case, the contract above written once: the key is claimed first
    in the transaction; a retry gets the stored response (decoded as ``response``) and nothing runs;
    otherwise ``work`` (a building block: it never commits) makes the response, which is stored with
    status 201 and committed with everything ``work`` wrote. ``request`` is what the fingerprint
    covers besides ``scope``. Returns (response, replayed)."""
    check_key(key)
    request_hash = fingerprint(scope, *request)
    async with db.uow(tenant) as uow:
        stored = await claim(uow, scope, key, request_hash)
        if stored is not None:
            return msgspec.convert(stored.body, response), True
        out = await work(uow)
        await store(uow, scope, key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False
