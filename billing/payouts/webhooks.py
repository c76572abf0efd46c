"""Stripe's Connect events, routed here by the billing inbox (``billing.services.process_event``):
they settle payout attempts and say whether a connected account can be paid.

* ``transfer.created`` — the transfer reached the connected account: the attempt is **paid**.
* ``transfer.reversed`` (fully reversed) — the money came back: the attempt is **returned**, and the
  payout may be retried.
* ``account.updated`` — the account's ``payouts_enabled`` / ``details_submitted`` (the newest event
  wins; an older one changes nothing).
* ``payout.failed`` / ``payout.paid`` on a connected account — the *account's own* payout to its bank.
  Our transfer is not undone (the money waits in the account's Stripe balance), so the payout stays
  paid; the payee's row carries the problem for the console to show until a later bank payout works.

A transfer's events name its book, payout and attempt in ``metadata``; the unit of work switches to
that book before reading, so an event naming another merchant finds nothing there and is ignored,
and a transfer that is not the attempt's own is ignored. Status moves only forward
(``domain.MOVES``): duplicates, replays and out-of-order events change nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from lianka.billing import queries as billing_q
from lianka.billing.payouts import domain
from lianka.billing.payouts import queries as q
from lianka.billing.payouts.domain import Status
from lianka.billing.queries import EventRow
from lianka.platform.db import UnitOfWork
from lianka.platform.log import get_logger

log = get_logger(__name__)
TYPES = frozenset({"transfer.created", "transfer.reversed", "account.updated", "payout.failed", "payout.paid"})


def handles(event_type: str) -> bool:
    return event_type in TYPES


async def process(uow: UnitOfWork, row: EventRow) -> str:
    """Apply one stored Connect event (system scope on entry and on return); its status."""
    payload = row.payload or {}
    obj: dict[str, Any] = (payload.get("data") or {}).get("object") or {}
    created = datetime.fromtimestamp(int(payload.get("created", 0)), UTC)
    try:
        if row.type.startswith("transfer."):
            tenant, status, reason = await _transfer(uow, row.type, obj)
        elif row.type == "account.updated":
            tenant, status, reason = await _account(uow, obj, created)
        else:
            tenant, status, reason = await _bank_payout(uow, row.type, str(payload.get("account") or ""), obj)
    finally:
        await uow.set_system()
    await billing_q.finish_event(uow, row.id, status, tenant=tenant, reason=reason)
    log.info("payout event", stripe_event=row.event_id, type=row.type, status=status, reason=reason)
    return status


Outcome = tuple[uuid.UUID | None, str, str | None]


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _transfer(uow: UnitOfWork, event_type: str, transfer: dict[str, Any]) -> Outcome:
    meta = transfer.get("metadata") or {}
    tenant, payout_id = _uuid(meta.get("tenant_id")), _uuid(meta.get("payout_id"))
    number = str(meta.get("attempt", ""))
    if tenant is None or payout_id is None or not number.isdigit():
        return None, "ignored", "the transfer is not a Lianka payout's"
    await uow.set_tenant(tenant)
    attempt = await q.attempt(uow, payout_id, int(number), lock=True)
    if attempt is None:
        return None, "ignored", f"no payout {payout_id} attempt {number} in merchant {tenant}'s books"
    if attempt.stripe_transfer_id not in (None, transfer.get("id")) or attempt.destination != transfer.get(
        "destination"
    ):
        return tenant, "ignored", "the transfer is not this attempt's"
    if event_type == "transfer.created":
        to = Status.RETURNED if transfer.get("reversed") else Status.PAID
    elif int(transfer.get("amount_reversed", 0)) >= int(transfer.get("amount", 0)) > 0:
        to = Status.RETURNED
    else:
        return tenant, "ignored", "a partial reversal: the payout stays as it is"
    if attempt.stripe_transfer_id is None:
        await q.set_transfer(uow, payout_id, attempt.attempt, str(transfer["id"]))
    if not domain.may_move(attempt.status, to):
        return tenant, "ignored", f"the attempt is already {attempt.status}"
    reason = "reversed by Stripe" if to is Status.RETURNED else None
    await q.set_attempt_status(uow, payout_id, attempt.attempt, to.value, to.value, reason)
    return tenant, "processed", None


async def _account(uow: UnitOfWork, account: dict[str, Any], created: datetime) -> Outcome:
    acct = str(account.get("id", ""))
    tenant = await q.book_of_stripe_account(uow, acct)
    if tenant is None:
        return None, "ignored", f"connected account {acct!r} is no payee's"
    claimed = (account.get("metadata") or {}).get("tenant_id")
    if claimed is not None and claimed != str(tenant):
        return None, "ignored", f"the account names merchant {claimed} but belongs to merchant {tenant}'s payee"
    await uow.set_tenant(tenant)
    found = await q.account_by_stripe_id(uow, acct)
    assert found is not None
    if found.state_at is not None and created < found.state_at:
        return tenant, "ignored", "older than the account state already applied"
    await q.set_account_state(
        uow,
        found.payee_id,
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        state_at=created,
    )
    return tenant, "processed", None


async def _bank_payout(uow: UnitOfWork, event_type: str, acct: str, payout: dict[str, Any]) -> Outcome:
    tenant = await q.book_of_stripe_account(uow, acct) if acct else None
    if tenant is None:
        return None, "ignored", "not a payout of a payee's connected account"
    await uow.set_tenant(tenant)
    found = await q.account_by_stripe_id(uow, acct)
    assert found is not None
    if event_type == "payout.failed":
        why = str(payout.get("failure_message") or payout.get("failure_code") or "unknown")
        await q.set_problem(uow, found.payee_id, f"Stripe could not pay out to the branch's bank: {why}"[:1000])
    else:
        await q.set_problem(uow, found.payee_id, None)
    return tenant, "processed", None
