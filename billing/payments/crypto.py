"""Merchant credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under
``LIANKA_SECRETS_KEY`` (decision 0033). Development derives a key from the checkout's own secret so
``make run`` and the tests need nothing set; production refuses to store or read credentials
without the key."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from lianka.billing.payments.errors import PaymentsNotConfigured
from lianka.platform.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    key = settings.secrets_key
    if not key:
        if settings.is_production:
            raise PaymentsNotConfigured("Set LIANKA_SECRETS_KEY (a Fernet key) to store payment credentials")
        derived = hashlib.sha256(b"lianka-dev-secrets:" + settings.secret_key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(derived))
    try:
        return Fernet(key.encode())
    except ValueError:
        raise PaymentsNotConfigured("LIANKA_SECRETS_KEY is not a Fernet key (32 url-safe base64 bytes)") from None


def seal(settings: Settings, values: dict[str, Any]) -> bytes:
    return _fernet(settings).encrypt(json.dumps(values, sort_keys=True).encode())


def unseal(settings: Settings, token: bytes) -> dict[str, Any]:
    try:
        opened: dict[str, Any] = json.loads(_fernet(settings).decrypt(token))
    except InvalidToken:
        raise PaymentsNotConfigured("The payment credentials cannot be decrypted with LIANKA_SECRETS_KEY") from None
    return opened


def last4(value: str) -> str:
    """What the console may show of a secret: its last four characters."""
    return f"…{value.strip()[-4:]}" if value.strip() else ""
