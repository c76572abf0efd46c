"""Keys derived from ``LIANKA_SECRET_KEY``: encryption at rest, HMACs, and opaque token hashing.

Each use derives its own key with HKDF and a distinct ``info`` label, so a MAC for one purpose
never verifies for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive(secret_key: str, purpose: str, length: int = 32) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"lianka", info=purpose.encode())
    return hkdf.derive(secret_key.encode())


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive(secret_key, "lianka:encrypt-at-rest")))


def encrypt(secret_key: str, data: bytes) -> bytes:
    return _fernet(secret_key).encrypt(data)


def decrypt(secret_key: str, token: bytes) -> bytes:
    try:
        return _fernet(secret_key).decrypt(token)
    except InvalidToken:
        raise RuntimeError("cannot decrypt: LIANKA_SECRET_KEY differs from the one that encrypted") from None


def mac(secret_key: str, purpose: str, message: str) -> str:
    digest = hmac.new(derive(secret_key, purpose), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> bytes:
    """Hash of a high-entropy random token (session cookie, client secret). Such tokens cannot be
    guessed, so a fast hash suffices (no argon2): a database leak does not reveal them."""
    return hashlib.sha256(token.encode()).digest()
