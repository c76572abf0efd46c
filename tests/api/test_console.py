"""The merchant console's pages through the app's test client: security headers, sign-in and its
CSRF, role-built menus and the server's refusals, the branches page, the onboarding checklist, the
sign-up → verification journey, invitations, language and merchant switches.

The browser journeys (tests/browser) drive the same pages in Chromium; these pin the rules exactly.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.identity import passwords, sessions
from lianka.platform.identity.permissions import Role
from lianka.platform.identity.principal import Kind, Principal
from lianka.platform.identity.staff import add_staff
from lianka.platform.identity.testing import AuthKit
from lianka.platform.money import Money
from lianka.tenants.services import branches as branch_svc
from lianka.web.console.nav import MENU
from lianka.web.console.security import CONTENT_SECURITY_POLICY

Client = AsyncTestClient[Litestar]
CSRF_IN_PAGE = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_IN_PAGE.search(html)
    assert found, "the page has no form token"
    return found.group(1)


@dataclass
class Console:
    """A browser-like session of one staff member in the console (cookie jar + the page's token)."""

    client: Client
    csrf: str
    user_id: uuid.UUID

    async def get(self, url: str, **kw: Any) -> Any:
        return await self.client.get(url, follow_redirects=False, **kw)

    async def post(self, url: str, data: dict[str, Any], *, token: bool = True, htmx: bool = False) -> Any:
        form = {**data, "_csrf": self.csrf} if token else data
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.client.post(url, data=form, headers=headers, follow_redirects=False)


async def sign_in_console(
    client: Client, kit: AuthKit, tenant: uuid.UUID, role: str = "owner", branches: tuple[uuid.UUID, ...] = ()
) -> Console:
    creds = await kit.staff_session(tenant, role, branches=branches)
    assert creds.token and creds.subject_id
    client.cookies.clear()
    client.cookies.set(sessions.STAFF_COOKIE, creds.token)
    return Console(client, creds.headers["X-CSRF-Token"], creds.subject_id)


async def branch_codes(db: Any, tenant: uuid.UUID) -> set[str]:
    return {b.code for b in await branch_svc.branches(db, tenant)}


# --- HTML security --------------------------------------------------------------------------------


def test_every_console_route_declares_its_access_and_stays_out_of_the_api_schema(app: Litestar) -> None:
    from lianka.platform.identity.guards import declared_access
    from lianka.web.console import console_router

    paths = {route.path for route in console_router().routes}
    assert {"/", "/sign-in", "/console/branches", "/console/start"} <= paths
    undeclared, documented = [], []
    for route in app.routes:
        if route.path not in paths:
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:
                continue
            if declared_access(handler) is None:
                undeclared.append(f"{route.path} {sorted(handler.http_methods)}")
            if handler.resolve_include_in_schema():
                documented.append(route.path)
    assert undeclared == [] and documented == []


async def test_every_page_carries_the_html_security_headers_and_no_inline_code(
    client: Client, auth_kit: AuthKit, tenant_factory: Any
) -> None:
    pages = [await client.get(u) for u in ("/", "/sign-in", "/sign-up", "/set-password?token=x")]
    console = await sign_in_console(client, auth_kit, await tenant_factory())
    pages += [
        await console.get(u)
        for u in (
            "/console/start",
            "/console/branches",
            "/console/members",
            f"/console/branches/{uuid.uuid4()}/edit",
            "/console/branches/new",
        )
    ]
    statuses = [p.status_code for p in pages]
    assert statuses == [200, 200, 200, 200, 200, 200, 200, 404, 200], statuses
    for r in pages:
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
        # the CSP would block these: every script is a file, no style attribute, no inline handler
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), r.url
        assert not re.search(r"\sstyle=|\son[a-z]+=", r.text), r.url


async def test_static_files_are_served_long_cached_and_versioned(client: Client) -> None:
    page = (await client.get("/")).text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert any("htmx.min.js" in u for u in urls) and any("pico.min.css" in u for u in urls)
    assert any("alpinejs-csp" in u for u in urls) and any("console.js" in u for u in urls)
    for url in urls:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        r = await client.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "max-age=31536000, public, immutable"
    assert (await client.get("/static/../pyproject.toml")).status_code == 404


# --- sign-in, sign-out ----------------------------------------------------------------------------


async def test_console_pages_send_strangers_to_sign_in(client: Client) -> None:
    r = await client.get("/console/branches?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=/console/branches%3Fx%3D1"
    r = await client.get("/console/branches", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/sign-in?next=/console/branches"
    client.cookies.set(sessions.STAFF_COOKIE, "forged")
    r = await client.get("/console/start", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


async def test_sign_in_needs_the_pages_token_then_opens_a_session(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    user = await auth_kit.user(email, await passwords.hash_password("a long passphrase"))
    await auth_kit.add_membership(tenant, user, "owner")
    client.cookies.clear()
    form = {"email": email, "password": "a long passphrase", "next": "/console/branches"}

    # another site's form: no token (login CSRF) -> refused, no session
    r = await client.post("/sign-in", data=form, follow_redirects=False)
    assert r.status_code == 403 and sessions.STAFF_COOKIE not in r.cookies
    # a token from another browser (its anonymous cookie) does not fit ours
    stranger = csrf_of((await client.get("/sign-in")).text)
    client.cookies.delete("lk_anon")  # the token belongs to a cookie this browser does not have
    r = await client.post("/sign-in", data={**form, "_csrf": stranger}, follow_redirects=False)
    assert r.status_code == 403

    token = csrf_of((await client.get("/sign-in")).text)
    r = await client.post(
        "/sign-in", data={**form, "password": "wrong password!", "_csrf": token}, follow_redirects=False
    )
    assert r.status_code == 401 and "邮箱或密码不正确" in r.text and sessions.STAFF_COOKIE not in r.cookies

    r = await client.post("/sign-in", data={**form, "_csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/branches"
    assert r.cookies.get(sessions.STAFF_COOKIE)
    assert (await client.get("/console/branches")).status_code == 200

    # an outside address as "next" is ignored
    r = await client.post(
        "/sign-in", data={**form, "next": "https://evil.example/", "_csrf": token}, follow_redirects=False
    )
    assert r.headers["location"] == "/console"


async def test_sign_out_ends_the_session(client: Client, auth_kit: AuthKit, tenant_factory: Any) -> None:
    console = await sign_in_console(client, auth_kit, await tenant_factory())
    session = client.cookies[sessions.STAFF_COOKIE]
    r = await console.post("/sign-out", {}, token=False)
    assert r.status_code == 403  # a cross-site form cannot sign anyone out either
    r = await console.post("/sign-out", {})
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"
    client.cookies.set(sessions.STAFF_COOKIE, session)  # replaying the old cookie does not help
    r = await console.get("/console/start")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


# --- the menu follows the role; the server refuses too -------------------------------------------

MENU_LINK = re.compile(r'<nav id="side-menu".*?</nav>', re.S)


def menu_of(html: str) -> list[str]:
    block = MENU_LINK.search(html)
    return re.findall(r'href="([^"]+)"', block.group(0)) if block else []


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            "owner",
            [
                "dashboard",
                "start",
                "till",
                "members",
                "programme",
                "coupons",
                "rewards",
                "membership",
                "branches",
                "join",
                "staff",
                "clients",
                "audit",
                "settlement",
                "alliance",
                "payments",
                "webhooks",
                "billing",
                "liability",
                "vouchers",
                "simulator",
                "campaigns",
                "automations",
                "draws",
                "alliance_offers",
                "segments",
                "messaging",
                "sms_replies",
            ],
        ),
        (
            "analyst",
            [
                "dashboard",
                "start",
                "members",
                "programme",
                "coupons",
                "rewards",
                "membership",
                "branches",
                "join",
                "staff",
                "clients",
                "settlement",
                "alliance",
                "liability",
                "vouchers",
                "simulator",
                "campaigns",
                "automations",
                "draws",
                "alliance_offers",
                "segments",
                "sms_replies",
            ],
        ),
        (
            "manager",
            [
                "dashboard",
                "till",
                "members",
                "programme",
                "coupons",
                "rewards",
                "membership",
                "branches",
                "join",
                "staff",
                "alliance",
                "campaigns",
                "automations",
                "draws",
                "alliance_offers",
                "segments",
                "sms_replies",
            ],
        ),
        ("cashier", ["till"]),
    ],
)
async def test_the_menu_follows_the_role_and_hidden_pages_are_refused(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, role: str, expected: list[str]
) -> None:
    """``expected``: the menu's keys; each links to its page."""

    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant)
    console = await sign_in_console(client, auth_kit, tenant, role, (branch,) if role == "manager" else ())
    hrefs = [MENU[key].href for key in expected]
    landing = await console.get("/console")
    first = next(h for h in hrefs if h != "/console/dashboard")  # first in the menu, not the landing
    assert landing.status_code == 303 and landing.headers["location"] == first
    menu = menu_of((await console.get(hrefs[0])).text)
    assert menu == hrefs
    for url in (item.href for item in MENU.values()):
        status = (await console.get(url)).status_code
        assert status == (200 if url in hrefs else 403), (role, url, status)


async def test_an_analyst_sees_no_add_button_and_a_crafted_post_is_refused(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant, "KEEP")
    console = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = await console.get("/console/branches")
    assert page.status_code == 200 and "KEEP" in page.text
    assert 'data-testid="add-branch"' not in page.text and "/edit" not in page.text
    for url, data in [
        ("/console/branches", {"code": "NEW1", "name": "x", "timezone": "Asia/Shanghai"}),
        (f"/console/branches/{branch}", {"code": "HACK", "name": "x", "timezone": "Asia/Shanghai"}),
    ]:
        for htmx in (False, True):
            r = await console.post(url, data, htmx=htmx)
            assert r.status_code == 403, r.text
            assert "您的角色无权执行此操作" in r.text
    assert (await console.get("/console/branches/new")).status_code == 403
    assert await branch_codes(db, tenant) == {"KEEP"}


async def test_a_manager_sees_only_its_branches(client: Client, auth_kit: AuthKit, tenant_factory: Any) -> None:
    tenant = await tenant_factory()
    mine = await auth_kit.branch(tenant, "MINE")
    await auth_kit.branch(tenant, "OTHER")
    console = await sign_in_console(client, auth_kit, tenant, "manager", (mine,))
    page = (await console.get("/console/branches")).text
    assert 'data-branch="MINE"' in page and 'data-branch="OTHER"' not in page
    assert 'data-testid="add-branch"' not in page


# --- the branches page -----------------------------------------------------------------------------


async def test_branches_add_and_edit_with_inline_errors(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    console = await sign_in_console(client, auth_kit, tenant, "owner")
    page = (await console.get("/console/branches")).text
    assert 'data-testid="add-branch"' in page and "还没有门店" in page

    # a plain form post: post/redirect/get with a flash
    r = await console.post(
        "/console/branches", {"code": "SH01", "name": "人民广场店", "address": "", "timezone": "Asia/Shanghai"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/branches"
    page = (await console.get("/console/branches")).text
    assert "门店已添加" in page and 'data-branch="SH01"' in page
    assert "门店已添加" not in (await console.get("/console/branches")).text  # a flash shows once

    # htmx: the form comes back alone, the errors beside their fields, with the problem's status
    r = await console.post(
        "/console/branches", {"code": "SH01", "name": "又一家", "timezone": "Asia/Shanghai"}, htmx=True
    )
    assert r.status_code == 409 and "<html" not in r.text and 'id="branch-form"' in r.text
    assert 'id="f-code-error"' in r.text and "已有门店使用此编号" in r.text and 'aria-invalid="true"' in r.text
    assert 'value="又一家"' in r.text  # what was typed stays
    r = await console.post("/console/branches", {"code": "SH02", "name": "x", "timezone": "Mars/Olympus"}, htmx=True)
    assert r.status_code == 400 and 'id="f-timezone-error"' in r.text and "Asia/Shanghai" in r.text
    r = await console.post("/console/branches", {"code": "bad code!", "name": "", "timezone": "UTC"})
    assert r.status_code == 400 and "<html" in r.text and 'id="f-code-error"' in r.text  # no JavaScript: whole page
    # a NUL is refused at the edge (web/strict.py), before any form reads it: the refusal goes to the flash area
    r = await console.post("/console/branches", {"code": "SH\x002", "name": "x", "timezone": "UTC"}, htmx=True)
    assert r.status_code == 400 and r.headers["hx-retarget"] == "#flash"
    assert await branch_codes(db, tenant) == {"SH01"}

    # htmx success: the panel replaces itself (table + flash)
    r = await console.post(
        "/console/branches", {"code": "SH02", "name": "徐家汇店", "timezone": "Asia/Shanghai"}, htmx=True
    )
    assert r.status_code == 200 and r.headers["hx-retarget"] == "#branches-panel"
    assert r.headers["hx-reswap"] == "outerHTML" and 'id="branches-panel"' in r.text and "门店已添加" in r.text
    assert await branch_codes(db, tenant) == {"SH01", "SH02"}

    # edit: the form is filled in; an error keeps the branch as it was; a good change is saved
    sh02 = next(b for b in await branch_svc.branches(db, tenant) if b.code == "SH02")
    r = await console.get(f"/console/branches/{sh02.id}/edit", headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'value="徐家汇店"' in r.text and f'action="/console/branches/{sh02.id}"' in r.text
    r = await console.post(
        f"/console/branches/{sh02.id}", {"code": "SH01", "name": "徐家汇店", "timezone": "Asia/Shanghai"}, htmx=True
    )
    assert r.status_code == 409 and "已有门店使用此编号" in r.text
    r = await console.post(
        f"/console/branches/{sh02.id}",
        {"code": "SH02", "name": "徐家汇旗舰店", "address": "虹桥路 1 号", "timezone": "Asia/Shanghai"},
    )
    assert r.status_code == 303
    changed = next(b for b in await branch_svc.branches(db, tenant) if b.id == sh02.id)
    assert (changed.code, changed.name, changed.address) == ("SH02", "徐家汇旗舰店", "虹桥路 1 号")


async def test_branch_writes_without_the_csrf_token_change_nothing(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant, "KEEP")
    console = await sign_in_console(client, auth_kit, tenant, "owner")
    for url in ("/console/branches", f"/console/branches/{branch}"):
        r = await console.post(url, {"code": "EVIL", "name": "x", "timezone": "UTC"}, token=False)
        assert r.status_code == 403 and "页面已过期" in r.text
        r = await console.post(url, {"code": "EVIL", "name": "x", "timezone": "UTC", "_csrf": "forged"}, token=False)
        assert r.status_code == 403
    # htmx sends the token as a header (console.js); a wrong one is refused the same way
    r = await client.post(
        "/console/branches",
        data={"code": "EVIL", "name": "x", "timezone": "UTC"},
        headers={"HX-Request": "true", "X-CSRF-Token": "forged"},
    )
    assert r.status_code == 403 and r.headers["hx-retarget"] == "#flash"
    r = await client.post(
        "/console/branches",
        data={"code": "HDR1", "name": "x", "timezone": "UTC"},
        headers={"HX-Request": "true", "X-CSRF-Token": console.csrf},
    )
    assert r.status_code == 200
    assert await branch_codes(db, tenant) == {"KEEP", "HDR1"}


async def test_another_merchants_branch_is_not_found(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any
) -> None:
    mine, theirs = await tenant_factory(), await tenant_factory()
    foreign = await auth_kit.branch(theirs, "THEIRS")
    console = await sign_in_console(client, auth_kit, mine, "owner")
    assert (await console.get(f"/console/branches/{foreign}/edit")).status_code == 404
    r = await console.post(f"/console/branches/{foreign}", {"code": "MINE", "name": "x", "timezone": "UTC"})
    assert r.status_code == 404
    assert await branch_codes(db, theirs) == {"THEIRS"}


# --- onboarding -------------------------------------------------------------------------------------


def steps_done(html: str) -> dict[str, bool]:
    return {k: v == "true" for k, v in re.findall(r'data-step="(\w+)" data-done="(\w+)"', html)}


async def test_the_checklist_follows_the_real_data(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    from lianka.tenants.domain.programme import Programme
    from lianka.tenants.services.programme import set_programme

    tenant = await tenant_factory()
    console = await sign_in_console(client, auth_kit, tenant, "owner")
    keys = ["branches", "programme", "pos", "staff", "members", "live"]
    page = (await console.get("/console/start")).text
    assert steps_done(page) == dict.fromkeys(keys, False) and "已完成 0 / 6 步" in page

    branch = await auth_kit.branch(tenant)
    async with db.uow(tenant) as uow:
        await set_programme(uow, Programme())
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    await auth_kit.add_membership(tenant, await auth_kit.user(), "cashier")
    await member_factory(tenant)
    page = (await console.get("/console/start")).text
    assert steps_done(page) == {**dict.fromkeys(keys, True), "live": False}

    client.cookies.clear()
    r = await client.post(
        "/api/v1/pos/sales", json={"amount": 1200}, headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    client.cookies.set(sessions.STAFF_COOKIE, (await auth_kit.staff_session(tenant)).token or "")
    page = (await client.get("/console/start")).text
    assert steps_done(page) == dict.fromkeys(keys, True) and "已完成 6 / 6 步" in page
    # another merchant's set-up is its own
    other = await sign_in_console(client, auth_kit, await tenant_factory(), "owner")
    assert not any(steps_done((await other.get("/console/start")).text).values())


# --- sign-up, verification, invitation ----------------------------------------------------------


async def mailed_link(owner_engine: Any, to: str, path: str) -> str:
    """The link in the newest e-mail queued for ``to`` (the outbox row the mail backend will send)."""
    async with owner_engine.connect() as conn:
        body = await conn.scalar(
            text(
                "SELECT payload->>'body' FROM outbox WHERE actor = 'send_email' AND payload->>'to' = :to "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"to": to},
        )
    found = re.search(rf"https?://\S+{re.escape(path)}\?token=\S+", body or "")
    assert found, body
    url = urlsplit(found.group(0))
    return f"{url.path}?{url.query}"


async def test_sign_up_then_verify_the_email_then_sign_in(client: Client, owner_engine: Any, db: Any) -> None:
    client.cookies.clear()
    slug = f"wang-{uuid.uuid4().hex[:8]}"
    email = f"{slug}@example.com"
    form = {
        "merchant_name": "小王奶茶",
        "slug": slug,
        "trade": "tea",
        "timezone": "Asia/Shanghai",
        "email": email,
        "password": "a long passphrase",
    }
    r = await client.post("/sign-up", data=form)
    assert r.status_code == 403  # the page's token is needed

    token = csrf_of((await client.get("/sign-up")).text)
    r = await client.post("/sign-up", data={**form, "slug": "Bad Slug!", "password": "short", "_csrf": token})
    assert r.status_code == 400 and 'id="f-slug-error"' in r.text and 'value="小王奶茶"' in r.text
    r = await client.post("/sign-up", data={**form, "_csrf": token})
    assert r.status_code == 200 and email in r.text and "请查收邮件" in r.text
    r = await client.post("/sign-up", data={**form, "_csrf": token})
    assert r.status_code == 409 and 'id="f-slug-error"' in r.text

    link = await mailed_link(owner_engine, email, "/verify-email")
    assert (await client.get("/verify-email?token=nonsense")).status_code == 401
    r = await client.get(link)
    assert r.status_code == 200 and "您的邮箱已确认" in r.text
    async with owner_engine.connect() as conn:
        verified = await conn.scalar(
            text("SELECT email_verified_at IS NOT NULL FROM staff_users WHERE email = :e"), {"e": email}
        )
    assert verified

    token = csrf_of((await client.get("/sign-in")).text)
    r = await client.post(
        "/sign-in", data={"email": email, "password": "a long passphrase", "_csrf": token}, follow_redirects=True
    )
    assert r.status_code == 200 and str(r.url).endswith("/console/start") and "小王奶茶" in r.text


async def test_an_invitation_sets_a_password(
    client: Client, auth_kit: AuthKit, tenant_factory: Any, owner_engine: Any
) -> None:
    tenant = await tenant_factory()
    owner = Principal(kind=Kind.STAFF, subject_id=uuid.uuid4(), tenant_id=tenant, role=Role.OWNER)
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    await add_staff(auth_kit.ident, owner, email, "analyst", branch_ids=[])
    link = await mailed_link(owner_engine, email, "/set-password")
    client.cookies.clear()
    page = (await client.get(link)).text
    token, form = csrf_of(page), dict(re.findall(r'name="(token)" value="([^"]+)"', page))
    r = await client.post(
        "/set-password",
        data={**form, "_csrf": token, "password": "a long passphrase", "password_again": "another passphrase"},
    )
    assert r.status_code == 400 and 'id="f-password_again-error"' in r.text
    r = await client.post(
        "/set-password",
        data={**form, "_csrf": token, "password": "a long passphrase", "password_again": "a long passphrase"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"
    assert "密码已设置" in (await client.get("/sign-in")).text
    r = await client.post(
        "/set-password",
        data={**form, "_csrf": token, "password": "yet another pass", "password_again": "yet another pass"},
    )
    assert r.status_code == 401 and "此链接已失效" in r.text  # single use


# --- language and merchant switches ---------------------------------------------------------------


async def test_language_is_the_choice_then_the_browsers(client: Client) -> None:
    client.cookies.clear()
    assert 'lang="zh-CN"' in (await client.get("/")).text
    assert 'lang="en"' in (r := await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})).text
    assert "Plans" in r.text
    token = csrf_of((await client.get("/")).text)
    r = await client.post("/lang", data={"lang": "en", "next": "/sign-up", "_csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-up"
    page = (await client.get("/sign-up", headers={"Accept-Language": "zh-CN"})).text
    assert '<html lang="en">' in page and "Create your merchant account" in page
    r = await client.post(
        "/lang", data={"lang": "zh-CN", "next": "//evil.example", "_csrf": token}, follow_redirects=False
    )
    assert r.headers["location"] == "/"
    assert '<html lang="zh-CN">' in (await client.get("/sign-up")).text
    assert (await client.post("/lang", data={"lang": "en"})).status_code == 403


async def test_staff_of_two_merchants_choose_and_switch(client: Client, auth_kit: AuthKit, tenant_factory: Any) -> None:
    tea, bakery, stranger = (
        await tenant_factory("一点茶"),
        await tenant_factory("麦香烘焙"),
        await tenant_factory("别人家"),
    )
    console = await sign_in_console(client, auth_kit, tea, "owner")
    await auth_kit.add_membership(bakery, console.user_id, "analyst")
    r = await console.get("/console")
    assert r.status_code == 303 and r.headers["location"] == "/console/merchants"
    r = await console.get("/console/start")
    assert r.status_code == 303 and r.headers["location"] == "/console/merchants"
    chooser = (await console.get("/console/merchants")).text
    slugs = re.findall(r'name="merchant" value="([^"]+)"', chooser)
    assert len(set(slugs)) == 2

    async with auth_kit.db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text("SELECT id, slug FROM merchants WHERE id = ANY(:ids)"), {"ids": [tea, bakery, stranger]}
            )
        ).all()
    slug = {r.id: r.slug for r in rows}
    r = await console.post("/console/merchant", {"merchant": slug[stranger]})
    assert r.status_code == 404
    r = await console.post("/console/merchant", {"merchant": slug[bakery]}, token=False)
    assert r.status_code == 403
    r = await console.post("/console/merchant", {"merchant": slug[bakery]})
    assert r.status_code == 303
    page = (await console.get("/console/start")).text
    assert 'data-testid="merchant-name">麦香烘焙' in page and "已切换商户" in page
    branches = (await console.get("/console/branches")).text
    assert 'data-testid="add-branch"' not in branches  # an analyst there
    await console.post("/console/merchant", {"merchant": slug[tea]})
    assert 'data-testid="add-branch"' in (await console.get("/console/branches")).text  # the owner here

    # removed from the chosen merchant: back to the chooser, never into its data
    client.cookies.delete("lk_merchant")
    client.cookies.set("lk_merchant", slug[stranger])
    r = await console.get("/console/branches")
    assert r.status_code == 303 and r.headers["location"] == "/console/merchants"


async def test_the_home_page_offers_billings_plans_at_billings_prices(client: Client, db: Any) -> None:
    """What the home page offers is what billing will charge: the same rows, in both languages."""
    from lianka.billing import services as billing

    plans = await billing.plans(db)
    assert plans
    for lang, free in (("zh-CN", "免费版"), ("en", "Free")):
        page = (await client.get("/", headers={"Accept-Language": lang})).text
        for plan in plans:
            row = page.split(f'data-plan="{plan.code}"')[1].split("</tr>")[0]
            assert Money(plan.price_minor, plan.currency).format() in row, (plan.code, row)
            limit = plan.limits.branches
            assert (f">{limit:,}<" if limit is not None else ("不限" if lang == "zh-CN" else "Unlimited")) in row
        assert free in page.split('data-plan="free"')[1].split("</th>")[0]
