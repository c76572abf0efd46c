"""Onboarding's "choose a programme template" page (/console/start/programme) and its use case:
the merchant's trade first, a new programme version with its welcome coupon, once per form, in the
reader's language; the checklist then shows the step done; a new member at the till gets the
welcome coupon and points."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import text

from lianka.platform import audit
from lianka.tenants.pos import sales, schemas
from lianka.tenants.services import programme_templates
from tests.api.test_console import sign_in_console, steps_done

KEY = re.compile(r'name="key" value="([^"]+)"')


async def versions(db: Any, tenant: uuid.UUID) -> list[tuple[int, str]]:
    async with db.uow(tenant) as uow:
        return [
            tuple(r)
            for r in (
                await uow.session.execute(text("SELECT version, note FROM programme_versions ORDER BY version"))
            ).all()
        ]


async def coupon_templates(db: Any, tenant: uuid.UUID) -> list[tuple[str, str, int, int]]:
    async with db.uow(tenant) as uow:
        return [
            tuple(r)
            for r in (
                await uow.session.execute(
                    text("SELECT code, name, amount_off, min_spend FROM coupon_templates ORDER BY code")
                )
            ).all()
        ]


async def test_choose_a_template_then_the_checklist_shows_it_done(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory(trade="bakery")
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    start = (await owner.get("/console/start")).text
    assert 'href="/console/start/programme"' in start and steps_done(start)["programme"] is False
    page = await owner.get("/console/start/programme")
    assert page.status_code == 200
    order = re.findall(r'data-template="(\w+)"', page.text)
    assert order[0] == "bakery" and set(order) == {"tea", "bakery", "retail", "beauty"}
    assert "适合您的行业" in page.text and "银卡会员" in page.text and "¥800.00" in page.text  # bakery's silver tier
    key = KEY.search(page.text).group(1)  # type: ignore[union-attr]

    for _ in range(2):  # a double click publishes one version
        r = await owner.post("/console/start/programme", {"key": key, "template": "bakery"})
        assert r.status_code == 303 and r.headers["location"] == "/console/start"
    assert await versions(db, tenant) == [(1, "template:bakery")]
    assert await coupon_templates(db, tenant) == [("welcome-bakery", "新人立减券 ¥10", 1000, 5000)]
    start = (await owner.get("/console/start")).text
    assert steps_done(start)["programme"] is True and "会员方案已发布" in start
    page = (await owner.get("/console/start/programme")).text
    assert 'data-testid="programme-in-force"' in page and "“烘焙 · 餐饮”模板" in page

    # another template later: a new version and its own welcome coupon; the first one stays
    key = KEY.search(page).group(1)  # type: ignore[union-attr]
    r = await owner.post("/console/start/programme", {"key": key, "template": "tea"})
    assert r.status_code == 303
    assert await versions(db, tenant) == [(1, "template:bakery"), (2, "template:tea")]
    assert [c[0] for c in await coupon_templates(db, tenant)] == ["welcome-bakery", "welcome-tea"]
    # the same form's key for another template is refused
    r = await owner.post("/console/start/programme", {"key": key, "template": "retail"})
    assert r.status_code == 409 and "此表单已用于其他操作" in r.text
    assert len(await versions(db, tenant)) == 2


async def test_bad_choices_and_roles_are_refused(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    tenant = await tenant_factory()
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    r = await owner.post("/console/start/programme", {"key": "k1", "template": "casino"})
    assert r.status_code == 400 and "请选择一个模板。" in r.text
    r = await owner.post("/console/start/programme", {"key": "k2", "template": "tea"}, token=False)
    assert r.status_code == 403
    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = await analyst.get("/console/start/programme")
    assert page.status_code == 200 and 'data-testid="choose-tea"' not in page.text  # read-only
    r = await analyst.post("/console/start/programme", {"key": "k3", "template": "tea"})
    assert r.status_code == 403
    for role in ("manager", "cashier"):
        console = await sign_in_console(client, auth_kit, tenant, role)
        assert (await console.get("/console/start/programme")).status_code == 403
    assert await versions(db, tenant) == [] and await coupon_templates(db, tenant) == []


async def test_english_readers_get_english_names(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    tenant = await tenant_factory(trade="beauty")
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    client.cookies.set("lk_lang", "en")
    page = (await owner.get("/console/start/programme")).text
    assert re.findall(r'data-template="(\w+)"', page)[0] == "beauty" and "For your trade" in page
    key = KEY.search(page).group(1)  # type: ignore[union-attr]
    assert (await owner.post("/console/start/programme", {"key": key, "template": "beauty"})).status_code == 303
    async with db.uow(tenant) as uow:
        doc = await uow.session.scalar(text("SELECT document FROM programme_versions"))
    assert [t["name"] for t in doc["tiers"]] == ["Member", "Silver", "Gold", "Diamond"]
    assert await coupon_templates(db, tenant) == [("welcome-beauty", "First visit ¥30 off", 3000, 20000)]


async def test_a_member_who_joins_at_the_till_gets_the_welcome_offer(
    auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory(trade="tea")
    branch = await auth_kit.branch(tenant)
    applied, replayed = await programme_templates.apply_template(
        db, tenant, "tea", language="zh-CN", idempotency_key="tpl-1", actor=audit.operator("test")
    )
    assert (applied.template, applied.version, applied.coupon_template, replayed) == ("tea", 1, "welcome-tea", False)
    out, _ = await sales.sale(db, tenant, schemas.Basket(amount=2500, join_phone="+8613900005555"), "s-1", branch)
    assert out.quote.joins and out.balances is not None
    assert out.balances.points == 50 + 25  # the welcome points and the sale's
    async with db.uow(tenant) as uow:
        held = (
            await uow.session.execute(
                text(
                    "SELECT t.code, c.status FROM coupons c JOIN coupon_templates t ON t.id = c.template_id "
                    "WHERE c.member_id = :m"
                ),
                {"m": out.member_id},
            )
        ).all()
    assert [tuple(h) for h in held] == [("welcome-tea", "issued")]


async def test_a_deactivated_welcome_coupon_is_replaced_not_reused(auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    from lianka.tenants.services import coupon_admin

    tenant = await tenant_factory()
    await programme_templates.apply_template(
        db, tenant, "retail", language="en", idempotency_key="a", actor=audit.operator("test")
    )
    first = next(t for t in await coupon_admin.list_templates(db, tenant, active=None))
    await coupon_admin.deactivate(db, tenant, first.id)
    applied, _ = await programme_templates.apply_template(
        db, tenant, "retail", language="en", idempotency_key="b", actor=audit.operator("test")
    )
    assert applied.coupon_template == "welcome-retail-2" and applied.version == 2
    status = await programme_templates.template_status(db, tenant)
    assert (status.version, status.template) == (2, "retail")
