"""The programme document: read the version in force, write a new version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Conflict, ValidationFailed
from lianka.tenants.domain import times
from lianka.tenants.domain.programme import Programme, ProgrammeError, validate
from lianka.tenants.models import ProgrammeVersion


def decode(document: object) -> Programme:
    try:
        return validate(msgspec.convert(document, Programme, strict=False))
    except (msgspec.ValidationError, ProgrammeError) as exc:
        raise ValidationFailed(str(exc)) from None


#: decoded versions: a version is never edited once written, so it is decoded once per process
_decoded: dict[tuple[uuid.UUID, int], Programme] = {}
#: SQL for the number of the version in force at ``$1`` (0 when none: the built-in default)
VERSION_AT_SQL = ("SELECT coalesce((SELECT version FROM programme_versions WHERE effective_from <= $1 "
                  "ORDER BY effective_from DESC, version DESC LIMIT 1), 0)")


async def programme_version(uow: UnitOfWork, version: int) -> Programme:
    """Version ``version`` of the unit of work's merchant (0: the built-in default)."""
    if version == 0 or uow.tenant_id is None:
        return Programme()
    key = (uow.tenant_id, version)
    programme = _decoded.get(key)
    if programme is None:
        document = await (await uow.driver()).fetchval(
            "SELECT document FROM programme_versions WHERE version = $1", version)
        if document is None:
            raise ValidationFailed(f"programme version {version} not found")
        programme = msgspec.convert(msgspec.json.decode(document) if isinstance(document, str | bytes) else document,
                                    Programme, strict=False)
        if len(_decoded) > 5_000:
            _decoded.clear()
        _decoded[key] = programme
    return programme


async def programme_at(uow: UnitOfWork, at: datetime | None = None) -> tuple[int, Programme]:
    """The version in force at ``at`` (now by default); version 0 is the built-in default."""
    version = int(await (await uow.driver()).fetchval(VERSION_AT_SQL, at or datetime.now(UTC)))
    return version, await programme_version(uow, version)


async def set_programme(uow: UnitOfWork, programme: Programme, *, effective_from: datetime | None = None,
                        note: str = "", actor: object | None = None, created_by: uuid.UUID | None = None) -> int:
    """Write ``programme`` as a new version effective from ``effective_from`` (now); return its number.

    History is never edited; a future-dated version waits until its time.
    """
    validate(programme)
    now = datetime.now(UTC)
    effective_from = effective_from or now
    if effective_from.tzinfo is None:
        raise ValidationFailed("effective_from needs a time zone")
    current = await uow.session.scalar(select(func.coalesce(func.max(ProgrammeVersion.version), 0)))
    version = int(current or 0) + 1
    uow.session.add(ProgrammeVersion(
        tenant_id=uow.tenant_id, version=version, effective_from=effective_from,
        document=msgspec.to_builtins(programme), note=note[:400],
        created_by=created_by or getattr(actor, "user_id", None),
    ))
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Conflict("the programme was changed concurrently; reload and retry") from None
    return version


async def history(uow: UnitOfWork) -> list[ProgrammeVersion]:
    rows = await uow.session.scalars(select(ProgrammeVersion).order_by(ProgrammeVersion.version.desc()))
    return list(rows)


#: API section name -> the document's top-level keys it replaces
SECTIONS: dict[str, tuple[str, ...]] = {
    "points": ("points",),
    "tiers": ("tiers", "tier_policy"),
    "rules": ("rules",),
    "join": ("join",),
    "stored-value": ("stored_value",),
    "refunds": ("refunds",),
}
#: how far in the past a new version may start (clock skew between console and server); older
#: back-dating would re-price sales already made under the version then in force
BACKDATE_TOLERANCE = timedelta(minutes=5)


async def lock(uow: UnitOfWork) -> None:
    """Serialise programme writers of this merchant until the transaction ends, so a section change
    never builds on a version another writer is replacing (a lost update)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                              {"k": f"programme:{uow.tenant_id}"})


async def latest(uow: UnitOfWork) -> tuple[int, Programme]:
    """The newest version written (possibly future-dated): what a section change builds on."""
    row = (await uow.session.execute(
        select(ProgrammeVersion.version, ProgrammeVersion.document)
        .order_by(ProgrammeVersion.version.desc()).limit(1))).first()
    if row is None:
        return 0, Programme()
    return row.version, msgspec.convert(row.document, Programme, strict=False)


def with_section(base: Programme, section: str, value: object) -> Programme:
    """``base`` with one section replaced by ``value`` (validated as a whole document).

    ``tiers`` takes ``{"tiers": [...], "tier_policy": {...}}`` (policy optional) or a bare list.
    """
    keys = SECTIONS.get(section)
    if keys is None:
        raise ValidationFailed(f"unknown programme section {section!r}")
    doc = msgspec.to_builtins(base)
    if section == "tiers":
        if isinstance(value, list):
            value = {"tiers": value}
        if not isinstance(value, dict) or not set(value) <= set(keys) or "tiers" not in value:
            raise ValidationFailed("the tiers section is {\"tiers\": [...], \"tier_policy\": {...}}")
        doc.update(value)
    else:
        doc[keys[0]] = value
    return decode(doc)


async def publish(uow: UnitOfWork, programme: Programme, *, effective_from: datetime | None, note: str,
                  created_by: uuid.UUID | None) -> int:
    """A new version from the console or API: now, or from a future time; never back-dated."""
    await lock(uow)
    now = datetime.now(UTC)
    if effective_from is not None:
        times.setting(effective_from, "effective_from")  # zone given, 2000 to 2100
        if effective_from < now - BACKDATE_TOLERANCE:
            raise ValidationFailed("effective_from may not be in the past", field="effective_from")
    await check_references(uow, programme)
    return await set_programme(uow, programme, effective_from=effective_from or now, note=note,
                               created_by=created_by)


async def check_references(uow: UnitOfWork, programme: Programme) -> None:
    """What the document names outside itself must exist: the coupon templates rules issue."""
    wanted = sorted({r.coupon_template for r in programme.rules if r.coupon_template})
    if not wanted:
        return
    known = set((await uow.session.execute(text("SELECT code FROM coupon_templates WHERE code = ANY(:c)"),
                                           {"c": wanted})).scalars())
    missing = [c for c in wanted if c not in known]
    if missing:
        raise ValidationFailed(f"rules name unknown coupon templates {missing}", field="rules")
