"""Every SQL statement of the audit log (``platform/audit.py``), each behind a typed function."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from lianka.platform.db import UnitOfWork


@dataclass(frozen=True)
class NewEntry:
    tenant_id: uuid.UUID
    actor_kind: str
    actor_id: str
    actor_name: str
    action: str
    object_kind: str
    object_id: str
    details: str
    request_id: str | None
    ip: str | None


#: a staff member's or client's name is looked up here when the caller passed none (RLS lets a
#: merchant read its own staff users and clients); the id is the last resort
_INSERT = text(
    """
    INSERT INTO audit_log (tenant_id, actor_kind, actor_id, actor_name, action, object_kind, object_id,
                           details, request_id, ip)
    SELECT :tenant_id, a.kind, a.id,
           coalesce(
               nullif(CAST(:actor_name AS text), ''),
               CASE a.kind
                   WHEN 'staff' THEN (SELECT coalesce(nullif(u.display_name, ''), u.email) FROM staff_users u
                                      WHERE u.id::text = a.id)
                   WHEN 'client' THEN (SELECT c.name FROM api_clients c WHERE c.id::text = a.id)
               END,
               a.id),
           :action, :object_kind, :object_id, CAST(:details AS jsonb), :request_id, CAST(:ip AS inet)
    FROM (SELECT CAST(:actor_kind AS text) AS kind, CAST(:actor_id AS text) AS id) AS a
    """
)


async def insert(uow: UnitOfWork, entry: NewEntry) -> None:
    params = asdict(entry)
    if params["ip"] is not None and not _is_ip(params["ip"]):
        params["ip"] = None
    await uow.session.execute(_INSERT, params)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Filter:
    """What the console and ``GET /api/v1/audit`` filter on; every field optional."""

    actor: str | None = None  # an actor id, or a part of a name
    action: str | None = None  # a slug, or its prefix ending in '.' (``staff.``)
    object_kind: str | None = None
    object_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class Entry:
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


_WHERE = """
    (CAST(:actor AS text) IS NULL OR actor_id = :actor OR actor_name ILIKE '%' || :actor || '%')
    AND (CAST(:action AS text) IS NULL OR action = :action
         OR (right(:action, 1) = '.' AND left(action, length(:action)) = :action))
    AND (CAST(:object_kind AS text) IS NULL OR object_kind = :object_kind)
    AND (CAST(:object_id AS text) IS NULL OR object_id = :object_id)
    AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
    AND (CAST(:until AS timestamptz) IS NULL OR at < :until)
"""

_PAGE = text(
    "SELECT id, at, actor_kind, actor_id, actor_name, action, object_kind, object_id, details, request_id,"
    " host(ip) AS ip FROM audit_log WHERE" + _WHERE + "ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
)
_COUNT = text("SELECT count(*) FROM audit_log WHERE" + _WHERE)
_ACTIONS = text("SELECT DISTINCT action FROM audit_log ORDER BY action")


def _params(f: Filter) -> dict[str, Any]:
    return asdict(f)


async def page(uow: UnitOfWork, f: Filter, *, limit: int, offset: int) -> list[Entry]:
    rows = await uow.session.execute(_PAGE, {**_params(f), "limit": limit, "offset": offset})
    return [Entry(**row._mapping) for row in rows]


async def count(uow: UnitOfWork, f: Filter) -> int:
    return int(await uow.session.scalar(_COUNT, _params(f)) or 0)


async def actions(uow: UnitOfWork) -> list[str]:
    """The action slugs the merchant's log holds (the console's filter choices)."""
    return list((await uow.session.execute(_ACTIONS)).scalars())


async def timezone(uow: UnitOfWork) -> str:
    """The merchant's time zone (the unit of work's tenant)."""
    zone = await uow.session.scalar(
        text("SELECT timezone FROM merchants WHERE id = NULLIF(current_setting('app.tenant_id', true), '')::uuid")
    )
    return str(zone or "Asia/Shanghai")
