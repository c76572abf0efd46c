"""An alliance's payouts as its merchants see them (decision 0035, "Alliance books"): the operator
pays the partners it owes for a closed month and collects from those that owe it — the same payouts,
attempts and bank file as a chain's, in the alliance's book — and a partner sees its own payout line
and nothing else of the book.

Use cases: each checks the asking merchant's role in its own book (``alliance.alliances.access``,
like the alliance's settlement endpoints: an alliance it is not in is 404, a partner asking for an
operator's action 403), then calls the book-agnostic ``services`` / ``connect`` / ``bankfile`` with
the alliance's scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lianka.alliance.alliances.access import membership, require_operator
from lianka.alliance.settlement import scopes
from lianka.alliance.settlement.statements import Scope
from lianka.billing.payouts import bankfile, connect, domain, services
from lianka.billing.payouts.queries import PayoutRow
from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.errors import NotFound
from lianka.platform.settings import Settings


@dataclass(frozen=True)
class View:
    """A month's payouts as the asking merchant may see them: all lines for the operator, its own
    line (if any) for a partner; ``progress`` counts the lines shown."""

    scope: Scope
    operator: bool
    rows: list[PayoutRow]
    progress: services.Progress
    payees: list[connect.Payee]


async def role(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> str:
    """``operator`` or ``partner`` (404 for an alliance the merchant is not in)."""
    async with db.uow(merchant) as uow:
        found, _ = await membership(uow, alliance_id)
    return found


async def operator_scope(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> Scope:
    """The alliance's scope, for its operator only (403 for a partner, 404 for anyone else)."""
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
    return await scopes.alliance_scope(db, alliance_id)


async def view(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str) -> View:
    """The month's payouts and payees: everything for the operator, the partner's own line and payee
    row for a partner (never another partner's)."""
    operator = await role(db, merchant, alliance_id) == "operator"
    scope = await scopes.alliance_scope(db, alliance_id)
    rows = await services.list_payouts(db, alliance_id, period)
    payees = await connect.payees(db, alliance_id, scope)
    if operator:
        return View(scope, True, rows, await services.progress(db, alliance_id, period), payees)
    mine = [p for p in rows if p.entity_id == merchant]
    sent = sum(1 for p in mine if p.attempt > 0 and p.attempt_status != domain.SENDING)  # as period_progress
    return View(scope, False, mine, services.Progress(len(mine), sent), [p for p in payees if p.id == merchant])


async def run(
    db: Database, settings: Settings | None, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str, *, wait: bool
) -> None:
    """Pay every partner owed for the closed month (operator): now (``wait``) or queued to the worker.
    Idempotent like a chain's run."""
    scope = await operator_scope(db, merchant, alliance_id)
    if wait:
        await services.run(db, settings, scope, period)
    else:
        await services.queue_run(db, scope, period)


async def retry(
    db: Database,
    settings: Settings | None,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    payout_id: uuid.UUID,
    *,
    actor: audit.Actor,
) -> PayoutRow:
    """A new attempt for a failed or returned payout of the alliance (operator; 409 otherwise)."""
    scope = await operator_scope(db, merchant, alliance_id)
    return await services.retry(db, settings, scope, payout_id, actor=actor)


async def mark(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, payout_id: uuid.UUID, status: str, note: str | None
) -> PayoutRow:
    """What the bank did with a bank-file line of the alliance (operator)."""
    await operator_scope(db, merchant, alliance_id)
    return await services.mark(db, alliance_id, payout_id, status, note)


async def bank_file(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str, *, actor: audit.Actor
) -> tuple[str, bytes]:
    """The alliance's bank payment file for the month (operator): its file name and bytes."""
    scope = await operator_scope(db, merchant, alliance_id)
    body = await bankfile.bank_file(db, alliance_id, period, scope.hub_name, merchant=merchant, actor=actor)
    return f"{scope.hub_code}-payouts-{period}.csv", body


async def payees(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> list[connect.Payee]:
    """The partners as payees: all of them for the operator, its own row for a partner."""
    operator = await role(db, merchant, alliance_id) == "operator"
    listed = await connect.payees(db, alliance_id, await scopes.alliance_scope(db, alliance_id))
    return listed if operator else [p for p in listed if p.id == merchant]


async def onboarding_link(
    db: Database,
    settings: Settings,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    payee: uuid.UUID,
    *,
    return_url: str,
    refresh_url: str,
) -> str:
    """A Stripe Connect onboarding link for a partner (operator; the partner's connected account for
    this alliance is made once)."""
    scope = await operator_scope(db, merchant, alliance_id)
    return await connect.onboarding_link(
        db, settings, alliance_id, payee, return_url=return_url, refresh_url=refresh_url, scope=scope
    )


async def set_bank_details(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, payee: uuid.UUID, name: str, bank: str, number: str
) -> connect.Payee:
    """A partner's bank account for the alliance's bank file (operator)."""
    scope = await operator_scope(db, merchant, alliance_id)
    return await connect.set_bank_details(db, alliance_id, payee, name, bank, number, scope)


async def payout(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, payout_id: uuid.UUID) -> PayoutRow:
    """One payout of the alliance: any for the operator, only its own for a partner (404 otherwise)."""
    operator = await role(db, merchant, alliance_id) == "operator"
    p = await services.get(db, alliance_id, payout_id)
    if not operator and p.entity_id != merchant:
        raise NotFound("No such payout")
    return p
