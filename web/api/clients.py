"""API clients (POS terminals, integrations) of a merchant."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from lianka.platform.identity import clients
from lianka.platform.identity.clients import ClientView
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.web.billing_gate import PLAN_FREES


class NewClientBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scopes: list[str]
    branch_id: uuid.UUID | None = None
    expires_in_days: int | None = None


class NewClientOut(msgspec.Struct):
    client: ClientView
    client_secret: str
    note: str = "The secret is shown once: store it now. Lianka keeps only a hash."


class ClientsController(Controller):
    path = "/clients"
    tags = ("identity",)

    @get("/", guards=[requires(Permission.CLIENTS_READ)])
    async def list_clients(self, principal: CurrentPrincipal, ident: IdentityService) -> list[ClientView]:
        return await clients.list_clients(ident, principal)

    @post("/", guards=[requires(Permission.CLIENTS_WRITE)], summary="Create an API client (secret shown once)")
    async def create(
        self, data: JSONBody[NewClientBody], principal: CurrentPrincipal, ident: IdentityService
    ) -> NewClientOut:
        made = await clients.create_client(
            ident, principal, data.name, data.scopes, branch_id=data.branch_id, expires_in_days=data.expires_in_days
        )
        return NewClientOut(made.client, made.client_secret)

    @delete(
        "/{client_row_id:uuid}",
        guards=[requires(Permission.CLIENTS_WRITE)],
        opt={PLAN_FREES: True},  # revoking a credential never waits for payment
        status_code=204,
        summary="Revoke an API client (its tokens stop working at once)",
    )
    async def revoke(
        self, client_row_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> None:
        await clients.revoke_client(ident, principal, client_row_id)
