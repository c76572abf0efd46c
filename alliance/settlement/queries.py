"""Every SQL statement of settlement, each behind a typed function, and the row types they return.

What a close reads (the book's clearing accounts and the period's postings on them, the previous
close), what it writes (``settlement_runs``, ``settlement_statements``, the locks it takes), what a
scope is made of (a chain's merchant and branches, an alliance and its partners' branches), and the
postings a refund's clearing undoes. Every value is a bound parameter; no statement is assembled
from pieces. Functions take the caller's unit of work and never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text

from lianka.alliance.settlement.statements import Party, Spoke, Statement, canonical
from lianka.platform.db import UnitOfWork

# --- row types --------------------------------------------------------------------------------------


class ClearingAccount(NamedTuple):
    """A spoke's (or an alliance partner's own) clearing account: ``clr_<line>`` money, ``qty_<line>`` points."""

    id: uuid.UUID
    owner_id: uuid.UUID
    kind: str


class AccountTotal(NamedTuple):
    """The sum of one clearing account's postings over a period, on time or late."""

    account_id: uuid.UUID
    late: bool
    amount: int


class LatePosting(NamedTuple):
    """A late entry's postings on one clearing account, summed."""

    entry_id: uuid.UUID
    kind: str
    business_time: datetime
    account_id: uuid.UUID
    amount: int


class SpokePosting(NamedTuple):
    """A posting of an entry on a spoke's clearing account (not the hub's), with that account's owner."""

    account_id: uuid.UUID
    owner_id: uuid.UUID
    kind: str
    amount: int


class Run(NamedTuple):
    """A row of ``settlement_runs``: a close of one period of a book and how far it got."""

    status: str  # running | closed
    step: str  # closing | statements | closed
    checksum: str | None
    summary: dict[str, Any] | None


class Book(NamedTuple):
    """The hub of a scope: a chain's merchant (its slug as ``code``) or an alliance."""

    code: str
    name: str
    currency: str
    timezone: str
    created_at: datetime


# --- what a close reads -----------------------------------------------------------------------------

#: the book's few clearing accounts; the close then reads the period's postings on exactly those
#: accounts — a plan PostgreSQL gets right under row-level security too (with a join of accounts and
#: postings it nests loops over the postings, several times slower at volume)
_CLEARING_ACCOUNTS = text("""
SELECT id, owner_id, kind FROM ledger_accounts
 WHERE tenant_id = :book AND owner_kind IN ('branch', 'partner') AND (kind LIKE 'clr\\_%' OR kind LIKE 'qty\\_%')
""")
_TOTALS_IN_PERIOD = text("""
SELECT p.account_id, e.late, sum(p.amount) AS amount
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period = :period AND p.account_id = ANY(:accounts)
 GROUP BY 1, 2
""")
_TOTALS_BEFORE = text("""
SELECT p.account_id, e.late, sum(p.amount) AS amount
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period < :period AND p.account_id = ANY(:accounts)
 GROUP BY 1, 2
""")
#: the late entries of the period on the same accounts, one row per entry and account
_LATE_POSTINGS = text("""
SELECT e.id AS entry_id, e.kind, e.business_time, p.account_id, sum(p.amount) AS amount
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period = :period AND e.late AND p.account_id = ANY(:accounts)
 GROUP BY 1, 2, 3, 4
""")
_LATEST_CLOSE_BEFORE = text("""
SELECT max(period) FROM settlement_runs WHERE tenant_id = :b AND period < :p AND status = 'closed'
""")
_CLOSING_POSITIONS = text("""
SELECT entity_id, opening + net AS closing FROM settlement_statements WHERE tenant_id = :b AND period = :p
""")
_FIRST_ENTRY_PERIOD = text("SELECT min(period) FROM ledger_entries WHERE tenant_id = :b")
_RUNS = text("SELECT period, status FROM settlement_runs WHERE tenant_id = :b")
_PERIOD_STATUSES = text("SELECT period, status FROM ledger_periods WHERE tenant_id = :b")
_RUN = text("SELECT status, step, checksum, summary FROM settlement_runs WHERE tenant_id = :b AND period = :p")
_RUN_FOR_UPDATE = text("""
SELECT status, step, checksum, summary FROM settlement_runs WHERE tenant_id = :b AND period = :p FOR UPDATE
""")
_STATEMENTS = text("""
SELECT entity_kind, entity_id, merchant_id, parent_id, code, name, currency, opening, lines, late, net, checksum,
       late_items
  FROM settlement_statements WHERE tenant_id = :b AND period = :p
 ORDER BY CASE entity_kind WHEN 'partner' THEN 0 WHEN 'branch' THEN 1 ELSE 2 END, code, entity_id
""")
_FEE_PAYERS = text("""
SELECT merchant_id FROM alliance_partners WHERE alliance_id = :a AND role = 'partner' AND status = 'active'
 ORDER BY merchant_id
""")


async def clearing_accounts(uow: UnitOfWork, book: uuid.UUID) -> list[ClearingAccount]:
    return [ClearingAccount(*r) for r in await uow.session.execute(_CLEARING_ACCOUNTS, {"book": book})]


async def totals_in_period(
    uow: UnitOfWork, book: uuid.UUID, period: str, accounts: list[uuid.UUID]
) -> list[AccountTotal]:
    """Each of ``accounts``' postings in ``period`` summed, on-time and late apart."""
    rows = await uow.session.execute(_TOTALS_IN_PERIOD, {"book": book, "period": period, "accounts": accounts})
    return [AccountTotal(r.account_id, bool(r.late), int(r.amount)) for r in rows]


async def totals_before(uow: UnitOfWork, book: uuid.UUID, period: str, accounts: list[uuid.UUID]) -> list[AccountTotal]:
    """Each of ``accounts``' postings in every period before ``period`` summed, on-time and late apart."""
    rows = await uow.session.execute(_TOTALS_BEFORE, {"book": book, "period": period, "accounts": accounts})
    return [AccountTotal(r.account_id, bool(r.late), int(r.amount)) for r in rows]


async def late_postings(uow: UnitOfWork, book: uuid.UUID, period: str, accounts: list[uuid.UUID]) -> list[LatePosting]:
    rows = await uow.session.execute(_LATE_POSTINGS, {"book": book, "period": period, "accounts": accounts})
    return [LatePosting(r.entry_id, r.kind, r.business_time, r.account_id, int(r.amount)) for r in rows]


async def latest_close_before(uow: UnitOfWork, book: uuid.UUID, period: str) -> str | None:
    """The latest period before ``period`` whose close finished."""
    found: str | None = await uow.session.scalar(_LATEST_CLOSE_BEFORE, {"b": book, "p": period})
    return found


async def closing_positions(uow: UnitOfWork, book: uuid.UUID, period: str) -> dict[uuid.UUID, int]:
    """Each entity's closing position in ``period``'s statements."""
    rows = await uow.session.execute(_CLOSING_POSITIONS, {"b": book, "p": period})
    return {r.entity_id: int(r.closing) for r in rows}


async def first_entry_period(uow: UnitOfWork, book: uuid.UUID) -> str | None:
    found: str | None = await uow.session.scalar(_FIRST_ENTRY_PERIOD, {"b": book})
    return found


async def runs(uow: UnitOfWork, book: uuid.UUID) -> dict[str, bool]:
    """Every close of the book: month -> finished."""
    return {r.period: r.status == "closed" for r in await uow.session.execute(_RUNS, {"b": book})}


async def period_statuses(uow: UnitOfWork, book: uuid.UUID) -> dict[str, str]:
    """The ledger's state of every month of the book that has one (a month without one is open)."""
    return {r.period: r.status for r in await uow.session.execute(_PERIOD_STATUSES, {"b": book})}


async def run(uow: UnitOfWork, book: uuid.UUID, period: str, *, lock: bool = False) -> Run | None:
    """The close of ``period`` (its row locked until the transaction ends: ``lock``), if it began."""
    row = (await uow.session.execute(_RUN_FOR_UPDATE if lock else _RUN, {"b": book, "p": period})).first()
    return None if row is None else Run(*row)


async def statements(uow: UnitOfWork, book: uuid.UUID, period: str) -> list[Statement]:
    """The period's statements: partners, then branches, then the hub; by code within each."""
    rows = await uow.session.execute(_STATEMENTS, {"b": book, "p": period})
    return [
        Statement(
            r.entity_kind,
            r.entity_id,
            r.merchant_id,
            r.parent_id,
            r.code,
            r.name,
            r.currency,
            int(r.opening),
            dict(r.lines),
            int(r.late),
            int(r.net),
            r.checksum,
            tuple(dict(i) for i in r.late_items),
        )
        for r in rows
    ]


async def fee_payers(uow: UnitOfWork, alliance_id: uuid.UUID) -> list[uuid.UUID]:
    """The alliance's active partners (not its operator): who pays the monthly fee."""
    return list((await uow.session.execute(_FEE_PAYERS, {"a": alliance_id})).scalars())


# --- what a close writes ----------------------------------------------------------------------------

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_INSERT_RUN = text("""
INSERT INTO settlement_runs (tenant_id, period, scope, status, step) VALUES (:b, :p, :s, 'running', 'closing')
""")
_INSERT_STATEMENT = text("""
INSERT INTO settlement_statements (tenant_id, period, entity_kind, entity_id, merchant_id, parent_id, code, name,
                                   currency, opening, lines, late, net, checksum, late_items)
VALUES (:b, :p, :k, :e, :m, :parent, :c, :n, :cur, :o, CAST(:l AS jsonb), :late, :net, :sum, CAST(:items AS jsonb))
""")
_STATEMENTS_WRITTEN = text("""
UPDATE settlement_runs SET step = 'statements', entities = :n WHERE tenant_id = :b AND period = :p
""")
_RUN_CLOSED = text("""
UPDATE settlement_runs SET step = 'closed', status = 'closed', checksum = :c, summary = CAST(:s AS jsonb),
       finished_at = now()
 WHERE tenant_id = :b AND period = :p
""")


async def lock_book(uow: UnitOfWork, book: uuid.UUID) -> None:
    """One close of a book at a time (held to the end of the transaction)."""
    await uow.session.execute(_LOCK, {"k": f"settlement-close:{book}"})


async def lock_period(uow: UnitOfWork, book: uuid.UUID, period: str) -> None:
    """Exclusive (book, month) lock: waits for every entry already heading into the month
    (``ledger_post`` holds it shared while it reads the month's status)."""
    await uow.session.execute(_LOCK, {"k": f"ledger-period:{book}:{period}"})


async def insert_run(uow: UnitOfWork, book: uuid.UUID, period: str, scope_kind: str) -> None:
    """The close of ``period`` begins, at its first step."""
    await uow.session.execute(_INSERT_RUN, {"b": book, "p": period, "s": scope_kind})


async def insert_statements(uow: UnitOfWork, book: uuid.UUID, period: str, written: list[Statement]) -> None:
    await uow.session.execute(
        _INSERT_STATEMENT,
        [
            {
                "b": book,
                "p": period,
                "k": s.entity_kind,
                "e": s.entity_id,
                "m": s.merchant_id,
                "parent": s.parent_id,
                "c": s.code,
                "n": s.name,
                "cur": s.currency,
                "o": s.opening,
                "l": canonical(s.lines).decode(),
                "late": s.late,
                "net": s.net,
                "sum": s.checksum,
                "items": canonical(list(s.late_items)).decode(),
            }
            for s in written
        ],
    )


async def mark_statements_written(uow: UnitOfWork, book: uuid.UUID, period: str, entities: int) -> None:
    await uow.session.execute(_STATEMENTS_WRITTEN, {"n": entities, "b": book, "p": period})


async def mark_closed(uow: UnitOfWork, book: uuid.UUID, period: str, checksum: str, facts: dict[str, Any]) -> None:
    await uow.session.execute(_RUN_CLOSED, {"c": checksum, "s": canonical(facts).decode(), "b": book, "p": period})


# --- what a scope is made of ------------------------------------------------------------------------

_MERCHANT_BOOK = text("SELECT slug, name, currency, timezone, created_at FROM merchants WHERE id = :m")
_BRANCH_SPOKES = text("SELECT id, code, name FROM branches ORDER BY code")
_ALLIANCE_BOOK = text("SELECT code, name, currency, timezone, created_at FROM alliances WHERE id = :a")
_ALLIANCE_MERCHANTS = text("SELECT merchant_id, role FROM alliance_partners WHERE alliance_id = :a")
_ALLIANCE_SPOKES = text("""
SELECT branch_id, code, name, merchant_id FROM alliance_spokes WHERE alliance_id = :a ORDER BY code
""")
_PARTIES = text("SELECT id, slug, name FROM merchants WHERE id = ANY(:ids)")
_MERCHANT_BY_SLUG = text("SELECT id FROM merchants WHERE slug = :s")
_ALLIANCE_BY_CODE = text("SELECT id FROM alliances WHERE code = :c")


async def merchant_book(uow: UnitOfWork, merchant_id: uuid.UUID) -> Book | None:
    row = (await uow.session.execute(_MERCHANT_BOOK, {"m": merchant_id})).first()
    return None if row is None else Book(*row)


async def branch_spokes(uow: UnitOfWork, merchant_id: uuid.UUID) -> tuple[Spoke, ...]:
    """The chain's branches (the unit of work is in the merchant's book), by code."""
    return tuple(Spoke(b.id, b.code, b.name, merchant_id) for b in await uow.session.execute(_BRANCH_SPOKES))


async def alliance_book(uow: UnitOfWork, alliance_id: uuid.UUID) -> Book | None:
    row = (await uow.session.execute(_ALLIANCE_BOOK, {"a": alliance_id})).first()
    return None if row is None else Book(*row)


async def alliance_merchants(uow: UnitOfWork, alliance_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every merchant that ever joined the alliance -> its role."""
    return {r.merchant_id: r.role for r in await uow.session.execute(_ALLIANCE_MERCHANTS, {"a": alliance_id})}


async def alliance_spokes(uow: UnitOfWork, alliance_id: uuid.UUID) -> tuple[Spoke, ...]:
    rows = await uow.session.execute(_ALLIANCE_SPOKES, {"a": alliance_id})
    return tuple(Spoke(s.branch_id, s.code, s.name, s.merchant_id) for s in rows)


async def parties(uow: UnitOfWork, merchant_ids: list[uuid.UUID]) -> dict[uuid.UUID, Party]:
    """Merchants by id, as statements name them (system scope: they are other merchants)."""
    return {r.id: Party(r.id, r.slug, r.name) for r in await uow.session.execute(_PARTIES, {"ids": merchant_ids})}


async def merchant_by_slug(uow: UnitOfWork, slug: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await uow.session.scalar(_MERCHANT_BY_SLUG, {"s": slug})
    return found


async def alliance_by_code(uow: UnitOfWork, code: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await uow.session.scalar(_ALLIANCE_BY_CODE, {"c": code})
    return found


# --- clearing -------------------------------------------------------------------------------------

_SPOKE_POSTINGS = text("""
SELECT p.account_id, a.owner_id, a.kind, p.amount
  FROM ledger_postings p JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE p.entry_id = :e AND a.kind LIKE 'clr\\_%' AND a.kind <> :hub
 ORDER BY p.seq
""")


async def spoke_postings(uow: UnitOfWork, entry_id: uuid.UUID, hub_kind: str) -> list[SpokePosting]:
    """An entry's postings on clearing accounts other than the hub's (``hub_kind``), in order."""
    rows = await uow.session.execute(_SPOKE_POSTINGS, {"e": entry_id, "hub": hub_kind})
    return [SpokePosting(r.account_id, r.owner_id, r.kind, int(r.amount)) for r in rows]


# --- the benchmark's raw baseline -----------------------------------------------------------------

#: one aggregate over a period's clearing postings, as one would write it in a single statement: the
#: same sums the close reads (in two steps, above), run by ``bench/settlement.py`` on its own through
#: a bare asyncpg connection as the owner, without row-level security
PERIOD_AGGREGATE = """
SELECT a.owner_id AS spoke, a.kind, e.late, sum(p.amount) AS amount
  FROM ledger_postings p
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
  JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE p.tenant_id = $1 AND e.period = $2 AND a.owner_kind = 'branch'
   AND (a.kind LIKE 'clr\\_%' OR a.kind LIKE 'qty\\_%')
 GROUP BY 1, 2, 3
"""


async def period_aggregate(conn: Any, book: uuid.UUID, period: str) -> list[Any]:
    """:data:`PERIOD_AGGREGATE` on an asyncpg connection: one row per spoke, account kind and lateness."""
    rows: list[Any] = await conn.fetch(PERIOD_AGGREGATE, book, period)
    return rows
