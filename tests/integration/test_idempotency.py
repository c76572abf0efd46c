"""Idempotency-Key: a replay returns the first response, a different request with the key is a 409,
ten concurrent twins run the work once, and an error does not burn the key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from lianka.platform import idempotency
from lianka.platform.db import Database
from lianka.platform.errors import BadRequest, IdempotencyConflict

pytestmark = pytest.mark.integration


async def _work(db: Database, tenant: uuid.UUID, key: str, body: dict[str, int], fail: bool = False) -> object:
    """A toy write: creates a branch once per key and answers with its code."""
    h = idempotency.fingerprint("branch.create", body)
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, "branch.create", key, h)
        if replay is not None:
            return replay.body
        code = f"I{body['n']}"
        await uow.session.execute(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, 'idem')"), {"t": tenant, "c": code}
        )
        if fail:
            raise RuntimeError("business rule failed")
        response = {"code": code}
        await idempotency.store(uow, "branch.create", key, 201, response)
        await uow.commit()
        return response


async def _count(db: Database, tenant: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM branches WHERE name = 'idem'")) or 0)


async def test_replay_returns_the_first_response(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    first = await _work(db, t, "k-1", {"n": 1})
    again = await _work(db, t, "k-1", {"n": 1})
    assert first == again == {"code": "I1"}
    assert await _count(db, t) == 1


async def test_same_key_different_request_is_a_conflict(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    await _work(db, t, "k-2", {"n": 2})
    with pytest.raises(IdempotencyConflict):
        await _work(db, t, "k-2", {"n": 3})
    assert await _count(db, t) == 1


async def test_keys_are_per_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    await _work(db, a, "shared", {"n": 1})
    await _work(db, b, "shared", {"n": 2})  # not a conflict: another tenant's key space
    assert await _count(db, a) == 1
    assert await _count(db, b) == 1


async def test_ten_concurrent_twins_do_the_work_once(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    results = await asyncio.gather(*[_work(db, t, "k-c", {"n": 7}) for _ in range(10)])
    assert all(r == {"code": "I7"} for r in results)
    assert await _count(db, t) == 1


async def test_an_error_does_not_burn_the_key(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    with pytest.raises(RuntimeError):
        await _work(db, t, "k-e", {"n": 9}, fail=True)
    assert await _work(db, t, "k-e", {"n": 9}) == {"code": "I9"}
    assert await _count(db, t) == 1


@pytest.mark.parametrize("key", ["", None, "x" * 201, "bad\nkey"])
def test_bad_keys(key: str | None) -> None:
    with pytest.raises(BadRequest):
        idempotency.check_key(key)
