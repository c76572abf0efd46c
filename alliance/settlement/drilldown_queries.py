"""The SQL of the settlement drill-down: the entries behind one statement line (a spoke's clearing
accounts of that line, over the period), paged, with their count and sums; and the stored-value float's
movement per month. Every statement runs in the book's unit of work (row-level security); none commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

#: one row per entry that posted to the accounts in the period: its money (``:money`` accounts) and
#: points (``:qty`` accounts) on them, in business-time order
_LINE_ENTRIES = text("""
SELECT e.id, e.kind, e.business_time, e.late, e.memo,
       COALESCE(sum(p.amount) FILTER (WHERE p.account_id = ANY(:money)), 0) AS amount,
       COALESCE(sum(p.amount) FILTER (WHERE p.account_id = ANY(:qty)), 0) AS points
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period = :period AND p.account_id = ANY(:accounts)
 GROUP BY e.id, e.kind, e.business_time, e.late, e.memo
 ORDER BY e.business_time, e.id
 LIMIT :limit OFFSET :offset
""")
_LINE_TOTALS = text("""
SELECT count(DISTINCT e.id) AS entries,
       COALESCE(sum(p.amount) FILTER (WHERE p.account_id = ANY(:money)), 0) AS amount,
       COALESCE(sum(p.amount) FILTER (WHERE p.account_id = ANY(:qty)), 0) AS points
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period = :period AND p.account_id = ANY(:accounts)
""")
#: what the members' stored value moved by in each month of the book, principal and bonus apart
_FLOAT_BY_PERIOD = text("""
SELECT e.period, a.kind, sum(p.amount) AS amount
  FROM ledger_accounts a
  JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE a.tenant_id = :book AND a.owner_kind = 'member' AND a.kind IN ('sv_principal', 'sv_bonus')
   AND a.unit = :currency
 GROUP BY 1, 2 ORDER BY 1
""")


@dataclass(frozen=True)
class EntryRow:
    id: uuid.UUID
    kind: str
    business_time: datetime
    late: bool
    memo: str
    amount: int
    points: int


@dataclass(frozen=True)
class LineTotals:
    entries: int
    amount: int
    points: int


def _params(book: uuid.UUID, period: str, money: list[uuid.UUID], qty: list[uuid.UUID]) -> dict[str, object]:
    return {"book": book, "period": period, "money": money, "qty": qty, "accounts": money + qty}


async def line_entries(
    uow: UnitOfWork,
    book: uuid.UUID,
    period: str,
    money: list[uuid.UUID],
    qty: list[uuid.UUID],
    limit: int,
    offset: int,
) -> list[EntryRow]:
    rows = await uow.session.execute(
        _LINE_ENTRIES, {**_params(book, period, money, qty), "limit": limit, "offset": offset}
    )
    return [EntryRow(r.id, r.kind, r.business_time, r.late, r.memo, int(r.amount), int(r.points)) for r in rows]


async def line_totals(
    uow: UnitOfWork, book: uuid.UUID, period: str, money: list[uuid.UUID], qty: list[uuid.UUID]
) -> LineTotals:
    r = (await uow.session.execute(_LINE_TOTALS, _params(book, period, money, qty))).one()
    return LineTotals(int(r.entries), int(r.amount), int(r.points))


async def float_by_period(uow: UnitOfWork, book: uuid.UUID, currency: str) -> list[tuple[str, str, int]]:
    rows = await uow.session.execute(_FLOAT_BY_PERIOD, {"book": book, "currency": currency})
    return [(r.period, r.kind, int(r.amount)) for r in rows]
