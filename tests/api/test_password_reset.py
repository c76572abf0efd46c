"""Forgot / reset password, through the JSON API and the console's pages.

One use case does the work (``platform.identity.services``: ``request_password_reset``,
``check_reset_link``, ``reset_password``); these pin what it promises: the same answer whether an
account uses the e-mail or not, a link that works once and for an hour, refused when expired or
altered or made for another purpose, the old password and every session ended, and the limits per
e-mail and per client address.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.identity import passwords, services
from lianka.platform.identity.testing import AuthKit
from tests.api.test_console import csrf_of
from tests.api.test_sign_in_lockout import running

Client = AsyncTestClient[Litestar]
PROBLEM = "application/problem+json"
OLD = "the old passphrase"
NEW = "a brand new passphrase"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"


async def account(kit: AuthKit, tenant_factory: Any, *, password: str | None = OLD) -> tuple[uuid.UUID, str]:
    """A staff user (owner of a new merchant) with ``password``: (id, e-mail)."""
    email = f"reset-{uuid.uuid4().hex[:10]}@example.com"
    uid = await kit.user(email, await passwords.hash_password(password) if password else None)
    await kit.add_membership(await tenant_factory(), uid, "owner")
    return uid, email


async def reset_mails(owner_engine: Any, email: str) -> list[str]:
    """The bodies of the reset e-mails queued for ``email``, oldest first."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT payload->>'body' AS body FROM outbox WHERE actor = 'send_email' AND payload->>'to' = :e "
                "AND payload->>'subject' = 'Reset your Lianka password' ORDER BY id"
            ),
            {"e": email},
        )
        return [r.body for r in rows]


def token_of(body: str) -> str:
    found = re.search(r"/reset-password\?token=(\S+)", body)
    assert found, body
    assert f"Token: {found.group(1)}" in body
    return found.group(1)


async def sign_in(client: Client, email: str, password: str) -> int:
    r = await client.post("/api/v1/auth/token", json={"email": email, "password": password})
    return r.status_code


def comparable(r: Any) -> tuple[int, str, bytes]:
    return r.status_code, r.headers.get("content-type", ""), r.content


async def test_the_answer_is_the_same_whether_an_account_uses_the_email_or_not(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, known = await account(auth_kit, tenant_factory)
    _, disabled = await account(auth_kit, tenant_factory)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE staff_users SET disabled_at = now() WHERE email = :e"), {"e": disabled})
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    answers = [await client.post(RESET, json={"email": e}) for e in (known, unknown, disabled, known.upper())]
    assert {comparable(r) for r in answers} == {comparable(answers[0])}
    assert answers[0].status_code == 202
    assert len(await reset_mails(owner_engine, known)) == 2  # the e-mail is matched case-insensitively
    assert await reset_mails(owner_engine, unknown) == []
    assert await reset_mails(owner_engine, disabled) == []

    # a malformed address is refused whoever asks, as a problem
    for body in ({"email": "not-an-address"}, {"email": 12}, {"mail": known}, {"email": known, "extra": 1}):
        r = await client.post(RESET, json=body)
        assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM), body
        assert r.json()["type"].endswith("/validation-failed")


async def test_the_link_works_once_ends_the_old_password_and_every_session(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    uid, email = await account(auth_kit, tenant_factory)
    r = await client.post("/api/v1/auth/token", json={"email": email, "password": OLD})
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200

    assert (await client.post(RESET, json={"email": email})).status_code == 202
    assert (await client.post(RESET, json={"email": email})).status_code == 202
    first, second = (token_of(b) for b in await reset_mails(owner_engine, email))
    assert await services.check_reset_link(auth_kit.ident, second) == email

    r = await client.post(CONFIRM, json={"token": second, "password": NEW})
    assert r.status_code == 204, r.text
    assert await sign_in(client, email, OLD) == 401
    assert await sign_in(client, email, NEW) == 200
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 401  # signed out everywhere

    # used once: the same link, and the other link sent before, no longer work (bound to the old hash)
    for used in (second, first):
        r = await client.post(CONFIRM, json={"token": used, "password": "a third passphrase"})
        assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["type"].endswith("/invalid-token")
    assert await sign_in(client, email, NEW) == 200
    async with owner_engine.connect() as conn:
        changed = await conn.scalar(
            text("SELECT password_changed_at > now() - interval '1 minute' FROM staff_users WHERE id = :u"), {"u": uid}
        )
    assert changed


async def test_a_password_change_kills_a_link_sent_before_it(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, email = await account(auth_kit, tenant_factory)
    await client.post(RESET, json={"email": email})
    await client.post(RESET, json={"email": email})
    first, second = (token_of(b) for b in await reset_mails(owner_engine, email))
    async with owner_engine.begin() as conn:  # the password changes some other way
        await conn.execute(
            text("UPDATE staff_users SET password_hash = :h WHERE email = :e"),
            {"h": await passwords.hash_password("changed elsewhere"), "e": email},
        )
    for token in (first, second):
        assert (await client.post(CONFIRM, json={"token": token, "password": NEW})).status_code == 401
    assert await sign_in(client, email, "changed elsewhere") == 200


def _altered(token: str) -> list[str]:
    uid, exp, sig = token.split(".")
    flip = "A" if sig[-1] != "A" else "B"
    return [
        f"{uid}.{exp}.{sig[:-1]}{flip}",  # signature
        f"{uid}.{int(exp) + 3600}.{sig}",  # a later expiry
        f"{uuid.uuid4().hex}.{exp}.{sig}",  # someone else
        f"{uid}.{exp}",
        "nonsense",
        "",
    ]


async def test_expired_altered_and_other_purpose_tokens_are_refused(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    uid, email = await account(auth_kit, tenant_factory)
    await client.post(RESET, json={"email": email})
    (body,) = await reset_mails(owner_engine, email)
    good = token_of(body)
    ident = auth_kit.ident
    async with owner_engine.connect() as conn:
        pw_hash = await conn.scalar(text("SELECT password_hash FROM staff_users WHERE id = :u"), {"u": uid})
    binding = f"{email}|{pw_hash}"
    expired = services.action_token(ident.secret, services.RESET_PURPOSE, uid, binding, -1)
    other_purposes = [
        services.action_token(ident.secret, "lianka:set-password", uid, pw_hash, 3600),  # an invitation
        services.action_token(ident.secret, "lianka:verify-email", uid, email, 3600),
        services.action_token(ident.secret, services.RESET_PURPOSE, uid, pw_hash, 3600),  # wrong binding
        services.action_token("another server's secret key", services.RESET_PURPOSE, uid, binding, 3600),
    ]
    for bad in [expired, *other_purposes, *_altered(good)]:
        r = await client.post(CONFIRM, json={"token": bad, "password": NEW})
        assert r.status_code == 401, bad
        assert r.json()["type"].endswith("/invalid-token")
    assert await sign_in(client, email, OLD) == 200  # nothing changed
    assert (await client.post(CONFIRM, json={"token": good, "password": NEW})).status_code == 204


async def test_the_new_password_follows_the_sign_up_policy_and_a_refusal_keeps_the_link(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, email = await account(auth_kit, tenant_factory)
    await client.post(RESET, json={"email": email})
    (body,) = await reset_mails(owner_engine, email)
    token = token_of(body)
    for weak in ("short", "aaaaaaaaaaaaaa", "x" * 300):
        r = await client.post(CONFIRM, json={"token": token, "password": weak})
        assert r.status_code == 400 and r.json()["field"] == "password", weak
    for bad_body in ({"token": token}, {"token": token, "password": 1234567890123}, {"password": NEW}):
        assert (await client.post(CONFIRM, json=bad_body)).status_code == 400
    assert (await client.post(CONFIRM, json={"token": token, "password": NEW})).status_code == 204


async def test_an_invited_person_who_never_set_a_password_can_use_the_reset_link(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, email = await account(auth_kit, tenant_factory, password=None)
    assert (await client.post(RESET, json={"email": email})).status_code == 202
    (body,) = await reset_mails(owner_engine, email)
    assert (await client.post(CONFIRM, json={"token": token_of(body), "password": NEW})).status_code == 204
    assert await sign_in(client, email, NEW) == 200


async def test_requests_are_limited_per_email_and_per_address(
    app: Litestar, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, known = await account(auth_kit, tenant_factory)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with running(app) as client:
        # per e-mail (from many addresses): RESET_PER_EMAIL an hour, the same for an unknown e-mail
        for email in (known, unknown):
            codes = [
                (await client(f"198.51.100.{i + 1}").post(RESET, json={"email": email})).status_code
                for i in range(services.RESET_PER_EMAIL + 2)
            ]
            assert codes == [202] * services.RESET_PER_EMAIL + [429, 429], email
        refused = await client("198.51.100.99").post(RESET, json={"email": known})
        assert refused.status_code == 429 and refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["type"].endswith("/rate-limited") and refused.json()["retry_after"] > 0
        assert len(await reset_mails(owner_engine, known)) == services.RESET_PER_EMAIL

        # per address (over many e-mails): RESET_PER_IP an hour; another address is not affected
        sprayer = client("203.0.113.7")
        codes = [
            (await sprayer.post(RESET, json={"email": f"spray-{i}-{uuid.uuid4().hex[:6]}@example.com"})).status_code
            for i in range(services.RESET_PER_IP + 1)
        ]
        assert codes == [202] * services.RESET_PER_IP + [429]
        fresh = f"fresh-{uuid.uuid4().hex[:8]}@example.com"
        assert (await sprayer.post(RESET, json={"email": fresh})).status_code == 429
        assert (await client("203.0.113.8").post(RESET, json={"email": fresh})).status_code == 202


# --- the console's pages --------------------------------------------------------------------------


async def test_forgot_password_pages_in_the_console(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    _, email = await account(auth_kit, tenant_factory)
    client.cookies.clear()
    sign_in_page = (await client.get("/sign-in")).text
    assert 'href="/forgot-password"' in sign_in_page and "忘记密码？" in sign_in_page

    page = await client.get("/forgot-password")
    assert page.status_code == 200
    token = csrf_of(page.text)
    assert (await client.post("/forgot-password", data={"email": email})).status_code == 403  # the page's token
    r = await client.post("/forgot-password", data={"email": "not an address", "_csrf": token})
    assert r.status_code == 400 and 'id="f-email-error"' in r.text and 'value="not an address"' in r.text

    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    sent = [await client.post("/forgot-password", data={"email": e, "_csrf": token}) for e in (email, unknown)]
    assert [r.status_code for r in sent] == [200, 200]
    assert sent[0].text.replace(email, "<e>") == sent[1].text.replace(unknown, "<e>")  # the same page
    assert "请查收邮件" in sent[0].text

    (body,) = await reset_mails(owner_engine, email)
    link = token_of(body)
    form_page = await client.get(f"/reset-password?token={link}")
    assert form_page.status_code == 200 and email in form_page.text and 'name="token"' in form_page.text
    for bad in ("", "nonsense", _altered(link)[0]):
        refused = await client.get(f"/reset-password?token={bad}")
        assert refused.status_code == 401 and 'href="/forgot-password"' in refused.text
        assert 'name="password"' not in refused.text

    token = csrf_of(form_page.text)
    form = {"token": link, "_csrf": token}
    r = await client.post("/reset-password", data={**form, "password": NEW, "password_again": "something else!"})
    assert r.status_code == 400 and 'id="f-password_again-error"' in r.text
    r = await client.post("/reset-password", data={**form, "password": "short", "password_again": "short"})
    assert r.status_code == 400 and 'id="f-password-error"' in r.text
    r = await client.post("/reset-password", data={"token": link, "password": NEW, "password_again": NEW})
    assert r.status_code == 403  # no token, no change
    r = await client.post(
        "/reset-password", data={**form, "password": NEW, "password_again": NEW}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"
    assert "密码已修改" in (await client.get("/sign-in")).text
    assert await sign_in(client, email, NEW) == 200

    r = await client.post("/reset-password", data={**form, "password": "yet another one", "password_again": "x"})
    assert r.status_code == 401 and 'href="/forgot-password"' in r.text  # used: say so, lead to asking again
    assert await sign_in(client, email, NEW) == 200


@pytest.mark.parametrize("path", [RESET, CONFIRM])
async def test_the_reset_operations_are_in_the_openapi_document(client: Client, path: str) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    operation = doc["paths"][path]["post"]
    assert operation["responses"]["400"]["content"][PROBLEM]
    assert set(operation["responses"]) >= ({"202", "429"} if path == RESET else {"204", "401"})
