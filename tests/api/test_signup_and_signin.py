"""Merchant sign-up, e-mail verification, password sign-in (session and bearer), sign-out, lockout."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.identity import sessions

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"


def signup_body(**over: object) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    body: dict[str, object] = {
        "merchant_name": f"茶铺 {tag}",
        "slug": f"tea-{tag}",
        "email": f"Owner-{tag}@Example.com",
        "password": PASSWORD,
    }
    body.update(over)
    return body


async def signup(client, **over):
    body = signup_body(**over)
    r = await client.post("/api/v1/signup", json=body)
    assert r.status_code == 201, r.text
    return body, r.json()


async def test_signup_creates_merchant_owner_and_verification_mail(client, owner_engine) -> None:
    body, out = await signup(client, trade="tea", display_name="Ms Wang")
    assert out["slug"] == body["slug"]
    assert out["email"] == str(body["email"]).lower()
    async with owner_engine.connect() as conn:
        m = (await conn.execute(text("SELECT * FROM merchants WHERE id = :i"), {"i": out["merchant_id"]})).one()
        assert (m.currency, m.timezone, m.trade) == ("CNY", "Asia/Shanghai", "tea")
        role = await conn.scalar(
            text("SELECT role FROM staff_memberships WHERE tenant_id = :t AND user_id = :u"),
            {"t": out["merchant_id"], "u": out["user_id"]},
        )
        assert role == "owner"
        pw = await conn.scalar(text("SELECT password_hash FROM staff_users WHERE id = :u"), {"u": out["user_id"]})
        assert pw.startswith("$argon2id$")
        mail = (
            await conn.execute(
                text("SELECT tenant_id, actor, payload FROM outbox WHERE tenant_id = :t"), {"t": out["merchant_id"]}
            )
        ).one()
    assert mail.actor == "send_email"
    assert mail.payload["to"] == out["email"]
    token = mail.payload["body"].split("Token: ")[1].strip()

    r = await client.post("/api/v1/signup/verify-email", json={"token": token})
    assert r.status_code == 200, r.text
    async with owner_engine.connect() as conn:
        assert await conn.scalar(
            text("SELECT email_verified_at IS NOT NULL FROM staff_users WHERE id = :u"), {"u": out["user_id"]}
        )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    r = await client.post("/api/v1/signup/verify-email", json={"token": tampered})
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-token")


async def test_duplicate_email_or_slug_is_409_and_changes_nothing(client, owner_engine) -> None:
    body, _ = await signup(client)
    async with owner_engine.connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM merchants"))
    r = await client.post("/api/v1/signup", json=signup_body(email=str(body["email"]).upper()))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/email-taken")
    r = await client.post("/api/v1/signup", json=signup_body(slug=body["slug"]))
    assert r.status_code == 409
    assert r.json()["type"].endswith("/slug-taken")
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM merchants")) == before


@pytest.mark.parametrize(
    "over",
    [
        {"slug": "Bad Slug"},
        {"email": "not-an-email"},
        {"password": "short"},
        {"currency": "rmb"},
        {"timezone": "Mars/Olympus"},
        {"merchant_name": " "},
        {"extra": 1},
        {"password": 12345678901},
    ],
)
async def test_signup_validation_problems(client, over) -> None:
    r = await client.post("/api/v1/signup", json=signup_body(**over))
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith("/validation-failed")


async def test_password_session_me_csrf_and_sign_out(client) -> None:
    body, out = await signup(client)
    r = await client.post("/api/v1/auth/session", json={"email": body["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.cookies.get(sessions.STAFF_COOKIE)
    set_cookie = r.headers.get_list("set-cookie")
    session_header = next(h for h in set_cookie if h.startswith(sessions.STAFF_COOKIE + "="))
    assert "HttpOnly" in session_header and "SameSite=lax" in session_header.replace("Lax", "lax")
    csrf = r.json()["csrf_token"]
    assert r.json()["merchants"][0]["role"] == "owner"
    client.cookies.clear()
    headers = {"Cookie": f"{sessions.STAFF_COOKIE}={cookie}"}

    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["merchant_id"] == out["merchant_id"]  # the only employer is chosen automatically
    assert me.json()["via"] == "session"
    assert "clients:write" in me.json()["permissions"]

    # a cookie-authenticated write without the CSRF token is refused
    r = await client.delete("/api/v1/auth/session", headers=headers)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/csrf-failed")
    r = await client.delete("/api/v1/auth/session", headers={**headers, "X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = await client.delete("/api/v1/auth/session", headers={**headers, "X-CSRF-Token": csrf})
    assert r.status_code == 204
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/session-expired")


async def test_bearer_token_and_revocation(client) -> None:
    body, out = await signup(client)
    r = await client.post("/api/v1/auth/token", json={"email": body["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 900
    assert tok["merchant_id"] == out["merchant_id"]
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert (await client.get("/api/v1/staff", headers=h)).status_code == 200
    assert (await client.post("/api/v1/auth/revoke", headers=h)).status_code == 204
    r = await client.get("/api/v1/staff", headers=h)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-token")


async def test_wrong_password_unknown_email_and_lockout(client, settings) -> None:
    body, _ = await signup(client)
    wrong = await client.post("/api/v1/auth/session", json={"email": body["email"], "password": "wrong password!"})
    unknown = await client.post(
        "/api/v1/auth/session", json={"email": "nobody@example.com", "password": "whatever1234"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["type"] == unknown.json()["type"]
    assert wrong.json()["detail"] == unknown.json()["detail"]
    for _ in range(settings.identity.max_failed_logins - 1):
        r = await client.post("/api/v1/auth/token", json={"email": body["email"], "password": "still wrong!!"})
        assert r.status_code == 401
    # locked: even the right password is refused now, with a retry hint
    r = await client.post("/api/v1/auth/session", json={"email": body["email"], "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["type"].endswith("/account-locked")
    assert r.json()["retry_after"] > 0


async def test_unknown_email_costs_a_hash_verification_too(monkeypatch) -> None:
    """Timing safety: with no account, a dummy argon2 hash is still verified."""
    from lianka.platform.identity import passwords

    passwords._dummy_hash()  # computed once, before the spy
    calls: list[str] = []
    real = passwords._hasher

    class Spy:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Spy())
    assert not await passwords.verify_password(None, "anything at all")
    assert calls and calls[0].startswith("$argon2id$")


async def test_staff_of_two_merchants_choose_with_x_merchant(client, auth_kit, two_tenants) -> None:
    a, b = two_tenants
    creds = await auth_kit.staff(a, "cashier")
    await auth_kit.add_membership(b, creds.subject_id, "analyst")
    from lianka.platform.identity.services import issue_staff_token

    token, _, bound = await issue_staff_token(auth_kit.ident, creds.subject_id, None)
    assert bound is None  # two employers: not bound
    h = {"Authorization": f"Bearer {token}"}
    r = await client.get("/api/v1/staff", headers=h)
    assert r.status_code == 400
    assert r.json()["type"].endswith("/merchant-required")
    r = await client.get("/api/v1/auth/me", headers={**h, "X-Merchant": str(b)})
    assert r.json()["role"] == "analyst"
    r = await client.get("/api/v1/auth/me", headers={**h, "X-Merchant": str(a)})
    assert r.json()["role"] == "cashier"
    stranger = await auth_kit.staff(b, "owner")
    r = await client.get("/api/v1/auth/me", headers={**stranger.headers, "X-Merchant": str(a)})
    assert r.status_code == 404
    r = await client.get("/api/v1/auth/me", headers={**h, "X-Merchant": str(uuid.uuid4())})
    assert r.status_code == 404


async def test_cookie_sign_in_takes_json_only(client) -> None:
    """Login CSRF: a cross-site form (text/plain or urlencoded) cannot sign the browser in."""
    body, _ = await signup(client)
    payload = f'{{"email": "{body["email"]}", "password": "{PASSWORD}"}}'
    r = await client.post("/api/v1/auth/session", content=payload, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert sessions.STAFF_COOKIE not in r.cookies


async def test_cookie_form_posts_need_the_csrf_field(fresh_app, auth_kit, tenant_factory) -> None:
    """A server-rendered form authenticated by the session cookie carries ``_csrf``."""
    from litestar import post

    from lianka.platform.identity.guards import requires
    from lianka.platform.identity.permissions import Permission

    @post("/api/v1/_test/form", guards=[requires(Permission.MERCHANT_READ)], status_code=200)
    async def form_handler() -> dict[str, str]:
        return {"ok": "yes"}

    fresh_app.register(form_handler)
    async with AsyncTestClient(app=fresh_app) as client:
        creds = await auth_kit.staff_session(await tenant_factory())
        cookie = {"Cookie": creds.headers["Cookie"]}
        r = await client.post("/api/v1/_test/form", data={"x": "1"}, headers=cookie)
        assert r.status_code == 403 and r.json()["type"].endswith("/csrf-failed")
        r = await client.post("/api/v1/_test/form", data={"x": "1", "_csrf": "wrong"}, headers=cookie)
        assert r.status_code == 403
        r = await client.post(
            "/api/v1/_test/form", data={"x": "1", "_csrf": creds.headers["X-CSRF-Token"]}, headers=cookie
        )
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/_test/form", json={}, headers=creds.headers)  # header variant
        assert r.status_code == 200, r.text
