"""A merchant's branches: owners and admins create and change them; everyone else sees theirs."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.models import Branch
from lianka.tenants.services import branches as svc
from lianka.web.billing_gate import PLAN_LIMIT


class NewBranch(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name: str
    address: str = ""
    timezone: str = "Asia/Shanghai"


class BranchPatch(msgspec.Struct, forbid_unknown_fields=True):
    code: str | None = None
    name: str | None = None
    address: str | None = None
    timezone: str | None = None


class BranchOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    address: str
    timezone: str
    created_at: datetime


def _out(b: Branch) -> BranchOut:
    return BranchOut(b.id, b.code, b.name, b.address, b.timezone, b.created_at)


class BranchesController(Controller):
    path = "/branches"
    tags = ("branches",)

    @get("/", guards=[requires(Permission.BRANCHES_READ)], summary="Branches (a manager sees its own)")
    async def list_branches(self, principal: CurrentPrincipal, ident: IdentityService) -> list[BranchOut]:
        return [_out(b) for b in await svc.branches(ident.db, principal.tenant, principal.branch_ids)]

    @post(
        "/",
        guards=[requires(Permission.BRANCHES_WRITE)],
        opt={PLAN_LIMIT: "branches"},
        summary="Open a branch (code unique per merchant)",
    )
    async def create(self, data: JSONBody[NewBranch], principal: CurrentPrincipal, ident: IdentityService) -> BranchOut:
        b = await svc.open_branch(
            ident.db, principal.tenant, svc.BranchChanges(data.code, data.name, data.address, data.timezone)
        )
        return _out(b)

    @patch("/{branch_id:uuid}", guards=[requires(Permission.BRANCHES_WRITE)], summary="Rename, move, re-code")
    async def update(
        self,
        branch_id: FromPath[uuid.UUID],
        data: JSONBody[BranchPatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> BranchOut:
        principal.require_branch(branch_id)
        b = await svc.change_branch(
            ident.db, principal.tenant, branch_id, svc.BranchChanges(data.code, data.name, data.address, data.timezone)
        )
        return _out(b)
