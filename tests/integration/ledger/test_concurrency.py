"""Many real connections at once: no overdraft, one entry per idempotency key, no deadlocks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import InsufficientFunds
from lianka.platform.db import Database
from tests.integration.ledger.conftest import Book, make_book

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def _post(db: Database, b: Book, amount: int, key: str) -> ledger.Entry:
    async with db.uow(b.tenant) as uow:
        e = await ledger.post(
            uow,
            kind="redeem" if amount < 0 else "earn",
            business_time=T0,
            key=key,
            legs=[ledger.Leg(b.member, amount), ledger.Leg(b.issued, -amount)],
        )
        await uow.commit()
        return e


async def test_fifty_concurrent_debits_only_the_affordable_ones_succeed(db: Database, tenant_factory, settings) -> None:
    b = await make_book(db, await tenant_factory())
    for i in range(7):  # 7 lots of 100 = 700: affords 23 debits of 30 (690), not 24
        await _post(db, b, 100, f"seed-{i}")

    async def debit(i: int) -> bool:
        try:
            await _post(db, b, -30, f"debit-{i}")
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*[debit(i) for i in range(50)])
    assert sum(results) == 23
    async with db.uow(b.tenant) as uow:
        assert await ledger.balance(uow, b.member) == 10
        assert sum(x.remaining for x in await ledger.lots(uow, b.member)) == 10
        assert await uow.session.scalar(text("SELECT count(*) FROM ledger_entries WHERE kind = 'redeem'")) == 23


async def test_same_key_ten_times_concurrently_is_one_entry(db: Database, tenant_factory) -> None:
    b = await make_book(db, await tenant_factory())
    key = f"pos-{uuid.uuid4()}"
    entries = await asyncio.gather(*[_post(db, b, 5, key) for _ in range(10)])
    assert len({e.id for e in entries}) == 1
    assert sum(not e.replayed for e in entries) == 1
    async with db.uow(b.tenant) as uow:
        assert await ledger.balance(uow, b.member) == 5
        assert await uow.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 1


async def test_transfers_in_both_directions_do_not_deadlock(db: Database, tenant_factory) -> None:
    tenant = await tenant_factory()
    a = await make_book(db, tenant)
    b = await make_book(db, tenant)
    await _post(db, a, 1000, "a")
    await _post(db, b, 1000, "b")

    async def transfer(src: Book, dst: Book, i: int) -> None:
        async with db.uow(tenant) as uow:
            await ledger.post(
                uow,
                kind="transfer",
                business_time=T0,
                key=f"t-{i}",
                legs=[ledger.Leg(src.member, -1), ledger.Leg(dst.member, 1)],
            )
            await uow.commit()

    await asyncio.gather(*[transfer(a, b, i) if i % 2 else transfer(b, a, i) for i in range(40)])
    async with db.uow(tenant) as uow:
        assert await ledger.balance(uow, a.member) + await ledger.balance(uow, b.member) == 2000
