"""Outbound webhooks, the pure rules (decision 0052): event types, the body, the signature, which
answers are retried and when, and which addresses a receiver may not have (SSRF).

No I/O here: the sender (``delivery.py``) resolves names and talks HTTP; this module decides.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

#: every event a merchant can subscribe to, and what it means
EVENT_TYPES: dict[str, str] = {
    "sale.recorded": "A sale was recorded at a till (guest or member)",
    "member.joined": "A person became a member of the merchant",
    "member.tier_changed": "A member moved to another tier after a purchase",
    "points.expiring": "A member's points expire soon (the points-expiry reminder fired)",
    "period.closed": "A settlement month of the merchant's book was closed",
    "sale.refunded": "A sale was refunded, in full or in part",
    "topup.recorded": "A member's stored value was topped up (at the till or online)",
}
#: the signature header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
SIGNATURE_HEADER = "Lianka-Signature"
EVENT_ID_HEADER = "Lianka-Event-Id"
DELIVERY_ID_HEADER = "Lianka-Delivery-Id"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
#: a delivery gives up after this many attempts (the first and 7 retries: about 4 hours of back-off)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=2)
#: what the delivery log keeps of a receiver's answer
SNIPPET_CHARS = 500
TIMEOUT_SECONDS = 10.0


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def body(
    event_id: uuid.UUID, event_type: str, created_at: datetime, merchant: uuid.UUID, data: dict[str, Any]
) -> bytes:
    """The JSON body: the same bytes on every attempt and replay of an event."""
    doc = {
        "id": str(event_id),
        "type": event_type,
        "created_at": created_at.isoformat(),
        "merchant": str(merchant),
        "data": data,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    """The ``Lianka-Signature`` header value (Stripe's scheme: the timestamp is signed with the body,
    so a captured request cannot be replayed later with a new timestamp)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def sign_all(secrets_: list[str], timestamp: int, payload: bytes) -> str:
    """One ``t`` and a ``v1`` per secret: during a rotation's overlap the new secret's and the old's, so
    a receiver still checking with either accepts the message."""
    macs = [sign(secret, timestamp, payload).split(",v1=", 1)[1] for secret in secrets_]
    return ",".join([f"t={timestamp}", *(f"v1={m}" for m in macs)])


#: how long a rotated secret keeps signing beside the new one by default (receivers switch in between)
ROTATION_OVERLAP = timedelta(hours=24)
#: the longest overlap a rotation may ask for
MAX_ROTATION_OVERLAP = timedelta(days=7)


def verify(secret: str, header: str, payload: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (the README's snippet is this function): parse ``t`` and every ``v1``,
    recompute, compare in constant time, refuse a timestamp older than ``tolerance`` seconds."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance:
        return False
    expected = sign(secret, int(stamps[0]), payload).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


# --- retries --------------------------------------------------------------------------------------


def retryable(status: int | None) -> bool:
    """No answer (timeout, refused connection), 5xx, 408 and 429 are tried again; other 4xx (and a
    3xx: redirects are not followed) are the receiver's final word."""
    return status is None or status >= 500 or status in (408, 429)


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): exponential, capped, with "full
    jitter" in its upper half so receivers that fail together are not all retried together."""
    ceiling: timedelta = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** (attempt - 1)))
    factor = 0.5 + (rng or random.SystemRandom()).random() / 2
    return ceiling * factor


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered | pending | failed
    next_attempt_at: datetime | None


def after_attempt(status: int | None, attempt: int, now: datetime, rng: random.Random | None = None) -> Outcome:
    if status is not None and 200 <= status < 300:
        return Outcome("delivered", None)
    if not retryable(status) or attempt >= MAX_ATTEMPTS:
        return Outcome("failed", None)
    return Outcome("pending", now + backoff(attempt, rng))


# --- circuit breaker -------------------------------------------------------------------------------

#: attempts in a row without a 2xx after which a subscription's breaker opens: its deliveries wait
#: instead of each spending its own attempts on a receiver that is down
BREAKER_THRESHOLD = 5
#: while open, one attempt (the probe) per this long reaches the receiver; a 2xx closes the breaker
BREAKER_COOLDOWN = timedelta(minutes=5)
#: a receiver failing this long without a single 2xx is switched off (``switched_off_reason``
#: ``failing``); the owner switches it on again once it is fixed
SWITCH_OFF_AFTER = timedelta(days=3)


@dataclass(frozen=True)
class Health:
    """A subscription's breaker state as stored on it."""

    consecutive_failures: int
    failing_since: datetime | None
    paused_until: datetime | None

    def open(self) -> bool:
        return self.consecutive_failures >= BREAKER_THRESHOLD


def after_failure(h: Health, now: datetime) -> tuple[Health, bool]:
    """The state after one more attempt without a 2xx, and whether to switch the subscription off."""
    since = h.failing_since or now
    failures = h.consecutive_failures + 1
    paused = now + BREAKER_COOLDOWN if failures >= BREAKER_THRESHOLD else h.paused_until
    return Health(failures, since, paused), now - since >= SWITCH_OFF_AFTER


# --- SSRF ------------------------------------------------------------------------------------------


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; ``reason`` is a short slug for the problem and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_url(url: str, *, production: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a receiver URL; https only in production (http also in development)."""
    if len(url) > 2000:
        raise UnsafeURL("too-long")
    parts = urlsplit(url)
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeURL("scheme")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeURL("host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise UnsafeURL("port") from e
    return parts.scheme, parts.hostname, port


def forbidden(address: str, *, allow_loopback: bool) -> str | None:
    """Why a receiver may not be at ``address``, or None. Private, loopback, link-local (cloud metadata
    at 169.254.169.254), multicast, reserved and unspecified addresses are refused; an IPv4 address
    mapped or embedded in IPv6 is judged as the IPv4 address it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            ip = inner
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    for reason, hit in (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not-global", not ip.is_global),
    ):
        if hit:
            return reason
    return None


def pick_address(addresses: Iterable[str], *, allow_loopback: bool) -> str:
    """The address to connect to: every address the name resolves to must be allowed (a name with one
    public and one private address is refused — the resolver, not us, would choose), then the first."""
    found = list(dict.fromkeys(addresses))
    if not found:
        raise UnsafeURL("unresolved")
    for a in found:
        if (reason := forbidden(a, allow_loopback=allow_loopback)) is not None:
            raise UnsafeURL(reason)
    return found[0]
