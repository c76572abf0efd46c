"""A chain's month end for its HQ: close a month (now, or queued), read where a month stands, one
statement, the files. Use cases: each takes the ``Database`` and owns its transactions (a close is
three, see ``close.py``). An alliance's month end is ``alliances/month_end.py``."""

from __future__ import annotations

import uuid

from lianka.alliance.ledger import queries as ledger_queries
from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import close, exports, queries, scopes
from lianka.alliance.settlement.domain import Month
from lianka.alliance.settlement.statements import CloseResult, PeriodStatus, Statement
from lianka.platform import audit, outbox
from lianka.platform.db import Database
from lianka.platform.errors import NotFound


async def close_now(db: Database, merchant: uuid.UUID, period: str, *, actor: audit.Actor) -> CloseResult:
    """Close the chain's month in this call (idempotent: a closed month answers what it closed with)."""
    check_period(period)
    return await close.close(db, await scopes.chain_scope(db, merchant), period, actor=actor)


async def queue_close(db: Database, merchant: uuid.UUID, period: str, *, actor: audit.Actor) -> PeriodStatus:
    """Queue the close of the chain's month (a month that may not be closed is refused now, not in the
    job); the message leaves once this transaction commits. The request is audited now
    (``period.close_requested``); the job audits the close itself as the same actor."""
    check_period(period)
    await close.check(db, await scopes.chain_scope(db, merchant), period)
    async with db.uow(merchant) as uow:
        await outbox.enqueue(
            uow,
            "close_period",
            queue="settlement",
            kind="chain",
            book=str(merchant),
            period=period,
            **audit.encode(actor),
        )
        await audit.record(uow, actor, "period.close_requested", object_kind="chain_period", object_id=period)
        await uow.commit()
    return await period_status(db, merchant, period)


async def period_status(db: Database, book: uuid.UUID, period: str) -> PeriodStatus:
    """Where the book's month stands, with its statements once closed."""
    check_period(period)
    async with db.uow(book) as uow:
        run = await queries.run(uow, book, period)
        statements = await queries.statements(uow, book, period) if run and run.status == "closed" else []
        # a month with no close of its own may still be closed: folded into the book's first close
        ledger_status = None if run else await ledger_queries.period_status(uow, book, period)
    if run is None:
        return PeriodStatus(period, ledger_status or "open", None, None, None, [])
    return PeriodStatus(period, run.status, run.step, run.checksum, run.summary, statements)


async def statement(db: Database, merchant: uuid.UUID, period: str, entity_id: uuid.UUID) -> Statement:
    """One branch's (or HQ's) statement of a closed month."""
    r = await close.result(db, await scopes.chain_scope(db, merchant), period)
    found = next((s for s in r.statements if s.entity_id == entity_id), None)
    if found is None:
        raise NotFound("no statement for that entity in this period")
    return found


async def calendar(db: Database, merchant: uuid.UUID) -> list[Month]:
    """The chain's months from its book's first to the current one (its time zone), newest first:
    each one's state and whether it may be closed now, or why not."""
    return await close.calendar(db, await scopes.chain_scope(db, merchant))


async def statement_file(
    db: Database,
    merchant: uuid.UUID,
    period: str,
    fmt: str,
    entity_id: uuid.UUID | None = None,
    *,
    actor: audit.Actor,
) -> exports.StatementFile:
    """A closed month's statements as a file (csv, xlsx, pdf) or the payout/collection instructions;
    with ``entity_id``, only that branch's (or HQ's) statement and instruction. Every download is
    audited (``export.downloaded``)."""
    scope = await scopes.chain_scope(db, merchant)
    result = await close.result(db, scope, period)
    if entity_id is None:
        made = exports.render(result, fmt, scope.hub_code, hub_name=scope.hub_name)
    else:
        chosen = [s for s in result.statements if s.entity_id == entity_id]
        if not chosen:
            raise NotFound("no statement for that entity in this period")
        made = exports.render(result, fmt, f"{scope.hub_code}-{chosen[0].code}", chosen, hub_name=scope.hub_name)
    details = {"period": period, "format": fmt, "entity_id": entity_id}
    await audit.downloaded(db, merchant, actor, "chain_statements", period, details)
    return made
