"""API clients (POS terminals, integrations): create with a secret shown once, list, revoke.

The secret is 256 random bits, so it is stored as a SHA-256 (a slow hash buys nothing against a
value that cannot be guessed, and the token endpoint stays fast). Revoking a client ends its
tokens at once: every request checks the client row.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from lianka.platform import audit
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity import principal_cache, secrets_box
from lianka.platform.identity.models import ApiClient
from lianka.platform.identity.permissions import SCOPES
from lianka.platform.identity.principal import Principal
from lianka.platform.identity.runtime import Identity


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    client_id: str
    name: str
    branch_id: uuid.UUID | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewClient:
    client: ClientView
    client_secret: str


def _view(c: ApiClient) -> ClientView:
    return ClientView(
        c.id, c.client_id, c.name, c.branch_id, list(c.scopes), c.created_at, c.expires_at, c.revoked_at, c.last_used_at
    )


async def create_client(
    ident: Identity,
    actor: Principal,
    name: str,
    scopes: list[str],
    *,
    branch_id: uuid.UUID | None = None,
    expires_in_days: int | None = None,
) -> NewClient:
    unknown = set(scopes) - SCOPES
    if not scopes or unknown:
        raise ValidationFailed("Unknown or missing scopes", field="scopes", allowed=sorted(SCOPES))
    if not name.strip() or len(name) > 200:
        raise ValidationFailed("A name has 1 to 200 characters", field="name")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ValidationFailed("expires_in_days is 1 to 3650", field="expires_in_days")
    if actor.branch_ids is not None:  # a branch-limited admin may only create clients for its branches
        actor.require_branch(branch_id)
    secret = "lks_" + secrets.token_urlsafe(32)
    client_id = "lkc_" + secrets.token_hex(12)
    async with ident.db.uow(actor.tenant) as uow:
        s = uow.session
        if branch_id is not None and not await s.scalar(text("SELECT 1 FROM branches WHERE id = :b"), {"b": branch_id}):
            raise NotFound("Branch not found", field="branch_id")
        row = ApiClient(
            tenant_id=actor.tenant,
            client_id=client_id,
            secret_hash=secrets_box.token_hash(secret),
            name=name.strip(),
            branch_id=branch_id,
            scopes=sorted(set(scopes)),
            created_by=actor.subject_id if actor.is_staff else None,
            expires_at=(datetime.now(UTC) + timedelta(days=expires_in_days)) if expires_in_days else None,
        )
        s.add(row)
        await s.flush()
        await s.refresh(row)
        view = _view(row)
        await audit.record(
            uow,
            audit.by(actor),
            "client.created",
            object_kind="client",
            object_id=row.id,
            details={"client_id": row.client_id, "name": row.name, "scopes": row.scopes, "branch_id": branch_id},
        )
        await uow.commit()
    return NewClient(view, secret)


async def list_clients(ident: Identity, actor: Principal) -> list[ClientView]:
    async with ident.db.uow(actor.tenant) as uow:
        rows = await uow.session.scalars(select(ApiClient).order_by(ApiClient.created_at))
        return [_view(c) for c in rows]


async def revoke_client(ident: Identity, actor: Principal, client_row_id: uuid.UUID) -> None:
    async with ident.db.uow(actor.tenant) as uow:
        res = await uow.session.execute(
            text(
                "UPDATE api_clients SET revoked_at = coalesce(revoked_at, now()) WHERE id = :i"
                " RETURNING client_id, revoked_at = now() AS now_revoked"
            ),
            {"i": client_row_id},
        )
        row = res.first()
        if row is None:
            raise NotFound("API client not found")
        if row.now_revoked:  # revoking a revoked client again changes nothing, and records nothing
            await audit.record(
                uow,
                audit.by(actor),
                "client.revoked",
                object_kind="client",
                object_id=client_row_id,
                details={"client_id": row.client_id},
            )
        await uow.commit()
    await principal_cache.revoked(ident.redis)
