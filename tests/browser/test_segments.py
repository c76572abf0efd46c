"""The segment builder in a real browser, zh-CN and English: from the Marketing menu, a new segment
starts with one condition and its live count; adding a tier condition updates the count in place
(htmx); an incomplete condition is marked with the message; the segment is saved and listed with
its count; the member's page shows the RFM badge; the provider page shows a secret masked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from lianka.tenants.marketing import providers
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import htmx_settled, without_axe_traces


async def arrange(db: Any) -> tuple[Any, str, Any]:
    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    from lianka.platform.identity.members import _find_or_create_person

    members = []
    async with db.uow(system=True) as uow:
        for _ in range(3):
            m = await _find_or_create_person(uow, f"+8613{uuid_digits()}")
            members.append(m)
        await uow.set_tenant(tenant)
        for i, m in enumerate(members):
            await uow.session.execute(text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"),
                                      {"t": tenant, "m": m})  # fmt: skip
            await uow.session.execute(
                text("INSERT INTO member_profiles (tenant_id, member_id, name, tier_code, consent) VALUES (:t, :m, :n, "
                     ":tier, CAST(:c AS jsonb))"),
                {"t": tenant, "m": m, "n": ["王芳", "李娜", "张伟"][i], "tier": "gold" if i == 0 else "silver",
                 "c": '{"sms": {"granted": true}}' if i < 2 else "{}"},
            )  # fmt: skip
        await uow.session.execute(
            text("INSERT INTO member_rfm (tenant_id, member_id, recency, frequency, monetary, last_purchase_at, "
                 "purchases, spend, computed_at) VALUES (:t, :m, 5, 2, 4, now(), 2, 5000, now())"),
            {"t": tenant, "m": members[0]},
        )  # fmt: skip
        await uow.commit()
    await providers.save_provider(
        db, tenant, "sms", "aliyun", {"access_key_id": "LTAI5t", "sign_name": "一点茶", "template_code": "SMS_1"},
        "AliyunSecretValue9876",
    )  # fmt: skip
    return tenant, await make_staff(db, tenant, "owner"), members[0]


def uuid_digits() -> str:
    import uuid

    return f"{uuid.uuid4().int % 10**9:09d}"


@pytest.mark.parametrize("lang", LANGS)
async def test_build_a_segment_with_a_live_count(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    _tenant, email, gold = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await page.locator("#side-menu").get_by_role("link", name=t("Segments"), exact=True).click()
    await page.wait_for_url("**/console/segments")
    await visit.check("segments-empty")
    await page.get_by_test_id("add-segment").click()
    await page.wait_for_url("**/console/segments/new")
    count = page.get_by_test_id("segment-count").locator("strong")
    assert await count.get_attribute("data-count") == "2"  # consented to SMS
    await visit.check("segment-new")

    await without_axe_traces(page)
    await page.get_by_test_id("add-condition-r").click()
    await page.wait_for_selector('[data-node="r.1"]')
    await htmx_settled(page)
    await page.select_option('[data-testid="kind-r.1"]', "tier")
    await page.wait_for_selector('[data-node="r.1"][data-invalid="true"]')  # no tier given yet
    await htmx_settled(page)
    assert await page.get_by_test_id("rule-error").count() == 1
    await page.fill('input[name="r.1.tiers"]', "gold")
    await page.locator("#seg-name").click()  # leaving the field posts the change
    await page.wait_for_selector('[data-testid="segment-count"] strong[data-count="1"]')
    assert "王芳" in await page.get_by_test_id("segment-sample").inner_text()
    await visit.check("segment-two-conditions")

    await page.fill("#seg-name", "金卡短信" if lang == "zh-CN" else "Gold SMS")
    await without_axe_traces(page)
    await page.get_by_test_id("save-segment").click()
    await page.wait_for_url(re.compile(r"/console/segments$"))
    row = page.locator("tr[data-segment]")
    assert await row.count() == 1 and await row.locator("[data-count]").inner_text() == "1"
    await visit.check("segments-saved")

    await visit.goto(f"/console/members/{gold}")
    badge = page.get_by_test_id("member-rfm")
    assert re.sub(r"\s", "", await badge.inner_text()) == "R5F2M4"
    await visit.check("member-rfm")

    await page.locator("#side-menu").get_by_role("link", name=t("SMS and e-mail"), exact=True).click()
    await page.wait_for_url("**/console/messaging")
    assert await page.get_by_test_id("secret-sms").inner_text() == "••••9876"
    assert "AliyunSecretValue9876" not in await page.content()
    await visit.check("messaging")
