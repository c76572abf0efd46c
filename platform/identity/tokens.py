"""JWT access tokens: signing keys with ``kid``, rotation, verification, the public JWKS.

Keys are RSA-2048 (RS256), kept in ``signing_keys`` with the private half encrypted under a key
derived from ``LIANKA_SECRET_KEY``. The newest unretired key signs. Rotation retires the current
key (it stops signing but still verifies until ``expires_at``, longer than any token it signed can
live) and creates a new one; every process picks the change up within :data:`REFRESH_SECONDS`.

Verification accepts exactly RS256 with a known ``kid`` and ``typ: at+jwt``, and checks ``iss``,
``aud``, ``exp``, ``iat`` and ``jti`` — so ``alg: none``, HS256 with the public key as secret,
another server's key, and any edited claim are refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select, text

from lianka.platform.db import Database
from lianka.platform.identity import secrets_box
from lianka.platform.identity.config import IdentitySettings
from lianka.platform.identity.errors import InvalidToken, TokenExpired
from lianka.platform.identity.models import SigningKey

ALG = "RS256"
TYP = "at+jwt"
AUDIENCE = "lianka-api"
REFRESH_SECONDS = 60
LEEWAY = 30
#: how long a verified token's claims are reused (never past its expiry)
VERIFIED_CACHE_SECONDS = 300
_LOCK_KEY = 0x4C4B4B59  # advisory lock id for key creation/rotation ("LKKY")


def _new_key() -> tuple[RSAKey, str]:
    kid = f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:12]}"
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALG}, private=True)
    return key, kid


async def _insert_key(session: Any, secret_key: str) -> str:
    key, kid = _new_key()
    pem = key.as_pem(private=True)
    session.add(
        SigningKey(
            kid=kid, alg=ALG, public_jwk=key.as_dict(private=False), private_key=secrets_box.encrypt(secret_key, pem)
        )
    )
    await session.flush()
    return kid


async def ensure_signing_key(db: Database, secret_key: str) -> None:
    """Create the first signing key if there is none (safe when several processes race)."""
    async with db.uow(system=True) as uow:
        await uow.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        active = await uow.session.scalar(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1))
        if active is None:
            await _insert_key(uow.session, secret_key)
            await uow.commit()


async def rotate_signing_key(db: Database, secret_key: str, identity: IdentitySettings) -> str:
    """Retire the signing key(s) and create a new one; returns the new ``kid``."""
    grace = max(identity.key_grace_seconds, identity.client_token_ttl, identity.staff_token_ttl) + LEEWAY
    async with db.uow(system=True) as uow:
        await uow.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        await uow.session.execute(
            text(
                "UPDATE signing_keys SET retired_at = now(), expires_at = now() + make_interval(secs => :g) "
                "WHERE retired_at IS NULL"
            ),
            {"g": grace},
        )
        kid = await _insert_key(uow.session, secret_key)
        await uow.commit()
        return kid


class KeyRing:
    """The process's view of the signing keys (one per app; cached, refreshed periodically)."""

    def __init__(self, db: Database, secret_key: str, identity: IdentitySettings) -> None:
        self.db = db
        self.secret_key = secret_key
        self.issuer = identity.public_url
        self._signing: RSAKey | None = None
        self._public: KeySet = KeySet([])
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        #: token -> (claims, valid until): a till presents the same token for an hour; its RSA
        #: signature is checked once, then its claims are reused until it expires (or the keys change)
        self._verified: dict[str, tuple[dict[str, Any], float]] = {}

    async def refresh(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return
        async with self._lock:
            if not force and time.monotonic() - self._loaded_at < REFRESH_SECONDS:
                return
            rows = await self._load()
            if not any(r.retired_at is None for r in rows):
                await ensure_signing_key(self.db, self.secret_key)
                rows = await self._load()
            signing = next(r for r in rows if r.retired_at is None)  # newest first
            self._signing = RSAKey.import_key(
                secrets_box.decrypt(self.secret_key, signing.private_key),
                parameters={"kid": signing.kid, "use": "sig", "alg": ALG},
            )
            public = KeySet([RSAKey.import_key(r.public_jwk) for r in rows])
            if sorted(k.kid or "" for k in public.keys) != sorted(k.kid or "" for k in self._public.keys):
                self._verified.clear()  # a key expired or appeared: verify everything afresh
            self._public = public
            self._jwks = {"keys": [dict(r.public_jwk) for r in rows]}
            self._loaded_at = time.monotonic()

    async def _load(self) -> list[SigningKey]:
        async with self.db.uow(system=True) as uow:
            result = await uow.session.scalars(
                select(SigningKey)
                .where(text("expires_at IS NULL OR expires_at > now()"))
                .order_by(SigningKey.retired_at.is_not(None), SigningKey.created_at.desc())
            )
            return list(result)

    async def signing_key(self) -> RSAKey:
        await self.refresh()
        assert self._signing is not None
        return self._signing

    async def jwks(self) -> dict[str, Any]:
        await self.refresh()
        return self._jwks

    def sign_with(self, key: RSAKey, claims: dict[str, Any]) -> str:
        header = {"alg": ALG, "typ": TYP, "kid": key.kid}
        return jwt.encode(header, {"iss": self.issuer, "aud": AUDIENCE, **claims}, key)

    async def sign(self, claims: dict[str, Any], ttl: int) -> str:
        """Sign ``claims`` (``iat``, ``exp`` and ``jti`` are added unless given)."""
        now = int(time.time())
        full = {"iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, **claims}
        return self.sign_with(await self.signing_key(), full)

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`InvalidToken` / :class:`TokenExpired` otherwise."""
        await self.refresh()
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() < hit[1]:
                return dict(hit[0])
            del self._verified[token]
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise InvalidToken("The token is not a well-formed JWT") from None
        kid = header.get("kid")
        if header.get("alg") != ALG or header.get("typ") != TYP or not isinstance(kid, str):
            raise InvalidToken("The token's header is not acceptable")
        if not _has_kid(self._public, kid):
            await self.refresh(force=time.monotonic() - self._loaded_at > 5)
            if not _has_kid(self._public, kid):
                raise InvalidToken("The token was signed with an unknown key")
        try:
            decoded = jwt.decode(token, self._public, algorithms=[ALG])
            JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": AUDIENCE},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
            ).validate(decoded.claims)
        except ExpiredTokenError:
            raise TokenExpired() from None
        except (JoseError, ValueError):
            raise InvalidToken("The token's signature or claims are not valid") from None
        claims = dict(decoded.claims)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (claims, min(float(claims["exp"]) + LEEWAY, time.time() + VERIFIED_CACHE_SECONDS))
        return dict(claims)


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
