"""An alliance's month end as its merchants see it: the operator closes the month and sees every
statement; a partner sees its own statement and its branches' (row-level security shows it nothing
else of the alliance's book). Use cases: each takes the ``Database`` and owns its transactions (a
close is three, see ``settlement/close.py``)."""

from __future__ import annotations

import uuid

from lianka.alliance.alliances.access import membership, require_operator
from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import close, exports, scopes
from lianka.alliance.settlement import queries as settlement_queries
from lianka.alliance.settlement.statements import CloseResult, PeriodStatus, Statement
from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.errors import NotFound


async def close_period(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str, *, actor: audit.Actor
) -> CloseResult:
    """The operator closes the alliance's month (idempotent, resumable; audited in the operator's log)."""
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
    return await close.close(db, await scopes.alliance_scope(db, alliance_id), period, actor=actor)


async def _partner_view(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str
) -> list[Statement] | None:
    """A partner's own statements of the month (its and its branches'); None for the operator, who sees all."""
    async with db.uow(merchant) as uow:
        role, _ = await membership(uow, alliance_id)
        if role == "operator":
            return None
        return await settlement_queries.statements(uow, alliance_id, period)  # RLS: only its own rows


async def period_status(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str) -> PeriodStatus:
    """The month's statements: all of them for the operator (404 until closed), a partner's own for a partner."""
    check_period(period)
    mine = await _partner_view(db, merchant, alliance_id, period)
    if mine is not None:
        return PeriodStatus(period, "closed" if mine else "open", None, None, None, mine)
    return PeriodStatus.closed(await close.result(db, await scopes.alliance_scope(db, alliance_id), period))


async def statement_file(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str, fmt: str, *, actor: audit.Actor
) -> exports.StatementFile:
    """The month's statements as a file: all of them (and the instructions) for the operator, a
    partner's own statements for a partner. Every download is audited in the merchant's log."""
    check_period(period)
    mine = await _partner_view(db, merchant, alliance_id, period)
    scope = await scopes.alliance_scope(db, alliance_id)
    if mine is None:
        made = exports.render(await close.result(db, scope, period), fmt, scope.hub_code, hub_name=scope.hub_name)
    elif not mine or fmt == "instructions":
        raise NotFound("no statement of yours for that period")
    else:
        made = exports.render(CloseResult("alliance", alliance_id, period, "", mine, {}), fmt, scope.hub_code, mine)
    details = {"alliance_id": alliance_id, "period": period, "format": fmt}
    await audit.downloaded(db, merchant, actor, "alliance_statements", period, details)
    return made
