"""The ledger's row types: what Python reads from each ``ledger_*`` table, one type per row shape.

:class:`Account`, :class:`Entry` and :class:`LotView` are also what the ledger's services hand their
callers (``ledger.Account`` …); the others are read and used inside the ledger (``queries.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from lianka.alliance.ledger import domain


@dataclass(frozen=True)
class Account:
    """A row of ``ledger_accounts``. Accounts never change once created (so they are cached)."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    owner_kind: str
    owner_id: uuid.UUID | None
    kind: str
    unit: str
    allow_negative: bool
    tracked: bool
    lots: bool


@dataclass(frozen=True)
class AccountKey:
    """What names an account in its book (the unique key of ``ledger_accounts``)."""

    tenant_id: uuid.UUID
    owner_kind: str
    owner_id: uuid.UUID | None
    kind: str
    unit: str


@dataclass(frozen=True)
class Entry:
    """A row of ``ledger_entries`` with its ``ledger_postings`` in order; ``replayed`` when an
    idempotent call returned it instead of booking it now."""

    id: uuid.UUID
    kind: str
    business_time: datetime
    posted_at: datetime
    period: str
    late: bool
    reverses_id: uuid.UUID | None
    postings: tuple[domain.Posting, ...]
    replayed: bool = False
    refs: dict[str, Any] = field(default_factory=dict)

    def amount_for(self, account: Account) -> int:
        return sum(p.amount for p in self.postings if p.account_id == account.id)


@dataclass(frozen=True)
class LotView:
    """A row of ``ledger_lots``: one credit to a lots account and what is left of it."""

    id: uuid.UUID
    amount: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None


class KeyedEntry(NamedTuple):
    """The entry booked under an idempotency key, and the fingerprint of the request that booked it."""

    id: uuid.UUID
    request_hash: str


class LotTake(NamedTuple):
    """A row of ``ledger_lot_moves`` with its lot's account; ``own`` when the entry made that lot."""

    lot_id: uuid.UUID
    amount: int
    account_id: uuid.UUID
    own: bool


class CreatedLot(NamedTuple):
    """A lot an entry created (``ledger_lots.id``, ``account_id``)."""

    id: uuid.UUID
    account_id: uuid.UUID


class Snapshot(NamedTuple):
    """A row of ``ledger_snapshots``: an untracked account's balance as of a moment."""

    as_of: datetime
    balance: int


class DueLot(NamedTuple):
    """A lot whose expiry has come and that still holds points (``ledger_lots``)."""

    id: uuid.UUID
    account_id: uuid.UUID
    remaining: int
    expires_at: datetime
