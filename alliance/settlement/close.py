"""Month-end close of one book (a chain's merchant book or an alliance's book) for one period.

Three steps, each **its own transaction** (a use-case level step: it opens the unit of work and
commits), recorded on ``settlement_runs`` so a crash anywhere resumes where it stopped and a second
run returns what the first wrote (same statements, same checksum):

1. ``closing`` (:func:`_step_closing`) — the period stops taking entries. The close takes the
   period's advisory lock exclusively (``ledger_post`` holds it shared), so it waits for every entry
   already on its way into the period; later entries see ``closing`` and land in the next open
   period as late items.
2. ``statements`` (:func:`_step_statements`) — one aggregate over the period's postings on clearing
   accounts (``movements.py``), grouped by spoke, line and lateness, in the database: memory does not
   grow with volume. One statement per spoke (and per partner in an alliance), plus the hub's own,
   written at once.
3. ``closed`` (:func:`_step_closed`) — the period is closed and the run's checksum is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lianka.alliance.alliances import queries as alliance_queries
from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import clearing, domain, queries
from lianka.alliance.settlement.movements import movements, openings
from lianka.alliance.settlement.statements import (
    CloseResult,
    Scope,
    Statement,
    build,
    run_checksum,
    summary,
)
from lianka.platform import audit
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound
from lianka.platform.faults import fault_point
from lianka.platform.webhooks import services as webhooks

STEPS = ("closing", "statements", "closed")

Progress = Callable[[str, int, int], None]


# --- building blocks (take the close's unit of work, in the book; never commit) ---------------------


async def _calendar(uow: UnitOfWork, scope: Scope) -> tuple[str, dict[str, bool]]:
    """(the book's first month, every close it has: month -> finished). The first month is the one
    the book was created in, or its earliest entry's when that is earlier (an import, an offline till)."""
    first_entry = await queries.first_entry_period(uow, scope.book)
    runs = await queries.runs(uow, scope.book)
    first = min(p for p in (domain.period_of(scope.created_at, scope.timezone), first_entry, *runs) if p)
    return first, runs


async def _monthly_fees(uow: UnitOfWork, scope: Scope, period: str) -> None:
    """Each active partner's monthly fee (terms in force at the month's end), booked into the month
    being closed on the partner's own clearing account — once: the key is the month and the partner."""
    end = domain.period_end(period, scope.timezone) - timedelta(microseconds=1)
    terms = await alliance_queries.terms_in_force(uow, scope.book, end)
    amount = int((terms.document if terms else {}).get("fee_monthly", 0))
    if not amount:
        return
    hub = clearing.Hub("alliance", scope.book, scope.currency)
    for merchant in await queries.fee_payers(uow, scope.book):
        legs = await clearing.legs(uow, hub, domain.fee(str(merchant), amount), owner_kind="partner")
        await ledger.post(
            uow,
            kind="alliance_monthly_fee",
            business_time=end,
            key=f"monthly-fee:{period}:{merchant}",
            scope="settlement",
            timezone=scope.timezone,
            period=period,
            legs=legs,
            refs={"merchant": str(merchant)},
        )


# --- the three steps (each its own transaction) -------------------------------------------------------


async def _step_closing(db: Database, scope: Scope, period: str, now: datetime | None) -> str:
    """Step 1, or where an earlier run of this close stopped: the step to go on from."""
    book = scope.book
    async with db.uow(book) as uow:
        await queries.lock_book(uow, book)  # one close of a book at a time: the checks read earlier closes
        run = await queries.run(uow, book, period, lock=True)
        if run is not None:
            return run.step
        first, runs = await _calendar(uow, scope)
        folded = domain.closable(period, tz=scope.timezone, now=now or datetime.now(UTC), first=first, runs=runs)
        if scope.kind == "alliance":
            await _monthly_fees(uow, scope, period)
        # wait for entries already heading into the months, then turn new ones away
        for p in (*folded, period):
            await queries.lock_period(uow, book, p)
        for p in folded:
            await ledger.set_period_status(uow, p, "closed")
        await ledger.set_period_status(uow, period, "closing")
        await queries.insert_run(uow, book, period, scope.kind)
        await uow.commit()
    return "closing"


async def _step_statements(db: Database, scope: Scope, period: str) -> None:
    """Step 2: every statement of the period, computed and written at once."""
    async with db.uow(scope.book) as uow:
        moved = await movements(uow, scope.book, period, scope.timezone)
        statements = build(scope, period, moved, await openings(uow, scope, period))
        fault_point("settlement.close.computed")
        await queries.insert_statements(uow, scope.book, period, statements)
        fault_point("settlement.close.before_statements_commit")
        await queries.mark_statements_written(uow, scope.book, period, len(statements))
        await uow.commit()


async def _step_closed(
    db: Database, scope: Scope, period: str, step: str, actor: audit.Actor
) -> tuple[list[Statement], str, dict[str, Any]]:
    """Step 3 (or, for a close already finished, what it recorded): statements, checksum, summary.
    The month turning closed is audited (``period.closed``) in this step's transaction, in the log of
    the book's merchant (a chain) or of the alliance's operator."""
    async with db.uow(scope.book) as uow:
        statements = await queries.statements(uow, scope.book, period)
        if step == "statements":
            checksum = run_checksum(statements)
            facts = summary(scope, statements)
            await ledger.set_period_status(uow, period, "closed")
            await queries.mark_closed(uow, scope.book, period, checksum, facts)
            await webhooks.emit(uow, "period.closed", {"book": str(scope.book), "period": period, "checksum": checksum})
            merchant = scope.book if scope.kind == "chain" else scope.operator.id if scope.operator else None
            if merchant is not None:
                if merchant != scope.book:
                    await uow.set_tenant(merchant)
                await audit.record(
                    uow,
                    actor,
                    "period.closed",
                    object_kind=f"{scope.kind}_period",
                    object_id=period,
                    details={"book": scope.book, "period": period, "checksum": checksum, "statements": len(statements)},
                )
            await uow.commit()
            return statements, checksum, facts
        run = await queries.run(uow, scope.book, period)
        assert run is not None and run.checksum is not None and run.summary is not None
        return statements, run.checksum, dict(run.summary)


# --- use cases ----------------------------------------------------------------------------------------


async def close(
    db: Database,
    scope: Scope,
    period: str,
    *,
    actor: audit.Actor = audit.SCHEDULED,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> CloseResult:
    """Close ``period`` of ``scope``'s book (idempotent, resumable); return its statements.

    A new close is refused (422) for a month that has not ended in the book's time zone, one before
    the book, or one out of order (:func:`domain.closable`); closing again a month already closed, or
    resuming one, is always allowed. Three transactions, one per step (see the module docstring).
    ``actor`` is who the close is audited as: the staff member or operator who asked for it, else the
    scheduled job."""
    check_period(period)
    report = progress or (lambda _step, _done, _total: None)
    step = await _step_closing(db, scope, period, now)
    report("closing", 1, len(STEPS))
    fault_point("settlement.close.after_closing")
    if step == "closing":
        await _step_statements(db, scope, period)
        step = "statements"
    report("statements", 2, len(STEPS))
    fault_point("settlement.close.after_statements")
    statements, checksum, facts = await _step_closed(db, scope, period, step, actor)
    report("closed", 3, len(STEPS))
    return CloseResult(scope.kind, scope.book, period, checksum, statements, facts)


async def check(db: Database, scope: Scope, period: str, *, now: datetime | None = None) -> None:
    """Refuse now what :func:`close` would refuse (the API checks before it queues a close)."""
    check_period(period)
    async with db.uow(scope.book) as uow:
        if await queries.run(uow, scope.book, period) is None:
            first, runs = await _calendar(uow, scope)
            domain.closable(period, tz=scope.timezone, now=now or datetime.now(UTC), first=first, runs=runs)


async def pending(db: Database, scope: Scope, through: str, *, now: datetime | None = None) -> list[str]:
    """The months a catch-up closes, oldest first, up to ``through``: an unfinished close first, then
    every month after the latest close (only ``through`` for a book never closed: earlier months fold
    into it). Empty when ``through`` is before the book or not over."""
    check_period(through)
    async with db.uow(scope.book) as uow:
        first, runs = await _calendar(uow, scope)
    if through < first or (now or datetime.now(UTC)) < domain.period_end(through, scope.timezone):
        return []
    unfinished = sorted(p for p, done in runs.items() if not done)
    if unfinished:
        return [*unfinished, *domain.months(domain.next_period(unfinished[-1]), through)]
    start = domain.next_period(max(runs)) if runs else through
    return domain.months(start, through)


async def calendar(db: Database, scope: Scope, *, now: datetime | None = None) -> list[domain.Month]:
    """The book's months, newest first, each with its state and whether a close may start now
    (:func:`domain.calendar`: the rule :func:`close` applies, asked of every month)."""
    async with db.uow(scope.book) as uow:
        first, runs = await _calendar(uow, scope)
        statuses = await queries.period_statuses(uow, scope.book)
    return domain.calendar(first=first, runs=runs, statuses=statuses, tz=scope.timezone, now=now or datetime.now(UTC))


async def result(db: Database, scope: Scope, period: str) -> CloseResult:
    """The statements of a closed period (404 while it is open or closing)."""
    check_period(period)
    async with db.uow(scope.book) as uow:
        run = await queries.run(uow, scope.book, period)
        if run is None or run.status != "closed" or run.checksum is None or run.summary is None:
            raise NotFound(f"period {period} is not closed")
        statements = await queries.statements(uow, scope.book, period)
    return CloseResult(scope.kind, scope.book, period, run.checksum, statements, dict(run.summary))
