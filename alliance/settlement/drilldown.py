"""Settlement drill-down (issue 17): from a branch's net to its statement lines to the journal entries
behind each line (paged), and the stored-value float month by month. Use cases: each takes the
``Database`` and reads in one (read-only) unit of work of the chain's book.

A line of a branch's statement is the sum of the period's postings on the branch's clearing accounts
of that line (``clr_<line>`` money, ``qty_<line>`` points — ``clearing.line_of``), which is exactly
what the close read (``movements.py``): so the entries listed here add up to the line, late ones
included. Only a closed month has statements to drill into."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import drilldown_queries as q
from lianka.alliance.settlement import queries, services
from lianka.alliance.settlement.clearing import line_of
from lianka.alliance.settlement.domain import LineKind
from lianka.alliance.settlement.statements import Statement
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.tenants.services.accounts import merchant_info

PAGE_SIZE = 50


@dataclass(frozen=True)
class LinePage:
    statement: Statement
    line: str
    entries: list[q.EntryRow]
    #: every entry of the line (all pages): how many, and their sums (equal to the statement's line)
    totals: q.LineTotals
    page: int
    pages: int


@dataclass(frozen=True)
class FloatMonth:
    """The members' stored value at the end of a month of the book (after its entries)."""

    period: str
    principal: int
    bonus: int

    @property
    def total(self) -> int:
        return self.principal + self.bonus


async def line_entries(
    db: Database, merchant: uuid.UUID, period: str, entity_id: uuid.UUID, line: str, page: int = 1
) -> LinePage:
    """The entries behind one line of a branch's statement of a closed month, ``PAGE_SIZE`` a page."""
    check_period(period)
    if line not in {k.value for k in LineKind}:
        raise ValidationFailed("no such statement line", field="line")
    if page < 1:
        raise ValidationFailed("page starts at 1", field="page")
    statement = await services.statement(db, merchant, period, entity_id)
    async with db.uow(merchant) as uow:
        money: list[uuid.UUID] = []
        qty: list[uuid.UUID] = []
        for a in await queries.clearing_accounts(uow, merchant):
            if a.owner_id != entity_id:
                continue
            kind_line, is_money = line_of(a.kind)
            if kind_line == line:
                (money if is_money else qty).append(a.id)
        if not money and not qty:
            totals, rows = q.LineTotals(0, 0, 0), []
        else:
            totals = await q.line_totals(uow, merchant, period, money, qty)
            rows = await q.line_entries(uow, merchant, period, money, qty, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages = max(1, -(-totals.entries // PAGE_SIZE))
    if page > pages:
        raise NotFound("no such page", page=page)
    return LinePage(statement, line, rows, totals, page, pages)


async def float_trend(db: Database, merchant: uuid.UUID) -> list[FloatMonth]:
    """The members' stored value (principal and bonus apart) at the end of every month of the book
    that moved it, oldest first: the journal's movements on member accounts summed by month."""
    async with db.uow(merchant) as uow:
        currency, _ = await merchant_info(uow)
        moved = await q.float_by_period(uow, merchant, currency)
    by_period: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for period, kind, amount in moved:
        by_period[period][kind] += amount
    out: list[FloatMonth] = []
    principal = bonus = 0
    for period in sorted(by_period):
        principal += by_period[period]["sv_principal"]
        bonus += by_period[period]["sv_bonus"]
        out.append(FloatMonth(period, principal, bonus))
    return out
