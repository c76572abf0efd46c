"""Staff sign-in with an external OpenID Connect provider (authlib client).

Authorization-code flow with discovery, PKCE (S256), ``state`` and ``nonce``; the ``id_token`` is
verified by authlib against the provider's JWKS (signature, ``iss`` = the configured issuer,
``aud`` = our client id, ``exp``/``iat``, ``nonce``, ``at_hash``). The state's data (PKCE verifier,
nonce, where to go next) waits in Redis for ten minutes, bound to the browser that started the
flow by a random value in an HttpOnly cookie, and is used once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuthError
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import JoseError
from redis.asyncio import Redis

from lianka.platform.identity import secrets_box
from lianka.platform.identity.config import IdentitySettings
from lianka.platform.identity.errors import OidcFailed, OidcNotConfigured
from lianka.platform.log import get_logger

log = get_logger(__name__)
STATE_TTL = 600
BINDING_COOKIE = "lk_oidc"
#: asymmetric algorithms only: never "none", never HS* (whose key would be our client secret)
ALLOWED_ID_TOKEN_ALGS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class _OidcApp(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    client_cls = AsyncOAuth2Client


@dataclass(frozen=True)
class ExternalUser:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str


@dataclass(frozen=True)
class Started:
    url: str
    binding: str


class OidcClient:
    def __init__(self, cfg: IdentitySettings, redis: Redis) -> None:
        if not cfg.oidc_issuer:
            raise OidcNotConfigured()
        self.cfg = cfg
        self.redis = redis
        self.app = _OidcApp(
            FrameworkIntegration("oidc"),
            name="oidc",
            client_id=cfg.oidc_client_id,
            client_secret=cfg.oidc_client_secret,
            server_metadata_url=cfg.oidc_issuer + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": "openid email profile",
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "timeout": 10,
            },
        )

    @property
    def redirect_uri(self) -> str:
        return self.cfg.public_url + "/api/v1/auth/oidc/callback"

    async def _metadata(self) -> dict[str, Any]:
        try:
            md: dict[str, Any] = await self.app.load_server_metadata()
        except Exception as exc:
            log.warning("OIDC discovery failed", error=str(exc))
            raise OidcFailed("The sign-in provider cannot be reached") from None
        if md.get("issuer", "").rstrip("/") != self.cfg.oidc_issuer:
            raise OidcFailed("The provider's discovery document names another issuer")
        offered = md.get("id_token_signing_alg_values_supported") or ["RS256"]
        md["id_token_signing_alg_values_supported"] = [a for a in offered if a in ALLOWED_ID_TOKEN_ALGS]
        if not md["id_token_signing_alg_values_supported"]:
            raise OidcFailed("The provider signs id_tokens with no acceptable algorithm")
        return md

    async def begin(self, next_path: str) -> Started:
        await self._metadata()
        rv = await self.app.create_authorization_url(self.redirect_uri)
        binding = secrets_box.new_token(24)
        data = {
            "code_verifier": rv["code_verifier"],
            "nonce": rv["nonce"],
            "next": next_path,
            "binding": secrets_box.token_hash(binding).hex(),
        }
        await self.redis.set(self._key(rv["state"]), json.dumps(data), ex=STATE_TTL)
        return Started(rv["url"], binding)

    @staticmethod
    def _key(state: str) -> str:
        return "lk:oidc:" + secrets_box.token_hash(state).hex()[:40]

    async def finish(
        self, *, state: str | None, code: str | None, error: str | None, binding: str | None
    ) -> tuple[ExternalUser, str]:
        """The verified external user and the path to continue to."""
        if error:
            raise OidcFailed(f"The provider answered: {error[:100]}")
        if not state or not code or not binding:
            raise OidcFailed("The sign-in response is incomplete (state, code or browser binding missing)")
        raw = await self.redis.getdel(self._key(state))
        if raw is None:
            raise OidcFailed("Unknown or expired sign-in state")
        data = json.loads(raw)
        if not secrets_box.same(data["binding"], secrets_box.token_hash(binding).hex()):
            raise OidcFailed("This sign-in was started in another browser")
        await self._metadata()
        try:
            token = await self.app.fetch_access_token(
                redirect_uri=self.redirect_uri, code=code, code_verifier=data["code_verifier"]
            )
            if "id_token" not in token:
                raise OidcFailed("The provider returned no id_token")
            # iss and aud explicitly: authlib's default checks iss, and aud only through azp
            options = {
                "iss": {"essential": True, "values": [self.cfg.oidc_issuer]},
                "aud": {"essential": True, "values": [self.cfg.oidc_client_id]},
            }
            claims = await self.app.parse_id_token(token, nonce=data["nonce"], claims_options=options, leeway=60)
        except OidcFailed:
            raise
        except (OAuthError, JoseError, ValueError, KeyError) as exc:
            log.warning("OIDC token exchange or id_token validation failed", error=repr(exc))
            raise OidcFailed("The provider's answer could not be verified") from None
        except Exception as exc:  # network errors from httpx
            log.warning("OIDC token request failed", error=repr(exc))
            raise OidcFailed("The sign-in provider cannot be reached") from None
        user = ExternalUser(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=claims.get("email_verified") is True,
            name=str(claims.get("name") or ""),
        )
        return user, data["next"]
