"""Sign-up, e-mail verification, sign-in and sign-out, setting a password from a link, forgot /
reset password, and choosing the merchant to work for — each calling the identity use cases the API
calls."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity import sessions
from lianka.platform.identity.errors import InvalidToken, MerchantNotFound
from lianka.platform.identity.guards import MERCHANT_COOKIE, CurrentPrincipal, IdentityService, public, requires_staff
from lianka.platform.identity.services import (
    SignUp,
    authenticate_password,
    check_reset_link,
    request_password_reset,
    reset_password,
    set_password,
    sign_up,
    staff_merchants,
    start_staff_session,
    verify_email,
)
from lianka.web.api.cookies import clear_cookies, client_ip, session_cookies, user_agent
from lianka.web.console.i18n import N_
from lianka.web.console.nav import landing
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_errors,
    form_text,
    go,
    language,
    local_path,
    page,
)
from lianka.web.console.security import check_public_form

SIGN_UP_FIELDS = ("merchant_name", "slug", "trade", "email", "password", "timezone")
#: trades offered at sign-up (the programme templates follow them); stored as the key
TRADES = {
    "tea": N_("Tea and drinks"),
    "coffee": N_("Coffee"),
    "bakery": N_("Bakery"),
    "restaurant": N_("Restaurant"),
    "retail": N_("Retail"),
    "beauty": N_("Beauty and wellness"),
    "fitness": N_("Fitness"),
    "other": N_("Other"),
}
DEFAULT_NEXT = "/console"


class AuthPages(Controller):
    guards = (public,)

    # --- sign-up and e-mail verification ---------------------------------------------------------

    @get("/sign-up")
    async def sign_up_form(self, request: HtmlRequest) -> Template:
        values = dict.fromkeys(SIGN_UP_FIELDS, "") | {"timezone": "Asia/Shanghai", "trade": "tea"}
        return await page(request, "auth/sign_up.html", trades=TRADES, values=values, errors=FormErrors())

    @post("/sign-up")
    async def sign_up(self, request: HtmlRequest, ident: IdentityService) -> Template:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        values = {name: form_text(form, name) for name in SIGN_UP_FIELDS if name != "password"}
        try:
            if values["trade"] not in TRADES:
                raise ValidationFailed("Unknown trade", field="trade")
            done = await sign_up(
                ident,
                SignUp(
                    merchant_name=values["merchant_name"],
                    slug=values["slug"].lower(),
                    email=values["email"],
                    password=form_text(form, "password", strip=False),
                    trade=values["trade"],
                    timezone=values["timezone"] or "Asia/Shanghai",
                ),
            )
        except DomainError as exc:
            return await page(
                request,
                "auth/sign_up.html",
                status=exc.status,
                trades=TRADES,
                values=values,
                errors=form_errors(exc, language(request), SIGN_UP_FIELDS),
            )
        return await page(request, "auth/sign_up_sent.html", email=done.email)

    @get("/verify-email")
    async def verify(self, request: HtmlRequest, ident: IdentityService, token: FromQuery[str] = "") -> Template:
        """The link in the verification e-mail (``platform.identity.services.queue_verification_mail``).
        Verifying is idempotent and only confirms that the mailbox got our message, so a GET does it."""
        try:
            await verify_email(ident, token)
        except DomainError as exc:
            return await page(
                request,
                "auth/verified.html",
                status=exc.status,
                ok=False,
                errors=form_errors(exc, language(request), ()),
            )
        return await page(request, "auth/verified.html", ok=True, errors=FormErrors())

    # --- sign-in and sign-out --------------------------------------------------------------------

    @get("/sign-in")
    async def sign_in_form(
        self, request: HtmlRequest, next_page: Annotated[str, QueryParameter(name="next")] = ""
    ) -> Template:
        return await page(
            request, "auth/sign_in.html", next_page=local_path(next_page, DEFAULT_NEXT), email="", errors=FormErrors()
        )

    @post("/sign-in")
    async def sign_in(self, request: HtmlRequest, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        email, next_page = form_text(form, "email"), local_path(form_text(form, "next"), DEFAULT_NEXT)
        try:
            user = await authenticate_password(
                ident, email, form_text(form, "password", strip=False), client_ip(request)
            )
        except DomainError as exc:
            return await page(
                request,
                "auth/sign_in.html",
                status=exc.status,
                next_page=next_page,
                email=email,
                errors=form_errors(exc, language(request), ()),
            )
        sess = await start_staff_session(
            ident, user.id, "password", user_agent=user_agent(request), ip=client_ip(request)
        )
        assert sess.token is not None
        # a merchant chosen by whoever used this browser before is not this person's choice
        return go(
            request,
            next_page,
            delete=(MERCHANT_COOKIE,),
            cookies=session_cookies(ident, sessions.STAFF_COOKIE, sess.token, ident.cfg.staff_session_ttl),
        )

    @post("/sign-out", guards=[requires_staff()])
    async def sign_out(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        if principal.session_id:
            await sessions.revoke_session(ident.db, principal.session_id)
        response = go(request, "/sign-in", flash="signed-out", delete=(MERCHANT_COOKIE,))
        clear_cookies(response, sessions.STAFF_COOKIE)
        return response

    # --- a password from a link (invitation) -----------------------------------------------------

    @get("/set-password")
    async def set_password_form(self, request: HtmlRequest, token: FromQuery[str] = "") -> Template:
        """The link of the invitation e-mail (``queue_set_password_mail``)."""
        return await page(request, "auth/set_password.html", token=token, errors=FormErrors())

    @post("/set-password")
    async def set_password(self, request: HtmlRequest, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        token, password = form_text(form, "token"), form_text(form, "password", strip=False)
        try:
            if password != form_text(form, "password_again", strip=False):
                raise ValidationFailed("The passwords differ", field="password_again")
            await set_password(ident, token, password)
        except DomainError as exc:
            return await page(
                request,
                "auth/set_password.html",
                status=exc.status,
                token=token,
                errors=form_errors(exc, language(request), ("password", "password_again")),
            )
        return go(request, "/sign-in", flash="password-set")

    # --- forgot / reset password -----------------------------------------------------------------

    @get("/forgot-password")
    async def forgot_password_form(self, request: HtmlRequest) -> Template:
        return await page(request, "auth/forgot_password.html", email="", errors=FormErrors())

    @post("/forgot-password")
    async def forgot_password(self, request: HtmlRequest, ident: IdentityService) -> Template:
        """The same page whether an account uses the address or not (``request_password_reset``)."""
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        email = form_text(form, "email")
        try:
            await request_password_reset(ident, email, client_ip(request))
        except DomainError as exc:
            return await page(
                request,
                "auth/forgot_password.html",
                status=exc.status,
                email=email,
                errors=form_errors(exc, language(request), ("email",)),
            )
        return await page(request, "auth/reset_sent.html", email=email)

    @get("/reset-password")
    async def reset_password_form(
        self, request: HtmlRequest, ident: IdentityService, token: FromQuery[str] = ""
    ) -> Template:
        """The link of the reset e-mail (``queue_password_reset_mail``): the form, or — expired, used,
        altered — a page that says so and leads to asking again."""
        try:
            account = await check_reset_link(ident, token)
        except InvalidToken as exc:
            return await page(request, "auth/reset_password.html", status=exc.status, account=None, token="")
        return await page(request, "auth/reset_password.html", account=account, token=token, errors=FormErrors())

    @post("/reset-password")
    async def reset_password(self, request: HtmlRequest, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        token, password = form_text(form, "token"), form_text(form, "password", strip=False)
        try:
            account = await check_reset_link(ident, token)
        except InvalidToken as exc:
            return await page(request, "auth/reset_password.html", status=exc.status, account=None, token="")
        try:
            if password != form_text(form, "password_again", strip=False):
                raise ValidationFailed("The passwords differ", field="password_again")
            await reset_password(ident, token, password)
        except InvalidToken as exc:  # used meanwhile (another tab)
            return await page(request, "auth/reset_password.html", status=exc.status, account=None, token="")
        except DomainError as exc:
            return await page(
                request,
                "auth/reset_password.html",
                status=exc.status,
                account=account,
                token=token,
                errors=form_errors(exc, language(request), ("password", "password_again")),
            )
        # signed out everywhere: the session cookie this browser may still hold is dead too
        response = go(request, "/sign-in", flash="password-reset", delete=(MERCHANT_COOKIE,))
        clear_cookies(response, sessions.STAFF_COOKIE)
        return response


class MerchantPages(Controller):
    """``/console`` itself and the merchant switcher (staff of several merchants)."""

    path = "/console"

    @get("/", guards=[requires_staff()])
    async def landing(self, request: HtmlRequest, principal: CurrentPrincipal) -> Response[Any]:
        return go(request, landing(principal) if principal.tenant_id else "/console/merchants")

    @get("/merchants", guards=[requires_staff()])
    async def choose(self, request: HtmlRequest, principal: CurrentPrincipal) -> Template:
        return await page(request, "auth/merchants.html", principal=principal)

    @post("/merchant", guards=[requires_staff()])
    async def switch(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Act for another of one's merchants: the ``lk_merchant`` cookie, which the platform's guards
        read (and check against the membership) on every request."""
        form = await form_data(request)
        slug = form_text(form, "merchant")
        if slug not in {m.slug for m in await staff_merchants(ident.db, principal.subject_id)}:
            raise MerchantNotFound()
        cookie = Cookie(
            key=MERCHANT_COOKIE,
            value=slug,
            httponly=True,
            samesite="lax",
            path="/",
            secure=ident.cfg.secure_cookies,
            max_age=ident.cfg.staff_session_ttl,
        )
        return go(request, "/console", cookies=[cookie], flash="merchant-switched")
