"""Minimal member enrolment and look-up at the till (issue 5 grows the programme around them)."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.identity import members
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.members import MemberView
from lianka.platform.identity.permissions import Permission
from lianka.tenants.services import enrolment
from lianka.web.api.deps import acting_branch


class EnrolBody(msgspec.Struct, forbid_unknown_fields=True):
    phone: str
    #: where the member joined; defaults to a branch-limited caller's only branch
    branch_id: uuid.UUID | None = None


class MembersController(Controller):
    path = "/members"
    tags = ("members",)

    @post(
        "/",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="Enrol a member by phone (201 new membership, 200 already a member)",
    )
    async def enrol(
        self, data: JSONBody[EnrolBody], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[MemberView]:
        # managers and branch terminals enrol at their branches
        done = await enrolment.enrol(ident, principal.tenant, data.phone, acting_branch(principal, data.branch_id))
        return Response(done.member, status_code=201 if done.new_membership else 200)

    @get("/lookup", guards=[requires(Permission.MEMBERS_READ)], summary="Find a member by card, phone or QR")
    async def lookup(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        card: FromQuery[str | None] = None,
        phone: FromQuery[str | None] = None,
        qr: FromQuery[str | None] = None,
    ) -> MemberView:
        return await members.lookup_member(ident, principal.tenant, card=card, phone=phone, qr=qr)

    @get("/{member_id:uuid}", guards=[requires(Permission.MEMBERS_READ)])
    async def get_member(
        self, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> MemberView:
        return await members.get_member(ident, principal.tenant, member_id)
