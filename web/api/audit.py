"""``GET /api/v1/audit``: the merchant's audit log, newest first, filtered and paged
(owners, admins and admin-scope integrations — ``audit:read``); ``/api/v1/audit/export`` the same
rows as CSV or XLSX (the download is itself audited)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Response, get
from litestar.params import FromQuery

from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.web.api.deps import Db


class AuditEntryOut(msgspec.Struct):
    id: uuid.UUID
    at: datetime
    actor_kind: str
    actor_id: str
    actor_name: str
    action: str
    object_kind: str
    object_id: str
    details: dict[str, Any]
    request_id: str | None
    ip: str | None


class AuditPage(msgspec.Struct):
    total: int
    limit: int
    offset: int
    items: list[AuditEntryOut]


def _filter(
    actor: str | None,
    action: str | None,
    object_kind: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> audit.Filter:
    return audit.Filter(actor or None, action or None, object_kind or None, object_id or None, since, until)


class AuditController(Controller):
    path = "/audit"
    tags = ("audit",)

    @get(
        "/",
        guards=[requires(Permission.AUDIT_READ)],
        summary="The audit log, newest first. Filters: actor (id or part of a name), action (a slug, or a "
        "prefix ending in '.'), object_kind, object_id, since (inclusive), until (exclusive)",
    )
    async def entries(
        self,
        db: Db,
        principal: CurrentPrincipal,
        actor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        object_kind: FromQuery[str | None] = None,
        object_id: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: FromQuery[int] = 50,
        offset: FromQuery[int] = 0,
    ) -> AuditPage:
        f = _filter(actor, action, object_kind, object_id, since, until)
        page = await audit.entries(db, principal.tenant, f, limit=limit, offset=offset)
        items = [AuditEntryOut(**vars(e)) for e in page.entries]
        return AuditPage(page.total, limit, offset, items)

    @get(
        "/export",
        guards=[requires(Permission.AUDIT_READ)],
        media_type="text/csv",  # the default format; xlsx answers with its own type
        summary="The filtered audit log as a file: format csv or xlsx (times in the merchant's zone)",
    )
    async def export(
        self,
        db: Db,
        principal: CurrentPrincipal,
        format: FromQuery[str] = "csv",  # noqa: A002 (the query parameter's name)
        actor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        object_kind: FromQuery[str | None] = None,
        object_id: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Response[bytes]:
        f = _filter(actor, action, object_kind, object_id, since, until)
        body, media = await audit.export(db, principal.tenant, f, format, actor=audit.by(principal))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%MZ")
        return Response(
            body, media_type=media, headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{format}"'}
        )
