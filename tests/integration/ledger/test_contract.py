"""``ledger_post`` does with each field of the contract what contract.py says it does.

Entries are built as ``PostEntry``/``PostLeg`` directly and sent to the function the way
``services.post_all`` sends them; then the rows are read back field by field, and the answers are
read as ``PostResult`` and ``Shortfall``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from lianka.alliance.ledger import contract
from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database
from tests.integration.ledger.conftest import Book

pytestmark = pytest.mark.integration
SHANGHAI = timezone(timedelta(hours=8))


async def send(db: Database, tenant: uuid.UUID, entry: contract.PostEntry) -> contract.PostResult:
    async with db.uow(tenant) as uow:
        driver = await uow.driver()
        raw = await driver.fetchval("SELECT ledger_post($1::jsonb)", contract.encode(entry))
        await uow.commit()
    return contract.result(raw)


async def rows(db: Database, tenant: uuid.UUID, sql: str, **params: Any) -> list[Any]:
    async with db.uow(tenant) as uow:
        return list((await uow.session.execute(text(sql), {"t": tenant, **params})).all())


def earn(b: Book, n: int, **fields: Any) -> contract.PostEntry:
    base: dict[str, Any] = {
        "scope": "contract",
        "key": uuid.uuid4().hex,
        "hash": "h",
        "kind": "earn",
        "business_time": datetime(2026, 11, 10, 12, tzinfo=UTC),
        "tz": "Asia/Shanghai",
        "legs": [
            contract.PostLeg(b.member.id, b.unit, n, tracked=True, lots=True),
            contract.PostLeg(b.issued.id, b.unit, -n, tracked=False, lots=False),
        ],
    }
    return contract.PostEntry(**{**base, **fields})


async def test_every_entry_field_lands_where_the_contract_says(db: Database, book: Book) -> None:
    expires, available = datetime(2027, 11, 30, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    # 00:30 on 1 December in the book's zone: the month is December, not November
    at = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    entry = earn(
        book,
        120,
        scope="contract.full",
        hash="fingerprint-1",
        kind="earn:sale",
        business_time=at,
        memo="a memo",
        refs={"sale": "S-1", "lines": [1, 2]},
        legs=[
            contract.PostLeg(
                book.member.id, book.unit, 120, tracked=True, lots=True, expires_at=expires, available_at=available
            ),
            contract.PostLeg(book.issued.id, book.unit, -120, tracked=False, lots=False),
        ],
    )
    result = await send(db, book.tenant, entry)
    assert not result.replayed and result.late is False
    assert result.period == "2026-12"
    assert result.posted_at is not None and abs(result.posted_at - datetime.now(UTC)) < timedelta(minutes=5)

    [e] = await rows(db, book.tenant, "SELECT * FROM ledger_entries WHERE tenant_id = :t AND id = :e", e=result.id)
    assert (e.idempotency_scope, e.idempotency_key, e.request_hash, e.kind, e.memo) == (
        "contract.full",
        entry.key,
        "fingerprint-1",
        "earn:sale",
        "a memo",
    )
    assert (e.business_time, e.period, e.late, e.reverses_id, e.refs) == (
        at,
        "2026-12",
        False,
        None,
        {"sale": "S-1", "lines": [1, 2]},
    )
    assert e.posted_at == result.posted_at
    postings = await rows(
        db,
        book.tenant,
        "SELECT seq, account_id, unit, amount, posted_at FROM ledger_postings "
        "WHERE tenant_id = :t AND entry_id = :e ORDER BY seq",
        e=result.id,
    )
    assert [(p.seq, p.account_id, p.unit, p.amount, p.posted_at) for p in postings] == [
        (0, book.member.id, book.unit, 120, result.posted_at),
        (1, book.issued.id, book.unit, -120, result.posted_at),
    ]
    [lot] = await rows(
        db,
        book.tenant,
        "SELECT amount, remaining, earned_at, available_at, expires_at "
        "FROM ledger_lots WHERE tenant_id = :t AND entry_id = :e",
        e=result.id,
    )
    assert tuple(lot) == (120, 120, at, available, expires)
    balances = await rows(db, book.tenant, "SELECT account_id, balance FROM ledger_balances WHERE tenant_id = :t")
    assert dict(balances) == {book.member.id: 120}  # tracked: a balance row; the issued side has none

    again = await send(db, book.tenant, entry)
    assert again == contract.PostResult(result.id, replayed=True)


async def test_fields_left_out_take_their_defaults(db: Database, book: Book) -> None:
    entry = earn(book, 7)
    raw = contract.encode(entry)
    for absent in (
        "memo",
        "period",
        "refs",
        "reverses",
        "moves",
        "overdraw",
        "expires_at",
        "available_at",
        "restore",
        "prefer",
        "lenient",
    ):
        assert f'"{absent}"' not in raw
    result = await send(db, book.tenant, entry)
    [e] = await rows(
        db,
        book.tenant,
        "SELECT memo, refs, period, reverses_id FROM ledger_entries WHERE tenant_id = :t AND id = :e",
        e=result.id,
    )
    assert tuple(e) == ("", {}, "2026-11", None)
    [lot] = await rows(
        db,
        book.tenant,
        "SELECT available_at, expires_at FROM ledger_lots WHERE tenant_id = :t AND entry_id = :e",
        e=result.id,
    )
    assert tuple(lot) == (entry.business_time, None)  # spendable at once, never expires


async def test_a_named_period_and_overdraw(db: Database, book: Book) -> None:
    named = await send(db, book.tenant, earn(book, 5, period="2027-01"))
    assert (named.period, named.late) == ("2027-01", False)
    # 8 out of 5: refused at the floor, with a Shortfall in the error's detail
    spend = [
        contract.PostLeg(book.member.id, book.unit, -8, tracked=True, lots=True),
        contract.PostLeg(book.issued.id, book.unit, 8, tracked=False, lots=False),
    ]
    with pytest.raises(asyncpg.PostgresError) as refused:
        await send(db, book.tenant, earn(book, 0, kind="redeem", legs=spend))
    assert refused.value.sqlstate == "LK001"
    assert contract.shortfall(refused.value.detail) == {"account": str(book.member.id), "balance": 5, "required": 8}
    # the same with overdraw on the member's leg: booked, a debt of 3, the lot emptied
    spend[0] = contract.PostLeg(book.member.id, book.unit, -8, tracked=True, lots=True, overdraw=True)
    await send(db, book.tenant, earn(book, 0, kind="redeem", legs=spend))
    balances = await rows(db, book.tenant, "SELECT balance FROM ledger_balances WHERE tenant_id = :t")
    assert [b.balance for b in balances] == [-3]
    lots = await rows(db, book.tenant, "SELECT remaining FROM ledger_lots WHERE tenant_id = :t")
    assert [x.remaining for x in lots] == [0]


async def test_explicit_moves_and_a_reversal_through_the_services(db: Database, book: Book) -> None:
    """``moves`` (expiry), ``reverses``, ``restore``, ``prefer`` and ``lenient`` are built by the
    services: what they build is the contract's structure, and the database does what it says."""
    t0 = datetime(2026, 11, 1, tzinfo=SHANGHAI)
    async with db.uow(book.tenant) as uow:
        for n, days in ((30, 10), (30, 20)):
            await ledger.post(
                uow,
                kind="earn",
                business_time=t0,
                key=uuid.uuid4().hex,
                legs=[ledger.Leg(book.member, n, expires_at=t0 + timedelta(days=days)), ledger.Leg(book.issued, -n)],
            )
        spent = await ledger.post(
            uow,
            kind="redeem",
            business_time=t0,
            key=uuid.uuid4().hex,
            legs=[ledger.Leg(book.member, -40), ledger.Leg(book.issued, 40)],
        )
        await uow.commit()
    lots = await rows(db, book.tenant, "SELECT id, remaining FROM ledger_lots WHERE tenant_id = :t ORDER BY expires_at")
    assert [x.remaining for x in lots] == [0, 20]
    async with db.uow(book.tenant) as uow:
        reversal = await ledger.reverse(uow, spent.id, key=uuid.uuid4().hex, business_time=t0)
        await uow.commit()
    [e] = await rows(
        db, book.tenant, "SELECT reverses_id FROM ledger_entries WHERE tenant_id = :t AND id = :e", e=reversal.id
    )
    assert e.reverses_id == spent.id
    moves = await rows(
        db,
        book.tenant,
        "SELECT lot_id, amount FROM ledger_lot_moves WHERE tenant_id = :t AND entry_id = :e",
        e=reversal.id,
    )
    assert sorted((m.lot_id, m.amount) for m in moves) == sorted([(lots[0].id, 30), (lots[1].id, 10)])  # restore

    async with db.uow(book.tenant) as uow:
        prepared = ledger.prepare(
            uow,
            kind="expiry",
            business_time=t0,
            key=uuid.uuid4().hex,
            legs=[ledger.Leg(book.member, -40), ledger.Leg(book.issued, 40)],
            lot_moves=[(lots[1].id, -30), (lots[0].id, -10)],
        )
    assert isinstance(prepared.payload, contract.PostEntry)
    assert prepared.payload.moves == [(lots[1].id, -30), (lots[0].id, -10)]
    await send(db, book.tenant, prepared.payload)
    remaining = await rows(
        db, book.tenant, "SELECT remaining FROM ledger_lots WHERE tenant_id = :t ORDER BY expires_at"
    )
    # exactly the moves named; the automatic handling would have emptied the first-expiring lot instead
    assert [x.remaining for x in remaining] == [20, 0]
