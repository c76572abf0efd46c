"""Authentication and authorization for Litestar routes.

Every API route declares what it needs with exactly one of these guards::

    @post("/members", guards=[requires(Permission.MEMBERS_WRITE)])
    async def enrol(data: ..., principal: Principal) -> ...:   # principal injected

    @get("/auth/me", guards=[requires_staff()])    # a signed-in staff user, merchant optional
    @get("/portal/me", guards=[requires_member()]) # a member signed in to the portal
    @post("/signup", guards=[public])             # deliberately open

``requires(*permissions)`` admits staff (session cookie or bearer token) and API clients (OAuth2
token) that act for a merchant and hold *all* the permissions. The principal is resolved once per
request and cached in the connection state:

- ``Authorization: Bearer <jwt>`` — a staff token (``kind: staff``, anchored to a session row) or a
  client token (``kind: client``, checked against its client row and the revocation list);
- the ``lk_session`` cookie — a console session; unsafe methods need the CSRF token
  (``X-CSRF-Token`` header or ``_csrf`` form field);
- the ``lk_member`` cookie — a portal session (only for ``requires_member``).

The merchant comes from the credential: a client token's ``tid``; a staff token bound to one
merchant; otherwise the ``X-Merchant`` header (id or slug) or the staff user's only merchant — and
always checked against the staff membership, whose role gives the permissions. Not a member of the
named merchant answers 404, like a merchant that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from sqlalchemy import text

from lianka.platform.errors import Forbidden, Unauthorized
from lianka.platform.identity import principal_cache, sessions
from lianka.platform.identity.errors import (
    CsrfFailed,
    InsufficientPermission,
    InvalidToken,
    MerchantNotFound,
    MerchantRequired,
    SessionExpired,
)
from lianka.platform.identity.permissions import (
    ALL_BRANCH_ROLES,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    permissions_for_scopes,
)
from lianka.platform.identity.principal import Kind, Principal
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import resolve_merchant_ref, staff_merchants

Connection = ASGIConnection[Any, Any, Any, Any]
#: handler parameter types: ``principal: CurrentPrincipal``, ``ident: IdentityService``
CurrentPrincipal = NamedDependency[Principal]
IdentityService = NamedDependency[Identity]
Guard = Callable[[Connection, BaseRouteHandler], Awaitable[None]]
_STATE_KEY = "lianka_principal"
_MEMBER_KEY = "lianka_member"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MERCHANT_HEADER = "x-merchant"
MERCHANT_COOKIE = "lk_merchant"


def identity_of(connection: Connection) -> Identity:
    ident: Identity = connection.app.state.identity
    return ident


# --- guards -------------------------------------------------------------------------------------


def requires(*permissions: Permission) -> Guard:
    """Staff or API client acting for a merchant, holding every one of ``permissions``."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if principal is None:
            raise Unauthorized("Sign in, or send a bearer token")
        if principal.tenant_id is None:
            raise MerchantRequired(merchants=principal.extra.get("merchants", ""))
        missing = [p.value for p in permissions if p not in principal.permissions]
        if missing:
            raise InsufficientPermission(required=missing)

    guard.lianka_permissions = permissions  # type: ignore[attr-defined]
    return guard


def requires_staff() -> Guard:
    """A signed-in staff user; acting for a merchant is optional (``/auth/me``, sign-out)."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if principal is None:
            raise Unauthorized("Sign in, or send a bearer token")
        if not principal.is_staff:
            raise Forbidden("Only staff users can do this")

    guard.lianka_permissions = ("staff",)  # type: ignore[attr-defined]
    return guard


def requires_member() -> Guard:
    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        if await authenticate_member(connection) is None:
            raise Unauthorized("Sign in to the member portal")

    guard.lianka_permissions = ("member",)  # type: ignore[attr-defined]
    return guard


async def public(connection: Connection, _: BaseRouteHandler) -> None:
    """Marks a route as deliberately open (sign-up, sign-in, token endpoint)."""
    return


public.lianka_permissions = ()  # type: ignore[attr-defined]


def declared_access(handler: BaseRouteHandler) -> tuple[str, ...] | None:
    """What a handler declared (for the test that every API route declares something)."""
    for guard in handler.resolve_guards():
        if hasattr(guard, "lianka_permissions"):
            return tuple(str(p) for p in guard.lianka_permissions)
    return None


# --- dependency providers -----------------------------------------------------------------------


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """``principal: Principal`` in a handler: whoever the guard admitted."""
    principal = request.state.get(_STATE_KEY) or request.state.get(_MEMBER_KEY)
    if principal is None:
        raise Unauthorized()
    assert isinstance(principal, Principal)
    return principal


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return identity_of(request)


# --- resolution ---------------------------------------------------------------------------------


async def authenticate(connection: Connection) -> Principal | None:
    """The staff or client principal of this request (cached), or None without credentials."""
    cached = connection.state.get(_STATE_KEY)
    if cached is not None:
        assert isinstance(cached, Principal)
        return cached
    ident = identity_of(connection)
    header = connection.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("Use 'Authorization: Bearer <token>'")
        claims = await ident.keyring.verify(token.strip())
        kind = claims.get("kind")
        if kind == Kind.CLIENT:
            principal = await _client_principal(connection, ident, claims)
        elif kind == Kind.STAFF:
            principal = await _staff_principal(
                connection,
                ident,
                _uuid(claims.get("sub")),
                session_id=_uuid(claims.get("sid")),
                bound=_uuid(claims["tid"]) if claims.get("tid") else None,
                via="bearer",
                token_id=str(claims.get("jti")),
            )
        else:
            raise InvalidToken("Unknown token kind")
    elif cookie := connection.cookies.get(sessions.STAFF_COOKIE):
        live = await sessions.session_by_token(ident.db, "staff", cookie)
        if live is None:
            raise SessionExpired()
        _check_csrf_header(connection, ident, cookie)
        principal = await _staff_principal(
            connection, ident, live.subject_id, session_id=live.id, bound=None, via="session", token_id=None
        )
    else:
        return None
    connection.state[_STATE_KEY] = principal
    return principal


def _uuid(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidToken("Malformed token claims") from None


def _check_csrf_header(connection: Connection, ident: Identity, session_token: str) -> None:
    """Cookie-authenticated writes must prove they come from our pages: the CSRF token travels in a
    header (JS) — form posts are checked by :func:`check_csrf_form` once the body is read."""
    if connection.scope.get("method") in SAFE_METHODS:
        return
    presented = connection.headers.get(sessions.CSRF_HEADER)
    if presented is None and "form" in (connection.headers.get("content-type") or ""):
        connection.state["lianka_csrf_pending"] = session_token
        return
    if not sessions.csrf_ok(ident.secret, session_token, presented):
        raise CsrfFailed()


async def check_csrf_form(connection: Request[Any, Any, Any]) -> None:
    """For form posts authenticated by cookie: verify the ``_csrf`` field (called by the
    ``before_request`` hook, which may read the body)."""
    token = connection.state.get("lianka_csrf_pending")
    if token is None:
        return
    form = await connection.form()
    if not sessions.csrf_ok(identity_of(connection).secret, token, form.get(sessions.CSRF_FORM_FIELD)):
        raise CsrfFailed()


async def _requested_merchant(connection: Connection, ident: Identity) -> uuid.UUID | None:
    ref = connection.headers.get(MERCHANT_HEADER) or connection.cookies.get(MERCHANT_COOKIE)
    return await resolve_merchant_ref(ident.db, ref.strip()) if ref else None


async def _staff_principal(
    connection: Connection,
    ident: Identity,
    user_id: uuid.UUID,
    *,
    session_id: uuid.UUID,
    bound: uuid.UUID | None,
    via: str,
    token_id: str | None,
) -> Principal:
    requested = await _requested_merchant(connection, ident)
    if bound is not None and requested is not None and requested != bound:
        raise MerchantNotFound()
    tenant = bound or requested
    choices = []
    if tenant is None:
        choices = await staff_merchants(ident.db, user_id)
        if len(choices) == 1:  # one employer: nothing to choose
            tenant = choices[0].id
    async with ident.db.uow(system=True) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL AS live "
                    "FROM auth_sessions s JOIN staff_users u ON u.id = s.subject_id "
                    "WHERE s.id = :s AND s.kind = 'staff' AND s.subject_id = :u"
                ),
                {"s": session_id, "u": user_id},
            )
        ).first()
        if row is None or not row.live:
            raise SessionExpired() if via == "session" else InvalidToken("The token has been revoked")
        membership = None
        if tenant is not None:
            await uow.set_tenant(tenant)
            membership = (
                await uow.session.execute(
                    text("SELECT role, branch_ids FROM staff_memberships WHERE user_id = :u"), {"u": user_id}
                )
            ).first()
            if membership is None:
                raise MerchantNotFound()
    if membership is None:
        return Principal(
            kind=Kind.STAFF,
            subject_id=user_id,
            via=via,
            session_id=session_id,
            token_id=token_id,
            extra={"merchants": ",".join(c.slug for c in choices)},
        )
    role = Role(membership.role)
    branches = frozenset(membership.branch_ids)
    limited = None if role in ALL_BRANCH_ROLES or (role is Role.CASHIER and not branches) else branches
    return Principal(
        kind=Kind.STAFF,
        subject_id=user_id,
        via=via,
        session_id=session_id,
        token_id=token_id,
        tenant_id=tenant,
        role=role,
        permissions=ROLE_PERMISSIONS[role],
        branch_ids=limited,
    )


async def _client_principal(connection: Connection, ident: Identity, claims: dict[str, Any]) -> Principal:
    tenant = _uuid(claims.get("tid"))
    requested = await _requested_merchant(connection, ident)
    if requested is not None and requested != tenant:
        raise MerchantNotFound()
    client_row = _uuid(claims.get("cid"))
    jti = str(claims.get("jti"))
    cache = principal_cache.clients
    key = (tenant, client_row, jti)
    cached = await cache.get(ident.redis, key)
    if cached is not None and cached.client_id == claims.get("client_id"):
        return cached
    epoch = cache.epoch
    async with ident.db.uow(tenant) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT c.client_id, c.scopes, c.branch_id, c.expires_at, "
                    "c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > now()) AS live, "
                    "EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.tenant_id = c.tenant_id AND r.jti = :j) "
                    "AS token_revoked FROM api_clients c WHERE c.tenant_id = :t AND c.id = :c"
                ),
                {"t": tenant, "c": client_row, "j": jti},
            )
        ).first()
    if row is None or not row.live or row.token_revoked or row.client_id != claims.get("client_id"):
        raise InvalidToken("The token or its client has been revoked")
    scopes = frozenset(str(claims.get("scope") or "").split()) & frozenset(row.scopes)
    principal = Principal(
        kind=Kind.CLIENT,
        subject_id=client_row,
        tenant_id=tenant,
        permissions=permissions_for_scopes(scopes),
        scopes=scopes,
        branch_ids=frozenset({row.branch_id}) if row.branch_id else None,
        via="bearer",
        token_id=jti,
        client_id=row.client_id,
    )
    cache.put(key, principal, row.expires_at, epoch=epoch)
    return principal


async def authenticate_member(connection: Connection) -> Principal | None:
    cached = connection.state.get(_MEMBER_KEY)
    if cached is not None:
        assert isinstance(cached, Principal)
        return cached
    cookie = connection.cookies.get(sessions.MEMBER_COOKIE)
    if not cookie:
        return None
    ident = identity_of(connection)
    live = await sessions.session_by_token(ident.db, "member", cookie)
    if live is None:
        raise SessionExpired()
    _check_csrf_header(connection, ident, cookie)
    principal = Principal(kind=Kind.MEMBER, subject_id=live.subject_id, via="session", session_id=live.id)
    connection.state[_MEMBER_KEY] = principal
    return principal
