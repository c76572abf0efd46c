"""Every SQL statement of the ledger's Python side, each behind a typed function, and the row types
they return (one per row shape read from a ``ledger_*`` table).

The posting engine itself is PL/pgSQL (``sql/<function>/v<N>.sql``) and the JSON it takes is
``contract.py``; here is what Python sends around it: opening accounts, reading entries, balances and
lots, periods, the expiry batch, and the operator's invariant checks. Every value is a bound
parameter; no statement is assembled from pieces.

Functions take the caller's unit of work (or connection) and never commit; what they return is a
row type of ``rows.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from lianka.alliance.ledger import domain
from lianka.alliance.ledger.rows import (
    Account,
    AccountKey,
    CreatedLot,
    DueLot,
    Entry,
    KeyedEntry,
    LotTake,
    LotView,
    Snapshot,
)
from lianka.platform.db import UnitOfWork

# --- accounts ---------------------------------------------------------------------------------------

_INSERT_ACCOUNT = text("""
INSERT INTO ledger_accounts (tenant_id, id, owner_kind, owner_id, kind, unit, allow_negative, tracked, lots)
VALUES (:tenant_id, gen_random_uuid(), :owner_kind, :owner_id, :kind, :unit, :allow_negative, :tracked, :lots)
ON CONFLICT (tenant_id, owner_kind, owner_id, kind, unit) DO NOTHING
RETURNING tenant_id, id, owner_kind, owner_id, kind, unit, allow_negative, tracked, lots
""")
_FIND_ACCOUNT = text("""
SELECT tenant_id, id, owner_kind, owner_id, kind, unit, allow_negative, tracked, lots FROM ledger_accounts
 WHERE tenant_id = :tenant_id AND owner_kind = :owner_kind AND owner_id IS NOT DISTINCT FROM :owner_id
   AND kind = :kind AND unit = :unit
""")
_ACCOUNT_BY_ID = text("""
SELECT tenant_id, id, owner_kind, owner_id, kind, unit, allow_negative, tracked, lots FROM ledger_accounts
 WHERE tenant_id = :t AND id = :a
""")
_OPEN_BALANCE = text("""
INSERT INTO ledger_balances (tenant_id, account_id, balance, floor) VALUES (:t, :a, 0, :floor)
ON CONFLICT DO NOTHING
""")


def _key_params(key: AccountKey) -> dict[str, Any]:
    return {
        "tenant_id": key.tenant_id,
        "owner_kind": key.owner_kind,
        "owner_id": key.owner_id,
        "kind": key.kind,
        "unit": key.unit,
    }


async def insert_account(
    uow: UnitOfWork, key: AccountKey, *, allow_negative: bool, tracked: bool, lots: bool
) -> Account | None:
    """The account created now, or None when it already exists (another transaction's, committed)."""
    row = (
        await uow.session.execute(
            _INSERT_ACCOUNT, {**_key_params(key), "allow_negative": allow_negative, "tracked": tracked, "lots": lots}
        )
    ).first()
    return None if row is None else Account(*row)


async def find_account(uow: UnitOfWork, key: AccountKey) -> Account:
    return Account(*(await uow.session.execute(_FIND_ACCOUNT, _key_params(key))).one())


async def account_by_id(uow: UnitOfWork, tenant: uuid.UUID, account_id: uuid.UUID) -> Account | None:
    row = (await uow.session.execute(_ACCOUNT_BY_ID, {"t": tenant, "a": account_id})).first()
    return None if row is None else Account(*row)


async def open_balance(uow: UnitOfWork, account: Account, floor: int | None) -> None:
    """The balance row of a tracked account, at 0 (``floor`` None: it may go negative)."""
    await uow.session.execute(_OPEN_BALANCE, {"t": account.tenant_id, "a": account.id, "floor": floor})


# --- entries ----------------------------------------------------------------------------------------

_ENTRY_BY_KEY = text("""
SELECT id, request_hash FROM ledger_entries WHERE tenant_id = :t AND idempotency_scope = :s AND idempotency_key = :k
""")
_ENTRY = text("""
SELECT id, kind, business_time, posted_at, period, late, reverses_id, refs FROM ledger_entries
 WHERE tenant_id = :t AND id = :e
""")
_POSTINGS = text("""
SELECT account_id, unit, amount FROM ledger_postings WHERE tenant_id = :t AND entry_id = :e ORDER BY seq
""")
_REVERSAL_OF = text("SELECT id FROM ledger_entries WHERE tenant_id = :t AND reverses_id = :e")
_LOT_TAKES = text("""
SELECT m.lot_id, m.amount, l.account_id, l.entry_id = m.entry_id AS own
  FROM ledger_lot_moves m JOIN ledger_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id
 WHERE m.tenant_id = :t AND m.entry_id = :e
""")
_LOTS_CREATED = text("SELECT id, account_id FROM ledger_lots WHERE tenant_id = :t AND entry_id = :e")
#: the issuer of a lot is the ``branch`` reference of the entry that created it ('' when it has none)
_TAKEN_BY_ISSUER = text("""
SELECT coalesce(e.refs->>'branch', '') AS issuer, -sum(m.amount) AS taken
  FROM ledger_lot_moves m
  JOIN ledger_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id
  JOIN ledger_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id
  JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id
 WHERE m.entry_id = :e AND (CAST(:kinds AS text[]) IS NULL OR a.kind = ANY(CAST(:kinds AS text[])))
 GROUP BY 1
""")


async def entry_by_key(uow: UnitOfWork, tenant: uuid.UUID, scope: str, key: str) -> KeyedEntry | None:
    row = (await uow.session.execute(_ENTRY_BY_KEY, {"t": tenant, "s": scope, "k": key})).first()
    return None if row is None else KeyedEntry(*row)


async def entry(uow: UnitOfWork, tenant: uuid.UUID, entry_id: uuid.UUID, *, replayed: bool) -> Entry | None:
    """The entry and its postings (two reads), or None when the book has no such entry."""
    e = (await uow.session.execute(_ENTRY, {"t": tenant, "e": entry_id})).first()
    if e is None:
        return None
    postings = (await uow.session.execute(_POSTINGS, {"t": tenant, "e": entry_id})).all()
    return Entry(
        e.id,
        e.kind,
        e.business_time,
        e.posted_at,
        e.period,
        e.late,
        e.reverses_id,
        tuple(domain.Posting(p.account_id, p.unit, p.amount) for p in postings),
        replayed,
        e.refs,
    )


async def reversal_of(uow: UnitOfWork, tenant: uuid.UUID, entry_id: uuid.UUID) -> uuid.UUID | None:
    """The entry that reversed ``entry_id``, if any (there is at most one)."""
    found: uuid.UUID | None = await uow.session.scalar(_REVERSAL_OF, {"t": tenant, "e": entry_id})
    return found


async def lot_takes(uow: UnitOfWork, tenant: uuid.UUID, entry_id: uuid.UUID) -> list[LotTake]:
    """Every lot move an entry made, with the lot's account."""
    return [LotTake(*r) for r in await uow.session.execute(_LOT_TAKES, {"t": tenant, "e": entry_id})]


async def lots_created(uow: UnitOfWork, tenant: uuid.UUID, entry_id: uuid.UUID) -> list[CreatedLot]:
    return [CreatedLot(*r) for r in await uow.session.execute(_LOTS_CREATED, {"t": tenant, "e": entry_id})]


async def taken_by_issuer(
    uow: UnitOfWork, entry_id: uuid.UUID, account_kinds: Sequence[str] | None = None
) -> dict[str, int]:
    """How much an entry took from lots, per issuer of those lots (the ``branch`` of the entry that
    made each lot; '' when it had none), from accounts of ``account_kinds`` (every account: None)."""
    rows = await uow.session.execute(
        _TAKEN_BY_ISSUER, {"e": entry_id, "kinds": None if account_kinds is None else list(account_kinds)}
    )
    return {r.issuer: int(r.taken) for r in rows}


# --- balances and lots ------------------------------------------------------------------------------

_TRACKED_BALANCE = text("SELECT balance FROM ledger_balances WHERE tenant_id = :t AND account_id = :a")
_LATEST_SNAPSHOT = text("""
SELECT as_of, balance FROM ledger_snapshots WHERE tenant_id = :t AND account_id = :a AND as_of <= :at
 ORDER BY as_of DESC LIMIT 1
""")
_POSTED_SUM = text("""
SELECT coalesce(sum(amount), 0) FROM ledger_postings
 WHERE tenant_id = :t AND account_id = :a AND posted_at <= :at
   AND (CAST(:since AS timestamptz) IS NULL OR posted_at > :since)
""")
_INSERT_SNAPSHOT = text("""
INSERT INTO ledger_snapshots (tenant_id, account_id, as_of, balance) VALUES (:t, :a, :at, :b) ON CONFLICT DO NOTHING
""")
_LOTS = text("""
SELECT id, amount, remaining, earned_at, available_at, expires_at FROM ledger_lots
 WHERE tenant_id = :t AND account_id = :a AND (NOT :open OR remaining > 0)
 ORDER BY expires_at NULLS LAST, earned_at
""")
_DUE_LOTS = text("""
SELECT l.id, l.account_id, l.remaining, l.expires_at FROM ledger_lots l
 WHERE l.tenant_id = :t AND l.remaining > 0 AND l.expires_at <= :now
 ORDER BY l.account_id, l.expires_at, l.id LIMIT :n
   FOR UPDATE SKIP LOCKED
""")


async def tracked_balance(uow: UnitOfWork, tenant: uuid.UUID, account_id: uuid.UUID) -> int:
    """The balance row of a tracked account (0 when it has none yet)."""
    return int(await uow.session.scalar(_TRACKED_BALANCE, {"t": tenant, "a": account_id}) or 0)


async def latest_snapshot(uow: UnitOfWork, tenant: uuid.UUID, account_id: uuid.UUID, at: datetime) -> Snapshot | None:
    row = (await uow.session.execute(_LATEST_SNAPSHOT, {"t": tenant, "a": account_id, "at": at})).first()
    return None if row is None else Snapshot(*row)


async def posted_sum(
    uow: UnitOfWork, tenant: uuid.UUID, account_id: uuid.UUID, at: datetime, since: datetime | None
) -> int:
    """The sum of an account's postings posted at or before ``at`` (and after ``since``, when given)."""
    total = await uow.session.scalar(_POSTED_SUM, {"t": tenant, "a": account_id, "at": at, "since": since})
    return int(total or 0)


async def insert_snapshot(uow: UnitOfWork, tenant: uuid.UUID | None, account_id: uuid.UUID, snap: Snapshot) -> None:
    await uow.session.execute(_INSERT_SNAPSHOT, {"t": tenant, "a": account_id, "at": snap.as_of, "b": snap.balance})


async def lots(uow: UnitOfWork, tenant: uuid.UUID | None, account_id: uuid.UUID, *, open_only: bool) -> list[LotView]:
    """An account's lots, first-expiring first (only those with points left: ``open_only``)."""
    rows = await uow.session.execute(_LOTS, {"t": tenant, "a": account_id, "open": open_only})
    return [LotView(*r) for r in rows]


async def due_lots(uow: UnitOfWork, tenant: uuid.UUID, now: datetime, limit: int) -> list[DueLot]:
    """At most ``limit`` lots due by ``now``, locked; lots another expiry run holds are skipped."""
    return [DueLot(*r) for r in await uow.session.execute(_DUE_LOTS, {"t": tenant, "now": now, "n": limit})]


# --- periods and books ------------------------------------------------------------------------------

_SET_PERIOD_STATUS = text("""
INSERT INTO ledger_periods (tenant_id, period, status) VALUES (:t, :p, :s)
ON CONFLICT (tenant_id, period) DO UPDATE SET status = EXCLUDED.status, changed_at = now()
""")
_PERIOD_STATUS = text("SELECT status FROM ledger_periods WHERE tenant_id = :t AND period = :p")
#: a book is a merchant's or an alliance's (system scope reads both)
_BOOK_TIMEZONE = text("""
SELECT coalesce((SELECT timezone FROM merchants WHERE id = :b), (SELECT timezone FROM alliances WHERE id = :b))
""")
_BOOKS_WITH_DUE_LOTS = text(
    "SELECT b.book, coalesce(m.slug, 'alliance:' || a.code, b.book::text) AS label "
    "FROM ledger_books_with_due_lots(:now) AS b(book) LEFT JOIN merchants m ON m.id = b.book "
    "LEFT JOIN alliances a ON a.id = b.book WHERE CAST(:m AS uuid) IS NULL OR b.book = :m ORDER BY b.book"
)


async def set_period_status(uow: UnitOfWork, tenant: uuid.UUID, period: str, status: str) -> None:
    await uow.session.execute(_SET_PERIOD_STATUS, {"t": tenant, "p": period, "s": status})


async def period_status(uow: UnitOfWork, book: uuid.UUID, period: str) -> str | None:
    """The period's status in the book (None: never set, so open)."""
    status: str | None = await uow.session.scalar(_PERIOD_STATUS, {"t": book, "p": period})
    return status


async def book_timezone(uow: UnitOfWork, book: uuid.UUID) -> str | None:
    """The time zone of a book (its merchant's or its alliance's); ``uow`` is in system scope."""
    tz: str | None = await uow.session.scalar(_BOOK_TIMEZONE, {"b": book})
    return tz


class DueBook(NamedTuple):
    """Row type: a book holding lots due, with a label an operator reads (merchant slug or alliance code)."""

    book: uuid.UUID
    label: str


async def books_with_due_lots(uow: UnitOfWork, now: datetime, only: uuid.UUID | None = None) -> list[DueBook]:
    """Every book holding lots due by ``now`` (or only the book ``only``), in id order (``uow`` in system
    scope: the function sees every book)."""
    result = await uow.session.execute(_BOOKS_WITH_DUE_LOTS, {"now": now, "m": only})
    return [DueBook(r.book, r.label) for r in result]


# --- the posting engine -----------------------------------------------------------------------------

_POST_ONE = "SELECT ledger_post($1::jsonb)"
#: unnest keeps the order, and ledger_post runs once per element in that order
_POST_MANY = "SELECT ledger_post(e) FROM unnest($1::jsonb[]) WITH ORDINALITY AS x(e, n)"


async def ledger_post(driver: Any, payloads: Sequence[str]) -> list[Any]:
    """``ledger_post`` for each encoded entry (``contract.encode``), in order, in one round trip on
    the transaction's asyncpg connection (:meth:`UnitOfWork.driver`); its raw answers, in order."""
    if len(payloads) == 1:
        return [await driver.fetchval(_POST_ONE, payloads[0])]
    return [r[0] for r in await driver.fetch(_POST_MANY, list(payloads))]


#: an entry that is its own transaction: the tenant and the entry in one autocommit statement (set_config's
#: ``true`` scopes the setting to the statement's implicit transaction, as SET LOCAL would; the target list
#: is evaluated in order). The answer comes as text: msgspec decodes it (``contract.result``) instead of the
#: ``json`` module behind SQLAlchemy's jsonb codec.
_POST_ALONE = (
    "SELECT set_config('app.tenant_id', $1, true), set_config('app.scope', '', true), ledger_post($2::jsonb)::text"
)


async def ledger_post_alone(driver: Any, tenant: uuid.UUID, payload: str) -> str:
    """``ledger_post`` for one encoded entry as one autocommit statement on a pooled connection
    outside any transaction (``services.post_alone``); its raw answer."""
    answer: str = await driver.fetchval(_POST_ALONE, str(tenant), payload, column=2)
    return answer


# --- the operator's invariant checks (``lianka ledger verify``, as the owner over every book) -------

#: each returns the offending rows; none means the invariant holds
CHECKS: dict[str, str] = {
    "entries balance per unit": """
        SELECT tenant_id, entry_id, unit, sum(amount) AS total FROM ledger_postings
        GROUP BY tenant_id, entry_id, unit HAVING sum(amount) <> 0""",
    "every entry has postings": """
        SELECT e.tenant_id, e.id FROM ledger_entries e
        WHERE NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id)""",
    "each unit sums to zero over all accounts": """
        SELECT tenant_id, unit, sum(amount) AS total FROM ledger_postings
        GROUP BY tenant_id, unit HAVING sum(amount) <> 0""",
    "balance rows equal the fold of their postings": """
        SELECT b.tenant_id, b.account_id, b.balance, coalesce(p.total, 0) AS postings FROM ledger_balances b
        LEFT JOIN (SELECT tenant_id, account_id, sum(amount) AS total FROM ledger_postings
                   GROUP BY tenant_id, account_id) p ON p.tenant_id = b.tenant_id AND p.account_id = b.account_id
        WHERE b.balance <> coalesce(p.total, 0)""",
    "balances respect their floors": """
        SELECT tenant_id, account_id, balance, floor FROM ledger_balances
        WHERE floor IS NOT NULL AND balance < floor
          AND NOT EXISTS (SELECT 1 FROM ledger_lots l WHERE l.tenant_id = ledger_balances.tenant_id
                          AND l.account_id = ledger_balances.account_id)""",
    "lot remaining = credit + moves": """
        SELECT l.tenant_id, l.id, l.amount, l.remaining, coalesce(m.total, 0) AS moves FROM ledger_lots l
        LEFT JOIN (SELECT tenant_id, lot_id, sum(amount) AS total FROM ledger_lot_moves GROUP BY tenant_id, lot_id) m
          ON m.tenant_id = l.tenant_id AND m.lot_id = l.id
        WHERE l.remaining <> l.amount + coalesce(m.total, 0)""",
    "open lots = positive balance (debt leaves no lots)": """
        SELECT b.tenant_id, b.account_id, b.balance, coalesce(l.open, 0) AS open_lots FROM ledger_balances b
        JOIN ledger_accounts a ON a.tenant_id = b.tenant_id AND a.id = b.account_id AND a.lots
        LEFT JOIN (SELECT tenant_id, account_id, sum(remaining) AS open FROM ledger_lots
                   GROUP BY tenant_id, account_id) l ON l.tenant_id = b.tenant_id AND l.account_id = b.account_id
        WHERE coalesce(l.open, 0) <> greatest(b.balance, 0)""",
    "a posting's account exists with the posting's unit": """
        SELECT p.tenant_id, p.entry_id, p.seq FROM ledger_postings p
        LEFT JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
        WHERE a.id IS NULL OR a.unit <> p.unit""",
}
_COUNTS = text("""
SELECT (SELECT count(*) FROM ledger_entries) AS ledger_entries,
       (SELECT count(*) FROM ledger_postings) AS ledger_postings,
       (SELECT count(*) FROM ledger_accounts) AS ledger_accounts,
       (SELECT count(*) FROM ledger_lots) AS ledger_lots
""")


async def row_counts(conn: AsyncConnection) -> dict[str, int]:
    """Rows of the ledger's main tables (entries, postings, accounts, lots), in that order."""
    return {table: int(n) for table, n in (await conn.execute(_COUNTS)).mappings().one().items()}


async def offending_rows(conn: AsyncConnection, check: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows that break the invariant ``check`` (a key of :data:`CHECKS`), read
    through a cursor that stops there."""
    result = await conn.stream(text(CHECKS[check]))
    try:
        return [dict(r) for r in await result.mappings().fetchmany(limit)]
    finally:
        await result.close()
