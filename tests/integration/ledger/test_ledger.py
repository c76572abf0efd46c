"""The ledger on real PostgreSQL: lots, reversals, clawback, expiry, periods, immutability, RLS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import AlreadyReversed, InsufficientFunds, PeriodClosed, UnknownAccount
from lianka.alliance.ledger.jobs import expire_all
from lianka.alliance.ledger.verify import verify
from lianka.platform.db import Database
from lianka.platform.errors import IdempotencyConflict, ValidationFailed
from tests.integration.ledger.conftest import Book, make_book

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def k() -> str:
    return uuid.uuid4().hex


async def earn(
    db: Database,
    b: Book,
    n: int,
    *,
    at: datetime = T0,
    expires: datetime | None = None,
    available: datetime | None = None,
    key: str | None = None,
) -> ledger.Entry:
    async with db.uow(b.tenant) as uow:
        e = await ledger.post(
            uow,
            kind="earn",
            business_time=at,
            key=key or k(),
            legs=[ledger.Leg(b.member, n, expires_at=expires, available_at=available), ledger.Leg(b.issued, -n)],
        )
        await uow.commit()
        return e


async def spend(db: Database, b: Book, n: int, *, at: datetime = T0, key: str | None = None) -> ledger.Entry:
    async with db.uow(b.tenant) as uow:
        e = await ledger.post(
            uow,
            kind="redeem",
            business_time=at,
            key=key or k(),
            legs=[ledger.Leg(b.member, -n), ledger.Leg(b.issued, n)],
        )
        await uow.commit()
        return e


async def state(db: Database, b: Book) -> tuple[int, list[int]]:
    async with db.uow(b.tenant) as uow:
        bal = await ledger.balance(uow, b.member)
        lots = [lot.remaining for lot in await ledger.lots(uow, b.member, open_only=False)]
        return bal, lots


async def test_earn_and_spend_take_first_expiring_lots(db: Database, book: Book) -> None:
    await earn(db, book, 100, expires=T0 + timedelta(days=300))
    await earn(db, book, 50, expires=T0 + timedelta(days=30))  # expires first
    await earn(db, book, 10)  # never expires: taken last
    await spend(db, book, 70, at=T0 + timedelta(days=1))
    bal, lots = await state(db, book)
    assert bal == 90
    assert lots == [0, 80, 10]  # ordered by expiry: the 50 lot is gone, 20 taken from the 100 lot


async def test_reversal_restores_exactly_the_lots_taken(db: Database, book: Book) -> None:
    await earn(db, book, 30, expires=T0 + timedelta(days=10))
    await earn(db, book, 30, expires=T0 + timedelta(days=20))
    s = await spend(db, book, 40)
    assert (await state(db, book)) == (20, [0, 20])
    async with db.uow(book.tenant) as uow:
        r = await ledger.reverse(uow, s.id, key=k(), business_time=T0)
        await uow.commit()
    assert r.reverses_id == s.id
    assert (await state(db, book)) == (60, [30, 30])
    async with db.uow(book.tenant) as uow:
        with pytest.raises(AlreadyReversed):
            await ledger.reverse(uow, s.id, key=k())
        with pytest.raises(AlreadyReversed):
            await ledger.reverse(uow, r.id, key=k())


async def test_reversing_spent_credit_needs_clawback_and_debt_is_paid_first(db: Database, book: Book) -> None:
    credit = await earn(db, book, 100)
    await spend(db, book, 80)
    async with db.uow(book.tenant) as uow:
        with pytest.raises(InsufficientFunds):  # policy without clawback: refused, nothing written
            await ledger.reverse(uow, credit.id, key=k())
    assert (await state(db, book)) == (20, [20])
    async with db.uow(book.tenant) as uow:
        await ledger.reverse(uow, credit.id, key=k(), clawback=True)
        await uow.commit()
    assert (await state(db, book)) == (-80, [0])  # a visible debt
    async with db.uow(book.tenant) as uow:
        with pytest.raises(InsufficientFunds):
            await ledger.post(
                uow,
                kind="redeem",
                business_time=T0,
                key=k(),
                legs=[ledger.Leg(book.member, -1), ledger.Leg(book.issued, 1)],
            )
    await earn(db, book, 50)  # pays 50 of the debt, no spendable lot
    assert (await state(db, book)) == (-30, [0, 0])
    await earn(db, book, 50)
    balance, lots = await state(db, book)
    assert (balance, sorted(lots)) == (20, [0, 0, 20])  # 30 of this credit paid the rest of the debt


async def test_pending_points_cannot_be_spent_until_available(db: Database, book: Book) -> None:
    await earn(db, book, 100, available=T0 + timedelta(days=7))
    with pytest.raises(InsufficientFunds, match="not available"):
        await spend(db, book, 10, at=T0 + timedelta(days=1))
    async with db.uow(book.tenant) as uow:
        assert await ledger.available_points(uow, book.member, T0 + timedelta(days=1)) == 0
        assert await ledger.available_points(uow, book.member, T0 + timedelta(days=8)) == 100
    await spend(db, book, 10, at=T0 + timedelta(days=8))
    assert (await state(db, book)) == (90, [90])


async def test_expiry_moves_what_is_left_to_breakage(db: Database, tenant_factory) -> None:
    book = await make_book(db, await tenant_factory())
    await earn(db, book, 100, expires=T0 + timedelta(days=30))
    await earn(db, book, 40, expires=T0 + timedelta(days=90))
    await spend(db, book, 30)
    now = T0 + timedelta(days=31)
    done = await expire_all(db, now, batch_size=1)
    assert done[book.tenant] == 1
    assert (await state(db, book)) == (40, [0, 40])
    assert (await expire_all(db, now)).get(book.tenant, 0) == 0  # idempotent: nothing left to expire
    async with db.uow(book.tenant) as uow:
        breakage = await ledger.open_account(
            uow, owner_kind="merchant", owner_id=book.tenant, kind="points_breakage", unit=book.unit
        )
        assert await ledger.balance(uow, breakage) == 70


async def test_idempotent_replay_and_conflict(db: Database, book: Book) -> None:
    first = await earn(db, book, 10, key="sale-1")
    again = await earn(db, book, 10, key="sale-1")
    assert again.id == first.id
    assert again.replayed
    with pytest.raises(IdempotencyConflict):
        await earn(db, book, 11, key="sale-1")
    assert (await state(db, book))[0] == 10


@pytest.mark.parametrize("amounts", [(0, 0), (-5, 5, 1), (10**16, -(10**16)), (5, -4)])
async def test_bad_amounts_write_nothing(db: Database, book: Book, amounts: tuple[int, ...]) -> None:
    accounts = [book.member, book.issued, book.issued]
    async with db.uow(book.tenant) as uow:
        with pytest.raises(ValidationFailed):
            await ledger.post(
                uow,
                kind="bad",
                business_time=T0,
                key=k(),
                legs=[ledger.Leg(a, n) for a, n in zip(accounts, amounts, strict=False)],
            )
    assert (await state(db, book)) == (0, [])


async def test_mixed_units_and_foreign_accounts_are_refused(db: Database, book: Book, tenant_factory) -> None:
    other = await make_book(db, await tenant_factory())
    async with db.uow(book.tenant) as uow:
        cash = await ledger.open_account(uow, owner_kind="merchant", owner_id=book.tenant, kind="cash", unit="CNY")
        with pytest.raises(ValidationFailed, match="balance"):
            await ledger.post(
                uow, kind="bad", business_time=T0, key=k(), legs=[ledger.Leg(book.member, 10), ledger.Leg(cash, -10)]
            )
        with pytest.raises(UnknownAccount):
            await ledger.post(
                uow,
                kind="bad",
                business_time=T0,
                key=k(),
                legs=[ledger.Leg(other.member, 10), ledger.Leg(book.issued, -10)],
            )
        with pytest.raises(UnknownAccount):
            await ledger.get_account(uow, other.member.id)  # another tenant's account does not exist here


async def test_closed_period_entries_land_late_in_the_next_open_one(db: Database, book: Book) -> None:
    async with db.uow(book.tenant) as uow:
        await ledger.set_period_status(uow, "2026-11", "closed")
        await uow.commit()
    late = await earn(db, book, 5, at=datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # 01:00 Dec 1 in Shanghai
    assert (late.period, late.late) == ("2026-12", False)
    late = await earn(db, book, 5, at=datetime(2026, 11, 20, tzinfo=UTC))
    assert (late.period, late.late) == ("2026-12", True)
    assert late.business_time == datetime(2026, 11, 20, tzinfo=UTC)
    async with db.uow(book.tenant) as uow:
        with pytest.raises(PeriodClosed):
            await ledger.post(
                uow,
                kind="adj",
                business_time=T0,
                key=k(),
                period="2026-11",
                legs=[ledger.Leg(book.member, 1), ledger.Leg(book.issued, -1)],
            )


async def test_entries_are_immutable_even_for_the_owner(db: Database, book: Book, owner_engine) -> None:
    e = await earn(db, book, 10)
    async with db.uow(book.tenant) as uow:
        with pytest.raises(DBAPIError):
            await uow.session.execute(text("UPDATE ledger_postings SET amount = 1000 WHERE entry_id = :e"), {"e": e.id})
    for sql in (
        "UPDATE ledger_entries SET memo = 'x' WHERE id = :e",
        "DELETE FROM ledger_postings WHERE entry_id = :e",
        "DELETE FROM ledger_entries WHERE id = :e",
    ):
        async with owner_engine.connect() as conn:
            with pytest.raises(DBAPIError, match="immutable"):
                await conn.execute(text(sql), {"e": e.id})


async def test_unbalanced_postings_fail_at_commit_in_the_database(db: Database, book: Book) -> None:
    async with db.uow(book.tenant) as uow:
        entry_id = await uow.session.scalar(
            text(
                "INSERT INTO ledger_entries (tenant_id, idempotency_scope, idempotency_key, request_hash, kind, "
                "business_time, period) VALUES (:t, 'raw', :k, 'x', 'raw', now(), '2026-11') RETURNING id"
            ),
            {"t": book.tenant, "k": k()},
        )
        await uow.session.execute(
            text(
                "INSERT INTO ledger_postings (tenant_id, entry_id, seq, account_id, unit, amount) "
                "VALUES (:t, :e, 0, :a, :u, 5)"
            ),
            {"t": book.tenant, "e": entry_id, "a": book.issued.id, "u": book.unit},
        )
        with pytest.raises(DBAPIError, match="does not balance"):
            await uow.commit()


async def test_balance_as_of_a_past_time(db: Database, book: Book) -> None:
    await earn(db, book, 10)
    async with db.uow(book.tenant) as uow:
        middle = await uow.session.scalar(text("SELECT clock_timestamp()"))
    await earn(db, book, 5)
    async with db.uow(book.tenant) as uow:
        assert await ledger.balance(uow, book.member, middle) == 10
        assert await ledger.balance(uow, book.member) == 15
        assert await ledger.balance(uow, book.issued) == -15  # untracked: sum of postings
        assert await ledger.snapshot(uow, book.issued, middle) == -10
        await uow.commit()
    async with db.uow(book.tenant) as uow:
        assert await ledger.balance(uow, book.issued) == -15  # snapshot + later postings


async def test_tenants_do_not_see_each_others_books(db: Database, two_tenants) -> None:
    a, b = two_tenants
    book_a = await make_book(db, a)
    await earn(db, book_a, 10)
    async with db.uow(b) as uow:
        for table in ("ledger_entries", "ledger_postings", "ledger_accounts", "ledger_lots", "ledger_balances"):
            assert await uow.session.scalar(text(f"SELECT count(*) FROM {table}")) == 0


async def test_verify_passes_and_catches_corruption(db: Database, book: Book, owner_engine) -> None:
    await earn(db, book, 10)
    await spend(db, book, 3)
    async with owner_engine.connect() as conn:
        assert (await verify(conn)).ok
        await conn.execute(
            text("UPDATE ledger_balances SET balance = balance + 1 WHERE account_id = :a"), {"a": book.member.id}
        )
        report = await verify(conn)
        assert "balance rows equal the fold of their postings" in report.failures
        assert "open lots = positive balance (debt leaves no lots)" in report.failures
        await conn.rollback()  # leave the books as they were


async def test_posting_to_a_missing_account_or_wrong_unit_fails_at_commit(db: Database, book: Book) -> None:
    for account, unit in ((uuid.uuid4(), book.unit), (book.issued.id, "CNY")):
        async with db.uow(book.tenant) as uow:
            entry_id = await uow.session.scalar(
                text(
                    "INSERT INTO ledger_entries (tenant_id, idempotency_scope, idempotency_key, request_hash, kind, "
                    "business_time, period) VALUES (:t, 'raw', :k, 'x', 'raw', now(), '2026-11') RETURNING id"
                ),
                {"t": book.tenant, "k": k()},
            )
            await uow.session.execute(
                text(
                    "INSERT INTO ledger_postings (tenant_id, entry_id, seq, account_id, unit, amount) "
                    "VALUES (:t, :e, 0, :a, :u, 5), (:t, :e, 1, :a, :u, -5)"
                ),
                {"t": book.tenant, "e": entry_id, "a": account, "u": unit},
            )
            with pytest.raises(DBAPIError, match="no such account"):
                await uow.commit()
