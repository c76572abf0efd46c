"""The portal's sign-in (phone → a code by text message → the member session) and sign-out: the
use cases of ``POST /api/v1/portal/otp`` and ``/portal/session``, and the same session cookie."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity import members, sessions
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires_member
from lianka.web.api.cookies import clear_cookies, client_ip
from lianka.web.api.members_auth import member_session
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_text, go, language, local_path
from lianka.web.console.security import check_public_form
from lianka.web.portal.pages import portal_errors, portal_page

FIELDS = ("phone", "code")


class PortalAuthPages(Controller):
    path = "/m"

    @get("/sign-in", guards=[public])
    async def sign_in_form(
        self, request: HtmlRequest, next_page: Annotated[str, QueryParameter(name="next")] = ""
    ) -> Template:
        return await portal_page(
            request,
            "portal/sign_in.html",
            next_page=local_path(next_page, "/m"),
            phone="",
            sent=False,
            errors=FormErrors(),
        )

    @post("/sign-in/code", guards=[public])
    async def send_code(self, request: HtmlRequest, ident: IdentityService) -> Template:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        phone, next_page = form_text(form, "phone"), local_path(form_text(form, "next"), "/m")
        try:
            await members.request_otp(ident, phone, client_ip(request))
        except DomainError as exc:
            return await portal_page(
                request,
                "portal/sign_in.html",
                status=exc.status,
                next_page=next_page,
                phone=phone,
                sent=False,
                errors=portal_errors(exc, language(request), FIELDS),
            )
        return await portal_page(
            request,
            "portal/sign_in.html",
            flash="code-sent",
            next_page=next_page,
            phone=phone,
            sent=True,
            errors=FormErrors(),
        )

    @post("/sign-in", guards=[public])
    async def sign_in(self, request: HtmlRequest, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        phone, next_page = form_text(form, "phone"), local_path(form_text(form, "next"), "/m")
        try:
            member_id = await members.verify_otp(ident, phone, form_text(form, "code"), client_ip(request))
        except DomainError as exc:
            return await portal_page(
                request,
                "portal/sign_in.html",
                status=exc.status,
                next_page=next_page,
                phone=phone,
                sent=True,
                errors=portal_errors(exc, language(request), FIELDS),
            )
        _, cookies = await member_session(request, ident, member_id)
        return go(request, next_page, cookies=cookies)

    @post("/sign-out", guards=[requires_member()])
    async def sign_out(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        if principal.session_id:
            await sessions.revoke_session(ident.db, principal.session_id)
        response = go(request, "/m/sign-in", flash="signed-out")
        clear_cookies(response, sessions.MEMBER_COOKIE)
        return response
