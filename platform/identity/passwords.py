"""Password hashing (argon2id) off the event loop, with constant work for unknown accounts."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lianka.platform.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 256
_hasher = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile (t=3, m=64 MiB, p=4)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-but-the-same-cost")


def check_policy(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValidationFailed(f"A password has {MIN_LENGTH} to {MAX_LENGTH} characters", field="password")
    if len(set(password)) < 4:
        raise ValidationFailed("This password is too simple", field="password")


async def hash_password(password: str) -> str:
    check_policy(password)
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``. With no stored hash (unknown e-mail, OIDC-only
    account) a dummy hash is verified instead, so the answer takes the same time either way."""
    return await asyncio.to_thread(_verify, stored, password[:MAX_LENGTH])


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
