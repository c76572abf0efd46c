"""The member portal's sign-in (phone + one-time code) and the member's own card."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from lianka.platform.identity import members, sessions
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires_member
from lianka.platform.identity.members import PortalView
from lianka.platform.identity.runtime import Identity
from lianka.web.api.cookies import clear_cookies, client_ip, require_json, session_cookies, user_agent


class OtpRequest(msgspec.Struct, forbid_unknown_fields=True):
    phone: str


class OtpSignIn(msgspec.Struct, forbid_unknown_fields=True):
    phone: str
    code: str


class PortalSessionOut(msgspec.Struct):
    csrf_token: str
    expires_at: str


class QrOut(msgspec.Struct):
    token: str
    expires_in: int


async def member_session(
    request: Request[Any, Any, Any], ident: Identity, member_id: uuid.UUID
) -> tuple[PortalSessionOut, list[Cookie]]:
    """A portal session for ``member_id`` (after a sign-in or a join code): its CSRF token and expiry,
    and the cookies that carry it — the same for the JSON API and the portal's pages."""
    sess = await sessions.create_session(
        ident.db,
        kind="member",
        subject_id=member_id,
        method="otp",
        ttl=ident.cfg.member_session_ttl,
        cookie=True,
        user_agent=user_agent(request),
        ip=client_ip(request),
    )
    assert sess.token is not None
    return (
        PortalSessionOut(sessions.csrf_token(ident.secret, sess.token), sess.expires_at.isoformat()),
        session_cookies(ident, sessions.MEMBER_COOKIE, sess.token, ident.cfg.member_session_ttl),
    )


class PortalController(Controller):
    path = "/portal"
    tags = ("member portal",)

    @post("/otp", status_code=202, guards=[public], summary="Text a sign-in code to a member's phone")
    async def request_code(
        self, request: Request[Any, Any, Any], data: JSONBody[OtpRequest], ident: IdentityService
    ) -> dict[str, str]:
        await members.request_otp(ident, data.phone, client_ip(request))
        return {"status": "sent if this phone belongs to a member"}

    @post("/session", status_code=200, guards=[public], summary="Sign in with the code")
    async def sign_in(
        self, request: Request[Any, Any, Any], data: JSONBody[OtpSignIn], ident: IdentityService
    ) -> Response[PortalSessionOut]:
        require_json(request)
        member_id = await members.verify_otp(ident, data.phone, data.code, client_ip(request))
        out, cookies = await member_session(request, ident, member_id)
        return Response(out, cookies=cookies)

    @delete("/session", status_code=204, guards=[requires_member()], summary="Sign out of the portal")
    async def sign_out(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[None]:
        if principal.session_id:
            await sessions.revoke_session(ident.db, principal.session_id)
        response: Response[None] = Response(None, status_code=204)
        clear_cookies(response, sessions.MEMBER_COOKIE)
        return response

    @get("/me", guards=[requires_member()], summary="My card and the merchants I belong to")
    async def me(self, principal: CurrentPrincipal, ident: IdentityService) -> PortalView:
        return await members.portal_view(ident, principal.subject_id)

    @get("/qr", guards=[requires_member()], summary="The current QR token to show at the till")
    async def qr(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[QrOut]:
        token, expires_in = await members.current_qr(ident, principal.subject_id)
        return Response(QrOut(token, expires_in), headers={"Cache-Control": "no-store"})
