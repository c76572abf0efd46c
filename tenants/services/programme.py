"""The programme document: read the version in force, write a new version; for the console's editor,
what it edits, a preview that prices a sample sale with an unsaved edit, and two versions compared."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lianka.platform import audit
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import Conflict, DomainError, NotFound, ValidationFailed
from lianka.platform.validate import from_msgspec
from lianka.tenants import queries
from lianka.tenants.domain import pricing, programme_diff, times
from lianka.tenants.domain.programme import Programme, ProgrammeError, validate
from lianka.tenants.models import ProgrammeVersion


def decode(document: object) -> Programme:
    """The document as a sound :class:`Programme`, or a 400 whose ``field`` is the path of the value
    at fault (``tiers[1].threshold``) and ``reason`` the kind of mistake (``invalid`` for a value of
    the wrong type or out of its range)."""
    try:
        return validate(msgspec.convert(document, Programme, strict=False))
    except ProgrammeError as exc:
        raise ValidationFailed(str(exc), field=exc.field, reason=exc.reason) from None
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from None


#: decoded versions: a version is never edited once written, so it is decoded once per process
_decoded: dict[tuple[uuid.UUID, int], Programme] = {}


async def programme_version(uow: UnitOfWork, version: int) -> Programme:
    """Version ``version`` of the unit of work's merchant (0: the built-in default)."""
    if version == 0 or uow.tenant_id is None:
        return Programme()
    key = (uow.tenant_id, version)
    programme = _decoded.get(key)
    if programme is None:
        document = await queries.programme_document(uow, version)
        if document is None:
            raise ValidationFailed(f"programme version {version} not found")
        programme = msgspec.convert(
            msgspec.json.decode(document) if isinstance(document, str | bytes) else document, Programme, strict=False
        )
        if len(_decoded) > 5_000:
            _decoded.clear()
        _decoded[key] = programme
    return programme


async def programme_at(uow: UnitOfWork, at: datetime | None = None) -> tuple[int, Programme]:
    """The version in force at ``at`` (now by default); version 0 is the built-in default."""
    version = await queries.programme_version_at(uow, at or datetime.now(UTC))
    return version, await programme_version(uow, version)


async def set_programme(
    uow: UnitOfWork,
    programme: Programme,
    *,
    effective_from: datetime | None = None,
    note: str = "",
    actor: object | None = None,
    created_by: uuid.UUID | None = None,
) -> int:
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
    uow.session.add(
        ProgrammeVersion(
            tenant_id=uow.tenant_id,
            version=version,
            effective_from=effective_from,
            document=msgspec.to_builtins(programme),
            note=note[:400],
            created_by=created_by or getattr(actor, "user_id", None),
        )
    )
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
    "promotions": ("promotions",),
}


def check_section(section: str) -> None:
    """A 400 for a section name the API does not know."""
    if section not in SECTIONS:
        raise ValidationFailed(f"unknown section {section!r}; one of {', '.join(SECTIONS)}")


#: how far in the past a new version may start (clock skew between console and server); older
#: back-dating would re-price sales already made under the version then in force
BACKDATE_TOLERANCE = timedelta(minutes=5)


async def lock(uow: UnitOfWork) -> None:
    """Serialise programme writers of this merchant until the transaction ends, so a section change
    never builds on a version another writer is replacing (a lost update)."""
    await queries.advisory_lock(uow, f"programme:{uow.tenant_id}")


async def latest(uow: UnitOfWork) -> tuple[int, Programme]:
    """The newest version written (possibly future-dated): what a section change builds on."""
    row = (
        await uow.session.execute(
            select(ProgrammeVersion.version, ProgrammeVersion.document)
            .order_by(ProgrammeVersion.version.desc())
            .limit(1)
        )
    ).first()
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
            raise ValidationFailed('the tiers section is {"tiers": [...], "tier_policy": {...}}')
        doc.update(value)
    else:
        doc[keys[0]] = value
    return decode(doc)


async def publish(
    uow: UnitOfWork, programme: Programme, *, effective_from: datetime | None, note: str, actor: audit.Actor
) -> int:
    """A new version from the console or API: now, or from a future time; never back-dated. Audited
    as ``programme.published`` (by ``actor``) in the same transaction."""
    await lock(uow)
    now = datetime.now(UTC)
    if effective_from is not None:
        times.setting(effective_from, "effective_from")  # zone given, 2000 to 2100
        if effective_from < now - BACKDATE_TOLERANCE:
            raise ValidationFailed("effective_from may not be in the past", field="effective_from")
    await check_references(uow, programme)
    version = await set_programme(
        uow, programme, effective_from=effective_from or now, note=note, created_by=audit.subject(actor)
    )
    await audit.record(
        uow,
        actor,
        "programme.published",
        object_kind="programme_version",
        object_id=version,
        details={"version": version, "effective_from": effective_from or now, "note": note},
    )
    return version


async def check_references(uow: UnitOfWork, programme: Programme) -> None:
    """What the document names outside itself must exist: the coupon templates rules issue."""
    wanted = sorted({r.coupon_template for r in programme.rules if r.coupon_template})
    if not wanted:
        return
    known = await queries.known_coupon_template_codes(uow, wanted)
    missing = [c for c in wanted if c not in known]
    if missing:
        first = next(i for i, r in enumerate(programme.rules) if r.coupon_template in missing)
        raise ValidationFailed(
            f"rules name unknown coupon templates {missing}", field=f"rules[{first}].coupon_template", reason="unknown"
        )


# --- use cases (each owns its transaction) ------------------------------------------------------


@dataclass(frozen=True)
class InForce:
    """The version in force now: its number (0: the built-in default), start and document."""

    version: int
    effective_from: datetime | None
    programme: Programme


async def in_force(db: Database, tenant: uuid.UUID) -> InForce:
    async with db.uow(tenant) as uow:
        version, programme = await programme_at(uow)
        row = await uow.session.get(ProgrammeVersion, (tenant, version)) if version else None
        return InForce(version, row.effective_from if row else None, programme)


async def versions(db: Database, tenant: uuid.UUID) -> tuple[int, list[ProgrammeVersion]]:
    """(the number of the version in force now, every version newest first)."""
    async with db.uow(tenant) as uow:
        version, _ = await programme_at(uow)
        return version, await history(uow)


async def publish_document(
    db: Database,
    tenant: uuid.UUID,
    document: object,
    *,
    effective_from: datetime | None,
    note: str,
    actor: audit.Actor,
) -> InForce:
    """A whole new version from a client's document (validated first). Returns it as published."""
    programme = decode(document)
    async with db.uow(tenant) as uow:
        version = await publish(uow, programme, effective_from=effective_from, note=note, actor=actor)
        await uow.commit()
    return InForce(version, effective_from or datetime.now(UTC), programme)


async def publish_section(
    db: Database,
    tenant: uuid.UUID,
    section: str,
    value: object,
    *,
    effective_from: datetime | None,
    note: str,
    actor: audit.Actor,
) -> InForce:
    """A new version with one section replaced; the base is the newest version written, read under the
    writers' lock so no concurrent change is lost."""
    check_section(section)
    async with db.uow(tenant) as uow:
        await lock(uow)  # read the base and write the new version in one serialised step
        _, base = await latest(uow)
        programme = with_section(base, section, value)
        version = await publish(
            uow, programme, effective_from=effective_from, note=note or f"{section} changed", actor=actor
        )
        await uow.commit()
    return InForce(version, effective_from or datetime.now(UTC), programme)


# --- the console's editor: what it edits, a preview of an edit, two versions compared ---------------


@dataclass(frozen=True)
class Editor:
    """What a section editor starts from: the newest version written (``base``: what a section change
    builds on, possibly future-dated), the one in force now, and what the forms offer to choose."""

    base_version: int
    base_effective_from: datetime | None
    base: Programme
    in_force_version: int
    branches: list[queries.BranchChoice]
    coupon_templates: list[queries.TemplateChoice]


async def _editor(uow: UnitOfWork) -> Editor:
    version, base = await latest(uow)
    row = await uow.session.get(ProgrammeVersion, (uow.tenant_id, version)) if version else None
    in_force_version, _ = await programme_at(uow)
    return Editor(
        version,
        row.effective_from if row else None,
        base,
        in_force_version,
        await queries.branch_choices(uow),
        await queries.active_coupon_templates(uow),
    )


async def editor(db: Database, tenant: uuid.UUID) -> Editor:
    async with db.uow(tenant) as uow:
        return await _editor(uow)


@dataclass(frozen=True)
class SampleSale:
    """A basket to price for a member who does not exist: ``amount`` in minor units, the member's
    ``tier`` (a code), whether it is their birthday, how many ``points`` they pay with (and hold),
    the business ``day`` (None: today in the merchant's zone) and the ``branch_code`` (promotions
    limited to branches)."""

    amount: int
    tier: str | None = None
    birthday: bool = False
    points: int = 0
    day: date | None = None
    branch_code: str = ""


@dataclass(frozen=True)
class Priced:
    """The quote of a sample under one programme, or the problem that refuses it (e.g. more points
    than this programme lets pay for the bill)."""

    quote: pricing.Quote | None
    problem: DomainError | None = None


@dataclass(frozen=True)
class Preview:
    """A sample priced by the version in force and by the edit, what the edit changes, and the
    editor it was made in."""

    editor: Editor
    day: date
    in_force: Priced
    edited: Priced
    changes: list[programme_diff.Change]
    programme: Programme


def price_sample(programme: Programme, sample: SampleSale, day: date) -> Priced:
    """The POS's pricing (:func:`pricing.quote`, the very function a sale books) of ``sample``."""
    member = pricing.MemberState(
        tier=sample.tier, points_available=sample.points, sv_principal=0, sv_bonus=0, birthday_today=sample.birthday
    )
    try:
        return Priced(
            pricing.quote(
                programme,
                sample.amount,
                (),
                member,
                pricing.Intent(points=sample.points),
                pricing.SaleContext(day, sample.branch_code),
            )
        )
    except DomainError as exc:
        return Priced(None, exc)


async def preview(db: Database, tenant: uuid.UUID, section: str, value: object, sample: SampleSale) -> Preview:
    """Price ``sample`` as the version in force does and as it would with ``section`` replaced by
    ``value`` on the newest version (exactly what :func:`publish_section` would write). Writes nothing;
    an invalid edit is the same 400 publishing it would be."""
    check_section(section)
    async with db.uow(tenant) as uow:
        edits = await _editor(uow)
        edited = with_section(edits.base, section, value)
        _, current = await programme_at(uow)
        _, tz = await queries.merchant_currency_and_zone(uow)
    day = sample.day or datetime.now(ZoneInfo(tz)).date()
    return Preview(
        edits,
        day,
        price_sample(current, sample, day),
        price_sample(edited, sample, day),
        programme_diff.diff(edits.base, edited),
        edited,
    )


@dataclass(frozen=True)
class VersionInfo:
    """A version's number, start and note (version 0, the built-in default, has neither)."""

    version: int
    effective_from: datetime | None
    note: str
    created_at: datetime | None


@dataclass(frozen=True)
class Comparison:
    """Two versions and what changed from ``old`` to ``new``; ``versions``: every number there is."""

    old: VersionInfo
    new: VersionInfo
    changes: list[programme_diff.Change]
    new_programme: Programme
    old_programme: Programme
    versions: list[int]


async def _version_info(uow: UnitOfWork, version: int, field: str) -> tuple[VersionInfo, Programme]:
    if version == 0:
        return VersionInfo(0, None, "", None), Programme()
    row = await uow.session.get(ProgrammeVersion, (uow.tenant_id, version)) if 0 < version < 2**31 else None
    if row is None:
        raise NotFound("programme version not found", field=field)
    return (
        VersionInfo(row.version, row.effective_from, row.note, row.created_at),
        await programme_version(uow, row.version),
    )


async def compare_versions(db: Database, tenant: uuid.UUID, old: int, new: int) -> Comparison:
    """Versions ``old`` and ``new`` (0: the built-in default) side by side, field by field."""
    async with db.uow(tenant) as uow:
        a, pa = await _version_info(uow, old, "old")
        b, pb = await _version_info(uow, new, "new")
        numbers = [r.version for r in await history(uow)]
    return Comparison(a, b, programme_diff.diff(pa, pb), pb, pa, [*numbers, 0])
