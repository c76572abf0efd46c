"""The programme editor, coupons and rewards pages of the console, through the app's test client.

Forms are posted as a browser posts them: the inputs of the rendered form (``FormReader``), changed
where a merchant would type. Each write is checked in the database: a refused post changes nothing,
an accepted one is what the API's use case writes.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from lianka.demo import DEMO_PROGRAMME
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import coupon_admin, rewards
from lianka.tenants.services import programme as programme_svc
from tests.api.test_console import Console, sign_in_console

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FormReader(HTMLParser):
    """The values a browser would post for the form with ``id`` (inputs, ticked boxes and radios,
    selected options; ``disabled`` fields are not posted)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.select: str | None = None
        self.items: list[tuple[str, str]] = []
        self.disabled_depth = 0
        self.action = ""
        self.first_option: dict[str, str] = {}
        self.selected: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside, self.action = True, a.get("action", "")
        if not self.inside:
            return
        if tag == "fieldset" and "disabled" in a:
            self.disabled_depth += 1
        if self.disabled_depth:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                self.items.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select:
            self.first_option.setdefault(self.select, a.get("value", ""))
            if "selected" in a:
                self.items.append((self.select, a.get("value", "")))
                self.selected.add(self.select)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            if self.select not in self.selected and self.select in self.first_option:
                self.items.append((self.select, self.first_option[self.select]))
            self.select = None
        elif tag == "fieldset" and self.disabled_depth:
            self.disabled_depth -= 1
        elif tag == "form" and self.inside:
            self.inside = False


def form_of(html: str, form_id: str) -> dict[str, Any]:
    reader = FormReader(form_id)
    reader.feed(html)
    assert reader.action, f"no form #{form_id} in the page"
    out: dict[str, Any] = {}
    for name, value in reader.items:
        out.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


async def post_form(console: Console, url: str, data: dict[str, Any], *, htmx: bool = False) -> Any:
    form = {**data, "_csrf": console.csrf}
    headers = {"HX-Request": "true"} if htmx else {}
    return await console.client.post(url, data=form, headers=headers, follow_redirects=False)


async def with_demo_programme(db: Any, tenant: uuid.UUID) -> None:
    async with db.uow(tenant) as uow:
        await programme_svc.set_programme(uow, DEMO_PROGRAMME, note="demo")
        await uow.commit()


async def versions(db: Any, tenant: uuid.UUID) -> list[Any]:
    return (await programme_svc.versions(db, tenant))[1]


async def card_of(db: Any, member_id: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        return str(await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": member_id}))


def next_month_start() -> datetime:
    now = datetime.now(SHANGHAI)
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=SHANGHAI)


def error_text(html: str, name: str) -> str:
    found = re.search(rf'id="f-{re.escape(name)}-error"[^>]*>([^<]*)<', html)
    assert found, f"no error beside {name}"
    return found.group(1)


# --- the programme editor ----------------------------------------------------------------------------

SECTIONS = ("tiers", "points", "rules", "join", "stored-value", "refunds", "promotions")


async def test_every_programme_page_renders_and_only_writers_get_forms_that_post(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    owner = await sign_in_console(client, auth_kit, tenant)
    index = (await owner.get("/console/programme")).text
    assert 'data-version="1" data-status="in_force"' in index and "生效中" in index
    for section in SECTIONS:
        page = await owner.get(f"/console/programme/{section}")
        assert page.status_code == 200, section
        assert 'data-testid="publish"' in page.text and 'data-testid="preview"' in page.text
        assert " disabled" not in page.text.split('id="section-form"')[1].split("</legend>")[0]
    tiers = (await owner.get("/console/programme/tiers")).text
    assert 'value="3000.00"' in tiers and 'value="金卡"' in tiers  # ¥3,000 shown in yuan
    form = {k: v for k, v in form_of(tiers, "section-form").items() if k != "_csrf"}  # a writer's whole form
    assert (await owner.get("/console/programme/nonsense")).status_code == 404

    for role in ("analyst", "manager"):
        branch = await auth_kit.branch(tenant)
        reader = await sign_in_console(client, auth_kit, tenant, role, (branch,) if role == "manager" else ())
        page = (await reader.get("/console/programme/tiers")).text
        assert '<fieldset class="section-fields" disabled>' in page
        assert 'data-testid="publish"' not in page and 'data-testid="preview"' not in page
        assert (await reader.get("/console/programme")).status_code == 200
        for url in ("/console/programme/tiers", "/console/programme/tiers/preview"):
            for htmx in (False, True):
                refused = await post_form(reader, url, form, htmx=htmx)
                assert refused.status_code == 403, (role, url)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier")
    for url in ("/console/programme", "/console/programme/tiers", "/console/programme/compare?old=0&new=1"):
        assert (await cashier.get(url)).status_code == 403
    assert len(await versions(db, tenant)) == 1


async def test_a_threshold_change_from_next_month_with_a_note_is_a_scheduled_version_and_reads_in_the_diff(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    form = form_of((await console.get("/console/programme/tiers")).text, "section-form")
    assert form["tiers-2-code"] == "gold" and form["effective"] == "now"
    start = next_month_start()
    form.update(
        {
            "tiers-2-threshold": "5,000",
            "effective": "later",
            "effective_at": start.strftime("%Y-%m-%dT%H:%M"),
            "note": "金卡门槛上调",
        }
    )
    r = await post_form(console, "/console/programme/tiers", form)
    assert r.status_code == 303 and r.headers["location"] == "/console/programme"

    newest = (await versions(db, tenant))[0]
    assert (newest.version, newest.note, newest.effective_from) == (2, "金卡门槛上调", start)
    assert newest.document["tiers"][2]["threshold"] == 500_000  # ¥5,000 exactly in fen
    assert {k: v for k, v in newest.document.items() if k != "tiers"} == {
        k: v for k, v in (await versions(db, tenant))[1].document.items() if k != "tiers"
    }
    index = (await console.get("/console/programme")).text
    assert "会员方案的新版本已排定生效时间" in index
    assert 'data-version="2" data-status="scheduled"' in index and 'data-version="1" data-status="in_force"' in index

    diff = (await console.get("/console/programme/compare?old=1&new=2")).text
    rows = re.findall(r'<tr class="diff-changed"><th scope="row">([^<]*)</th><td>([^<]*)</td><td>([^<]*)</td>', diff)
    assert rows == [("金卡 · 门槛", "¥3,000.00", "¥5,000.00")]
    assert "金卡门槛上调" in diff
    console.client.cookies.set("lk_lang", "en")
    en = (await console.get("/console/programme/compare?old=1&new=2")).text
    console.client.cookies.delete("lk_lang")
    assert "金卡 · Threshold</th><td>¥3,000.00</td><td>¥5,000.00" in en
    # the editor builds on the newest version, and says it is the scheduled one
    page = (await console.get("/console/programme/tiers")).text
    assert 'value="5000.00"' in page and "您正在编辑版本 2，将于" in page


async def test_amounts_are_read_exactly_and_every_refusal_stands_beside_its_field(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    base = form_of((await console.get("/console/programme/tiers")).text, "section-form")

    cases = [
        ({"tiers-2-threshold": "3000.005"}, "tiers-2-threshold", "请输入以元为单位、最多两位小数的金额，例如 12.50。"),
        ({"tiers-2-threshold": "800.00"}, "tiers-2-threshold", "较高等级的门槛不能低于下一级的门槛。"),
        ({"tiers-2-code": "silver"}, "tiers-2-code", "另一行已使用此编号。"),
        ({"tiers-1-rank": "2"}, "tiers-2-rank", "已有等级使用此级别。"),
        ({"tiers-0-discount_percent": "120"}, "tiers-0-discount_percent", "请输入 0 到 100 的百分比。"),
        ({"tiers-3-name": "铂金卡"}, "tiers-3-code", "请为此行填写编号，或整行留空。"),
        ({"tiers-1-points_multiplier": "0"}, "tiers-1-points_multiplier", "请输入大于 0 且不超过 20 的倍数。"),
        ({"tier_policy-window_months": "0"}, "tier_policy-window_months", "请输入 1 到 60 个月。"),
        (
            {"effective": "later", "effective_at": "2020-01-01T00:00"},
            "effective_at",
            "请选择现在或以后的时间（按您的时区）。",
        ),
        ({"effective": "later", "effective_at": ""}, "effective_at", "此项为必填。"),
    ]
    for change, field, message in cases:
        for htmx in (False, True):
            r = await post_form(console, "/console/programme/tiers", {**base, **change}, htmx=htmx)
            assert r.status_code == 400, (change, r.status_code)
            assert error_text(r.text, field) == message, change
            assert f'id="f-{field}" ' in r.text or f'id="f-{field}"' in r.text
            if htmx:
                assert "<html" not in r.text and r.headers["hx-retarget"] == "#section-form"
            else:
                assert "<html" in r.text
            for name, value in change.items():  # what was typed stays
                if name.endswith(("threshold", "code", "name", "rank")) and value:
                    assert f'value="{value}"' in r.text
    assert len(await versions(db, tenant)) == 1

    # other sections: stored-value amounts, a rule naming an unknown coupon template
    sv = form_of((await console.get("/console/programme/stored-value")).text, "section-form")
    r = await post_form(console, "/console/programme/stored-value", {**sv, "plans-1-get": "900"})
    assert r.status_code == 400 and error_text(r.text, "plans-1-get") == "“到账”金额不能少于“支付”金额。"
    rules = form_of((await console.get("/console/programme/rules")).text, "section-form")
    r = await post_form(
        console,
        "/console/programme/rules",
        {
            **rules,
            "rules-1-code": "birthday",
            "rules-1-kind": "birthday",
            "rules-1-points": "100",
            "rules-1-coupon_template": "NOPE",
        },
        htmx=True,
    )
    assert r.status_code == 400 and error_text(r.text, "rules-1-coupon_template") == "没有此编号的优惠券模板。"
    assert len(await versions(db, tenant)) == 1

    ok = await post_form(
        console,
        "/console/programme/stored-value",
        {
            **sv,
            "plans-2-code": "2000-2300",
            "plans-2-name": "储值2000送300",
            "plans-2-pay": "2,000",
            "plans-2-get": "2300.50",
            "note": "新储值",
        },
    )
    assert ok.status_code == 303
    plans = (await versions(db, tenant))[0].document["stored_value"]["plans"]
    assert plans[2] == {"code": "2000-2300", "name": "储值2000送300", "pay": 200_000, "get": 230_050, "active": True}


async def test_the_preview_prices_a_sample_with_the_unsaved_edit_and_writes_nothing(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    form = form_of((await console.get("/console/programme/tiers")).text, "section-form")
    assert form["sample-tier"] == "gold" and form["sample-amount"] == "100.00"
    wednesday, tuesday = "2027-01-06", "2027-01-05"  # the demo doubles points on Tuesdays
    form.update(
        {"tiers-2-discount_percent": "20", "sample-amount": "200", "sample-points": "1000", "sample-day": wednesday}
    )

    r = await post_form(console, "/console/programme/tiers/preview", form, htmx=True)
    assert r.status_code == 200 and "<html" not in r.text and 'data-testid="preview-result"' in r.text
    cells = {
        key: re.findall(r"<td>(.*?)</td>", row)
        for key, row in re.findall(r'<tr data-row="(\w+)">(.*?)</tr>', r.text, re.S)
    }
    # gold: 10% off now, 20% with the edit; 1,000 points pay ¥10; points on what is paid, ×2 for gold
    assert cells["member_discount"] == ["¥20.00", "¥40.00"]
    assert cells["points_cash"] == ["¥10.00", "¥10.00"]
    assert cells["due"] == ["¥170.00", "¥150.00"]
    assert cells["points_earned"] == ["340 <small>(×2)</small>", "300 <small>(×2)</small>"]
    assert "金卡 · 会员折扣（%）: 10% → 20%" in r.text
    # the same numbers as the till's quote under each version (the POS's pricing, not a copy of it)
    from lianka.tenants.domain import pricing

    member = pricing.MemberState(tier="gold", points_available=1000, sv_principal=0, sv_bonus=0)
    quote = pricing.quote(
        DEMO_PROGRAMME,
        20_000,
        (),
        member,
        pricing.Intent(points=1000),
        pricing.SaleContext(datetime(2027, 1, 6).date(), ""),
    )
    assert (quote.member_discount, quote.due, quote.points_earned) == (2000, 17000, 340)
    on_tuesday = await post_form(
        console, "/console/programme/tiers/preview", {**form, "sample-day": tuesday}, htmx=True
    )
    assert "680 <small>(×4)</small>" in on_tuesday.text  # the Tuesday promotion is priced too

    page = await post_form(console, "/console/programme/tiers/preview", form)  # without JavaScript: the page
    assert page.status_code == 200 and "<html" in page.text and 'value="20"' in page.text
    assert 'data-testid="preview-result"' in page.text
    bad = await post_form(console, "/console/programme/tiers/preview", {**form, "sample-amount": "0"}, htmx=True)
    assert bad.status_code == 400 and error_text(bad.text, "sample-amount") == "请输入大于零的金额。"
    too_many = await post_form(
        console, "/console/programme/tiers/preview", {**form, "sample-points": "50000"}, htmx=True
    )
    assert too_many.status_code == 200 and "这笔消费不能用这么多积分抵扣。" in too_many.text
    assert len(await versions(db, tenant)) == 1


async def test_versions_compare_in_this_merchant_only(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    mine, theirs = await tenant_factory(), await tenant_factory()
    await with_demo_programme(db, mine)
    await with_demo_programme(db, theirs)
    async with db.uow(theirs) as uow:
        await programme_svc.set_programme(uow, DEMO_PROGRAMME, note="theirs")
        await uow.commit()
    console = await sign_in_console(client, auth_kit, mine)
    first = (await console.get("/console/programme/compare?old=0&new=1")).text
    assert "等级: 金卡</th><td>—</td><td>新增" in first
    assert (await console.get("/console/programme/compare?old=1&new=1")).text.count("没有差异") == 1
    assert (await console.get("/console/programme/compare?old=1&new=2")).status_code == 404  # theirs has a 2
    assert (await console.get("/console/programme/compare?old=-1&new=1")).status_code == 404
    assert (await console.get("/console/programme/compare?old=x&new=1")).status_code == 400


async def test_programme_writes_need_the_pages_token(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    form = form_of((await console.get("/console/programme/refunds")).text, "section-form")
    del form["_csrf"]  # what another site's form would post: everything but the page's token
    r = await console.client.post("/console/programme/refunds", data={**form, "anywhere": "on"}, follow_redirects=False)
    assert r.status_code == 403
    assert len(await versions(db, tenant)) == 1
    r = await post_form(console, "/console/programme/refunds", {**form, "anywhere": "on"}, htmx=True)
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/console/programme"
    assert (await versions(db, tenant))[0].document["refunds"]["anywhere"] is True


# --- coupons ------------------------------------------------------------------------------------------

NEW10 = {
    "code": "NEW10",
    "name": "新客立减",
    "kind": "fixed",
    "amount_off": "10",
    "min_spend": "50",
    "valid_days": "30",
    "stackable": "on",
    "stock_total": "2",
    "per_member_limit": "",
}


async def test_coupon_templates_are_created_with_inline_errors_and_listed_with_stock_and_use(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant, "SH01")
    console = await sign_in_console(client, auth_kit, tenant)
    page = (await console.get("/console/coupons")).text
    assert "还没有优惠券模板" in page and 'data-testid="add-coupon-template"' in page
    assert 'id="coupon-form"' in (await console.get("/console/coupons/new", headers={"HX-Request": "true"})).text

    for change, field, message in [
        ({"amount_off": "10.005"}, "amount_off", "请输入以元为单位、最多两位小数的金额，例如 12.50。"),
        ({"amount_off": "0"}, "amount_off", "立减券须填写大于零的金额。"),
        ({"code": "新客"}, "code", "请使用 1 到 40 个字母、数字、“-”或“_”。"),
        ({"valid_days": ""}, "valid_days", "请填写截止日期，或发放后的有效天数（1 到 3660）。"),
        ({"branches": "SH01, NOPE"}, "branches", "请填写您门店的编号，用逗号分隔。"),
        ({"stock_total": "-1"}, "stock_total", "请输入整数，例如 12。"),
        ({"valid_from": "2027-02-01", "valid_until": "2027-01-01"}, "valid_until", "结束时间必须晚于开始时间。"),
    ]:
        r = await post_form(console, "/console/coupons", {**NEW10, **change}, htmx=True)
        assert r.status_code == 400, change
        assert error_text(r.text, field) == message, change
        assert 'value="新客立减"' in r.text
    assert await coupon_admin.list_templates(db, tenant, active=None) == []

    r = await post_form(console, "/console/coupons", {**NEW10, "branches": "SH01"})
    assert r.status_code == 303
    again = await post_form(console, "/console/coupons", NEW10, htmx=True)
    assert again.status_code == 409 and error_text(again.text, "code") == "已有模板使用此编号。"
    until = await post_form(
        console,
        "/console/coupons",
        {
            **NEW10,
            "code": "MAY",
            "valid_days": "",
            "valid_until": "2027-05-31",
            "kind": "percent",
            "amount_off": "",
            "percent_off": "20",
            "cap": "50",
        },
        htmx=True,
    )
    assert until.status_code == 200 and until.headers["hx-retarget"] == "#coupons-panel"
    made = {t.code: t for t in await coupon_admin.list_templates(db, tenant, active=None)}
    assert (made["NEW10"].amount_off, made["NEW10"].min_spend, made["NEW10"].branches) == (1000, 5000, ["SH01"])
    # "until 31 May" means through that day in the merchant's zone
    assert made["MAY"].valid_until == datetime(2027, 6, 1, tzinfo=SHANGHAI)
    assert (made["MAY"].percent_off, made["MAY"].cap) == (20, 5000)
    listed = (await console.get("/console/coupons")).text
    assert "至 2027年5月31日" in listed and "20% 折扣" in listed and "（最多减 ¥50.00）" in listed

    # a coupon issued and used in a sale shows in the list's counts
    member = await member_factory(tenant)
    coupon, _ = await coupon_admin.issue(db, tenant, made["NEW10"].id, member, "k1", actor="staff:test")
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    sale = await client.post(
        "/api/v1/pos/sales",
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": 8000, "member_id": str(member), "coupons": [coupon.code]},
    )
    assert sale.status_code == 201, sale.text
    row = re.search(r'<tr data-template="NEW10">.*?</tr>', (await console.get("/console/coupons")).text, re.S)
    assert row is not None
    assert '<td data-testid="issued">1</td>' in row.group(0) and '<td data-testid="used">1</td>' in row.group(0)
    assert "1 / 2" in row.group(0)


async def test_a_coupon_is_issued_to_a_card_once_per_form(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, other = await tenant_factory(), await tenant_factory()
    template = await coupon_admin.create_template(
        db,
        tenant,
        schemas.TemplateIn(code="GIFT", name="生日礼", kind=pricing_kind("fixed"), amount_off=500, valid_days=30),
    )
    member, stranger = await member_factory(tenant), await member_factory(other)
    branch = await auth_kit.branch(tenant)
    manager = await sign_in_console(client, auth_kit, tenant, "manager", (branch,))
    form_page = await manager.get(f"/console/coupons/{template.id}/issue", headers={"HX-Request": "true"})
    assert form_page.status_code == 200
    form = form_of(form_page.text, "issue-form")
    assert len(form["_key"]) >= 20

    r = await post_form(
        manager, f"/console/coupons/{template.id}/issue", {**form, "card": "8800 0000 0000 0000"}, htmx=True
    )
    assert r.status_code == 404 and error_text(r.text, "card") == "您的会员中没有此卡号。"
    r = await post_form(
        manager, f"/console/coupons/{template.id}/issue", {**form, "card": await card_of(db, stranger)}, htmx=True
    )
    assert r.status_code == 404 and error_text(r.text, "card") == "您的会员中没有此卡号。"  # another merchant's
    assert f'value="{form["_key"]}"' in r.text  # the failed write kept its key

    card = await card_of(db, member)
    first = await post_form(manager, f"/console/coupons/{template.id}/issue", {**form, "card": card}, htmx=True)
    double = await post_form(manager, f"/console/coupons/{template.id}/issue", {**form, "card": card}, htmx=True)
    assert first.status_code == double.status_code == 200
    code = re.search(r"已发放优惠券 ([0-9A-Z-]+)", first.text)
    assert code and code.group(1) in double.text  # the retry shows the same coupon
    held = await coupon_admin.member_coupons(db, tenant, member, status=None)
    assert [c.code for c in held] == [code.group(1)]
    fresh = form_of(first.text, "issue-form")
    assert fresh["_key"] != form["_key"] and fresh.get("card", "") == ""  # the next coupon is a new write
    await post_form(manager, f"/console/coupons/{template.id}/issue", {**fresh, "card": card})
    assert len(await coupon_admin.member_coupons(db, tenant, member, status=None)) == 2

    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = (await analyst.get("/console/coupons")).text
    assert "GIFT" in page and 'data-testid="issue"' not in page and "/deactivate" not in page
    assert (await analyst.get(f"/console/coupons/{template.id}/issue")).status_code == 403
    r = await post_form(analyst, f"/console/coupons/{template.id}/issue", {**fresh, "card": card})
    assert r.status_code == 403
    assert (await post_form(analyst, f"/console/coupons/{template.id}/deactivate", {})).status_code == 403
    assert (await post_form(manager, f"/console/coupons/{template.id}/deactivate", {})).status_code == 403
    assert len(await coupon_admin.member_coupons(db, tenant, member, status=None)) == 2


async def test_deactivating_a_template_and_another_merchants_templates(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, other = await tenant_factory(), await tenant_factory()
    mine = await coupon_admin.create_template(
        db, tenant, schemas.TemplateIn(code="A", name="A", kind=pricing_kind("fixed"), amount_off=100, valid_days=1)
    )
    theirs = await coupon_admin.create_template(
        db, other, schemas.TemplateIn(code="B", name="B", kind=pricing_kind("fixed"), amount_off=100, valid_days=1)
    )
    console = await sign_in_console(client, auth_kit, tenant)
    assert (await console.get(f"/console/coupons/{theirs.id}/issue")).status_code == 404
    assert (await post_form(console, f"/console/coupons/{theirs.id}/deactivate", {})).status_code == 404
    r = await post_form(console, f"/console/coupons/{theirs.id}/issue", {"_key": "k", "card": "1"})
    assert r.status_code == 404
    assert (await coupon_admin.get_template(db, other, theirs.id)).active

    r = await post_form(console, f"/console/coupons/{mine.id}/deactivate", {}, htmx=True)
    assert r.status_code == 200 and "优惠券模板已停用" in r.text and r.headers["hx-retarget"] == "#coupons-panel"
    assert not (await coupon_admin.get_template(db, tenant, mine.id)).active
    assert f"/console/coupons/{mine.id}/issue" not in r.text


def pricing_kind(kind: str) -> Any:
    from lianka.tenants.domain.pricing import CouponKind

    return CouponKind(kind)


# --- rewards -----------------------------------------------------------------------------------------


async def test_rewards_are_added_edited_and_withdrawn_with_inline_errors(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, other = await tenant_factory(), await tenant_factory()
    await with_demo_programme(db, tenant)
    branch = await auth_kit.branch(tenant, "SH01")
    console = await sign_in_console(client, auth_kit, tenant)
    page = (await console.get("/console/rewards")).text
    assert "还没有奖品" in page and "没有待领取的礼品" in page
    form = form_of((await console.get("/console/rewards/new", headers={"HX-Request": "true"})).text, "reward-form")
    mug = {
        **form,
        "code": "MUG",
        "name": "马克杯",
        "points_cost": "500",
        "stock_total": "20",
        "pickup_branch_id": str(branch),
        "tiers": ["silver", "gold"],
    }
    for change, field, message in [
        ({"points_cost": "0"}, "points_cost", "请输入大于零的整数积分。"),
        ({"points_cost": "1.5"}, "points_cost", "请输入整数，例如 12。"),
        ({"sv_amount": "12.345"}, "sv_amount", "请输入以元为单位、最多两位小数的金额，例如 12.50。"),
        ({"sv_amount": "10"}, "sv_amount", "储值类奖品须填写大于零的金额；其他类型无需填写。"),
        ({"kind": "coupon"}, "coupon_template", "优惠券类奖品须选择要发放的优惠券模板；其他类型无需选择。"),
        ({"pickup_branch_id": str(uuid.uuid4())}, "pickup_branch_id", "只有礼品需要领取，且须在您的门店领取。"),
    ]:
        r = await post_form(console, "/console/rewards", {**mug, **change}, htmx=True)
        assert r.status_code in (400, 404), change
        assert error_text(r.text, field) == message, change
    assert await rewards.list_rewards(db, tenant) == []

    r = await post_form(console, "/console/rewards", mug, htmx=True)
    assert r.status_code == 200 and "奖品已添加" in r.text and 'data-reward="MUG"' in r.text
    dup = await post_form(console, "/console/rewards", mug, htmx=True)
    assert dup.status_code == 409 and error_text(dup.text, "code") == "已有奖品使用此编号。"
    (made,) = await rewards.list_rewards(db, tenant)
    assert (made.points_cost, made.stock_total, made.pickup_branch_id, made.tiers) == (
        500,
        20,
        branch,
        ["silver", "gold"],
    )

    edit = form_of((await console.get(f"/console/rewards/{made.id}/edit")).text, "reward-form")
    assert edit["name"] == "马克杯" and edit["tiers"] == ["silver", "gold"] and "code" not in edit
    r = await post_form(
        console, f"/console/rewards/{made.id}", {**edit, "stock_total": "", "points_cost": "450", "tiers": []}
    )
    assert r.status_code == 303
    changed = await rewards.reward(db, tenant, made.id)
    assert (changed.points_cost, changed.stock_total, changed.tiers) == (450, None, [])

    r = await post_form(console, f"/console/rewards/{made.id}/withdraw", {}, htmx=True)
    assert r.status_code == 200 and "已下架" in r.text
    assert not (await rewards.reward(db, tenant, made.id)).active

    theirs = await rewards.create(db, other, schemas.RewardIn(code="X", name="X", kind="gift", points_cost=1))
    assert (await console.get(f"/console/rewards/{theirs.id}/edit")).status_code == 404
    assert (await post_form(console, f"/console/rewards/{theirs.id}", {**edit})).status_code == 404
    assert (await post_form(console, f"/console/rewards/{theirs.id}/withdraw", {})).status_code == 404
    assert (await rewards.reward(db, other, theirs.id)).active

    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = (await analyst.get("/console/rewards")).text
    assert 'data-reward="MUG"' in page and 'data-testid="add-reward"' not in page and "/edit" not in page
    assert (await post_form(analyst, "/console/rewards", {**mug, "code": "MUG2"})).status_code == 403
    assert (await post_form(analyst, f"/console/rewards/{made.id}", edit)).status_code == 403
    assert len(await rewards.list_rewards(db, tenant)) == 1


async def test_gifts_awaiting_pickup_are_handed_out_or_cancelled_at_the_right_branch(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    here, there = await auth_kit.branch(tenant, "SH01"), await auth_kit.branch(tenant, "SH02")
    gift = await rewards.create(
        db,
        tenant,
        schemas.RewardIn(code="MUG", name="马克杯", kind="gift", points_cost=300, stock_total=5, pickup_branch_id=here),
    )
    member = await member_factory(tenant)
    pos = await auth_kit.pos(tenant, ["pos"], branch=here)
    sale = await client.post(
        "/api/v1/pos/sales",
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": 100_000, "member_id": str(member)},
    )
    assert sale.status_code == 201, sale.text
    first, _ = await rewards.redeem(db, tenant, gift.id, member, "r1", channel="staff", actor="test")
    second, _ = await rewards.redeem(db, tenant, gift.id, member, "r2", channel="staff", actor="test")

    elsewhere = await sign_in_console(client, auth_kit, tenant, "manager", (there,))
    page = (await elsewhere.get("/console/rewards")).text
    assert "没有待领取的礼品" in page and str(first.id) not in page
    for action in ("deliver", "cancel"):
        r = await post_form(elsewhere, f"/console/rewards/redemptions/{first.id}/{action}", {})
        assert r.status_code == 403
    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = (await analyst.get("/console/rewards")).text
    assert f'data-redemption="{first.id}"' in page and "/deliver" not in page
    assert (await post_form(analyst, f"/console/rewards/redemptions/{first.id}/deliver", {})).status_code == 403

    manager = await sign_in_console(client, auth_kit, tenant, "manager", (here,))
    page = (await manager.get("/console/rewards")).text
    assert f'data-redemption="{first.id}"' in page and await card_of(db, member) in page
    r = await post_form(manager, f"/console/rewards/redemptions/{first.id}/deliver", {}, htmx=True)
    assert r.status_code == 200 and "礼品已发放" in r.text and f'data-redemption="{first.id}"' not in r.text
    r = await post_form(manager, f"/console/rewards/redemptions/{second.id}/cancel", {})
    assert r.status_code == 303
    done = {x.id: x.status for x in await rewards.redemptions(db, tenant, member_id=member)}
    assert done == {first.id: "delivered", second.id: "cancelled"}
    assert (await rewards.reward(db, tenant, gift.id)).remaining == 4  # the cancelled one is back in stock
    earned = sale.json()["quote"]["points_earned"]  # 1,000, or 2,000 on a Tuesday (the demo's promotion)
    assert (await rewards.catalogue(db, tenant, member)).points_available == earned - 300  # one kept, one back
    r = await post_form(manager, f"/console/rewards/redemptions/{first.id}/cancel", {}, htmx=True)
    assert r.status_code == 409  # handed out: it can no longer be called off
    assert (await post_form(manager, f"/console/rewards/redemptions/{uuid.uuid4()}/deliver", {})).status_code == 404
