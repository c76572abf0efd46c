"""Merchant payment credentials at rest: the provider's fields as JSON, sealed with
``platform/secrets.py`` (AES-256-GCM under ``LIANKA_SECRETS_KEY``, or a key derived from
``LIANKA_SECRET_KEY``, which production requires) — the same sealing as SMS and e-mail credentials
(decisions 0033, 0036)."""

from __future__ import annotations

import json
from typing import Any

from lianka.billing.payments.errors import PaymentsNotConfigured
from lianka.platform import secrets as sealing
from lianka.platform.settings import Settings


def seal(settings: Settings, values: dict[str, Any]) -> bytes:
    return sealing.seal(json.dumps(values, sort_keys=True), settings).encode()


def unseal(settings: Settings, token: bytes) -> dict[str, Any]:
    try:
        opened: dict[str, Any] = json.loads(sealing.open_sealed(bytes(token).decode(), settings))
    except (sealing.SealError, UnicodeDecodeError):
        raise PaymentsNotConfigured("The payment credentials cannot be decrypted with LIANKA_SECRETS_KEY") from None
    return opened


def last4(value: str) -> str:
    """What the console may show of a secret: its last four characters."""
    return f"…{value.strip()[-4:]}" if value.strip() else ""
