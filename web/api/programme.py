"""The programme document: the version in force, its history, and new versions (whole or by section).

Writes take the document (or section) as the JSON body; ``effective_from`` (ISO 8601 with a zone,
not in the past) and ``note`` are query parameters, so the body is exactly what ``GET`` returns
under ``document``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import FromPath, FromQuery

from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.models import ProgrammeVersion
from lianka.tenants.services import programme as svc


class ProgrammeOut(msgspec.Struct):
    version: int
    effective_from: datetime | None
    document: dict[str, Any]


class VersionOut(msgspec.Struct):
    version: int
    effective_from: datetime
    in_force: bool
    note: str
    created_by: uuid.UUID | None
    created_at: datetime
    document: dict[str, Any]


async def _json_body(request: Request[Any, Any, Any]) -> Any:
    try:
        return msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ValidationFailed("The body is not valid JSON") from None


class ProgrammeController(Controller):
    path = "/programme"
    tags = ("programme",)

    @get("/", guards=[requires(Permission.PROGRAMME_READ)], summary="The programme version in force now")
    async def current(self, principal: CurrentPrincipal, ident: IdentityService) -> ProgrammeOut:
        async with ident.db.uow(principal.tenant) as uow:
            version, doc = await svc.programme_at(uow)
            row = await uow.session.get(ProgrammeVersion, (principal.tenant, version)) if version else None
        return ProgrammeOut(version, row.effective_from if row else None, msgspec.to_builtins(doc))

    @get("/versions", guards=[requires(Permission.PROGRAMME_READ)], summary="Every version, newest first")
    async def versions(self, principal: CurrentPrincipal, ident: IdentityService) -> list[VersionOut]:
        async with ident.db.uow(principal.tenant) as uow:
            in_force, _ = await svc.programme_at(uow)
            rows = await svc.history(uow)
        return [VersionOut(r.version, r.effective_from, r.version == in_force, r.note, r.created_by, r.created_at,
                           r.document) for r in rows]

    @put("/", guards=[requires(Permission.PROGRAMME_WRITE)], summary="Publish a whole new programme version")
    async def replace(self, request: Request[Any, Any, Any], principal: CurrentPrincipal, ident: IdentityService,
                      effective_from: FromQuery[datetime | None] = None, note: FromQuery[str] = "") -> ProgrammeOut:
        programme = svc.decode(await _json_body(request))
        async with ident.db.uow(principal.tenant) as uow:
            version = await svc.publish(uow, programme, effective_from=effective_from, note=note,
                                        created_by=principal.subject_id)
            await uow.commit()
        return ProgrammeOut(version, effective_from or datetime.now(UTC), msgspec.to_builtins(programme))

    @put("/{section:str}", guards=[requires(Permission.PROGRAMME_WRITE)],
         summary="Publish a new version with one section replaced: points, tiers, rules, join, stored-value, "
                 "refunds")
    async def replace_section(self, section: FromPath[str], request: Request[Any, Any, Any],
                              principal: CurrentPrincipal, ident: IdentityService,
                              effective_from: FromQuery[datetime | None] = None,
                              note: FromQuery[str] = "") -> ProgrammeOut:
        if section not in svc.SECTIONS:
            raise ValidationFailed(f"unknown section {section!r}; one of {', '.join(svc.SECTIONS)}")
        value = await _json_body(request)
        async with ident.db.uow(principal.tenant) as uow:
            await svc.lock(uow)  # read the base and write the new version in one serialised step
            _, base = await svc.latest(uow)
            programme = svc.with_section(base, section, value)
            version = await svc.publish(uow, programme, effective_from=effective_from,
                                        note=note or f"{section} changed", created_by=principal.subject_id)
            await uow.commit()
        return ProgrammeOut(version, effective_from or datetime.now(UTC), msgspec.to_builtins(programme))
