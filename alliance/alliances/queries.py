"""Every SQL statement of the alliances, each behind a typed function, and the row types they return.

An alliance's tables (``alliances``, ``alliance_partners``, ``alliance_invites``, ``alliance_terms``,
``alliance_spokes``) belong to its book: row-level security shows them only to a transaction in the
alliance's book. A merchant learns about the alliances it belongs to only through the database's
``SECURITY DEFINER`` doors (``lianka_my_alliances``, ``lianka_find_invite``, ``lianka_is_cardholder``),
which answer for the asking merchant alone. The functions say which book their unit of work must be
in; they never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lianka.platform.db import UnitOfWork

# --- row types --------------------------------------------------------------------------------------


class Membership(NamedTuple):
    """The asking merchant's place in one alliance (``lianka_my_alliances()``)."""

    alliance_id: uuid.UUID
    role: str  # operator | partner
    status: str  # active | suspended | left


class AllianceRow(NamedTuple):
    """A row of ``alliances`` (the one in the unit of work's book)."""

    code: str
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class NewAlliance:
    """A row of ``alliances`` to insert: the founding merchant operates it."""

    id: uuid.UUID
    code: str
    name: str
    currency: str
    timezone: str
    operator_merchant_id: uuid.UUID


class PartnerRow(NamedTuple):
    """A row of ``alliance_partners`` as the API lists it."""

    merchant_id: uuid.UUID
    name: str
    role: str
    status: str
    joined_at: datetime


class InviteRef(NamedTuple):
    """An open invitation found by its code's hash (``lianka_find_invite``)."""

    alliance_id: uuid.UUID
    invite_id: uuid.UUID


class TermsVersion(NamedTuple):
    """A row of ``alliance_terms``: the terms document (JSON) and from when it applies."""

    version: int
    effective_from: datetime
    document: dict[str, Any]
    note: str


@dataclass(frozen=True)
class NewTerms:
    """A row of ``alliance_terms`` to insert; ``document`` is the terms as JSON text."""

    alliance_id: uuid.UUID
    version: int
    effective_from: datetime
    document: str
    note: str


@dataclass(frozen=True)
class SpokeRow:
    """A row of ``alliance_spokes``: a partner's branch, named as its statements will name it."""

    alliance_id: uuid.UUID
    branch_id: uuid.UUID
    merchant_id: uuid.UUID
    code: str
    name: str


class MerchantFacts(NamedTuple):
    """What an alliance takes from a merchant (``merchants``): its name, and the defaults it founds with."""

    name: str
    currency: str
    timezone: str


class BranchName(NamedTuple):
    """A merchant's branch (``branches``), as an alliance spoke is named."""

    code: str
    name: str


class Position(NamedTuple):
    """A partner's money position in the alliance over all time (negative: it owes the operator), and
    the points it issued in one month."""

    position: int
    issued: int


class CardRow(NamedTuple):
    """A member found by card number (``members``, system scope): its id and its QR secret."""

    id: uuid.UUID
    qr_secret: bytes


# --- the asking merchant's alliances (its own book) --------------------------------------------------

_MY_ALLIANCES = text("SELECT alliance_id, role, status FROM lianka_my_alliances()")
_MY_MEMBERSHIP = text("SELECT alliance_id, role, status FROM lianka_my_alliances() WHERE alliance_id = :a")
_MERCHANT = text("SELECT name, currency, timezone FROM merchants WHERE id = :m")
_BRANCH = text("SELECT code, name FROM branches WHERE id = :b")
_IS_CARDHOLDER = text("SELECT lianka_is_cardholder(:a, :m)")
_FIND_INVITE = text("SELECT alliance_id, invite_id FROM lianka_find_invite(:h)")


async def my_alliances(uow: UnitOfWork) -> list[Membership]:
    return [Membership(*r) for r in await uow.session.execute(_MY_ALLIANCES)]


async def my_membership(uow: UnitOfWork, alliance_id: uuid.UUID) -> Membership | None:
    row = (await uow.session.execute(_MY_MEMBERSHIP, {"a": alliance_id})).first()
    return None if row is None else Membership(*row)


async def merchant(uow: UnitOfWork, merchant_id: uuid.UUID) -> MerchantFacts:
    return MerchantFacts(*(await uow.session.execute(_MERCHANT, {"m": merchant_id})).one())


async def branch(uow: UnitOfWork, branch_id: uuid.UUID) -> BranchName | None:
    row = (await uow.session.execute(_BRANCH, {"b": branch_id})).first()
    return None if row is None else BranchName(*row)


async def is_cardholder(uow: UnitOfWork, alliance_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    """Whether the member holds a card of one of the alliance's partners."""
    return bool(await uow.session.scalar(_IS_CARDHOLDER, {"a": alliance_id, "m": member_id}))


async def find_invite(uow: UnitOfWork, code_hash: str) -> InviteRef | None:
    """An invitation that is neither used nor expired, by the hash of its code."""
    row = (await uow.session.execute(_FIND_INVITE, {"h": code_hash})).first()
    return None if row is None else InviteRef(*row)


# --- the alliance's book ------------------------------------------------------------------------------

_ALLIANCE = text("SELECT code, name, currency, timezone FROM alliances")
_INSERT_ALLIANCE = text("""
INSERT INTO alliances (id, code, name, currency, timezone, operator_merchant_id)
VALUES (:id, :code, :name, :currency, :timezone, :operator_merchant_id)
""")
_INSERT_OPERATOR = text("""
INSERT INTO alliance_partners (alliance_id, merchant_id, name, role, status) VALUES (:a, :m, :n, 'operator', 'active')
""")
#: a merchant that left may come back; an active or suspended one is already in
_JOIN = text("""
INSERT INTO alliance_partners (alliance_id, merchant_id, name, role, status) VALUES (:a, :m, :n, 'partner', 'active')
ON CONFLICT (alliance_id, merchant_id) DO UPDATE SET status = 'active', changed_at = now()
 WHERE alliance_partners.status = 'left'
""")
_PARTNERS = text("""
SELECT merchant_id, name, role, status, joined_at FROM alliance_partners WHERE alliance_id = :a ORDER BY joined_at
""")
_PARTNER_ROLE_FOR_UPDATE = text("""
SELECT role FROM alliance_partners WHERE alliance_id = :a AND merchant_id = :m FOR UPDATE
""")
_SET_PARTNER_STATUS = text("""
UPDATE alliance_partners SET status = :s, changed_at = now() WHERE alliance_id = :a AND merchant_id = :m
""")
_INSERT_INVITE = text("""
INSERT INTO alliance_invites (alliance_id, code_hash, note, expires_at) VALUES (:a, :h, :n, :e)
""")
_CLAIM_INVITE = text("""
UPDATE alliance_invites SET accepted_by = :m, accepted_at = now()
 WHERE alliance_id = :a AND id = :i AND accepted_by IS NULL AND expires_at > now()
""")
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_NEXT_TERMS_VERSION = text("SELECT coalesce(max(version), 0) + 1 FROM alliance_terms WHERE alliance_id = :a")
_INSERT_TERMS = text("""
INSERT INTO alliance_terms (alliance_id, version, effective_from, document, note)
VALUES (:a, :v, :e, CAST(:d AS jsonb), :n)
""")
_TERMS_IN_FORCE = text("""
SELECT version, effective_from, document, note FROM alliance_terms
 WHERE alliance_id = :a AND effective_from <= :at ORDER BY version DESC LIMIT 1
""")
_TERMS_VERSIONS = text("""
SELECT version, effective_from, document, note FROM alliance_terms WHERE alliance_id = :a ORDER BY version DESC
""")
#: a spoke's name follows its branch's, written only when it changed (no row lock on the hot path)
_RECORD_SPOKE = text("""
INSERT INTO alliance_spokes (alliance_id, branch_id, merchant_id, code, name)
VALUES (:alliance_id, :branch_id, :merchant_id, :code, :name)
ON CONFLICT (alliance_id, branch_id) DO UPDATE SET code = EXCLUDED.code, name = EXCLUDED.name
 WHERE alliance_spokes.code <> EXCLUDED.code OR alliance_spokes.name <> EXCLUDED.name
""")
#: money on the partner's branches' clearing accounts (``clr_*``), and points on ``:issued_kind``
_POSITION = text("""
SELECT coalesce(sum(p.amount) FILTER (WHERE a.kind LIKE 'clr\\_%'), 0) AS position,
       coalesce(-sum(p.amount) FILTER (WHERE a.kind = :issued_kind AND e.period = :period), 0) AS issued
  FROM alliance_spokes s
  JOIN ledger_accounts a ON a.tenant_id = :a AND a.owner_kind = 'branch' AND a.owner_id = s.branch_id
  JOIN ledger_postings p ON p.tenant_id = :a AND p.account_id = a.id
  JOIN ledger_entries e ON e.tenant_id = :a AND e.id = p.entry_id
 WHERE s.alliance_id = :a AND s.merchant_id = :m
""")


async def alliance(uow: UnitOfWork) -> AllianceRow:
    """The alliance whose book the unit of work is in."""
    return AllianceRow(*(await uow.session.execute(_ALLIANCE)).one())


async def insert_alliance(uow: UnitOfWork, new: NewAlliance) -> bool:
    """Insert the alliance; False (and nothing written) when its code is taken."""
    try:
        async with uow.session.begin_nested():
            await uow.session.execute(
                _INSERT_ALLIANCE,
                {
                    "id": new.id,
                    "code": new.code,
                    "name": new.name,
                    "currency": new.currency,
                    "timezone": new.timezone,
                    "operator_merchant_id": new.operator_merchant_id,
                },
            )
    except IntegrityError as exc:
        if "uq_alliances_code" in str(exc.orig):
            return False
        raise
    return True


async def insert_operator(uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID, name: str) -> None:
    await uow.session.execute(_INSERT_OPERATOR, {"a": alliance_id, "m": merchant_id, "n": name})


async def join(uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID, name: str) -> bool:
    """The merchant becomes an active partner; False when it is already in (active or suspended)."""
    done = await uow.session.execute(_JOIN, {"a": alliance_id, "m": merchant_id, "n": name})
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


async def partners(uow: UnitOfWork, alliance_id: uuid.UUID) -> list[PartnerRow]:
    """Every merchant of the alliance, operator included, in the order they joined."""
    return [PartnerRow(*r) for r in await uow.session.execute(_PARTNERS, {"a": alliance_id})]


async def lock_partner_role(uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID) -> str | None:
    """The merchant's role in the alliance, its row locked until the transaction ends (None: not in)."""
    role: str | None = await uow.session.scalar(_PARTNER_ROLE_FOR_UPDATE, {"a": alliance_id, "m": merchant_id})
    return role


async def set_partner_status(uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID, status: str) -> None:
    await uow.session.execute(_SET_PARTNER_STATUS, {"s": status, "a": alliance_id, "m": merchant_id})


async def insert_invite(
    uow: UnitOfWork, alliance_id: uuid.UUID, code_hash: str, note: str, expires_at: datetime
) -> None:
    await uow.session.execute(_INSERT_INVITE, {"a": alliance_id, "h": code_hash, "n": note, "e": expires_at})


async def claim_invite(uow: UnitOfWork, invite: InviteRef, merchant_id: uuid.UUID) -> bool:
    """Mark the invitation used by the merchant; False when it was used or expired meanwhile."""
    done = await uow.session.execute(_CLAIM_INVITE, {"m": merchant_id, "a": invite.alliance_id, "i": invite.invite_id})
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


async def _lock(uow: UnitOfWork, key: str) -> None:
    """A transaction-scoped advisory lock on ``key``."""
    await uow.session.execute(_LOCK, {"k": key})


async def lock_terms(uow: UnitOfWork, alliance_id: uuid.UUID) -> None:
    """Serialise the alliance's terms writers (each takes the next version number)."""
    await _lock(uow, f"alliance-terms:{alliance_id}")


async def lock_issuer(uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID) -> None:
    """Serialise one partner's issuing (its monthly cap and credit limit are read, then posted against)."""
    await _lock(uow, f"alliance-issuer:{alliance_id}:{merchant_id}")


async def next_terms_version(uow: UnitOfWork, alliance_id: uuid.UUID) -> int:
    return int(await uow.session.scalar(_NEXT_TERMS_VERSION, {"a": alliance_id}))


async def insert_terms(uow: UnitOfWork, terms: NewTerms) -> None:
    await uow.session.execute(
        _INSERT_TERMS,
        {"a": terms.alliance_id, "v": terms.version, "e": terms.effective_from, "d": terms.document, "n": terms.note},
    )


async def terms_in_force(uow: UnitOfWork, alliance_id: uuid.UUID, at: datetime) -> TermsVersion | None:
    """The newest terms version effective at ``at`` (None before the first)."""
    row = (await uow.session.execute(_TERMS_IN_FORCE, {"a": alliance_id, "at": at})).first()
    return None if row is None else TermsVersion(*row)


async def terms_versions(uow: UnitOfWork, alliance_id: uuid.UUID) -> list[TermsVersion]:
    """Every terms version, newest first."""
    return [TermsVersion(*r) for r in await uow.session.execute(_TERMS_VERSIONS, {"a": alliance_id})]


async def record_spoke(uow: UnitOfWork, spoke: SpokeRow) -> None:
    """The branch is (still) a spoke of the alliance under its current code and name."""
    await uow.session.execute(
        _RECORD_SPOKE,
        {
            "alliance_id": spoke.alliance_id,
            "branch_id": spoke.branch_id,
            "merchant_id": spoke.merchant_id,
            "code": spoke.code,
            "name": spoke.name,
        },
    )


async def position(
    uow: UnitOfWork, alliance_id: uuid.UUID, merchant_id: uuid.UUID, *, issued_kind: str, period: str
) -> Position:
    """The partner's position over its branches' clearing accounts, and the points booked in
    ``period`` on their ``issued_kind`` accounts (the quantity of points issued)."""
    row = (
        await uow.session.execute(
            _POSITION, {"a": alliance_id, "m": merchant_id, "issued_kind": issued_kind, "period": period}
        )
    ).one()
    return Position(int(row.position), int(row.issued))


# --- system scope ---------------------------------------------------------------------------------

_IS_ALLIANCE = text("SELECT 1 FROM alliances WHERE id = :a")
_MEMBER_BY_CARD = text("SELECT id, qr_secret FROM members WHERE card_number = :c")


async def is_alliance(uow: UnitOfWork, book: uuid.UUID) -> bool:
    """Whether a book is an alliance's (not a merchant's)."""
    return bool(await uow.session.scalar(_IS_ALLIANCE, {"a": book}))


async def member_by_card(uow: UnitOfWork, card_number: str) -> CardRow | None:
    row = (await uow.session.execute(_MEMBER_BY_CARD, {"c": card_number})).first()
    return None if row is None else CardRow(row.id, bytes(row.qr_secret))


# --- the member's alliance card (portal scope: ``app.member_id``) ------------------------------------


class CardPartner(NamedTuple):
    """A partner of an alliance the member holds the card of (``lianka_my_alliance_cards()``)."""

    alliance_id: uuid.UUID
    alliance_name: str
    currency: str
    merchant_id: uuid.UUID
    merchant_name: str
    merchant_slug: str
    role: str
    status: str
    branches: int
    is_member: bool
    recognised: bool


class RecognitionChange(NamedTuple):
    """A row of ``alliance_recognition``: the member let a partner recognise the card, or not."""

    alliance_id: uuid.UUID
    merchant_id: uuid.UUID
    recognised: bool
    changed_at: datetime
    source: str


_MY_ALLIANCE_CARDS = text("""
SELECT alliance_id, alliance_name, currency, merchant_id, merchant_name, merchant_slug, role, status, branches,
       is_member, recognised FROM lianka_my_alliance_cards()
""")
_RECOGNITION_HISTORY = text("""
SELECT alliance_id, merchant_id, recognised, changed_at, source FROM alliance_recognition
 WHERE member_id = :m ORDER BY seq DESC LIMIT :n
""")
_INSERT_RECOGNITION = text("""
INSERT INTO alliance_recognition (alliance_id, member_id, merchant_id, recognised, source, actor)
VALUES (:a, :m, :p, :r, :s, :actor)
""")
_LOCK_RECOGNITION = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_MEMBER_BY_PHONE = text("SELECT id, qr_secret FROM members WHERE phone = :p")


async def my_alliance_cards(uow: UnitOfWork) -> list[CardPartner]:
    """Every partner of every alliance the member in scope holds the card of (unit of work in member scope)."""
    return [CardPartner(*r) for r in await uow.session.execute(_MY_ALLIANCE_CARDS)]


async def recognition_history(uow: UnitOfWork, member_id: uuid.UUID, limit: int = 200) -> list[RecognitionChange]:
    """The member's changes, newest first (member scope)."""
    rows = await uow.session.execute(_RECOGNITION_HISTORY, {"m": member_id, "n": limit})
    return [RecognitionChange(*r) for r in rows]


async def lock_recognition(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Serialise one member's recognition changes (each compares with the latest before writing)."""
    await uow.session.execute(_LOCK_RECOGNITION, {"k": f"alliance-recognition:{member_id}"})


async def insert_recognition(
    uow: UnitOfWork,
    alliance_id: uuid.UUID,
    member_id: uuid.UUID,
    merchant_id: uuid.UUID,
    recognised: bool,
    *,
    source: str,
    actor: str,
) -> None:
    await uow.session.execute(
        _INSERT_RECOGNITION,
        {"a": alliance_id, "m": member_id, "p": merchant_id, "r": recognised, "s": source, "actor": actor},
    )


async def member_by_phone(uow: UnitOfWork, phone: str) -> CardRow | None:
    """A member found by phone (E.164; system scope)."""
    row = (await uow.session.execute(_MEMBER_BY_PHONE, {"p": phone})).first()
    return None if row is None else CardRow(row.id, bytes(row.qr_secret))
