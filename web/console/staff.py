"""Staff (员工): the list, invite by e-mail, change role and branches, remove.

- Guarded like the API: ``staff:read`` to see the list (a manager sees it read-only),
  ``staff:write`` to change it. The use cases (``platform.identity.staff``) keep their rules: only an
  owner grants, changes or removes the owner role, a merchant keeps one owner at least, a manager
  needs a branch, branch lists name the merchant's own branches.
- An invitation to someone new sends the set-password e-mail (the console's ``/set-password`` page);
  someone who already works elsewhere is simply added.
- Forms post normally and htmx swaps the panel (list, forms, errors beside their fields).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, NotFound, ValidationFailed
from lianka.platform.identity import staff
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission, Role
from lianka.platform.identity.principal import Principal
from lianka.tenants.services import branches as branch_svc
from lianka.web.billing_gate import PLAN_FREES, PLAN_LIMIT
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

READ = requires(*MENU["staff"].permissions)
WRITE = requires(Permission.STAFF_WRITE)
FIELDS = ("email", "display_name", "role", "branch_ids")
ROLE_LABELS = {
    Role.OWNER.value: N_("Owner"),
    Role.ADMIN.value: N_("Administrator"),
    Role.MANAGER.value: N_("Manager (its branches)"),
    Role.CASHIER.value: N_("Cashier (the till only)"),
    Role.ANALYST.value: N_("Analyst (read-only)"),
}
assert set(ROLE_LABELS) == {r.value for r in Role}
#: the roles' short names, for the list
ROLE_NAMES = {
    Role.OWNER.value: N_("Owner"),
    Role.ADMIN.value: N_("Administrator"),
    Role.MANAGER.value: N_("Manager"),
    Role.CASHIER.value: N_("Cashier"),
    Role.ANALYST.value: N_("Analyst"),
}
#: the one rule violation the staff use cases raise ("a merchant keeps at least one owner") is about the role
WHERE = {"rule-violation": "role"}


def _values(form: FormMultiDict | None = None) -> dict[str, Any]:
    if form is None:
        return {"email": "", "display_name": "", "role": Role.CASHIER.value, "branch_ids": []}
    return {
        "email": form_text(form, "email"),
        "display_name": form_text(form, "display_name"),
        "role": form_text(form, "role"),
        "branch_ids": [str(b).strip() for b in form.getall("branch_ids", [])][:200],
    }


def _branch_ids(values: dict[str, Any]) -> list[uuid.UUID]:
    if len(values["display_name"]) > 200:
        raise ValidationFailed("display_name: at most 200 characters", field="display_name")
    try:
        return [uuid.UUID(b) for b in values["branch_ids"]]
    except ValueError:
        raise ValidationFailed("branch_ids are ids", field="branch_ids") from None


def _placed(exc: DomainError) -> DomainError:
    if not exc.extra.get("field") and exc.type_slug in WHERE:
        exc.extra["field"] = WHERE[exc.type_slug]
    return exc


class StaffPages(Controller):
    path = "/console/staff"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: FormErrors | None = None,
        editing: dict[str, Any] | None = None,
        flash: str | None = None,
    ) -> Template:
        """The whole page, or for htmx the panel: the list (one row may be in edit), the invite form."""
        people = await staff.list_staff(ident, principal)
        if editing is not None and not any(p.user_id == editing["user_id"] for p in people):
            raise NotFound("Staff member not found")  # unknown, or another merchant's: alike
        branches = await branch_svc.branches(ident.db, principal.tenant, principal.branch_ids)
        return await panel_page(
            request,
            "staff",
            principal=principal,
            status=status,
            people=people,
            branches={b.id: b for b in branches},
            roles=self._roles(principal),
            role_labels=ROLE_LABELS,
            role_names=ROLE_NAMES,
            values=values or _values(),
            errors=errors or FormErrors(),
            editing=editing,
            flash=flash,
        )

    @staticmethod
    def _roles(principal: Principal) -> dict[str, str]:
        """The roles this person may give (only an owner makes owners; the use case refuses the others)."""
        return {k: v for k, v in ROLE_LABELS.items() if k != Role.OWNER.value or principal.role is Role.OWNER}

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @post("/", guards=[READ, WRITE], opt={PLAN_LIMIT: "staff_seats"})
    async def invite(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        values = _values(await form_data(request))
        try:
            await staff.add_staff(
                ident,
                principal,
                values["email"],
                values["role"],
                branch_ids=_branch_ids(values),
                display_name=values["display_name"],
            )
        except DomainError as exc:
            if exc.status in (403, 404):  # an owner made by a non-owner, another merchant's branch
                raise
            return await self._panel(
                request,
                principal,
                ident,
                status=exc.status,
                values=values,
                errors=form_errors(_placed(exc), language(request), FIELDS),
            )
        return await self._done(request, principal, ident, "staff-invited")

    @get("/{user_id:uuid}/edit", guards=[READ, WRITE])
    async def edit(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, user_id: FromPath[uuid.UUID]
    ) -> Template:
        return await self._panel(
            request, principal, ident, editing={"user_id": user_id, "values": None, "errors": FormErrors()}
        )

    @post("/{user_id:uuid}", guards=[READ, WRITE])
    async def change(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, user_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        """A new role and branches (an unknown person, or another merchant's: 404)."""
        values = _values(await form_data(request))
        try:
            await staff.update_staff(ident, principal, user_id, values["role"], _branch_ids(values))
        except DomainError as exc:
            return await self._refused(request, principal, ident, exc, user_id, values)
        return await self._done(request, principal, ident, "staff-saved")

    @post("/{user_id:uuid}/remove", guards=[READ, WRITE], opt={PLAN_FREES: True})
    async def remove(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, user_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        """Take the person off this merchant's staff (their account stays; other merchants keep them)."""
        try:
            await staff.remove_staff(ident, principal, user_id)
        except DomainError as exc:
            return await self._refused(request, principal, ident, exc, user_id, None)
        return await self._done(request, principal, ident, "staff-removed")

    async def _refused(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        exc: DomainError,
        user_id: uuid.UUID,
        values: dict[str, Any] | None,
    ) -> Template:
        """The person's row in edit, with the problem beside its field (403 and 404 are error pages)."""
        if exc.status in (403, 404):
            raise exc
        editing = {"user_id": user_id, "values": values, "errors": form_errors(_placed(exc), language(request), FIELDS)}
        return await self._panel(request, principal, ident, status=exc.status, editing=editing)

    async def _done(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, flash: str
    ) -> Response[Any]:
        if is_htmx(request):
            return await self._panel(request, principal, ident, flash=flash)
        return go(request, "/console/staff", flash=flash)
