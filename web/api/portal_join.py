"""The member portal's self-join (issue 14): a merchant's join link, its join code, and the join
itself — the same use cases (``tenants.services.self_join``) as the portal's ``/join`` pages.

``{merchant}`` is the merchant's slug or id; ``branch`` (the branch's code or id) sets the join
branch. A join signs the person in (the portal session cookie, as ``POST /portal/session``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.identity.guards import IdentityService, public
from lianka.tenants.services import self_join
from lianka.web.api.cookies import client_ip, require_json
from lianka.web.api.members_auth import OtpRequest, member_session

Name = Annotated[str, msgspec.Meta(max_length=100)]


class JoinTargetOut(msgspec.Struct):
    merchant: str
    name: str
    branch_id: uuid.UUID | None
    branch_name: str | None
    #: the join rule: "free", or "qualifying_purchase" (the person is a prospect until the till's sale)
    policy: str
    single_purchase_min: int
    cumulative_min: int
    min_age: int


class Consents(msgspec.Struct, forbid_unknown_fields=True):
    sms: bool = False
    email: bool = False
    wechat: bool = False


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    phone: str
    code: str
    privacy_accepted: bool
    consents: Consents = msgspec.field(default_factory=Consents)
    branch: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    name: Name = ""
    birthday: date | None = None
    #: a friend's invitation code (the ``ref`` of their link); unknown codes join without a referrer
    ref: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class JoinOut(msgspec.Struct):
    #: "joined" (a member now), "prospect" (after a qualifying purchase at the till) or "already"
    status: str
    member_id: uuid.UUID
    merchant: str
    csrf_token: str
    expires_at: str
    #: the invitation: "linked" (the friend is the referrer), "unknown" (no such code: no referrer),
    #: "refused" (already a member, oneself, or a loop); null when the join carried no code
    referral: str | None = None


def target_out(t: self_join.JoinTarget) -> JoinTargetOut:
    return JoinTargetOut(
        t.slug,
        t.name,
        t.branch_id,
        t.branch_name,
        str(t.rule.policy),
        t.rule.single_purchase_min,
        t.rule.cumulative_min,
        t.rule.min_age,
    )


class PortalJoinController(Controller):
    path = "/portal/join/{merchant:str}"
    tags = ("member portal",)

    @get("/", guards=[public], summary="What a join link shows: the merchant, the branch and the join rule")
    async def target(
        self, merchant: FromPath[str], ident: IdentityService, branch: FromQuery[str | None] = None
    ) -> JoinTargetOut:
        return target_out(await self_join.join_target(ident.db, merchant, branch))

    @post("/otp", status_code=202, guards=[public], summary="Text a join code to a phone (members or not)")
    async def request_code(
        self,
        request: Request[Any, Any, Any],
        merchant: FromPath[str],
        data: JSONBody[OtpRequest],
        ident: IdentityService,
    ) -> dict[str, str]:
        await self_join.request_code(ident, merchant, data.phone, client_ip(request))
        return {"status": "sent"}

    @post(
        "/",
        guards=[public],
        summary="Join with the code: 201 a new member, 200 a prospect or an existing member; signed in",
    )
    async def join(
        self, request: Request[Any, Any, Any], merchant: FromPath[str], data: JSONBody[JoinIn], ident: IdentityService
    ) -> Response[JoinOut]:
        require_json(request)
        form = self_join.JoinForm(
            data.privacy_accepted,
            msgspec.structs.asdict(data.consents),
            data.name.strip(),
            data.birthday,
            data.ref or "",
        )
        done = await self_join.join(ident, merchant, data.branch, data.phone, data.code, form, client_ip(request))
        session, cookies = await member_session(request, ident, done.member_id)
        out = JoinOut(done.status, done.member_id, done.slug, session.csrf_token, session.expires_at, done.referral)
        return Response(out, status_code=201 if done.status == "joined" else 200, cookies=cookies)
