"""What moved on a book's clearing accounts: each owner's lines over a period, the late items among
them, and each entity's opening position. Aggregated in the database (memory does not grow with
volume). Building blocks of the close: they take its unit of work (in the book) and never commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from lianka.alliance.settlement import domain, queries
from lianka.alliance.settlement.clearing import line_of
from lianka.alliance.settlement.statements import Lines, Scope
from lianka.platform.db import UnitOfWork

#: clearing account id -> (its owner, its kind)
Accounts = dict[uuid.UUID, tuple[uuid.UUID, str]]


async def _lines(
    uow: UnitOfWork, book: uuid.UUID, period: str, *, before: bool
) -> tuple[Accounts, dict[uuid.UUID, Lines], bool]:
    """(the book's clearing accounts, each owner's lines over the period — or every earlier one,
    ``before`` —, whether any posting came late)."""
    out: dict[uuid.UUID, Lines] = defaultdict(Lines)
    accounts = {a.id: (a.owner_id, a.kind) for a in await queries.clearing_accounts(uow, book)}
    if not accounts:
        return accounts, out, False
    read = queries.totals_before if before else queries.totals_in_period
    any_late = False
    for r in await read(uow, book, period, list(accounts)):
        spoke, kind = accounts[r.account_id]
        lines = out[spoke]
        line, is_money = line_of(kind)
        if is_money:
            lines.amounts[line] += r.amount
            if r.late:
                lines.late += r.amount
        else:
            lines.points[line] += r.amount
        any_late = any_late or r.late
    return accounts, out, any_late


async def movements(uow: UnitOfWork, book: uuid.UUID, period: str, tz: str) -> dict[uuid.UUID, Lines]:
    """Each owner's lines over the period, with its late items (their business month read in ``tz``)."""
    accounts, out, any_late = await _lines(uow, book, period, before=False)
    if any_late:
        await _late_items(uow, book, period, accounts, tz, out)
    return out


async def _late_items(
    uow: UnitOfWork, book: uuid.UUID, period: str, accounts: Accounts, tz: str, out: dict[uuid.UUID, Lines]
) -> None:
    """One item per (late entry, owner, line), in business-time order, amounts and points together."""
    items: dict[tuple[uuid.UUID, uuid.UUID, str], dict[str, Any]] = {}
    for r in await queries.late_postings(uow, book, period, list(accounts)):
        owner, kind = accounts[r.account_id]
        line, is_money = line_of(kind)
        item = items.setdefault(
            (r.entry_id, owner, line),
            {
                "entry_id": str(r.entry_id),
                "entry_kind": r.kind,
                "business_time": r.business_time.astimezone(ZoneInfo(tz)).isoformat(),
                "belongs_to": domain.period_of(r.business_time, tz),
                "line": line,
                "amount": 0,
                "points": 0,
                "branch_id": str(owner),
                "branch": "",
            },
        )
        item["amount" if is_money else "points"] += r.amount
    for (_, owner, _), item in sorted(
        items.items(), key=lambda kv: (kv[1]["business_time"], kv[1]["entry_id"], kv[1]["line"])
    ):
        if item["amount"] or item["points"]:
            out[owner].late_items.append(item)


async def openings(uow: UnitOfWork, scope: Scope, period: str) -> dict[uuid.UUID, int]:
    """Each entity's position before the period: the previous close's closing position, or (first
    close of the book) everything posted to it in earlier periods."""
    prior = await queries.latest_close_before(uow, scope.book, period)
    if prior is not None:
        return await queries.closing_positions(uow, scope.book, prior)
    _, earlier, _ = await _lines(uow, scope.book, period, before=True)
    out = {owner: lines.net for owner, lines in earlier.items()}
    by_partner: dict[uuid.UUID, int] = defaultdict(int)
    for s in scope.spokes:
        by_partner[s.merchant_id] += out.get(s.id, 0)
    if scope.kind == "alliance":
        for merchant in scope.partners:  # a partner's own lines (its monthly fee) besides its branches'
            by_partner[merchant] += out.get(merchant, 0)
        out.update(by_partner)
    out[scope.book] = -sum(v for m, v in by_partner.items() if m not in scope.hub_merchants)
    return out
