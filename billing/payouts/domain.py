"""Payout rules, pure: which statement lines are owed or owing and how much, how a payee is paid, the
status a payout may move to, and when a failed one may be tried again.

A statement's ``closing`` position (``opening + net``) is what the entity and the hub owe each other
after the month. Paying is not (yet) a ledger entry (decision 0008), so the next month's opening
still carries what an earlier payout line already covers: a line's amount is its closing position
less what the entity's payout lines of earlier months cover (payouts +, collections −). Each earlier
line keeps its own obligation until it is paid (retried if need be), so nothing is owed twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from lianka.alliance.settlement.statements import Statement


class Direction(StrEnum):
    PAYOUT = "payout"  # the hub pays the payee
    COLLECTION = "collection"  # the payee pays the hub


class Method(StrEnum):
    STRIPE = "stripe"  # a Stripe Connect transfer to the payee's connected account
    BANK = "bank"  # a line of the bank payment file, marked paid by an operator


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    RETURNED = "returned"


#: an attempt's own states: ``sending`` is recorded before the Stripe call and left only by its answer
SENDING = "sending"

#: where a status may go; anything else (a replay, an older event) changes nothing
MOVES: dict[str, frozenset[str]] = {
    SENDING: frozenset({Status.PENDING, Status.PAID, Status.FAILED, Status.RETURNED}),
    Status.PENDING: frozenset({Status.PAID, Status.FAILED, Status.RETURNED}),
    Status.PAID: frozenset({Status.RETURNED}),
    Status.FAILED: frozenset(),
    Status.RETURNED: frozenset(),
}

#: an attempt that is definitively over: only then may a new attempt be made
RETRYABLE = frozenset({Status.FAILED, Status.RETURNED})


def may_move(current: str, to: str) -> bool:
    return to in MOVES.get(current, frozenset())


def payout_status(attempt_status: str) -> Status:
    """The payout's status mirrors its latest attempt's (``sending`` is still pending)."""
    return Status.PENDING if attempt_status == SENDING else Status(attempt_status)


@dataclass(frozen=True)
class Planned:
    """A payout line to create for a statement."""

    entity_kind: str
    entity_id: uuid.UUID
    code: str
    name: str
    direction: Direction
    amount_minor: int
    currency: str
    statement_checksum: str


def payee_kind(scope_kind: str) -> str:
    """The statements that settle with the hub: a chain's branches, an alliance's partners."""
    return "partner" if scope_kind == "alliance" else "branch"


def plan(scope_kind: str, statements: list[Statement], covered: dict[uuid.UUID, int]) -> list[Planned]:
    """One payout line per payee statement whose closing position, less what earlier lines cover
    (``covered``: signed, payouts positive), is not zero."""
    kind = payee_kind(scope_kind)
    out = []
    for s in statements:
        if s.entity_kind != kind:
            continue
        owed = s.closing - covered.get(s.entity_id, 0)
        if owed == 0:
            continue
        direction = Direction.PAYOUT if owed > 0 else Direction.COLLECTION
        out.append(Planned(s.entity_kind, s.entity_id, s.code, s.name, direction, abs(owed), s.currency, s.checksum))
    return out


def method_for(direction: str, connected: bool) -> Method:
    """Stripe only pays *to* a connected account; a collection (and any payee Stripe cannot pay yet)
    goes in the bank file (decision 0035)."""
    return Method.STRIPE if direction == Direction.PAYOUT and connected else Method.BANK


def mask(account_number: str | None) -> str:
    """A bank account number as files and pages show it: the last four digits."""
    if not account_number:
        return ""
    tail = account_number[-4:]
    return "*" * max(0, len(account_number) - 4) + tail if len(account_number) > 4 else tail
