"""The programme document: read the version in force, write a new version."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Conflict, ValidationFailed
from lianka.tenants.domain.programme import Programme, ProgrammeError, validate
from lianka.tenants.models import ProgrammeVersion


def decode(document: object) -> Programme:
    try:
        return validate(msgspec.convert(document, Programme, strict=False))
    except (msgspec.ValidationError, ProgrammeError) as exc:
        raise ValidationFailed(str(exc)) from None


async def programme_at(uow: UnitOfWork, at: datetime | None = None) -> tuple[int, Programme]:
    """The version in force at ``at`` (now by default); version 0 is the built-in default."""
    at = at or datetime.now(UTC)
    row = (await uow.session.execute(
        select(ProgrammeVersion.version, ProgrammeVersion.document)
        .where(ProgrammeVersion.effective_from <= at)
        .order_by(ProgrammeVersion.effective_from.desc(), ProgrammeVersion.version.desc()).limit(1)
    )).first()
    if row is None:
        return 0, Programme()
    return row.version, msgspec.convert(row.document, Programme, strict=False)


async def set_programme(uow: UnitOfWork, programme: Programme, *, effective_from: datetime | None = None,
                        note: str = "", actor: object | None = None) -> int:
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
        created_by=getattr(actor, "user_id", None),
    ))
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Conflict("the programme was changed concurrently; reload and retry") from None
    return version


async def history(uow: UnitOfWork) -> list[ProgrammeVersion]:
    rows = await uow.session.scalars(select(ProgrammeVersion).order_by(ProgrammeVersion.version.desc()))
    return list(rows)
