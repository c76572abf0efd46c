"""Ledger errors (RFC 9457 problems through platform.errors)."""

from __future__ import annotations

from lianka.platform.errors import Conflict, NotFound, RuleViolation


class InsufficientFunds(RuleViolation):
    type_slug = "insufficient-funds"
    title = "Not enough balance"


class UnknownAccount(NotFound):
    type_slug = "unknown-account"
    title = "Unknown ledger account"


class UnknownEntry(NotFound):
    type_slug = "unknown-entry"
    title = "Unknown ledger entry"


class PeriodClosed(RuleViolation):
    type_slug = "period-closed"
    title = "The accounting period is closed"


class AlreadyReversed(Conflict):
    type_slug = "already-reversed"
    title = "This entry has already been reversed"
