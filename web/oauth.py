"""OAuth2 endpoints outside ``/api/v1``: token (client credentials), revocation, JWKS, metadata."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from litestar import Controller, Request, Response, get, post

from lianka.platform.errors import PROBLEM_BASE, ValidationFailed
from lianka.platform.identity import oauth
from lianka.platform.identity.guards import IdentityService, public
from lianka.platform.identity.permissions import SCOPES
from lianka.web.middleware import request_id_for
from lianka.web.problems import PROBLEM_JSON
from lianka.web.strict import check_percent_encoded

_TITLES = {
    "invalid_client": "Client authentication failed",
    "invalid_scope": "The requested scope is not allowed",
    "unsupported_grant_type": "Only the client_credentials grant is supported",
    "invalid_request": "The token request is malformed",
    "unauthorized_client": "Grant type not allowed",
}


async def _form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    if not (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        return {}
    form = await request.form()
    return {k: [str(v) for v in form.getall(k)] for k in form}


def _malformed_basic(request: Request[Any, Any, Any]) -> oauth.OAuthResult | None:
    """HTTP Basic client credentials that no client can have: not base64, not UTF-8, or with NUL once
    percent-decoded (RFC 6749 §2.3.1 form-encodes both parts). The OAuth library and the client lookup
    would otherwise fail on them with a 500; they are a malformed request (``invalid_request``)."""
    parts = (request.headers.get("authorization") or "").split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "basic":  # split as the OAuth library splits it
        return None
    try:
        decoded = base64.b64decode(parts[1]).decode("utf-8")
        for part in decoded.split(":", 1):
            check_percent_encoded(part.encode(), "client credentials")
    except (binascii.Error, ValueError, ValidationFailed):  # UnicodeDecodeError is a ValueError
        return oauth.OAuthResult(
            400, {"error": "invalid_request", "error_description": "Malformed HTTP Basic client credentials"}, []
        )
    return None


def _answer(request: Request[Any, Any, Any], result: oauth.OAuthResult) -> Response[Any]:
    """Success as RFC 6749 JSON; errors as RFC 9457 problems that keep RFC 6749's ``error`` and
    ``error_description`` members, so OAuth libraries and problem-aware clients both understand."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if result.status < 400:
        return Response(result.body, status_code=result.status, headers=headers)
    code = str(result.body.get("error", "invalid_request"))
    status = 401 if code == "invalid_client" else result.status
    body = {
        "type": PROBLEM_BASE + "oauth-" + code.replace("_", "-"),
        "title": _TITLES.get(code, "OAuth2 error"),
        "status": status,
        "detail": result.body.get("error_description") or code,
        "instance": request.url.path,
        "error": code,
        "error_description": result.body.get("error_description", ""),
        "request_id": request_id_for(request.scope),
    }
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="lianka"'
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class OAuthController(Controller):
    tags = ("oauth2",)
    guards = (public,)

    @post(
        "/oauth/token",
        status_code=200,
        summary="Client-credentials grant (RFC 6749 §4.4)",
        opt={"problems": (400, 401, 500)},
    )
    async def token(self, request: Request[Any, Any, Any], ident: IdentityService) -> Response[Any]:
        """Form-encoded ``grant_type=client_credentials`` (+ optional ``scope``), client authenticated
        with HTTP Basic or ``client_id``/``client_secret`` fields. Answers a signed JWT access token
        carrying the merchant (``tid``), branch (``bid``) and ``scope``."""
        if (malformed := _malformed_basic(request)) is not None:
            return _answer(request, malformed)
        return _answer(request, await oauth.token_endpoint(ident, request.headers, await _form(request)))

    @post("/oauth/revoke", status_code=200, summary="Token revocation (RFC 7009)", opt={"problems": (400, 401, 500)})
    async def revoke(self, request: Request[Any, Any, Any], ident: IdentityService) -> Response[Any]:
        if (malformed := _malformed_basic(request)) is not None:
            return _answer(request, malformed)
        return _answer(request, await oauth.revocation_endpoint(ident, request.headers, await _form(request)))

    @get(["/oauth/jwks", "/.well-known/jwks.json"], summary="Public signing keys (JWKS)")
    async def jwks(self, ident: IdentityService) -> Response[dict[str, Any]]:
        return Response(await ident.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @get("/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)")
    async def metadata(self, ident: IdentityService) -> dict[str, Any]:
        base = ident.cfg.public_url
        return {
            "issuer": base,
            "token_endpoint": base + "/oauth/token",
            "revocation_endpoint": base + "/oauth/revoke",
            "jwks_uri": base + "/oauth/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": oauth.AUTH_METHODS,
            "scopes_supported": sorted(SCOPES),
        }
