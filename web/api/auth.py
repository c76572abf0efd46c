"""Staff sign-in: console sessions, bearer tokens, sign-out and revocation, OIDC, who-am-I."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect

from lianka.platform.identity import oidc_client, sessions
from lianka.platform.identity.errors import OidcFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires_staff
from lianka.platform.identity.services import (
    authenticate_password,
    issue_staff_token,
    link_oidc_identity,
    request_password_reset,
    reset_password,
    resolve_merchant_ref,
    set_password,
    staff_merchants,
    start_staff_session,
)
from lianka.web.api.cookies import clear_cookies, client_ip, require_json, session_cookies, user_agent

#: the problems sign-in answers (documented by web/openapi.py): wrong credentials 401, JSON only 415,
#: locked out or rate limited 429
SIGN_IN_PROBLEMS = (400, 401, 415, 429, 500)


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    password: str


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    password: str
    #: merchant id or slug to bind the token to (optional with a single employer)
    merchant: str | None = None


class PasswordBody(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    password: str


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: str


class MerchantOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    role: str
    branch_ids: list[uuid.UUID]


class SessionOut(msgspec.Struct):
    user_id: uuid.UUID
    email: str
    merchants: list[MerchantOut]
    csrf_token: str
    expires_at: str


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    merchant_id: uuid.UUID | None


class MeOut(msgspec.Struct):
    user_id: uuid.UUID
    merchants: list[MerchantOut]
    merchant_id: uuid.UUID | None
    role: str | None
    permissions: list[str]
    branch_ids: list[uuid.UUID] | None
    via: str


async def _merchants(ident: IdentityService, user_id: uuid.UUID) -> list[MerchantOut]:
    return [MerchantOut(c.id, c.slug, c.name, c.role, c.branch_ids) for c in await staff_merchants(ident.db, user_id)]


def _safe_next(path: str | None) -> str:
    """Only local paths: an open redirect would hand our session to anyone's page."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


class AuthController(Controller):
    path = "/auth"
    tags = ("identity",)

    @post(
        "/session",
        status_code=200,
        guards=[public],
        summary="Sign in to the console (session cookie)",
        opt={"problems": SIGN_IN_PROBLEMS},
    )
    async def sign_in(
        self, request: Request[Any, Any, Any], data: JSONBody[Credentials], ident: IdentityService
    ) -> Response[SessionOut]:
        require_json(request)
        user = await authenticate_password(ident, data.email, data.password, client_ip(request))
        sess = await start_staff_session(
            ident, user.id, "password", user_agent=user_agent(request), ip=client_ip(request)
        )
        assert sess.token is not None
        body = SessionOut(
            user.id,
            user.email,
            await _merchants(ident, user.id),
            sessions.csrf_token(ident.secret, sess.token),
            sess.expires_at.isoformat(),
        )
        return Response(
            body, cookies=session_cookies(ident, sessions.STAFF_COOKIE, sess.token, ident.cfg.staff_session_ttl)
        )

    @delete("/session", status_code=204, guards=[requires_staff()], summary="Sign out (ends the session)")
    async def sign_out(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[None]:
        """Ends the session or, for a bearer token, the sign-in that issued it."""
        if principal.session_id:
            await sessions.revoke_session(ident.db, principal.session_id)
        response: Response[None] = Response(None, status_code=204)
        clear_cookies(response, sessions.STAFF_COOKIE)
        return response

    @post(
        "/token",
        status_code=200,
        guards=[public],
        summary="Exchange e-mail + password for a bearer token",
        opt={"problems": SIGN_IN_PROBLEMS},
    )
    async def token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest], ident: IdentityService
    ) -> Response[TokenOut]:
        user = await authenticate_password(ident, data.email, data.password, client_ip(request))
        merchant = await resolve_merchant_ref(ident.db, data.merchant) if data.merchant else None
        token, ttl, bound = await issue_staff_token(
            ident, user.id, merchant, user_agent=user_agent(request), ip=client_ip(request)
        )
        return Response(TokenOut(token, "Bearer", ttl, bound), headers={"Cache-Control": "no-store"})

    @post("/revoke", status_code=204, guards=[requires_staff()], summary="Revoke the presented staff token")
    async def revoke(self, principal: CurrentPrincipal, ident: IdentityService) -> None:
        if principal.session_id:
            await sessions.revoke_session(ident.db, principal.session_id)

    @post(
        "/password",
        status_code=204,
        guards=[public],
        summary="Set a password from an invitation link",
        opt={"problems": (400, 401, 409, 422, 429, 500)},  # 401: a used, expired or altered link
    )
    async def password(self, data: JSONBody[PasswordBody], ident: IdentityService) -> None:
        await set_password(ident, data.token, data.password)

    @post(
        "/password-reset",
        status_code=202,
        guards=[public],
        summary="Forgot password: mail a reset link",
        opt={"problems": (400, 429, 500)},
    )
    async def password_reset(
        self, request: Request[Any, Any, Any], data: JSONBody[ResetRequest], ident: IdentityService
    ) -> None:
        """Always 202 for a well-formed address, whether an account uses it or not (nobody learns who
        has an account): an account gets an e-mail with a link valid for 1 hour and once. 3 requests
        per e-mail and 20 per client address an hour, then 429."""
        await request_password_reset(ident, data.email, client_ip(request))

    @post(
        "/password-reset/confirm",
        status_code=204,
        guards=[public],
        summary="Set a new password from a reset link",
        opt={"problems": (400, 401, 500)},
    )
    async def password_reset_confirm(self, data: JSONBody[PasswordBody], ident: IdentityService) -> None:
        """``token`` from the e-mail and the new ``password`` (10 to 256 characters). A used, expired or
        altered token is a 401 ``invalid-token``; every session and bearer token of the account ends."""
        await reset_password(ident, data.token, data.password)

    @get("/me", guards=[requires_staff()], summary="Who am I, for which merchant, with which permissions")
    async def me(self, principal: CurrentPrincipal, ident: IdentityService) -> MeOut:
        return MeOut(
            principal.subject_id,
            await _merchants(ident, principal.subject_id),
            principal.tenant_id,
            principal.role.value if principal.role else None,
            sorted(p.value for p in principal.permissions),
            sorted(principal.branch_ids) if principal.branch_ids is not None else None,
            principal.via,
        )

    # --- external OpenID Connect provider --------------------------------------------------------

    @get(
        "/oidc/login",
        guards=[public],
        status_code=302,
        summary="Start sign-in with the external OpenID Connect provider",
        opt={"problems": (400, 404, 500)},  # 404: no provider configured
    )
    async def oidc_login(
        self, ident: IdentityService, next_path: Annotated[str | None, QueryParameter(name="next")] = None
    ) -> Redirect:
        client = oidc_client.OidcClient(ident.cfg, ident.redis)
        started = await client.begin(_safe_next(next_path))
        redirect = Redirect(started.url, status_code=302)
        redirect.set_cookie(
            oidc_client.BINDING_COOKIE,
            started.binding,
            max_age=oidc_client.STATE_TTL,
            httponly=True,
            samesite="lax",
            secure=ident.cfg.secure_cookies,
            path="/api/v1/auth/oidc",
        )
        return redirect

    @get(
        "/oidc/callback",
        guards=[public],
        status_code=302,
        summary="Return from the OpenID Connect provider",
        opt={"problems": (400, 401, 404, 500)},  # 401: the provider's answer is refused; 404: none configured
    )
    async def oidc_callback(
        self,
        request: Request[Any, Any, Any],
        ident: IdentityService,
        code: FromQuery[str | None] = None,
        oauth_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: FromQuery[str | None] = None,
    ) -> Redirect:
        client = oidc_client.OidcClient(ident.cfg, ident.redis)
        external, next_path = await client.finish(
            state=oauth_state, code=code, error=error, binding=request.cookies.get(oidc_client.BINDING_COOKIE)
        )
        if external.issuer.rstrip("/") != ident.cfg.oidc_issuer:
            raise OidcFailed("Unexpected issuer")
        user_id = await link_oidc_identity(
            ident, external.issuer, external.subject, external.email, external.email_verified
        )
        sess = await start_staff_session(ident, user_id, "oidc", user_agent=user_agent(request), ip=client_ip(request))
        assert sess.token is not None
        redirect = Redirect(_safe_next(next_path), status_code=302)
        for cookie in session_cookies(ident, sessions.STAFF_COOKIE, sess.token, ident.cfg.staff_session_ttl):
            redirect.set_cookie(cookie)
        redirect.delete_cookie(oidc_client.BINDING_COOKIE, path="/api/v1/auth/oidc")
        return redirect
