"""``ledger.post_alone``: one entry as its own one-statement transaction (decision 0053)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import InsufficientFunds, UnknownAccount
from lianka.alliance.ledger.verify import verify
from lianka.platform.db import Database
from lianka.platform.errors import IdempotencyConflict
from tests.integration.ledger.conftest import Book, make_book

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def _balance(db: Database, b: Book) -> int:
    async with db.uow(b.tenant) as uow:
        return await ledger.balance(uow, b.member)


async def _alone(db: Database, b: Book, n: int, key: str) -> ledger.Entry:
    return await ledger.post_alone(
        db, b.tenant, kind="earn", business_time=T0, key=key, legs=[ledger.Leg(b.member, n), ledger.Leg(b.issued, -n)]
    )


async def test_books_once_and_replays(db: Database, book: Book, owner_engine) -> None:
    key = uuid.uuid4().hex
    first = await _alone(db, book, 30, key)
    assert not first.replayed and first.period == "2026-11"
    assert await _balance(db, book) == 30
    again = await _alone(db, book, 30, key)  # a retry books nothing and returns the same entry
    assert again.id == first.id and again.replayed
    assert await _balance(db, book) == 30
    with pytest.raises(IdempotencyConflict):
        await _alone(db, book, 31, key)
    assert await _balance(db, book) == 30
    async with owner_engine.connect() as conn:
        assert (await verify(conn)).ok


async def test_a_refused_entry_changes_nothing(db: Database, book: Book) -> None:
    await _alone(db, book, 10, uuid.uuid4().hex)
    with pytest.raises(InsufficientFunds):
        await _alone(db, book, -11, uuid.uuid4().hex)
    assert await _balance(db, book) == 10


async def test_another_tenants_account_is_unknown(db: Database, tenant_factory) -> None:
    a, b = await make_book(db, await tenant_factory()), await make_book(db, await tenant_factory())
    with pytest.raises(UnknownAccount):
        await ledger.post_alone(
            db,
            a.tenant,
            kind="earn",
            business_time=T0,
            key="x",
            legs=[ledger.Leg(b.member, 5), ledger.Leg(a.issued, -5)],
        )
    assert await _balance(db, b) == 0
