"""The JSON contract between Python and the posting engine, ``ledger_post(jsonb) RETURNS jsonb``
(alliance/ledger/sql/ledger_post/): what :func:`services.prepare` builds, what :func:`services.post_all`
sends, and what comes back. One definition, used by both the services and the benchmark; the tests
read the SQL file and check that it reads exactly these fields and returns exactly those
(``tests/unit/ledger/test_contract.py``).

Encoding rules that the SQL relies on:
- a field at its default is **left out** (``omit_defaults``), and the SQL treats a missing field as
  the default (``coalesce``) — except ``PostEntry.moves`` and ``PostLeg.restore``, whose *presence*
  switches behaviour (``p ? 'moves'``, ``leg ? 'restore'``); ``None`` means absent, ``[]`` is present;
- uuids are canonical strings, datetimes RFC 3339 with their offset (PostgreSQL parses both), amounts
  and points integers, never floats;
- pairs (a lot and an amount) are two-element arrays, read as ``->>0`` and ``->>1``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

#: ``(lot id, amount)``: a signed change of a lot's ``remaining``, recorded as one lot move
LotMove = tuple[uuid.UUID, int]


class PostLeg(msgspec.Struct, frozen=True, omit_defaults=True):
    """One posting of the entry, with what the engine needs to know about its account (the services
    know the account already, so the engine does not read ``ledger_accounts`` on the hot path)."""

    #: the account posted to, in the transaction's book (``app.tenant_id``)
    account: uuid.UUID
    #: the account's unit (``CNY``, ``PTS:<scheme>``); checked against the account at commit
    unit: str
    #: signed integer amount in the unit's minor units or points; per unit the legs sum to zero
    amount: int
    #: the account keeps a balance row: the engine adds ``amount`` to it, refusing to pass the floor
    tracked: bool
    #: the account keeps point lots: a credit makes a lot, a debit takes lots (first-expiring first)
    lots: bool
    #: this account may pass its floor in this entry (a clawback); a lots debit may then take fewer
    #: points than it books, leaving a debt that later credits pay first
    overdraw: bool = False
    #: a credit's lot expires then (never, when absent)
    expires_at: datetime | None = None
    #: a credit's lot can be spent from then (pending points); the business time when absent
    available_at: datetime | None = None
    #: a reversal's credit gives back exactly these lots the original took, instead of making a new
    #: lot (present, even empty, switches this on)
    restore: list[LotMove] | None = None
    #: a reversal's debit takes these lots first (the ones the reversed credit made)
    prefer: list[uuid.UUID] = []
    #: a reversal's debit may take lots that are pending or expired, not only usable ones
    lenient: bool = False


class PostEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One balanced journal entry for ``ledger_post``: idempotency, period, legs."""

    #: idempotency scope (``ledger``, ``ledger.expiry``, a service's own): keys are unique per scope
    scope: str
    #: idempotency key (1–200 characters): the same ``(scope, key)`` books once
    key: str
    #: fingerprint of the request: a repeated key with the same hash replays, another hash is LK002
    hash: str
    #: what the entry is (``earn``, ``redeem``, ``reversal:earn``, …), stored on the entry
    kind: str
    #: when it happened in the business (time zone aware): the entry's period and the lots' dates
    business_time: datetime
    #: IANA zone of the book: without ``period``, the entry lands in the month of ``business_time``
    #: in this zone (or the next open month, flagged late)
    tz: str
    #: the postings, in order (``seq`` 0, 1, …)
    legs: list[PostLeg]
    #: free text stored on the entry (at most 500 characters)
    memo: str = ""
    #: ``YYYY-MM``: book into exactly this period, or fail with LK003 when it is closing or closed
    period: str | None = None
    #: references stored on the entry as JSON (a sale id, the lots an expiry took, …)
    refs: dict[str, Any] = {}
    #: the entry this one reverses (at most one reversal per entry, enforced by a unique index)
    reverses: uuid.UUID | None = None
    #: explicit lot moves that replace the automatic lot handling of every leg (expiry); present,
    #: even empty, switches this on
    moves: list[LotMove] | None = None


class PostResult(msgspec.Struct, frozen=True):
    """What ``ledger_post`` returns. A replay (same scope, key and hash as a booked entry) returns
    only ``id`` and ``replayed``: the caller reads the entry it replays."""

    #: the entry booked now, or earlier under the same idempotency key
    id: uuid.UUID
    #: the key was booked before: nothing was written now
    replayed: bool
    #: the database's posting time (the transaction's ``now()``), on the entry and its postings
    posted_at: datetime | None = None
    #: the period the entry landed in
    period: str | None = None
    #: the entry's own period was closing or closed, so it landed in a later one
    late: bool = False


class Shortfall(msgspec.Struct, frozen=True, omit_defaults=True):
    """The ``DETAIL`` (JSON) of an LK001 error, passed on as the insufficient-funds problem's fields."""

    #: the account that would pass its floor, or has too few usable points
    account: uuid.UUID
    #: what the entry needed from the account
    required: int
    #: the balance row's balance (the floor was hit)
    balance: int | None = None
    #: the points no usable lot could cover (the balance allowed it, the lots did not: pending points)
    short: int | None = None


def encode(entry: PostEntry) -> str:
    """The entry as the ``jsonb`` text ``ledger_post`` takes."""
    return _encoder.encode(entry).decode()


def result(raw: str | bytes | dict[str, Any]) -> PostResult:
    """``ledger_post``'s answer: ``jsonb`` comes as text from a bare asyncpg connection, already
    parsed from one that SQLAlchemy set up (its codec)."""
    return msgspec.convert(raw, PostResult) if isinstance(raw, dict) else _result.decode(raw)


def shortfall(detail: str) -> dict[str, Any]:
    """An LK001's ``DETAIL`` as problem fields (uuids as strings, absent fields left out)."""
    fields: dict[str, Any] = msgspec.to_builtins(_shortfall.decode(detail))
    return fields


_encoder = msgspec.json.Encoder()
_result = msgspec.json.Decoder(PostResult)
_shortfall = msgspec.json.Decoder(Shortfall)
