"""An alliance's terms: one versioned document (``domain.Terms``), never back-dated.

A new version applies from its ``effective_from`` on; a posting uses the version in force at its
business time, so past postings keep the terms they were booked under.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.access import membership, require_operator
from lianka.alliance.alliances.domain import Terms, TermsError, decode
from lianka.platform import audit
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed

#: longest terms note accepted
TERMS_NOTE_MAX = 400


# --- building blocks (take the caller's unit of work, in the alliance's book; never commit) --------


async def write_terms(
    uow: UnitOfWork, alliance_id: uuid.UUID, terms: Terms, effective_from: datetime, note: str
) -> int:
    """The next version of the terms (writers take turns: each reads the latest version number)."""
    await queries.lock_terms(uow, alliance_id)
    version = await queries.next_terms_version(uow, alliance_id)
    await queries.insert_terms(
        uow, queries.NewTerms(alliance_id, version, effective_from, msgspec.json.encode(terms).decode(), note)
    )
    return version


async def terms_at(uow: UnitOfWork, alliance_id: uuid.UUID, at: datetime) -> tuple[int, Terms]:
    """The terms in force at ``at``."""
    row = await queries.terms_in_force(uow, alliance_id, at)
    if row is None:
        raise NotFound("the alliance has no terms in force at that time")
    return row.version, decode(row.document)


# --- use cases (each owns its transaction) -----------------------------------------------------------


async def publish_terms(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    document: object,
    *,
    effective_from: datetime | None,
    note: str = "",
    actor: audit.Actor,
) -> int:
    """A new terms version from ``effective_from`` (now; never back-dated: past postings keep theirs).
    A refused document is a 400 whose ``field`` is the path of the value at fault (``expiry.months``,
    ``stored_value.plans[0].get``, ``earn_rates.<merchant id>``) when one is. Audited in the
    operator merchant's log (``alliance.terms_changed``) in the same transaction."""
    try:
        terms = decode(document)
    except TermsError as exc:
        where = {"field": exc.field} if exc.field else {}
        raise ValidationFailed(str(exc), reason=exc.reason, **where) from None
    if len(note) > TERMS_NOTE_MAX:
        raise ValidationFailed(f"note: at most {TERMS_NOTE_MAX} characters", field="note")
    now = datetime.now(UTC)
    if effective_from is not None and (effective_from.tzinfo is None or effective_from < now - timedelta(minutes=5)):
        raise ValidationFailed("effective_from needs a time zone and may not be in the past", field="effective_from")
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        version = await write_terms(uow, alliance_id, terms, effective_from or now, note)
        await uow.set_tenant(merchant)  # back to the operator's own rows: the audit log is the merchant's
        await audit.record(
            uow,
            actor,
            "alliance.terms_changed",
            object_kind="alliance",
            object_id=alliance_id,
            details={"version": version, "effective_from": effective_from or now, "note": note},
        )
        await uow.commit()
    return version


async def terms_history(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every version, newest first (any member of the alliance may read them)."""
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        return [v._asdict() for v in await queries.terms_versions(uow, alliance_id)]
