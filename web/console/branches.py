"""Branches (门店): the list, add and edit — the model of a console CRUD page.

- The list and the forms are guarded like the API (``branches:read`` — plus the back office —,
  ``branches:write`` to change); a manager sees only its branches; the buttons show only to those
  who may use them, and the write routes refuse the others anyway.
- Forms post normally (no JavaScript needed) and htmx enhances them: the form is swapped in place
  with its errors beside the fields (the problem's status, 4xx), or the whole panel — table and a
  flash — after a success.
- Each handler calls one use case of ``tenants.services.branches``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.payouts import connect
from lianka.platform.errors import DomainError, NotFound
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.models import Branch
from lianka.tenants.services import branches as svc
from lianka.web.billing_gate import PLAN_LIMIT
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
    page,
    panel_page,
)
from lianka.web.console.payouts import CONNECTIONS as PAYOUT_CONNECTIONS

FIELDS = ("code", "name", "address", "timezone")
READ = requires(*MENU["branches"].permissions)
WRITE = requires(Permission.BRANCHES_WRITE)
TIMEZONES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Macau",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Europe/London",
    "America/New_York",
    "UTC",
)
PANEL = {"HX-Retarget": "#branches-panel", "HX-Reswap": "outerHTML"}


def _values(b: Branch | None) -> dict[str, str]:
    if b is None:
        return {"code": "", "name": "", "address": "", "timezone": "Asia/Shanghai"}
    return {"code": b.code, "name": b.name, "address": b.address, "timezone": b.timezone}


async def _one(ident: IdentityService, principal: Principal, branch_id: uuid.UUID) -> Branch:
    """A branch the principal may change: another merchant's id, or a branch outside a manager's,
    answers like one that does not exist."""
    principal.require_branch(branch_id)
    found = await svc.branches(ident.db, principal.tenant, frozenset({branch_id}))
    if not found:
        raise NotFound("Branch not found")
    return found[0]


class BranchPages(Controller):
    path = "/console/branches"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        editing: dict[str, Any] | None = None,
        flash: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        """The whole page, or for htmx only what it asked for: the panel (``_panel.html``)."""
        rows = await svc.branches(ident.db, principal.tenant, principal.branch_ids)
        payees = {p.id: p for p in await connect.payees(ident.db, principal.tenant)}
        return await panel_page(
            request,
            "branches",
            principal=principal,
            status=status,
            headers=headers,
            branches=rows,
            payees=payees,
            connections=PAYOUT_CONNECTIONS,
            stripe=bool(request.app.state.settings.stripe_secret_key),
            editing=editing,
            timezones=TIMEZONES,
            flash=flash,
        )

    async def _form(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        branch_id: uuid.UUID | None,
        values: dict[str, str],
        errors: FormErrors,
        status: int = 200,
    ) -> Template:
        if is_htmx(request):
            return await page(
                request,
                "console/branches/_form.html",
                principal=principal,
                status=status,
                timezones=TIMEZONES,
                branch_id=branch_id,
                values=values,
                errors=errors,
            )
        editing = {"branch_id": branch_id, "values": values, "errors": errors}
        return await self._panel(request, principal, ident, status=status, editing=editing)

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._form(request, principal, ident, branch_id=None, values=_values(None), errors=FormErrors())

    @post("/", guards=[READ, WRITE], opt={PLAN_LIMIT: "branches"})
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        values = {name: form_text(form, name) for name in FIELDS}
        try:
            await svc.open_branch(ident.db, principal.tenant, svc.BranchChanges(**values))
        except DomainError as exc:
            return await self._form(
                request,
                principal,
                ident,
                branch_id=None,
                values=values,
                status=exc.status,
                errors=form_errors(exc, language(request), FIELDS),
            )
        return await self._done(request, principal, ident, "branch-created")

    @get("/{branch_id:uuid}/edit", guards=[READ, WRITE])
    async def edit(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, branch_id: FromPath[uuid.UUID]
    ) -> Template:
        branch = await _one(ident, principal, branch_id)
        return await self._form(
            request, principal, ident, branch_id=branch_id, values=_values(branch), errors=FormErrors()
        )

    @post("/{branch_id:uuid}", guards=[READ, WRITE])
    async def update(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, branch_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        form = await form_data(request)
        values = {name: form_text(form, name) for name in FIELDS}
        principal.require_branch(branch_id)
        try:
            await svc.change_branch(ident.db, principal.tenant, branch_id, svc.BranchChanges(**values))
        except DomainError as exc:
            if exc.status == 404:
                raise
            return await self._form(
                request,
                principal,
                ident,
                branch_id=branch_id,
                values=values,
                status=exc.status,
                errors=form_errors(exc, language(request), FIELDS),
            )
        return await self._done(request, principal, ident, "branch-saved")

    async def _done(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, flash: str
    ) -> Response[Any]:
        """htmx: the refreshed panel replaces the old one; a plain form: post/redirect/get."""
        if is_htmx(request):
            return await self._panel(request, principal, ident, flash=flash, headers=PANEL)
        return go(request, "/console/branches", flash=flash)
