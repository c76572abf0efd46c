"""The programme document: the version in force, its history, and new versions (whole or by section).

Writes take the document (or section) as the JSON body; ``effective_from`` (ISO 8601 with a zone,
not in the past) and ``note`` are query parameters, so the body is exactly what ``GET`` returns
under ``document``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import FromPath, FromQuery

from lianka.platform import audit
from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.services import programme as svc
from lianka.web.api.deps import Db


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


def _out(p: svc.InForce) -> ProgrammeOut:
    return ProgrammeOut(p.version, p.effective_from, msgspec.to_builtins(p.programme))


class ProgrammeController(Controller):
    path = "/programme"
    tags = ("programme",)

    @get("/", guards=[requires(Permission.PROGRAMME_READ)], summary="The programme version in force now")
    async def current(self, db: Db, principal: CurrentPrincipal) -> ProgrammeOut:
        return _out(await svc.in_force(db, principal.tenant))

    @get("/versions", guards=[requires(Permission.PROGRAMME_READ)], summary="Every version, newest first")
    async def versions(self, db: Db, principal: CurrentPrincipal) -> list[VersionOut]:
        in_force, rows = await svc.versions(db, principal.tenant)
        return [
            VersionOut(
                r.version, r.effective_from, r.version == in_force, r.note, r.created_by, r.created_at, r.document
            )
            for r in rows
        ]

    @put("/", guards=[requires(Permission.PROGRAMME_WRITE)], summary="Publish a whole new programme version")
    async def replace(
        self,
        db: Db,
        request: Request[Any, Any, Any],
        principal: CurrentPrincipal,
        effective_from: FromQuery[datetime | None] = None,
        note: FromQuery[str] = "",
    ) -> ProgrammeOut:
        return _out(
            await svc.publish_document(
                db,
                principal.tenant,
                await _json_body(request),
                effective_from=effective_from,
                note=note,
                actor=audit.by(principal),
            )
        )

    @put(
        "/{section:str}",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Publish a new version with one section replaced: points, tiers, rules, join, stored-value, refunds, promotions",
    )
    async def replace_section(
        self,
        db: Db,
        section: FromPath[str],
        request: Request[Any, Any, Any],
        principal: CurrentPrincipal,
        effective_from: FromQuery[datetime | None] = None,
        note: FromQuery[str] = "",
    ) -> ProgrammeOut:
        svc.check_section(section)  # before the body: an unknown section is the first thing said
        return _out(
            await svc.publish_section(
                db,
                principal.tenant,
                section,
                await _json_body(request),
                effective_from=effective_from,
                note=note,
                actor=audit.by(principal),
            )
        )
