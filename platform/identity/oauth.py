"""The OAuth2 authorization server (client-credentials grant, RFC 7009 revocation) on authlib.

authlib's server core is framework-agnostic and synchronous: it asks ``query_client(client_id)``
and a token generator while it validates the request. Our storage is async, so the adapter loads
the one client the request names *before* handing the request to authlib (one indexed look-up),
and builds a small server per request around it. authlib then does what it is good at: client
authentication (``client_secret_basic`` / ``client_secret_post``), grant and scope validation,
and the RFC 6749 response shape. Tokens are JWTs signed by the :class:`KeyRing` (``kid`` header).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from joserfc.jwk import RSAKey
from sqlalchemy import text

from lianka.platform.identity import principal_cache, secrets_box
from lianka.platform.identity.errors import InvalidToken
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.tokens import KeyRing
from lianka.platform.log import get_logger

log = get_logger(__name__)
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass
class OAuthClient(ClientMixin):  # type: ignore[misc]
    row_id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    secret_hash: bytes
    branch_id: uuid.UUID | None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return str(list_to_scope(sorted(self.scopes)))
        return str(list_to_scope([s for s in scope_to_list(scope) if s in self.scopes]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(secrets_box.token_hash(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: Mapping[str, list[str]]) -> None:
        self._datalist = defaultdict(list, {k: list(v) for k, v in form.items()})
        self._data = {k: v[0] for k, v in form.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Headers(dict[str, str]):
    """Case-insensitive header look-up (authlib asks for ``Authorization``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An authlib request built from what the Litestar handler has already read."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], form: Mapping[str, list[str]]) -> None:
        super().__init__(method, uri, headers=Headers(headers))
        self.payload = FormPayload(form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        """Refuse (rather than silently narrow) a scope the client was not given."""
        scope = self.request.payload.scope
        if scope and not set(scope_to_list(scope)) <= self.request.client.scopes:
            raise InvalidScopeError("The client may not request this scope")


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, client: OAuthClient | None, keyring: KeyRing, key: RSAKey | None, ttl: int) -> None:
        super().__init__(scopes_supported=None)
        self._client = client
        self.issued: list[dict[str, Any]] = []
        self.register_grant(ClientCredentials)

        def generate(
            grant_type: str,
            client: OAuthClient,
            user: object = None,
            scope: str | None = None,
            *,
            expires_in: int | None = None,
            include_refresh_token: bool = False,
        ) -> dict[str, Any]:
            assert key is not None, "this server was built without a signing key"
            granted = client.get_allowed_scope(scope)
            now = int(time.time())
            claims = {
                "sub": client.client_id,
                "client_id": client.client_id,
                "kind": "client",
                "cid": str(client.row_id),
                "tid": str(client.tenant_id),
                "bid": str(client.branch_id) if client.branch_id else None,
                "scope": granted,
                "iat": now,
                "exp": now + ttl,
                "jti": uuid.uuid4().hex,
            }
            return {
                "token_type": "Bearer",
                "access_token": keyring.sign_with(key, claims),
                "expires_in": ttl,
                "scope": granted,
            }

        self.register_token_generator("default", generate)

    def query_client(self, client_id: str) -> OAuthClient | None:
        return self._client if self._client and self._client.client_id == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.issued.append(token)

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # already built from the Litestar request (see FormRequest)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)


def requested_client_id(headers: Mapping[str, str], form: Mapping[str, list[str]]) -> str | None:
    auth = headers.get("authorization") or ""
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(raw.partition(":")[0]) or None
    values = form.get("client_id") or []
    return values[0] if values else None


async def load_client(ident: Identity, client_id: str | None) -> OAuthClient | None:
    """A live client (not revoked, not expired) by its public id, looked up in system scope."""
    if not client_id or len(client_id) > 64:
        return None
    async with ident.db.uow(system=True) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT id, tenant_id, client_id, secret_hash, branch_id, scopes FROM api_clients "
                    "WHERE client_id = :c AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                ),
                {"c": client_id},
            )
        ).first()
    if row is None:
        return None
    return OAuthClient(
        row.id, row.tenant_id, row.client_id, bytes(row.secret_hash), row.branch_id, frozenset(row.scopes)
    )


@dataclass(frozen=True)
class OAuthResult:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]


def _error(exc: OAuth2Error) -> OAuthResult:
    status, body, headers = exc()
    return OAuthResult(status, dict(body), list(headers))


def _duplicates(form: Mapping[str, list[str]]) -> OAuthResult | None:
    dup = [k for k, v in form.items() if len(v) > 1]
    if dup:  # RFC 6749 §3.2: parameters MUST NOT be included more than once
        return _error(InvalidRequestError(f"Repeated parameter: {dup[0]}"))
    return None


async def token_endpoint(ident: Identity, headers: Mapping[str, str], form: Mapping[str, list[str]]) -> OAuthResult:
    """``POST /oauth/token``: the client-credentials grant."""
    if (dup := _duplicates(form)) is not None:
        return dup
    headers = Headers(headers)
    client = await load_client(ident, requested_client_id(headers, form))
    key = await ident.keyring.signing_key()
    server = _Server(client, ident.keyring, key, ident.cfg.client_token_ttl)
    request = FormRequest("POST", ident.cfg.public_url + "/oauth/token", headers, form)
    status, body, out_headers = server.create_token_response(request)
    if status == 200 and client is not None:
        async with ident.db.uow(client.tenant_id) as uow:
            await uow.session.execute(
                text("UPDATE api_clients SET last_used_at = now() WHERE id = :i"), {"i": client.row_id}
            )
            await uow.commit()
    return OAuthResult(status, dict(body), out_headers)


async def revocation_endpoint(
    ident: Identity, headers: Mapping[str, str], form: Mapping[str, list[str]]
) -> OAuthResult:
    """``POST /oauth/revoke`` (RFC 7009): a client revokes one of its own access tokens. An unknown,
    expired or foreign token is answered 200 too, as the RFC asks (nothing is learnt)."""
    if (dup := _duplicates(form)) is not None:
        return dup
    headers = Headers(headers)
    client = await load_client(ident, requested_client_id(Headers(headers), form))
    server = _Server(client, ident.keyring, None, 0)  # signs nothing: only authenticates the client
    request = FormRequest("POST", ident.cfg.public_url + "/oauth/revoke", headers, form)
    try:
        authed: OAuthClient = server.authenticate_client(request, AUTH_METHODS, endpoint="revoke")
    except OAuth2Error as exc:
        return _error(exc)
    token = request.payload.data.get("token")
    if not token:
        return _error(InvalidRequestError("Missing 'token' parameter"))
    try:
        claims = await ident.keyring.verify(token)
    except InvalidToken:
        return OAuthResult(200, {}, [])
    if claims.get("kind") == "client" and claims.get("client_id") == authed.client_id:
        await revoke_token(ident, authed.tenant_id, str(claims["jti"]), int(claims["exp"]))
    return OAuthResult(200, {}, [])


async def revoke_token(ident: Identity, tenant_id: uuid.UUID, jti: str, exp: int) -> None:
    async with ident.db.uow(tenant_id) as uow:
        await uow.session.execute(
            text(
                "INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES (:t, :j, to_timestamp(:e)) "
                "ON CONFLICT DO NOTHING"
            ),
            {"t": tenant_id, "j": jti[:64], "e": exp},
        )
        await uow.commit()
    await principal_cache.revoked(ident.redis)
