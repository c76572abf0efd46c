"""POS clients (API clients of the merchant: tills, integrations): the list, create, revoke.

- Guarded like the API: ``clients:read`` to see the list, ``clients:write`` to create and revoke
  (owners and admins; a branch-limited admin only for its branches — the use case's rule).
- The secret is shown once, in the answer to the create form, with a copy button; Lianka keeps only
  its hash, so the page cannot show it again (the answer is ``no-store`` like every page).
- Each handler calls one use case of ``platform.identity.clients``, the same as ``/api/v1/clients``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity import clients
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import SCOPES, Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.services import branches as branch_svc
from lianka.web.billing_gate import PLAN_FREES
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_errors,
    form_text,
    go,
    is_htmx,
    language,
    panel_page,
)

READ = requires(*MENU["clients"].permissions)
WRITE = requires(Permission.CLIENTS_WRITE)
FIELDS = ("name", "scopes", "branch_id", "expires_in_days")
#: what each scope lets a client do, in the reader's words (the keys are the API's scopes)
SCOPE_LABELS = {
    "pos": N_("Till: find members, sell, top up, refund"),
    "members:read": N_("Read members"),
    "reports:read": N_("Read reports"),
    "admin": N_("Back office: everything except staff, API clients and member exports"),
}
assert set(SCOPE_LABELS) == SCOPES


def _values(form: Any = None) -> dict[str, Any]:
    if form is None:
        return {"name": "", "scopes": ["pos"], "branch_id": "", "expires_in_days": ""}
    return {
        "name": form_text(form, "name"),
        "scopes": [str(s) for s in form.getall("scopes", [])][:10],
        "branch_id": form_text(form, "branch_id"),
        "expires_in_days": form_text(form, "expires_in_days"),
    }


def _parsed(values: dict[str, Any]) -> tuple[uuid.UUID | None, int | None]:
    try:
        branch = uuid.UUID(values["branch_id"]) if values["branch_id"] else None
    except ValueError:
        raise ValidationFailed("branch_id is not an id", field="branch_id") from None
    days = values["expires_in_days"]
    if days and not (days.isascii() and days.isdigit() and len(days) <= 6):
        raise ValidationFailed("expires_in_days is a whole number of days", field="expires_in_days")
    return branch, int(days) if days else None


class ClientPages(Controller):
    path = "/console/clients"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: FormErrors | None = None,
        created: clients.NewClient | None = None,
        flash: str | None = None,
    ) -> Template:
        """The whole page, or for htmx the panel (list, form, and a new client's secret)."""
        rows = await clients.list_clients(ident, principal)
        branches = await branch_svc.branches(ident.db, principal.tenant, principal.branch_ids)
        return await panel_page(
            request,
            "clients",
            principal=principal,
            status=status,
            clients=rows,
            branches={b.id: b for b in branches},
            scope_labels=SCOPE_LABELS,
            values=values or _values(),
            errors=errors or FormErrors(),
            created=created,
            now=datetime.now(UTC),
            flash=flash,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @post("/", guards=[READ, WRITE])
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Create a client; the answer shows its secret once (no redirect: a reload must not show it)."""
        values = _values(await form_data(request))
        try:
            branch, days = _parsed(values)
            made = await clients.create_client(
                ident, principal, values["name"], values["scopes"], branch_id=branch, expires_in_days=days
            )
        except DomainError as exc:
            if exc.status in (403, 404):  # a branch outside the admin's, or another merchant's
                raise
            return await self._panel(
                request,
                principal,
                ident,
                status=exc.status,
                values=values,
                errors=form_errors(exc, language(request), FIELDS),
            )
        return await self._panel(request, principal, ident, created=made, flash="client-created")

    @post("/{client_row_id:uuid}/revoke", guards=[READ, WRITE], opt={PLAN_FREES: True})
    async def revoke(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        client_row_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """Revoke a client: its tokens stop working at once (another merchant's client: 404)."""
        await clients.revoke_client(ident, principal, client_row_id)
        if is_htmx(request):
            return await self._panel(request, principal, ident, flash="client-revoked")
        return go(request, "/console/clients", flash="client-revoked")
