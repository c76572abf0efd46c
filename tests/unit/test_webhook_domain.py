"""Outbound webhooks' pure rules: the signature, what is retried and when, and the addresses a
receiver may not have."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lianka.platform.webhooks import domain

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_signature_is_hmac_sha256_over_timestamp_dot_body_and_verifies() -> None:
    body = domain.body(uuid.UUID(int=1), "sale.recorded", NOW, uuid.UUID(int=2), {"amount": {"minor": 100}})
    header = domain.sign("whsec_k", 1_700_000_000, body)
    import hashlib
    import hmac

    mac = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert domain.verify("whsec_k", header, body, 1_700_000_100)
    assert not domain.verify("whsec_k", header, body, 1_700_000_000 + 301)  # too old: a replayed capture
    assert not domain.verify("whsec_x", header, body, 1_700_000_000)
    assert not domain.verify("whsec_k", header.replace("t=1700000000", "t=1700000001"), body, 1_700_000_000)
    assert not domain.verify("whsec_k", "v1=" + mac, body, 1_700_000_000)
    # the body is the same bytes every time (attempts and replays)
    again = domain.body(uuid.UUID(int=1), "sale.recorded", NOW, uuid.UUID(int=2), {"amount": {"minor": 100}})
    assert again == body


@pytest.mark.parametrize(
    ("status", "retry"),
    [(None, True), (500, True), (502, True), (503, True), (408, True), (429, True),
     (400, False), (401, False), (404, False), (410, False), (301, False), (302, False)],
)  # fmt: skip
def test_what_is_retried(status: int | None, retry: bool) -> None:
    assert domain.retryable(status) is retry


def test_back_off_doubles_with_jitter_is_capped_and_gives_up() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(domain.BACKOFF_CAP, domain.BACKOFF_BASE * 2 ** (attempt - 1))
        wait = domain.backoff(attempt, rng)
        assert ceiling / 2 <= wait <= ceiling
    assert domain.after_attempt(200, 1, NOW) == domain.Outcome("delivered", None)
    assert domain.after_attempt(404, 1, NOW) == domain.Outcome("failed", None)
    pending = domain.after_attempt(503, 3, NOW, rng)
    assert pending.status == "pending" and pending.next_attempt_at is not None
    assert NOW + timedelta(minutes=1) <= pending.next_attempt_at <= NOW + timedelta(minutes=2)
    assert domain.after_attempt(503, domain.MAX_ATTEMPTS, NOW) == domain.Outcome("failed", None)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("127.0.0.1", "loopback"),
     ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
     ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("::ffff:192.168.0.1", "private"),  # noqa: S104
     ("100.64.0.1", "not-global"), ("fc00::1", "private"), ("8.8.8.8", None), ("2606:4700::1111", None)],
)  # fmt: skip
def test_forbidden_addresses(address: str, reason: str | None) -> None:
    assert domain.forbidden(address, allow_loopback=False) == reason


def test_loopback_only_in_development_and_every_address_must_pass() -> None:
    assert domain.forbidden("127.0.0.1", allow_loopback=True) is None
    assert domain.forbidden("10.0.0.1", allow_loopback=True) == "private"
    assert domain.pick_address(["93.184.216.34", "93.184.216.34"], allow_loopback=False) == "93.184.216.34"
    with pytest.raises(domain.UnsafeURL, match="private"):
        domain.pick_address(["93.184.216.34", "10.0.0.1"], allow_loopback=False)
    with pytest.raises(domain.UnsafeURL, match="unresolved"):
        domain.pick_address([], allow_loopback=False)
    assert domain.parse_url("https://hooks.example.com/x", production=True) == ("https", "hooks.example.com", 443)
    with pytest.raises(domain.UnsafeURL, match="scheme"):
        domain.parse_url("http://hooks.example.com/x", production=True)
    assert domain.parse_url("http://127.0.0.1:8080/x", production=False) == ("http", "127.0.0.1", 8080)


def test_the_readme_snippet_verifies_what_lianka_signs() -> None:
    """The Python snippet in the README's "Webhooks for integrators" is what receivers copy: it must
    accept Lianka's signature and refuse a changed body."""
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Webhooks for integrators", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    scope: dict[str, object] = {}
    exec(snippet.group(1), scope)  # noqa: S102 - our own README
    verify = scope["verify"]
    assert callable(verify)
    body = domain.body(uuid.UUID(int=3), "member.joined", NOW, uuid.UUID(int=4), {"member_id": "m"})
    header = domain.sign("whsec_readme", int(time.time()), body)
    assert verify("whsec_readme", header, body) is True
    assert verify("whsec_readme", header, body + b"x") is False
