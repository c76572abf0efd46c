"""Sealing secrets stored in the database (a merchant's payment-provider, SMS or SMTP credentials):
AES-256-GCM — the one way Lianka encrypts at rest.

``seal(plaintext) -> token`` and ``open_sealed(token) -> plaintext``. The key is HKDF-derived from
``LIANKA_SECRETS_KEY`` (or, when that is empty, from ``LIANKA_SECRET_KEY``, which production
requires), so a database dump alone reveals no credential. A token is ``v1.`` + base64url(12-byte
random nonce ‖ ciphertext ‖ tag); the version prefix lets a later key or algorithm coexist. A token
that was tampered with, or sealed under another key, does not open (:class:`SealError`).
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lianka.platform.identity.secrets_box import derive
from lianka.platform.settings import Settings, get_settings

_PREFIX = "v1."
_AAD = b"lianka:sealed:v1"


class SealError(ValueError):
    """The token is malformed, was altered, or was sealed under another key."""


@functools.lru_cache(maxsize=4)
def _aead(material: str) -> AESGCM:
    return AESGCM(derive(material, "lianka:secrets:aes-gcm"))


def _key(settings: Settings | None) -> AESGCM:
    s = settings or get_settings()
    return _aead(s.secrets_key or s.secret_key)


def seal(plaintext: str, settings: Settings | None = None) -> str:
    """``settings``: whose keys to use (default: the process's)."""
    nonce = os.urandom(12)
    sealed = _key(settings).encrypt(nonce, plaintext.encode(), _AAD)
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_sealed(token: str, settings: Settings | None = None) -> str:
    if not token.startswith(_PREFIX):
        raise SealError("not a sealed token")
    body = token.removeprefix(_PREFIX)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return _key(settings).decrypt(raw[:12], raw[12:], _AAD).decode()
    except (InvalidTag, ValueError) as e:
        raise SealError("the sealed token does not open with this key") from e
