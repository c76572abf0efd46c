"""The members (CRM) pages of the console through the app's test client, two merchants: the masked
list with its filters, paging and charts; a member's page after real sales; editing the profile and
tags, consent and a granted tier with the errors beside their fields; the logged export; CSV imports
with their progress and row report; what each role sees and what the server refuses.

The browser journey (tests/browser/test_members.py) drives the same pages in Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.tenants.domain.programme import PointsConfig, Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.services import crm, member_imports
from lianka.tenants.services.programme import set_programme
from tests.api.test_console import Client, Console, sign_in_console

pytestmark = pytest.mark.integration
PROGRAMME = Programme(
    points=PointsConfig(pending_days=7),
    tiers=[
        Tier(code="regular", name="普通会员", rank=0),
        Tier(code="gold", name="金卡会员", rank=1, threshold=100_000),
    ],
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="500", name="储值500", pay=50_000, get=55_000)]),
)


@dataclass
class Shop:
    """A merchant with a programme, two branches and a till at SH01."""

    client: Client
    kit: AuthKit
    db: Database
    tenant: uuid.UUID
    sh01: uuid.UUID
    sh02: uuid.UUID
    pos: dict[str, str]

    async def console(self, role: str = "owner", **kw: Any) -> Console:
        return await sign_in_console(self.client, self.kit, self.tenant, role, **kw)

    async def sale(self, body: dict[str, Any]) -> dict[str, Any]:
        cookies = dict(self.client.cookies)
        self.client.cookies.clear()
        r = await self.client.post(
            "/api/v1/pos/sales", json=body, headers={**self.pos, "Idempotency-Key": uuid.uuid4().hex}
        )
        self.client.cookies.update(cookies)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.uow(self.tenant) as uow:
            return await uow.session.scalar(text(sql), params)

    async def profile(self, member: uuid.UUID) -> dict[str, Any]:
        return await crm.member_profile(self.db, self.tenant, member)


@pytest.fixture
async def shop(client: Client, auth_kit: AuthKit, db: Database, tenant_factory: Any) -> Shop:
    tenant = await tenant_factory("会员茶铺")
    sh01, sh02 = await auth_kit.branch(tenant, "SH01"), await auth_kit.branch(tenant, "SH02")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=datetime.now(UTC) - timedelta(days=1))
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=sh01)
    return Shop(client, auth_kit, db, tenant, sh01, sh02, dict(pos.headers))


def key_of(html: str, form_id: str | None = None) -> str:
    """The ``_key`` of the page's first form (or of the form whose action contains ``form_id``)."""
    if form_id:
        html = html[html.index(form_id) :]
    found = re.search(r'name="_key" value="([^"]+)"', html)
    assert found, "the form has no key"
    return found.group(1)


async def named_member(
    shop: Shop, member_factory: Any, phone: str, name: str, tags: list[str] | None = None, **profile: Any
) -> uuid.UUID:
    m: uuid.UUID = await member_factory(shop.tenant, phone)
    await crm.change_profile(shop.db, shop.tenant, m, {"name": name, "tags": tags or [], **profile})
    return m


def rows_of(html: str) -> list[str]:
    """The card numbers of the list's rows, in order."""
    return re.findall(r'<tr data-member="([^"]+)"', html)


def chart_of(html: str, n: int) -> dict[str, Any]:
    charts = re.findall(r"data-chart='([^']+)'", html)
    return dict(json.loads(unescape(charts[n])))


# --- the list --------------------------------------------------------------------------------------


async def test_the_list_is_masked_filtered_paged_and_charted(
    shop: Shop, member_factory: Any, tenant_factory: Any
) -> None:
    for i in range(22):
        await member_factory(shop.tenant, f"+86137{i:08d}")
    wang = await named_member(shop, member_factory, "+8613911112222", "王芳", ["vip", "常客"])  # newest: first
    await member_factory(await tenant_factory("别家"), "+8613955556666")  # another merchant's member
    await shop.sale({"amount": 120_000, "member_id": str(wang)})  # gold (spend ≥ ¥1,000), active
    console = await shop.console()

    page = (await console.get("/console/members")).text
    assert 'data-testid="member-total">23 位会员' in page
    assert len(rows_of(page)) == 20
    assert "+86 139****2222" in page and "13911112222" not in page and "13955556666" not in page.replace("*", "")
    assert "第 1 / 2 页" in page and 'data-testid="next-page"' in page
    assert '<option value="gold">金卡会员</option>' in page and '<option value="vip">vip</option>' in page
    assert f'<option value="{shop.sh01}">SH01 · ' in page
    stages = chart_of(page, 0)
    assert stages["labels"] == ["新会员", "活跃", "有流失风险", "沉睡"] and stages["values"] == [23, 0, 0, 0]
    tiers = chart_of(page, 1)
    assert dict(zip(tiers["labels"], tiers["values"], strict=True)) == {"无等级": 22, "金卡会员": 1}

    # htmx asks for the results only: filters, search, the next page
    results = {"HX-Request": "true", "HX-Target": "member-results"}
    r = await console.get("/console/members?page=2", headers=results)
    assert r.status_code == 200 and "<html" not in r.text and 'id="member-results"' in r.text
    assert len(rows_of(r.text)) == 3 and 'rel="prev"' in r.text and "data-chart" not in r.text
    for query, expected in [
        ("tag=vip", 1),
        ("tier=gold", 1),
        ("q=王", 1),
        ("q=2222", 1),
        ("stage=new", 23),
        ("stage=dormant", 0),
        (f"branch_id={shop.sh01}", 0),
        ("tag=vip&tier=regular", 0),
    ]:
        r = await console.get(f"/console/members?{query}", headers=results)
        assert r.status_code == 200, (query, r.text)
        assert len(rows_of(r.text)) == min(expected, 20), query
    r = await console.get("/console/members?tag=vip", headers=results)
    assert rows_of(r.text) == [await shop.scalar("SELECT card_number FROM members WHERE id = :m", m=wang)]
    assert "金卡会员" in r.text and '<span class="tag">常客</span>' in r.text and "¥1,200.00" in r.text
    # a page restored from history needs the whole page
    r = await console.get("/console/members?tag=vip", headers={**results, "HX-History-Restore-Request": "true"})
    assert "<html" in r.text

    # bad filters come back with their message, nothing listed (a crafted address: the form offers none)
    for query, message in [
        ("stage=sleepy", "请从列表中选择阶段"),
        ("branch_id=nope", "请从列表中选择门店"),
        ("page=0", "没有这一页"),
        ("page=99999999999", "没有这一页"),
    ]:
        r = await console.get(f"/console/members?{query}")
        assert r.status_code == 400 and message in r.text and rows_of(r.text) == [], query
        r = await console.get(f"/console/members?{query}", headers=results)
        assert r.status_code == 400 and message in r.text and "<html" not in r.text, query

    # in English too
    r = await console.get("/console/members", headers={"Accept-Language": "en"})
    assert "23 members" in r.text and "Page 1 of 2" in r.text and '"At risk"' in r.text


# --- a member's page ---------------------------------------------------------------------------------


async def test_a_members_page_shows_balances_pending_points_tier_progress_and_history(
    shop: Shop, member_factory: Any
) -> None:
    m = await named_member(shop, member_factory, "+8613922223333", "李娜", ["vip"])
    cookies = dict(shop.client.cookies)
    r = await shop.client.post(
        "/api/v1/pos/top-ups",
        json={"member_id": str(m), "plan": "500"},
        headers={**shop.pos, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    await shop.sale(
        {"amount": 36_000, "member_id": str(m), "lines": [{"sku": "oolong", "qty": 2, "unit_price": 18_000}]}
    )
    shop.client.cookies.update(cookies)
    await crm.change_consent(shop.db, shop.tenant, m, "sms", True, source="import", actor="import")
    await crm.grant_tier(
        shop.db, shop.tenant, m, "regular", until=None, reason="开业", actor="staff:x", who=audit.operator("test")
    )
    console = await shop.console()

    page = (await console.get(f"/console/members/{m}")).text
    assert "<h1>李娜</h1>" in page and "+86 139****3333" in page and "13922223333" not in page
    points = page[page.index('data-testid="points-card"') : page.index('data-testid="stored-value-card"')]
    assert 'data-testid="points-pending">360<' in points and 'data-testid="points-available">0<' in points
    assert "¥550.00" in page and "¥500.00" in page and "¥50.00" in page  # stored value: principal and bonus
    unlock = (datetime.now(UTC) + timedelta(days=7)).astimezone().date()
    pending = page[page.index('id="pending"') : page.index('id="profile"')]
    assert "360" in pending and str(unlock.year) in pending
    assert "普通会员" in page and "再消费 ¥640.00 即可升级为金卡会员（¥360.00 / ¥1,000.00）" in page
    purchases = page[page.index('id="purchases"') : page.index('id="points"')]
    assert "SH01" in purchases and "oolong × 2 @ ¥180.00" in purchases and "¥360.00" in purchases
    history = page[page.index('id="points"') : page.index('id="coupons"')]
    assert "消费获得" in history and "+360" in history
    consent = page[page.index('id="consent"') : page.index('id="purchases"')]
    assert 'data-channel="sms" data-granted="true"' in consent and "导入" in consent
    assert 'data-channel="email" data-granted="none"' in consent and "未征询" in consent
    changes = page[page.index('id="tier-history"') :]
    assert "手动授予：开业" in changes and "员工" in changes

    en = (await console.get(f"/console/members/{m}", headers={"Accept-Language": "en"})).text
    assert "¥640.00 more spend to reach 金卡会员 (¥360.00 of ¥1,000.00)" in en and "Earned on a purchase" in en
    assert "Granted by hand: 开业" in en and "Not asked" in en


# --- editing the profile and tags ------------------------------------------------------------------


async def test_profile_and_tags_are_edited_with_errors_beside_the_fields(shop: Shop, member_factory: Any) -> None:
    m = await named_member(shop, member_factory, "+8613933334444", "陈静", ["vip"])
    console = await shop.console()
    url = f"/console/members/{m}/profile"
    r = await console.get(url, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and 'value="陈静"' in r.text and 'value="vip"' in r.text
    page = await console.get(url)  # without JavaScript: the page with the form open
    assert page.status_code == 200 and 'id="profile-form"' in page.text and "<html" in page.text

    good = {
        "name": "陈静",
        "gender": "female",
        "birthday": "1995-03-01",
        "email": "chen@example.com",
        "address": "淮海中路 1 号",
        "tags": "vip",
    }
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    many_tags = ", ".join(f"t{i}" for i in range(51))
    for field, value in [
        ("email", "not an address"),
        ("tags", "x" * 41),
        ("tags", many_tags),
        ("birthday", tomorrow),
        ("birthday", "1995-02-30"),
        ("name", "名" * 101),
        ("address", "路" * 401),
        ("gender", "robot"),
    ]:
        r = await console.post(url, {**good, field: value}, htmx=True)
        assert r.status_code == 400, (field, value, r.text)
        assert f'id="f-{field}-error"' in r.text and 'aria-invalid="true"' in r.text, (field, r.text)
        assert "<html" not in r.text and 'id="profile-form"' in r.text
    r = await console.post(url, {**good, "email": "not an address"})
    assert r.status_code == 400 and "<html" in r.text and "请输入邮箱地址" in r.text
    assert 'value="not an address"' in r.text  # what was typed stays
    assert (await shop.profile(m))["email"] == ""  # nothing saved

    r = await console.post(url, {**good, "tags": "vip， 常客；vip, 生日月 "}, htmx=True)
    assert r.status_code == 200 and r.headers["hx-retarget"] == "#member-panel" and "资料已保存" in r.text
    saved = await shop.profile(m)
    assert saved["tags"] == ["vip", "常客", "生日月"] and saved["email"] == "chen@example.com"
    assert saved["birthday"] == date(1995, 3, 1) and saved["gender"] == "female"
    r = await console.post(url, {**good, "name": "陈静静"})
    assert r.status_code == 303 and r.headers["location"] == f"/console/members/{m}"
    assert "资料已保存" in (await console.get(f"/console/members/{m}")).text
    assert (await shop.profile(m))["name"] == "陈静静"


async def test_the_api_refuses_the_same_profile_values_with_their_field(
    shop: Shop, member_factory: Any, staff_token: Any
) -> None:
    """The rules live in the CRM's use case, so the JSON API answers them too (a tag the column
    would have cut, an e-mail that is not one)."""
    m = await member_factory(shop.tenant)
    owner = await staff_token(shop.tenant, "owner")
    shop.client.cookies.clear()
    for body, field in [
        ({"tags": ["x" * 41]}, "tags"),
        ({"tags": [" vip"]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"email": "nope"}, "email"),
        ({"address": "a" * 401}, "address"),
    ]:
        r = await shop.client.patch(f"/api/v1/members/{m}/profile", json=body, headers=owner.headers)
        assert (r.status_code, r.json().get("field")) == (400, field), (body, r.text)
    r = await shop.client.patch(f"/api/v1/members/{m}/profile", json={"tags": ["a", "b", "a"]}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["tags"] == ["a", "b"]


# --- consent and a granted tier ---------------------------------------------------------------------


async def test_consent_is_recorded_once_per_form(shop: Shop, member_factory: Any) -> None:
    m = await member_factory(shop.tenant)
    console = await shop.console()
    page = (await console.get(f"/console/members/{m}")).text
    action = f"/console/members/{m}/consent/sms"
    key = key_of(page, f'action="{action}"')
    r = await console.post(action, {"granted": "true", "_key": key}, htmx=True)
    assert r.status_code == 200 and r.headers["hx-retarget"] == "#member-panel" and "已记录营销许可" in r.text
    assert 'data-channel="sms" data-granted="true"' in r.text
    # the same form sent again (a double click, a retry): answered, not recorded twice
    r = await console.post(action, {"granted": "true", "_key": key})
    assert r.status_code == 303
    sms = (await shop.profile(m))["consent"]["sms"]
    assert sms["granted"] is True and len(sms["history"]) == 1 and sms["history"][0]["source"] == "console"
    assert sms["history"][0]["actor"] == f"staff:{console.user_id}"
    # the refreshed page's form withdraws, with a new key
    page = (await console.get(f"/console/members/{m}")).text
    r = await console.post(action, {"granted": "false", "_key": key_of(page, f'action="{action}"')}, htmx=True)
    assert r.status_code == 200
    assert [h["granted"] for h in (await shop.profile(m))["consent"]["sms"]["history"]] == [True, False]

    # refused: no key, a key used for another change, an unknown channel, not true/false
    for url, data, message in [
        (action, {"granted": "true"}, "此表单已过期"),
        (action, {"granted": "false", "_key": key}, "此表单已提交过"),  # the key of the first change
        (f"/console/members/{m}/consent/fax", {"granted": "true", "_key": "k-fax"}, "请选择渠道"),
        (action, {"granted": "maybe", "_key": "k-maybe"}, "请选择记录或撤回许可"),
    ]:
        r = await console.post(url, data, htmx=True)
        assert r.status_code in (400, 409) and message in r.text, (url, data, r.text)
        assert r.headers["hx-retarget"] == "#member-panel"
    assert len((await shop.profile(m))["consent"]["sms"]["history"]) == 2


async def test_a_tier_is_granted_with_a_reason_by_owners_and_admins(shop: Shop, member_factory: Any) -> None:
    m = await member_factory(shop.tenant)
    console = await shop.console()
    page = (await console.get(f"/console/members/{m}")).text
    assert 'id="tier-form"' in page
    url = f"/console/members/{m}/tier"
    key = key_of(page, 'id="tier-form"')
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    for data, field in [
        ({"tier": "gold", "reason": "  "}, "reason"),
        ({"tier": "platinum", "reason": "x"}, "tier"),
        ({"tier": "gold", "reason": "x", "until": yesterday}, "until"),
        ({"tier": "gold", "reason": "x", "until": "2027-02-30"}, "until"),
    ]:
        r = await console.post(url, {**data, "_key": key}, htmx=True)
        assert r.status_code == 400 and f'id="f-{field}-error"' in r.text, (data, r.text)
        assert r.headers["hx-retarget"] == "#member-panel" and 'id="tier-form"' in r.text
    assert await shop.scalar("SELECT count(*) FROM tier_changes") == 0
    grant = {"tier": "gold", "reason": "VIP 邀请", "until": "2030-12-31", "_key": key}
    r = await console.post(url, grant, htmx=True)
    assert r.status_code == 200 and "已授予等级" in r.text, r.text
    r = await console.post(url, grant)  # the same form again
    assert r.status_code == 303
    assert await shop.scalar("SELECT count(*) FROM tier_changes") == 1
    detail = await crm.member_detail(shop.db, shop.tenant, m)
    assert detail["tier"]["code"] == "gold" and detail["tier"]["floor_until"] == date(2030, 12, 31)
    page = (await console.get(f"/console/members/{m}")).text
    assert "手动授予：VIP 邀请" in page and "金卡会员 · 至 2030年12月31日" in page


# --- roles, refusals, other merchants ---------------------------------------------------------------


async def test_what_each_role_sees_and_the_server_refuses(shop: Shop, member_factory: Any) -> None:
    m = await named_member(shop, member_factory, "+8613944445555", "赵敏", ["vip"])
    writes = [
        (f"/console/members/{m}/profile", {"name": "HACK", "tags": "hack"}),
        (f"/console/members/{m}/consent/sms", {"granted": "true", "_key": "crafted-1"}),
        (f"/console/members/{m}/tier", {"tier": "gold", "reason": "hack", "_key": "crafted-2"}),
        ("/console/members/export", {}),
    ]

    analyst = await shop.console("analyst")
    page = (await analyst.get(f"/console/members/{m}")).text
    assert "赵敏" in page and 'data-testid="edit-profile"' not in page and 'id="tier-form"' not in page
    assert "/consent/" not in page
    listing = (await analyst.get("/console/members")).text
    assert 'data-testid="export-members"' not in listing and 'data-testid="import-members"' not in listing
    for url, data in writes:
        for htmx in (False, True):
            r = await analyst.post(url, data, htmx=htmx)
            assert r.status_code == 403 and "您的角色无权执行此操作" in r.text, (url, r.text)
    for url in (f"/console/members/{m}/profile", "/console/members/imports/new"):
        assert (await analyst.get(url)).status_code == 403
    r = await analyst.client.post(
        "/console/members/imports",
        files={"file": ("m.csv", b"phone\n13800001111\n")},
        data={"_csrf": analyst.csrf, "mode": "skip_invalid", "_key": "crafted-3"},
    )
    assert r.status_code == 403

    manager = await shop.console("manager", branches=(shop.sh01,))
    page = (await manager.get(f"/console/members/{m}")).text
    assert 'data-testid="edit-profile"' in page and "/consent/" in page and 'id="tier-form"' not in page
    listing = (await manager.get("/console/members")).text
    assert 'data-testid="export-members"' not in listing and 'data-testid="import-members"' not in listing
    for url, data in writes[2:]:
        assert (await manager.post(url, data)).status_code == 403, url
    r = await manager.post(f"/console/members/{m}/profile", {"name": "赵敏", "tags": "vip, 店长推荐"})
    assert r.status_code == 303  # managers keep members' profiles, as in the API

    cashier = await shop.console("cashier")
    for url in ("/console/members", f"/console/members/{m}", "/console/members/imports/new"):
        assert (await cashier.get(url)).status_code == 403, url  # the till only

    profile = await shop.profile(m)
    assert profile["name"] == "赵敏" and profile["tags"] == ["vip", "店长推荐"] and profile["consent"] == {}
    assert await shop.scalar("SELECT count(*) FROM tier_changes") == 0
    assert await shop.scalar("SELECT count(*) FROM export_log") == 0
    assert await shop.scalar("SELECT count(*) FROM member_imports") == 0


async def test_writes_without_the_pages_token_are_refused(shop: Shop, member_factory: Any) -> None:
    m = await member_factory(shop.tenant)
    console = await shop.console()
    for url, data in [
        (f"/console/members/{m}/profile", {"name": "EVIL"}),
        (f"/console/members/{m}/consent/sms", {"granted": "true", "_key": "k1"}),
        (f"/console/members/{m}/tier", {"tier": "gold", "reason": "x", "_key": "k2"}),
        ("/console/members/export", {}),
    ]:
        r = await console.post(url, data, token=False)
        assert r.status_code == 403 and "页面已过期" in r.text, url
    r = await console.client.post(
        "/console/members/imports",
        files={"file": ("m.csv", b"phone\n13800001111\n")},
        data={"mode": "skip_invalid", "_key": "k3"},
    )
    assert r.status_code == 403
    assert (await shop.profile(m))["name"] == "" and await shop.scalar("SELECT count(*) FROM export_log") == 0
    assert await shop.scalar("SELECT count(*) FROM member_imports") == 0


async def test_another_merchants_member_is_not_found(shop: Shop, member_factory: Any, tenant_factory: Any) -> None:
    theirs = await tenant_factory("别家")
    foreign = await member_factory(theirs)
    await crm.change_profile(shop.db, theirs, foreign, {"name": "别家会员"})
    console = await shop.console()
    for url in (
        f"/console/members/{foreign}",
        f"/console/members/{foreign}/profile",
        f"/console/members/{uuid.uuid4()}",
    ):
        r = await console.get(url)
        assert r.status_code == 404 and "别家会员" not in r.text, url
    for url, data in [
        (f"/console/members/{foreign}/profile", {"name": "HACK"}),
        (f"/console/members/{foreign}/consent/sms", {"granted": "true", "_key": "x1"}),
        (f"/console/members/{foreign}/tier", {"tier": "gold", "reason": "x", "_key": "x2"}),
    ]:
        for htmx in (False, True):
            r = await console.post(url, data, htmx=htmx)
            assert r.status_code == 404, (url, r.text)
    theirs_import = await member_imports.start(
        shop.db, theirs, b"phone\n13800001111\n", mode="skip_invalid", actor="test"
    )
    assert (await console.get(f"/console/members/imports/{theirs_import['id']}")).status_code == 404
    profile = await crm.member_profile(shop.db, theirs, foreign)
    assert profile["name"] == "别家会员" and profile["consent"] == {}


# --- the export ---------------------------------------------------------------------------------------


async def test_the_export_is_the_apis_logged_export_with_the_lists_filters(shop: Shop, member_factory: Any) -> None:
    await named_member(shop, member_factory, "+8613977778888", "=HYPERLINK(1)", ["vip"])
    await named_member(shop, member_factory, "+8613966667777", "普通人")
    console = await shop.console()
    assert (await console.get("/console/members/export")).status_code == 405  # a POST: it is recorded
    r = await console.post("/console/members/export", {"tag": "vip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="members-')
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[0][:2] == ["card_number", "phone"]
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["phone"] == "'+8613977778888" and cells["name"] == "'=HYPERLINK(1)"
    async with shop.db.uow(shop.tenant) as uow:
        log = (await uow.session.execute(text("SELECT actor, kind, filters, row_count FROM export_log"))).one()
    assert log.actor == f"staff:{console.user_id}" and log.kind == "members_full"
    assert log.filters == {"tag": "vip"} and log.row_count == 1


# --- imports ------------------------------------------------------------------------------------------

CSV = """phone,name,tags,branch,opening_points
13800001111,李雷,vip,SH01,100
13800002222,韩梅梅,,,0
not-a-phone,坏行,,,
"""


async def upload(console: Console, content: bytes, mode: str, key: str, *, name: str = "members.csv") -> Any:
    return await console.client.post(
        "/console/members/imports",
        files={"file": (name, content, "text/csv")},
        data={"_csrf": console.csrf, "mode": mode, "_key": key},
        follow_redirects=False,
    )


async def test_an_import_shows_its_progress_until_done_then_its_row_report(shop: Shop) -> None:
    console = await shop.console()
    listing = (await console.get("/console/members")).text
    assert 'href="/console/members/imports/new"' in listing
    form = (await console.get("/console/members/imports/new")).text
    key = key_of(form)
    r = await upload(console, CSV.encode(), "skip_invalid", key)
    assert r.status_code == 303, r.text
    status_url = r.headers["location"]
    assert re.fullmatch(r"/console/members/imports/[0-9a-f-]{36}", status_url)
    import_id = uuid.UUID(status_url.rsplit("/", 1)[1])
    assert (await upload(console, CSV.encode(), "skip_invalid", key)).headers["location"] == status_url  # twice
    assert await shop.scalar("SELECT count(*) FROM member_imports") == 1

    page = (await console.get(status_url)).text
    assert 'data-status="queued"' in page and 'hx-trigger="every 1s"' in page and "0%" in page
    assert 'data-line="4"' in page and "手机号码无效" in page  # the row report is known before the run
    await member_imports.run(shop.db, shop.tenant, import_id)  # what the worker does
    r = await console.get(status_url, headers={"HX-Request": "true", "HX-Target": "import-progress"})
    assert r.status_code == 200 and "<html" not in r.text and 'id="import-progress"' in r.text
    assert 'data-status="done"' in r.text and 'data-percent="100"' in r.text and "hx-trigger" not in r.text
    assert "2 位新会员" in r.text and "手机号码无效" in r.text
    en = (await console.get(status_url, headers={"Accept-Language": "en"})).text
    assert "2 new members." in en and "Not a valid mobile number." in en and "2 of 2 rows imported." in en

    listing = (await console.get("/console/members?q=李雷")).text
    assert len(rows_of(listing)) == 1 and "+86 138****1111" in listing


async def test_all_or_nothing_refuses_a_file_with_bad_rows_and_bad_files_are_refused_inline(shop: Shop) -> None:
    console = await shop.console()
    r = await upload(console, CSV.encode(), "all_or_nothing", "k-aon")
    assert r.status_code == 303
    page = (await console.get(r.headers["location"])).text
    assert 'data-status="failed"' in page and "hx-trigger" not in page and "什么也没有导入" in page

    not_utf8 = "不是 UTF-8 编码的 CSV 文本"
    for content, mode, message in [
        (b"name\nx\n", "skip_invalid", "文件需要“手机”（或 phone）列"),
        (b"", "skip_invalid", "请选择要导入的文件"),
        (b"phone\n1380\x00\n", "skip_invalid", not_utf8),
        ("phone\n13800001111\n".encode("utf-16"), "skip_invalid", not_utf8),
        (b"phone\n13800001111\n", "everything", "请选择导入方式"),
    ]:
        r = await upload(console, content, mode, f"k-{uuid.uuid4().hex}", name="m.csv" if content else "")
        assert r.status_code == 400, (content, r.text)
        assert message in r.text and 'aria-invalid="true"' in r.text, (content, r.text)
    assert await shop.scalar("SELECT count(*) FROM member_imports") == 1
