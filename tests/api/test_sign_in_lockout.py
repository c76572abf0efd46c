"""Sign-in limits hold under truly parallel requests, and lock out per (account, client address).

The requests go through ``httpx.ASGITransport`` on the test's own event loop (the app's lifespan is
entered by hand), so they really run concurrently: the argon2 verifications run side by side in
threads while the other requests wait on Redis and PostgreSQL. (Litestar's test client would send
them one after the other.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from lianka.platform.identity import members, passwords, secrets_box
from lianka.platform.identity.errors import InvalidCredentials
from lianka.platform.identity.runtime import Identity

PASSWORD = "a long passphrase 42"
PARALLEL = 25


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """The app's lifespan on this loop, and a factory of clients that come from a given address."""
    opened: list[httpx.AsyncClient] = []

    def from_address(ip: str) -> httpx.AsyncClient:
        # httpx types an ASGI app's scope as a plain dict, Litestar as TypedDicts: the same protocol
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
        c = httpx.AsyncClient(transport=transport, base_url="http://lianka.test")
        opened.append(c)
        return c

    async with app.lifespan():
        try:
            yield from_address
        finally:
            for c in opened:
                await c.aclose()


def verification_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = passwords.verify_password

    async def spy(stored: str | None, password: str) -> bool:
        calls.append(1)
        return await real(stored, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    return calls


async def lockout_mails(owner_engine: Any, email: str) -> list[dict[str, Any]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT payload FROM outbox WHERE actor = 'send_email' AND payload->>'to' = :e "
                "AND payload->>'subject' LIKE '%failed sign-in%' ORDER BY id"
            ),
            {"e": email},
        )
        return [r.payload for r in rows]


async def sign_up(client: httpx.AsyncClient) -> str:
    email = f"lock-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post(
        "/api/v1/signup",
        json={"merchant_name": "Lock test", "slug": f"l-{uuid.uuid4().hex[:10]}", "email": email, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return email


async def test_parallel_guesses_verify_at_most_the_limit_and_lock_only_that_address(
    app: Litestar, settings, owner_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = settings.identity.max_failed_logins
    async with running(app) as client:
        email = await sign_up(client("192.0.2.1"))
        verified = verification_counter(monkeypatch)
        attacker = client("203.0.113.66")
        answers = await asyncio.gather(
            *(
                attacker.post("/api/v1/auth/token", json={"email": email, "password": f"guess number {i:04d}"})
                for i in range(PARALLEL)
            )
        )
        assert len(verified) <= limit, f"{len(verified)} passwords verified, the limit is {limit}"
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [401] * limit + [429] * (PARALLEL - limit)
        locked = next(r for r in answers if r.status_code == 429)
        assert locked.json()["type"].endswith("/account-locked") and locked.json()["retry_after"] > 0
        assert locked.headers["content-type"].startswith("application/problem+json")

        # that address is locked out of this account, even with the right password ...
        r = await attacker.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert r.status_code == 429
        # ... while the owner, elsewhere, signs in as usual
        r = await client("192.0.2.1").post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text

    mails = await lockout_mails(owner_engine, email)
    assert len(mails) == 1, mails  # one notice per lockout, however many refused attempts
    assert "203.0.113.66" in mails[0]["body"]


async def test_the_per_account_ceiling_over_all_addresses(
    app: Litestar, settings, owner_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_address = settings.identity.max_failed_logins
    ceiling = settings.identity.max_failed_logins_global
    assert ceiling > per_address
    addresses = [f"198.51.100.{i}" for i in range(1, ceiling // per_address + 3)]
    async with running(app) as client:
        email = await sign_up(client("192.0.2.2"))
        verified = verification_counter(monkeypatch)
        # a distributed guess: every address makes more attempts than it may, all at once
        answers = await asyncio.gather(
            *(
                client(ip).post("/api/v1/auth/token", json={"email": email, "password": f"guess {ip} {n}"})
                for ip in addresses
                for n in range(per_address + 2)
            )
        )
        assert len(verified) <= ceiling
        assert sum(r.status_code == 401 for r in answers) == ceiling
        assert all(r.status_code in (401, 429) for r in answers)
        # now every address is refused, the owner's too — until the window ends
        r = await client("192.0.2.2").post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert r.status_code == 429
        assert r.json()["type"].endswith("/account-locked")

    mails = await lockout_mails(owner_engine, email)
    assert len(mails) == 2, mails  # one for the first locked address, one for the ceiling
    assert any("every address" in m["body"] for m in mails)


async def test_a_success_does_not_count_and_clears_the_address(app: Litestar, settings) -> None:
    limit = settings.identity.max_failed_logins
    async with running(app) as client:
        email = await sign_up(client("192.0.2.3"))
        me = client("192.0.2.4")
        for _ in range(3):
            for _ in range(limit - 1):
                assert (
                    await me.post("/api/v1/auth/token", json={"email": email, "password": "typo typo typo"})
                ).status_code == 401
            assert (await me.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})).status_code == 200


async def test_no_notice_for_unknown_accounts(app: Litestar, settings, owner_engine) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with running(app) as client:
        c = client("203.0.113.9")
        for _ in range(settings.identity.max_failed_logins + 2):
            r = await c.post("/api/v1/auth/token", json={"email": email, "password": "whatever 12345"})
        assert r.status_code == 429  # locked like a real account: nothing tells them apart
    assert await lockout_mails(owner_engine, email) == []


# --- the member portal's one-time codes -----------------------------------------------------------


async def _live_code(ident: Identity, tenant: uuid.UUID) -> tuple[str, str]:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    await members.enrol_member(ident, tenant, phone)
    await members.request_otp(ident, phone, "192.0.2.50")
    sms = ident.sms.last_to(members.normalise_phone(phone))  # type: ignore[attr-defined]
    return phone, sms.text.split("验证码是 ")[1][:6]


def comparison_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = secrets_box.same

    def spy(a: str, b: str) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(secrets_box, "same", spy)
    return calls


async def _guess(ident: Identity, phone: str, code: str, ip: str) -> bool:
    try:
        await members.verify_otp(ident, phone, code, ip)
    except InvalidCredentials:
        return False
    return True


async def test_parallel_code_guesses_are_counted_before_comparing(
    auth_kit, tenant_factory, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = auth_kit.ident
    phone, code = await _live_code(ident, await tenant_factory())
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    compared = comparison_counter(monkeypatch)
    results = await asyncio.gather(*(_guess(ident, phone, wrong, "203.0.113.20") for _ in range(PARALLEL)))
    assert not any(results)
    assert len(compared) <= settings.identity.otp_max_attempts
    # that address has used its guesses at this code, even the right one fails there ...
    assert not await _guess(ident, phone, code, "203.0.113.20")
    # ... but the member, from their own phone's address, still signs in with it
    assert await _guess(ident, phone, code, "192.0.2.50")
    assert not await _guess(ident, phone, code, "192.0.2.50")  # and only once


async def test_guesses_from_many_addresses_burn_the_code(auth_kit, tenant_factory, settings) -> None:
    ident = auth_kit.ident
    phone, code = await _live_code(ident, await tenant_factory())
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    total = settings.identity.otp_max_attempts_global
    addresses = [f"198.51.100.{i}" for i in range(1, total // settings.identity.otp_max_attempts + 2)]
    await asyncio.gather(
        *(_guess(ident, phone, wrong, ip) for ip in addresses for _ in range(settings.identity.otp_max_attempts))
    )
    assert not await _guess(ident, phone, code, "192.0.2.50")
