"""The alliance pages (/console/alliance…) through the test client: found an alliance, invite a partner
(the code shown once), join with the code as another merchant, partner status changes, the terms
editor (a new version per publish, every refused value beside its own input), the statements each
merchant may see with their files; roles that may not write see no form and are refused, and another
merchant's alliance answers 404 — with nothing changed."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership
from lianka.alliance.alliances import terms as versioned_terms
from lianka.alliance.alliances.domain import Terms
from lianka.web.console import alliance_terms
from lianka.web.console.i18n import Language
from tests.api.test_console import Console, menu_of, sign_in_console

pytestmark = pytest.mark.integration
ZH = Language("zh-CN")


def terms_form(**changes: str) -> dict[str, str]:
    """What the terms form posts for the default terms (no per-partner rows), with ``changes``."""
    form = alliance_terms.from_terms(Terms(), [], "CNY")
    return {**form.form.values, "plans-rows": "1", "partner-rows": "0", "effective": "now", **changes}


def invite_code(html: str) -> str:
    found = re.search(r'id="invite-code" readonly value="(LKA-[A-Za-z0-9_-]+)"', html)
    assert found, "no invitation code on the page"
    return found.group(1)


def alliance_of(response: Any) -> uuid.UUID:
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/console/alliance/([0-9a-f-]{36})", response.headers["location"])
    assert found, response.headers["location"]
    return uuid.UUID(found.group(1))


async def slug_of(db: Any, tenant: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": tenant})
    assert isinstance(slug, str)
    return slug


async def statuses(db: Any, operator: uuid.UUID, alliance: uuid.UUID) -> dict[uuid.UUID, str]:
    return {p["merchant_id"]: p["status"] for p in await membership.partners(db, operator, alliance)}


async def found(console: Console, name: str = "城市联盟") -> tuple[uuid.UUID, str]:
    code = f"city-{uuid.uuid4().hex[:8]}"
    r = await console.post("/console/alliance", {"code": code, "name": name, "currency": "", "timezone": ""})
    return alliance_of(r), code


async def invite_and_join(
    client: Any, auth_kit: Any, operator: uuid.UUID, partner: uuid.UUID, alliance: uuid.UUID
) -> None:
    owner = await sign_in_console(client, auth_kit, operator)
    code = invite_code((await owner.post(f"/console/alliance/{alliance}/invites", {"note": "", "days": "14"})).text)
    joiner = await sign_in_console(client, auth_kit, partner)
    assert alliance_of(await joiner.post("/console/alliance/join", {"invite_code": code})) == alliance


# --- found, invite, join, status ------------------------------------------------------------------


async def test_found_invite_and_join_across_two_merchants(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tea = await tenant_factory("一点茶")
    bakery = await tenant_factory("麦香烘焙")
    owner = await sign_in_console(client, auth_kit, tea)

    page = await owner.get("/console/alliance")
    assert page.status_code == 200 and "/console/alliance" in menu_of(page.text)
    assert 'id="found-form"' in page.text and 'id="join-form"' in page.text
    assert 'data-testid="no-alliances"' in page.text
    assert 'value="CNY"' in page.text and 'value="Asia/Shanghai"' in page.text  # the merchant's, as defaults

    # refused values beside their fields (htmx swaps the form), nothing written
    for data, field, status, message in [
        (
            {"code": "City Card", "name": "x"},
            "code",
            400,
            "Use 2 to 40 lower-case letters, digits or “-”, starting with a letter or a digit.",
        ),
        ({"code": "ok-code", "name": " "}, "name", 400, "Enter a name of 1 to 200 characters."),
        ({"code": "ok-code", "name": "x", "currency": "XXX"}, "currency", 400, "Choose a currency such as CNY."),
        (
            {"code": "ok-code", "name": "x", "timezone": "Mars/Base"},
            "timezone",
            400,
            "Enter a time zone such as Asia/Shanghai.",
        ),
    ]:
        r = await owner.post("/console/alliance", data, htmx=True)
        assert r.status_code == status and f'id="f-{field}-error"' in r.text, (field, r.text)
        assert ZH.gettext(message) in r.text and 'id="found-form"' in r.text
    assert await membership.my_alliances(db, tea) == []

    alliance, code = await found(owner)
    page = await owner.get(f"/console/alliance/{alliance}")
    assert page.status_code == 200 and "联盟已创建" in page.text  # the flash
    r = await owner.post("/console/alliance", {"code": code, "name": "again"}, htmx=True)
    assert r.status_code == 409 and 'id="f-code-error"' in r.text
    assert "已有其他联盟使用此代码" in r.text
    tea_slug, bakery_slug = await slug_of(db, tea), await slug_of(db, bakery)
    row = page.text.split(f'data-partner="{tea_slug}"')[1].split("</tr>")[0]
    assert "一点茶" in row and ZH.gettext("Operator (hub)") in row and 'data-testid="status-' not in row

    # an invitation: the code shown once, beside a copy button; a reload does not show it
    r = await owner.post(f"/console/alliance/{alliance}/invites", {"note": "面包店", "days": "0"}, htmx=True)
    assert r.status_code == 400 and 'id="f-days-error"' in r.text and 'data-testid="invite-code"' not in r.text
    r = await owner.post(f"/console/alliance/{alliance}/invites", {"note": "面包店", "days": "7"}, htmx=True)
    assert r.status_code == 200 and 'id="partners-panel"' in r.text and 'data-copy="invite-code"' in r.text
    code = invite_code(r.text)
    assert code not in (await owner.get(f"/console/alliance/{alliance}")).text

    # the bakery joins with it in its own console
    baker = await sign_in_console(client, auth_kit, bakery)
    r = await baker.post("/console/alliance/join", {"invite_code": "LKA-wrong"}, htmx=True)
    assert r.status_code == 404 and 'id="f-invite_code-error"' in r.text
    assert ZH.gettext("This code is not valid: mistyped, used already, or expired.") in r.text
    assert alliance_of(await baker.post("/console/alliance/join", {"invite_code": code})) == alliance
    page = await baker.get(f"/console/alliance/{alliance}")
    assert "您已加入该联盟" in page.text and f'data-partner="{bakery_slug}" data-status="active"' in page.text
    assert f'data-partner="{tea_slug}"' in page.text  # the operator, as the hub
    assert 'data-testid="invite-partner"' not in page.text  # only the operator invites
    listed = (await baker.get("/console/alliance")).text
    assert f"/console/alliance/{alliance}" in listed and "城市联盟" in listed
    r = await baker.post("/console/alliance/join", {"invite_code": code}, htmx=True)
    assert r.status_code == 404  # a code works once

    # the operator suspends and reinstates the bakery; the bakery leaves
    owner = await sign_in_console(client, auth_kit, tea)
    page = await owner.get(f"/console/alliance/{alliance}")
    assert f'data-partner="{bakery_slug}" data-status="active"' in page.text
    r = await owner.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "suspended"}, htmx=True)
    assert r.status_code == 200 and f'data-partner="{bakery_slug}" data-status="suspended"' in r.text
    assert (await statuses(db, tea, alliance))[bakery] == "suspended"
    r = await owner.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "active"})
    assert r.status_code == 303 and (await statuses(db, tea, alliance))[bakery] == "active"
    # the operator's own row cannot change; a partner cannot change another's
    r = await owner.post(f"/console/alliance/{alliance}/partners/{tea}/status", {"status": "suspended"})
    assert r.status_code == 422
    baker = await sign_in_console(client, auth_kit, bakery)
    r = await baker.post(f"/console/alliance/{alliance}/partners/{tea}/status", {"status": "left"}, htmx=True)
    assert r.status_code == 403 and r.headers["hx-retarget"] == "#flash"
    r = await baker.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "left"}, htmx=True)
    assert r.status_code == 200 and f'data-partner="{bakery_slug}" data-status="left"' in r.text
    assert await statuses(db, tea, alliance) == {tea: "active", bakery: "left"}


# --- who may see and do what ----------------------------------------------------------------------


async def terms_versions(db: Any, operator: uuid.UUID, alliance: uuid.UUID) -> list[int]:
    return [v["version"] for v in await versioned_terms.terms_history(db, operator, alliance)]


@pytest.mark.parametrize("role", ["analyst", "manager", "cashier"])
async def test_roles_that_may_not_write_see_no_form_and_are_refused(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, role: str
) -> None:
    tea, bakery = await tenant_factory("一点茶"), await tenant_factory("麦香烘焙")
    alliance, _ = await found(await sign_in_console(client, auth_kit, tea))
    branch = await auth_kit.branch(tea)
    reader = await sign_in_console(client, auth_kit, tea, role, (branch,) if role == "manager" else ())
    pages = ["/console/alliance", f"/console/alliance/{alliance}", f"/console/alliance/{alliance}/terms"]
    if role == "cashier":  # a cashier's console is the till: no alliance page at all
        assert "/console/alliance" not in menu_of((await reader.get("/console/till")).text)
        assert [(await reader.get(url)).status_code for url in pages] == [403, 403, 403]
    else:
        listed = await reader.get(pages[0])
        assert listed.status_code == 200 and "/console/alliance" in menu_of(listed.text)
        assert f"/console/alliance/{alliance}" in listed.text
        assert 'id="found-form"' not in listed.text and 'id="join-form"' not in listed.text
        partners = (await reader.get(pages[1])).text
        assert 'data-testid="invite-partner"' not in partners and 'data-testid="status-' not in partners
        terms = (await reader.get(pages[2])).text
        assert '<fieldset class="terms-fields" disabled>' in terms and 'data-testid="publish-terms"' not in terms
    before = (await membership.my_alliances(db, tea), await statuses(db, tea, alliance))
    versions = await terms_versions(db, tea, alliance)
    for url, data in [
        ("/console/alliance", {"code": f"x-{uuid.uuid4().hex[:6]}", "name": "x"}),
        ("/console/alliance/join", {"invite_code": "LKA-anything"}),
        (f"/console/alliance/{alliance}/invites", {"note": "", "days": "14"}),
        (f"/console/alliance/{alliance}/partners/{tea}/status", {"status": "suspended"}),
        (f"/console/alliance/{alliance}/terms", terms_form(issue_price="0.5")),
    ]:
        for htmx in (False, True):
            r = await reader.post(url, data, htmx=htmx)
            assert r.status_code == 403, (url, r.status_code)
            assert "您的角色无权执行此操作" in r.text
    assert (await membership.my_alliances(db, tea), await statuses(db, tea, alliance)) == before
    assert await terms_versions(db, tea, alliance) == versions == [1]
    assert await membership.my_alliances(db, bakery) == []


async def test_another_merchants_alliance_answers_404_and_a_partner_cannot_run_it(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tea, bakery, stranger = [await tenant_factory(n) for n in ("一点茶", "麦香烘焙", "Outsider")]
    alliance, _ = await found(await sign_in_console(client, auth_kit, tea))
    await invite_and_join(client, auth_kit, tea, bakery, alliance)
    outsider = await sign_in_console(client, auth_kit, stranger)
    assert f"/console/alliance/{alliance}" not in (await outsider.get("/console/alliance")).text
    for url in (
        f"/console/alliance/{alliance}",
        f"/console/alliance/{alliance}/terms",
        f"/console/alliance/{alliance}/statements?period=2026-10",
        f"/console/alliance/{alliance}/statements/2026-10/csv",
        f"/console/alliance/{uuid.uuid4()}",
    ):
        r = await outsider.get(url)
        assert r.status_code == 404, url
    for url, data in [
        (f"/console/alliance/{alliance}/invites", {"note": "", "days": "14"}),
        (f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "suspended"}),
        (f"/console/alliance/{alliance}/terms", terms_form(issue_price="0.5")),
        (f"/console/alliance/{alliance}/statements/close", {"period": "2026-10"}),
    ]:
        r = await outsider.post(url, data)
        assert r.status_code == 404, url
        assert "这里没有内容，或您无权查看" in r.text
    # a partner reads the terms but neither invites nor publishes (the operator's), nor closes a month
    baker = await sign_in_console(client, auth_kit, bakery)
    terms = (await baker.get(f"/console/alliance/{alliance}/terms")).text
    assert '<fieldset class="terms-fields" disabled>' in terms and 'data-testid="publish-terms"' not in terms
    for url, data in [
        (f"/console/alliance/{alliance}/invites", {"note": "", "days": "14"}),
        (f"/console/alliance/{alliance}/terms", terms_form(issue_price="0.5")),
        (f"/console/alliance/{alliance}/statements/close", {"period": "2026-10"}),
    ]:
        assert (await baker.post(url, data)).status_code == 403, url
    assert await terms_versions(db, tea, alliance) == [1]
    assert await statuses(db, tea, alliance) == {tea: "active", bakery: "active"}


# --- terms ----------------------------------------------------------------------------------------

HUGE = "9999999999999"  # reads as a whole number (or yuan), but beyond what the terms accept


def refusals(partner: int) -> list[tuple[dict[str, str], str]]:
    """(changes to a valid form, the input the refusal must stand beside): each value below passes the
    form's reading and is refused by the use case's rules, which name it by its path in the document."""
    p = f"partner-{partner}-"
    plan = {"plans-0-code": "sv500", "plans-0-name": "储值500", "plans-0-pay": "500", "plans-0-get": "550"}
    return [
        ({"issue_price": "1001"}, "issue_price"),
        ({"member_value": "1000.5"}, "member_value"),
        ({"reimbursement_price": "0.02"}, "reimbursement_price"),  # above the issue price
        ({"earn_rate": "1001"}, "earn_rate"),
        ({"expiry-kind": "sometimes"}, "expiry-kind"),
        ({"expiry-months": "0"}, "expiry-months"),
        ({"expiry-extra_years": "11"}, "expiry-extra_years"),
        ({"expiry-remind_days_before": "366"}, "expiry-remind_days_before"),
        ({"breakage": "nobody"}, "breakage"),
        ({"fee_per_transaction": HUGE}, "fee_per_transaction"),
        ({"fee_monthly": HUGE}, "fee_monthly"),
        ({"monthly_issuance_cap": HUGE}, "monthly_issuance_cap"),
        ({"credit_limit": HUGE}, "credit_limit"),
        ({"stored_value-consumption": "last"}, "stored_value-consumption"),
        ({"stored_value-bonus_funder": "nobody"}, "stored_value-bonus_funder"),
        ({**plan, "plans-0-code": "Big Plan"}, "plans-0-code"),
        ({**plan, "plans-0-get": "0"}, "plans-0-get"),
        ({p + "earn_rate": "1001"}, p + "earn_rate"),
        ({p + "issuance_cap": HUGE}, p + "issuance_cap"),
        ({p + "credit_limit": HUGE}, p + "credit_limit"),
        ({"issue_price": "1,5"}, "issue_price"),  # not a number: refused while reading the form
        ({"effective": "later", "effective_at": "2020-01-01T00:00"}, "effective_at"),  # never back-dated
    ]


async def test_terms_are_published_as_new_versions_and_every_refusal_stands_beside_its_input(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tea, bakery = await tenant_factory("一点茶"), await tenant_factory("麦香烘焙")
    alliance, _ = await found(await sign_in_console(client, auth_kit, tea))
    await invite_and_join(client, auth_kit, tea, bakery, alliance)
    owner = await sign_in_console(client, auth_kit, tea)
    page = (await owner.get(f"/console/alliance/{alliance}/terms")).text
    assert 'data-version="1" data-status="in_force"' in page and 'data-testid="publish-terms"' in page
    assert 'name="issue_price" type="text" value="0.010"' in page
    rows = re.findall(r'name="partner-(\d+)-key" value="([0-9a-f-]{36})"', page)
    assert {uuid.UUID(key) for _, key in rows} == {tea, bakery}  # one row per merchant of the alliance
    baker_row = next(int(i) for i, key in rows if uuid.UUID(key) == bakery)
    base = terms_form(**{"partner-rows": str(len(rows)), **{f"partner-{i}-key": key for i, key in rows}})

    for changes, field in refusals(baker_row):
        r = await owner.post(f"/console/alliance/{alliance}/terms", {**base, **changes}, htmx=True)
        assert r.status_code == 400, (changes, r.status_code)
        assert r.headers["hx-retarget"] == "#terms-form"
        errors = re.findall(r'id="f-([a-z0-9_-]+)-error"', r.text)
        assert errors == [field], (changes, errors)
        for name, value in changes.items():  # what was typed stays in the form (a select offers its choices only)
            if name != "effective" and name not in alliance_terms.CHOICES:
                assert f'value="{value}"' in r.text, name
    r = await owner.post(f"/console/alliance/{alliance}/terms", {**base, "reimbursement_price": "0.02"}, htmx=True)
    assert "兑付价不能高于发行价" in r.text
    assert await terms_versions(db, tea, alliance) == [1]

    # a valid edit: a new version now, with the bakery's own earn rate and credit limit, and a plan
    changes = {
        "issue_price": "0.012",
        "reimbursement_price": "0.009",
        "fee_monthly": "100",
        "breakage": "issuers",
        f"partner-{baker_row}-earn_rate": "2",
        f"partner-{baker_row}-credit_limit": "5000.50",
        "plans-0-code": "sv500",
        "plans-0-name": "储值500送50",
        "plans-0-pay": "500",
        "plans-0-get": "550",
        "plans-0-active": "on",
        "note": "新年价格",
    }
    r = await owner.post(f"/console/alliance/{alliance}/terms", {**base, **changes})
    assert r.status_code == 303 and r.headers["location"] == f"/console/alliance/{alliance}/terms"
    history = await versioned_terms.terms_history(db, tea, alliance)
    assert [v["version"] for v in history] == [2, 1]
    doc = history[0]["document"]
    assert (doc["issue_price"], doc["reimbursement_price"], doc["fee_monthly"], doc["breakage"]) == (
        "0.012",
        "0.009",
        10_000,
        "issuers",
    )
    assert doc["earn_rates"] == {str(bakery): "2"} and doc["credit_limits"] == {str(bakery): 500_050}
    assert doc["issuance_caps"] == {} and history[0]["note"] == "新年价格"
    assert doc["stored_value"]["plans"] == [
        {"code": "sv500", "name": "储值500送50", "pay": 50_000, "get": 55_000, "active": True}
    ]
    page = (await owner.get(f"/console/alliance/{alliance}/terms")).text
    assert "新版联盟条款已生效" in page
    assert 'data-version="2" data-status="in_force"' in page and 'data-version="1" data-status="superseded"' in page
    assert f'name="partner-{baker_row}-credit_limit" value="5000.50"' in page  # the editor starts from it

    # a version from a later time is scheduled; the one in force stays
    r = await owner.post(
        f"/console/alliance/{alliance}/terms",
        {**base, **changes, "issue_price": "0.015", "effective": "later", "effective_at": "2099-01-01T00:00"},
    )
    assert r.status_code == 303
    page = (await owner.get(f"/console/alliance/{alliance}/terms")).text
    assert "新版联盟条款已排期生效" in page
    assert 'data-version="3" data-status="scheduled"' in page and 'data-version="2" data-status="in_force"' in page
    # the partner reads them all
    baker = await sign_in_console(client, auth_kit, bakery)
    assert 'data-version="3" data-status="scheduled"' in (await baker.get(f"/console/alliance/{alliance}/terms")).text


# --- statements -----------------------------------------------------------------------------------

OCT = "2026-10-20T15:00:00+08:00"


async def till(client: Any, url: str, pos: dict[str, str], body: dict[str, Any]) -> Any:
    client.cookies.clear()  # the till's bearer token alone
    r = await client.post(url, json=body, headers={**pos, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    return r.json()


async def test_each_merchant_sees_the_statements_it_may_and_downloads_them(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tea, bakery = await tenant_factory("一点茶"), await tenant_factory("麦香烘焙")
    alliance, _ = await found(await sign_in_console(client, auth_kit, tea))
    await invite_and_join(client, auth_kit, tea, bakery, alliance)
    t1, b1 = await auth_kit.branch(tea, "T1"), await auth_kit.branch(bakery, "B1")
    member = await member_factory(bakery)
    # in October the bakery issues 6,000 points and the tea shop takes 1,000 of them as payment
    pos = {m: (await auth_kit.pos(m, ["pos"])).headers for m in (tea, bakery)}
    url = f"/api/v1/pos/alliances/{alliance}"
    body = {"member_id": str(member), "business_time": OCT}
    await till(client, f"{url}/earn", pos[bakery], {**body, "amount": 600_000, "branch_id": str(b1)})
    await till(client, f"{url}/redeem", pos[tea], {**body, "points": 1_000, "branch_id": str(t1)})
    tea_slug, bakery_slug = await slug_of(db, tea), await slug_of(db, bakery)

    owner = await sign_in_console(client, auth_kit, tea)
    page = await owner.get(f"/console/alliance/{alliance}/statements?period=2026-10")
    assert page.status_code == 200 and 'data-testid="no-statements"' in page.text
    assert 'data-testid="close-period"' in page.text
    # months that may not be closed: the reason beside the month, nothing closed
    for period, reason in [
        ("2026-12", "按联盟时区，该月尚未结束"),
        ("2026-09", "该月联盟尚未成立"),
        ("2026-13", "请选择月份"),
    ]:
        r = await owner.post(f"/console/alliance/{alliance}/statements/close", {"period": period})
        assert r.status_code in (400, 422) and 'id="f-period-error"' in r.text and reason in r.text, period
    r = await owner.post(f"/console/alliance/{alliance}/statements/close", {"period": "2026-10"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/alliance/{alliance}/statements?period=2026-10"
    page = (await owner.get(r.headers["location"])).text
    assert "该月已结算" in page
    shown = dict(re.findall(r'data-statement="([^"]+)" data-kind="([a-z]+)"', page))
    assert shown == {tea_slug: "hub", bakery_slug: "partner", "B1": "branch", "T1": "branch"}
    bakery_row = page.split(f'data-statement="{bakery_slug}"')[1].split("</tr>")[0]
    assert "-¥60.00" in bakery_row and "向运营方付款" in bakery_row  # 6,000 points × ¥0.010
    t1_row = page.split('data-statement="T1"')[1].split("</tr>")[0]
    assert "¥8.00" in t1_row  # 1,000 points accepted × ¥0.008
    assert all(f'data-testid="download-{fmt}"' in page for fmt in ("csv", "xlsx", "pdf", "instructions"))
    files = {
        fmt: await owner.get(f"/console/alliance/{alliance}/statements/2026-10/{fmt}")
        for fmt in ("csv", "pdf", "instructions")
    }
    assert all(f.status_code == 200 and "attachment" in f.headers["content-disposition"] for f in files.values())
    assert files["pdf"].content.startswith(b"%PDF") and bakery_slug in files["csv"].text and "T1" in files["csv"].text

    # the partner sees its own statement and its branch's, not the hub's nor the operator's branch
    baker = await sign_in_console(client, auth_kit, bakery)
    page = (await baker.get(f"/console/alliance/{alliance}/statements?period=2026-10")).text
    assert dict(re.findall(r'data-statement="([^"]+)" data-kind="([a-z]+)"', page)) == {
        bakery_slug: "partner",
        "B1": "branch",
    }
    assert 'data-testid="download-instructions"' not in page and 'data-testid="close-period"' not in page
    mine = await baker.get(f"/console/alliance/{alliance}/statements/2026-10/csv")
    assert mine.status_code == 200 and bakery_slug in mine.text and "T1" not in mine.text
    assert (await baker.get(f"/console/alliance/{alliance}/statements/2026-10/instructions")).status_code == 404
    # a manager reads the alliance but not its settlement
    manager = await sign_in_console(client, auth_kit, bakery, "manager", (b1,))
    page = (await manager.get(f"/console/alliance/{alliance}")).text
    assert f"/console/alliance/{alliance}/statements" not in page
    assert (await manager.get(f"/console/alliance/{alliance}/statements?period=2026-10")).status_code == 403
    assert (await manager.get(f"/console/alliance/{alliance}/statements/2026-10/csv")).status_code == 403
