"""The audit log: who did what to which object of a merchant, written in the action's own transaction.

:func:`record` is the one building block: it takes the use case's unit of work and never commits, so
an action that rolls back leaves no audit row and a committed one always has exactly the row its use
case wrote (decision 0051). The table is append-only in the database itself — the app role holds no
UPDATE or DELETE, and a trigger refuses them (and TRUNCATE) for everybody, owner included — and each
row is the merchant's own under row-level security (``tenant_id`` first in the primary key, Citus's
rule).

Who acted is an :class:`Actor`: a staff member or an API client (from the request's principal), an
operator at the command line, or a system job. A staff member's or client's display name is looked up
by the insert itself when the caller does not know it, so callers pass only what they hold. The
request id and the client address come from the request's context (bound by the web middleware);
jobs and the CLI have neither.

``details`` is a small JSON object (before/after where meaningful). It never carries secrets or a
member's contact data: keys that look like either are dropped here, whatever the caller passed, and
long strings are cut.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import structlog

from lianka.platform import audit_queries as queries
from lianka.platform import tables
from lianka.platform.errors import ValidationFailed

if TYPE_CHECKING:
    from lianka.platform.db import Database, UnitOfWork
    from lianka.platform.identity.principal import Principal


class ActorKind(StrEnum):
    STAFF = "staff"
    CLIENT = "client"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acted. ``id`` is the staff user's or API client row's id, the operator's login name, or the
    job's name; ``name`` is what people read (looked up at write time for staff and clients when
    empty)."""

    kind: ActorKind
    id: str
    name: str = ""


def by(principal: Principal) -> Actor:
    """The actor behind a request's principal (a staff member or an API client)."""
    from lianka.platform.identity.principal import Kind

    kind = ActorKind.CLIENT if principal.kind is Kind.CLIENT else ActorKind.STAFF
    return Actor(kind, str(principal.subject_id))


def subject(actor: Actor) -> uuid.UUID | None:
    """The staff user's or API client's id behind ``actor`` (``created_by`` columns), else None."""
    if actor.kind in (ActorKind.STAFF, ActorKind.CLIENT):
        return uuid.UUID(actor.id)
    return None


def operator(login: str) -> Actor:
    """A person at the ``lianka`` command line (their login name; the CLI has no signed-in user)."""
    return Actor(ActorKind.OPERATOR, login[:100] or "operator", login[:100] or "operator")


def system(job: str) -> Actor:
    """A scheduled or queued job acting on its own (the job's name)."""
    return Actor(ActorKind.SYSTEM, job[:100], job[:100])


#: a scheduled job acting on its own (the monthly closes, …)
SCHEDULED = Actor(ActorKind.SYSTEM, "scheduler", "scheduler")


def encode(actor: Actor) -> dict[str, str]:
    """``actor`` as job-message fields: a queued job is audited as whoever queued it."""
    return {"by_kind": actor.kind.value, "by_id": actor.id, "by_name": actor.name}


def decode(fields: Mapping[str, object]) -> Actor:
    """The actor :func:`encode` put in a job's message; :data:`SCHEDULED` for a message without one."""
    kind, ident = fields.get("by_kind"), fields.get("by_id")
    if not isinstance(kind, str) or not isinstance(ident, str) or kind not in ActorKind.__members__.values():
        return SCHEDULED
    return Actor(ActorKind(kind), ident, str(fields.get("by_name") or ""))


#: an action slug (``area.verb_ed``), or a prefix of one ending in a dot in a filter
SLUG = re.compile(r"^[a-z_]+\.([a-z_]+)?$")

#: the client address of the request being served (bound by ``web/middleware.py``)
client_ip: ContextVar[str | None] = ContextVar("audit_client_ip", default=None)

#: keys (substrings, lower case) never stored in ``details``: secrets and members' contact data
FORBIDDEN_KEYS = (
    "secret",
    "password",
    "token",
    "hash",
    "card",
    "phone",
    "mobile",
    "email",
    "address",
    "openid",
    "unionid",
    "id_number",
)
#: the longest string value kept in ``details`` (longer ones are cut)
MAX_TEXT = 200
MAX_DEPTH = 4


def clean(value: Any, depth: int = 0) -> Any:
    """``details`` as stored: JSON-safe, without forbidden keys, strings cut to ``MAX_TEXT``."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            str(k): clean(v, depth + 1)
            for k, v in value.items()
            if not any(bad in str(k).lower() for bad in FORBIDDEN_KEYS)
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [clean(v, depth + 1) for v in value][:50]
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return str(value)[:MAX_TEXT]


async def record(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    *,
    object_kind: str,
    object_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit row for the unit of work's merchant, in its transaction (never commits).

    ``action`` is a stable slug (``programme.published``); ``object_kind`` and ``object_id`` name
    what it acted on. The row is written under the unit of work's current tenant, which must be the
    merchant the action belongs to."""
    if uow.tenant_id is None:
        raise RuntimeError("an audit row belongs to a merchant: the unit of work has no tenant")
    context = structlog.contextvars.get_contextvars()
    request_id = context.get("request_id")
    await queries.insert(
        uow,
        queries.NewEntry(
            tenant_id=uow.tenant_id,
            actor_kind=actor.kind.value,
            actor_id=actor.id[:100],
            actor_name=actor.name[:200],
            action=action,
            object_kind=object_kind,
            object_id=str(object_id)[:100],
            details=msgspec.json.encode(clean(details or {})).decode(),
            request_id=str(request_id)[:64] if request_id else None,
            ip=client_ip.get(),
        ),
    )


async def downloaded(
    db: Database, merchant: uuid.UUID, actor: Actor, object_kind: str, object_id: object, details: dict[str, Any]
) -> None:
    """Record ``export.downloaded`` for a file a read use case made (statements, bank files): the
    download is the action, and this unit of work is its only write."""
    async with db.uow(merchant) as uow:
        await record(uow, actor, "export.downloaded", object_kind=object_kind, object_id=object_id, details=details)
        await uow.commit()


# --- the read side: the console's page, the API, the export ----------------------------------------

Filter = queries.Filter
Entry = queries.Entry

#: most rows one export holds (a narrower filter gets the rest)
EXPORT_MAX = 50_000
EXPORT_HEADER = [
    "time",
    "actor_kind",
    "actor_id",
    "actor",
    "action",
    "object_kind",
    "object_id",
    "details",
    "request_id",
    "ip",
]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int
    #: the action slugs the merchant's log holds (filter choices)
    actions: list[str]
    #: the merchant's time zone (times are shown in it)
    timezone: str


def check(f: Filter) -> None:
    """Refuse a filter that cannot mean anything (a 400 naming the field), before any query."""
    if f.action is not None and not SLUG.match(f.action):
        raise ValidationFailed("action is a slug like programme.published, or a prefix like staff.", field="action")
    for name in ("actor", "object_kind", "object_id"):
        value = getattr(f, name)
        if value is not None and (len(value) > 100 or "\x00" in value):
            raise ValidationFailed(f"{name}: at most 100 characters", field=name)
    for name in ("since", "until"):
        value = getattr(f, name)
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"{name} needs a time zone", field=name)
    if f.since is not None and f.until is not None and f.until <= f.since:
        raise ValidationFailed("until must be after since", field="until")


#: most rows one page holds
PAGE_MAX = 200


async def entries(db: Database, tenant: uuid.UUID, f: Filter, *, limit: int, offset: int) -> Page:
    """One page of the merchant's log, newest first, with the total and the filter's choices."""
    check(f)
    if not 1 <= limit <= PAGE_MAX:
        raise ValidationFailed(f"limit is 1 to {PAGE_MAX}", field="limit")
    if not 0 <= offset <= 10**7:
        raise ValidationFailed("offset is 0 or more", field="offset")
    async with db.uow(tenant) as uow:
        rows = await queries.page(uow, f, limit=limit, offset=offset)
        return Page(rows, await queries.count(uow, f), await queries.actions(uow), await queries.timezone(uow))


async def export(db: Database, tenant: uuid.UUID, f: Filter, fmt: str, *, actor: Actor) -> tuple[bytes, str]:
    """The filtered log as CSV or XLSX (times in the merchant's zone); the download is itself audited
    (``export.downloaded``), in the same transaction that read the rows."""
    check(f)
    if fmt not in tables.FORMATS:
        raise ValidationFailed(f"format is one of {', '.join(tables.FORMATS)}", field="format")
    async with db.uow(tenant) as uow:
        zone = ZoneInfo(await queries.timezone(uow))
        rows = await queries.page(uow, f, limit=EXPORT_MAX, offset=0)
        await record(
            uow,
            actor,
            "export.downloaded",
            object_kind="export",
            object_id="audit_log",
            details={
                "format": fmt,
                "rows": len(rows),
                "filters": {k: v for k, v in asdict(f).items() if v is not None},
            },
        )
        await uow.commit()
    table: list[list[object]] = [
        [
            e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor_kind,
            e.actor_id,
            e.actor_name,
            e.action,
            e.object_kind,
            e.object_id,
            msgspec.json.encode(e.details).decode(),
            e.request_id or "",
            e.ip or "",
        ]
        for e in rows
    ]
    return tables.render(EXPORT_HEADER, table, fmt, "audit log")
