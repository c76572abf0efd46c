"""A tiny OpenID Connect provider on a loopback port, for tests and local trials.

It speaks the real protocol over HTTP — discovery, ``/authorize`` (code flow, PKCE S256 required),
``/token`` (client_secret_basic or _post, single-use codes), ``/jwks`` — and signs RS256 id_tokens
with its own key. There is no login page: ``/authorize`` signs in whoever :attr:`next_user` names.
Tests may set :attr:`tamper` to make it misbehave (sign with another key, wrong nonce, …).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class DevUser:
    sub: str
    email: str
    email_verified: bool = True
    name: str = "Dev User"


@dataclass
class DevOidcProvider:
    client_id: str = "lianka-dev"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    next_user: DevUser = field(default_factory=lambda: DevUser("dev-1", "dev@example.com"))
    #: e.g. {"nonce": "x"}, {"iss": "..."}, {"aud": "..."}, {"exp": 0}, {"sign_with_other_key": True}
    tamper: dict[str, Any] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": "dev-oidc-1", "use": "sig", "alg": "RS256"}, private=True
        )
        self._codes: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self.issuer = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- HTTP -----------------------------------------------------------------------------------

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        h.wfile.write(data)

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        if url.path == "/.well-known/openid-configuration":
            self._json(
                h,
                200,
                {
                    "issuer": self.tamper.get("discovery_issuer", self.issuer),
                    "authorization_endpoint": self.issuer + "/authorize",
                    "token_endpoint": self.issuer + "/token",
                    "jwks_uri": self.issuer + "/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": self.tamper.get("algs", ["RS256"]),
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "scopes_supported": ["openid", "email", "profile"],
                },
            )
        elif url.path == "/jwks":
            self._json(h, 200, dict(KeySet([self.key]).as_dict(private=False)))
        elif url.path == "/authorize":
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            ok = (
                q.get("client_id") == self.client_id
                and q.get("response_type") == "code"
                and "openid" in q.get("scope", "").split()
                and q.get("code_challenge_method") == "S256"
                and q.get("code_challenge")
                and q.get("redirect_uri")
            )
            if not ok:
                self._json(h, 400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            self._codes[code] = {
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "user": self.next_user,
                "exp": time.time() + 60,
            }
            h.send_response(302)
            h.send_header("Location", q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")}))
            h.end_headers()
        else:
            self._json(h, 404, {"error": "not_found"})

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        if urlsplit(h.path).path != "/token":
            self._json(h, 404, {"error": "not_found"})
            return
        length = int(h.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(h.rfile.read(length).decode()).items()}
        self.token_requests.append(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = h.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != self.client_id or secret != self.client_secret:
            self._json(h, 401, {"error": "invalid_client"})
            return
        grant = self._codes.pop(form.get("code", ""), None)  # single use
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant["exp"] < time.time()
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            self._json(h, 400, {"error": "invalid_grant"})
            return
        verifier = form.get("code_verifier", "")
        if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            self._json(h, 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
            return
        access_token = secrets.token_urlsafe(24)
        user: DevUser = grant["user"]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
        }
        claims.update({k: v for k, v in self.tamper.items() if k in {"iss", "aud", "azp", "nonce", "exp", "sub"}})
        key = self.key
        if self.tamper.get("sign_with_other_key"):
            key = RSAKey.generate_key(2048, parameters={"kid": "dev-oidc-1"}, private=True)
        id_token = jwt.encode({"alg": "RS256", "kid": "dev-oidc-1"}, claims, key)
        self._json(
            h,
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
                "scope": "openid email profile",
            },
        )
