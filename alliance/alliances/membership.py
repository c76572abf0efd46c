"""Who is in an alliance: founding one, inviting merchants, joining, suspending and leaving, listing.

An alliance has its own book (its id is the ``tenant_id`` of its ledger rows and of its tables, so
RLS keeps it apart from every merchant). A merchant's request runs in the merchant's transaction and
switches that transaction into the alliance's book only after checking, through a database function
that answers for the asking merchant alone, that it belongs to the alliance.

Every function here is a use case: it takes the ``Database`` and owns its transaction. The checks
of who may do what are the building blocks of ``access.py``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.access import membership, require_operator
from lianka.alliance.alliances.domain import Terms
from lianka.alliance.alliances.terms import write_terms
from lianka.alliance.settlement import queries as settlement_queries
from lianka.platform import validate
from lianka.platform.db import Database
from lianka.platform.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed

#: terms written with the alliance apply to everything it ever books
SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)
#: an alliance's code (also the database's check): what ``alliance:<code>`` names on the command line
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
#: longest invitation note accepted
NOTE_MAX = 200


@dataclass(frozen=True)
class Alliance:
    """An alliance as one of its merchants sees it: with that merchant's role and status in it."""

    id: uuid.UUID
    code: str
    name: str
    currency: str
    timezone: str
    role: str
    status: str


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


async def my_alliances(db: Database, merchant: uuid.UUID) -> list[Alliance]:
    async with db.uow(merchant) as uow:
        mine = await queries.my_alliances(uow)
    out = []
    for m in mine:
        async with db.uow(m.alliance_id) as uow:
            a = await queries.alliance(uow)
        out.append(Alliance(m.alliance_id, a.code, a.name, a.currency, a.timezone, m.role, m.status))
    return sorted(out, key=lambda a: a.code)


async def get(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> Alliance:
    async with db.uow(merchant) as uow:
        role, status = await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        a = await queries.alliance(uow)
    return Alliance(alliance_id, a.code, a.name, a.currency, a.timezone, role, status)


async def create(
    db: Database,
    merchant: uuid.UUID,
    *,
    code: str,
    name: str,
    terms: Terms,
    currency: str | None = None,
    timezone: str | None = None,
) -> Alliance:
    """A merchant founds an alliance and operates it; its terms' first version applies from the start.

    The currency and time zone default to the merchant's; given ones are checked first (an ISO 4217
    currency the ledger books, an IANA zone every month-end close can load), so nothing is written for
    a bad one."""
    if not re.fullmatch(CODE_PATTERN.strip("^$"), code):  # fullmatch: "$" alone lets a final newline through
        raise ValidationFailed("code: 2-40 lowercase letters, digits or '-'", field="code")
    if not name.strip() or len(name) > 200:
        raise ValidationFailed("name: 1-200 characters", field="name")
    if currency is not None:
        validate.currency(currency)
    if timezone is not None:
        validate.time_zone(timezone)
    alliance_id = uuid.uuid4()
    async with db.uow(merchant) as uow:
        m = await queries.merchant(uow, merchant)
        new = queries.NewAlliance(alliance_id, code, name, currency or m.currency, timezone or m.timezone, merchant)
        await uow.set_tenant(alliance_id)
        if not await queries.insert_alliance(uow, new):
            raise Conflict(f"an alliance with code {code!r} exists", field="code")
        await queries.insert_operator(uow, alliance_id, merchant, m.name)
        await write_terms(uow, alliance_id, terms, SINCE_EVER, "founding terms")
        await uow.commit()
    return Alliance(alliance_id, code, name, new.currency, new.timezone, "operator", "active")


async def invite(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, note: str = "", days: int = 14
) -> tuple[str, datetime]:
    """An invitation code for one merchant to join (shown once; stored hashed)."""
    if not 1 <= days <= 90:
        raise ValidationFailed("an invitation is valid for 1 to 90 days", field="days")
    if len(note) > NOTE_MAX:
        raise ValidationFailed(f"note: at most {NOTE_MAX} characters", field="note")
    code = f"LKA-{secrets.token_urlsafe(18)}"
    expires = datetime.now(UTC) + timedelta(days=days)
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        await queries.insert_invite(uow, alliance_id, _hash(code), note, expires)
        await uow.commit()
    return code, expires


async def accept(db: Database, merchant: uuid.UUID, code: str) -> Alliance:
    """A merchant admin accepts an invitation: the merchant becomes an active partner."""
    async with db.uow(merchant) as uow:
        found = await queries.find_invite(uow, _hash(code))
        if found is None:
            raise NotFound("invitation not found, used or expired", field="code")
        name = (await queries.merchant(uow, merchant)).name
        await uow.set_tenant(found.alliance_id)
        if not await queries.claim_invite(uow, found, merchant):
            raise NotFound("invitation not found, used or expired", field="code")
        if not await queries.join(uow, found.alliance_id, merchant, name):
            raise Conflict("this merchant is already in the alliance")
        await uow.commit()
    return await get(db, merchant, found.alliance_id)


async def set_status(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, partner: uuid.UUID, status: str
) -> None:
    """The operator suspends or reinstates a partner; a partner leaves (never the operator)."""
    if status not in ("active", "suspended", "left"):
        raise ValidationFailed("status is active, suspended or left", field="status")
    async with db.uow(merchant) as uow:
        role, _ = await membership(uow, alliance_id)
        if status == "left" and partner != merchant and role != "operator":
            raise Forbidden("a partner may only leave itself")
        if status != "left" and role != "operator":
            raise Forbidden("only the operator suspends or reinstates partners")
        await uow.set_tenant(alliance_id)
        their_role = await queries.lock_partner_role(uow, alliance_id, partner)
        if their_role is None:
            raise NotFound("partner not found")
        if their_role == "operator":
            raise RuleViolation("the operator cannot be suspended or leave its own alliance")
        await queries.set_partner_status(uow, alliance_id, partner, status)
        await uow.commit()


async def partners(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every merchant of the alliance (the operator too), in the order they joined, with its slug
    (``slug``: how statements name it, read in system scope since the others are other merchants)."""
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        rows = await queries.partners(uow, alliance_id)
    async with db.uow(system=True) as uow:
        named = await settlement_queries.parties(uow, [p.merchant_id for p in rows])
    return [{**p._asdict(), "slug": named[p.merchant_id].slug} for p in rows]
