"""A merchant's staff: list, add (or invite), change role/branches, remove."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from lianka.platform.identity import staff
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.staff import StaffView
from lianka.web.billing_gate import PLAN_FREES, PLAN_LIMIT


class AddStaff(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    role: str
    branch_ids: list[uuid.UUID] = []
    display_name: str = ""


class ChangeStaff(msgspec.Struct, forbid_unknown_fields=True):
    role: str | None = None
    branch_ids: list[uuid.UUID] | None = None


class StaffController(Controller):
    path = "/staff"
    tags = ("identity",)

    @get("/", guards=[requires(Permission.STAFF_READ)])
    async def list_staff(self, principal: CurrentPrincipal, ident: IdentityService) -> list[StaffView]:
        return await staff.list_staff(ident, principal)

    @post(
        "/",
        guards=[requires(Permission.STAFF_WRITE)],
        opt={PLAN_LIMIT: "staff_seats"},
        summary="Add a person (invited by e-mail if new)",
    )
    async def add(self, data: JSONBody[AddStaff], principal: CurrentPrincipal, ident: IdentityService) -> StaffView:
        return await staff.add_staff(
            ident, principal, data.email, data.role, branch_ids=data.branch_ids, display_name=data.display_name
        )

    @patch("/{user_id:uuid}", guards=[requires(Permission.STAFF_WRITE)])
    async def change(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[ChangeStaff],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> StaffView:
        return await staff.update_staff(ident, principal, user_id, data.role, data.branch_ids)

    @delete("/{user_id:uuid}", guards=[requires(Permission.STAFF_WRITE)], opt={PLAN_FREES: True}, status_code=204)
    async def remove(self, user_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService) -> None:
        await staff.remove_staff(ident, principal, user_id)
