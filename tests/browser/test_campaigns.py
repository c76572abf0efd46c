"""A campaign in a real browser, zh-CN and English: from the Marketing menu, a portal-inbox campaign
to a segment with a control group is created (a template naming an unknown variable is refused
beside the field), previewed, sent — the served worker delivers it through the outbox — and its
results page shows the counts, the recipients against the control group in yuan, and the chart."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.tenants.marketing import services as segments
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import without_axe_traces

EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}
NAMES = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞", "徐明", "孙丽"]


async def arrange(db: Any) -> tuple[uuid.UUID, str, list[uuid.UUID]]:
    from lianka.platform.identity.members import _find_or_create_person

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    members = []
    async with db.uow(system=True) as uow:
        for _ in NAMES:
            members.append(await _find_or_create_person(uow, f"+8613{uuid.uuid4().int % 10**9:09d}"))
        await uow.set_tenant(tenant)
        for name, m in zip(NAMES, members, strict=True):
            await uow.session.execute(text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"),
                                      {"t": tenant, "m": m})  # fmt: skip
            await uow.session.execute(
                text("INSERT INTO member_profiles (tenant_id, member_id, name, tier_code) VALUES (:t, :m, :n, 'gold')"),
                {"t": tenant, "m": m, "n": name},
            )
        await uow.commit()
    await segments.create_segment(db, tenant, "全部会员", EVERYONE)
    return tenant, await make_staff(db, tenant, "owner"), members


async def sales_after(db: Any, tenant: uuid.UUID, members: list[uuid.UUID]) -> None:
    """Every other member buys ¥12.34 a day after the start (inside the 7-day window)."""
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'B1', '一店') RETURNING id"), {"t": tenant}
        )
        for m in members[::2]:
            await uow.session.execute(
                text("INSERT INTO sales (tenant_id, member_id, branch_id, business_time, currency, gross, due, "
                     "qualifying_spend, programme_version) VALUES (:t, :m, :b, :at, 'CNY', 1234, 1234, 1234, 1)"),
                {"t": tenant, "m": m, "b": branch, "at": datetime.now(UTC) + timedelta(days=1)},
            )  # fmt: skip
        await uow.commit()


@pytest.mark.parametrize("lang", LANGS)
async def test_create_send_and_read_a_campaign(open_page: OpenPage, served: Served, browser_db: Any, lang: str) -> None:
    tenant, email, members = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await page.locator("#side-menu").get_by_role("link", name=t("Campaigns"), exact=True).click()
    await page.wait_for_url("**/console/campaigns")
    await visit.check("campaigns-empty")
    await page.fill("#f-frequency_cap", "3")
    await without_axe_traces(page)
    await page.get_by_test_id("save-cap").click()
    await page.wait_for_selector("#campaigns-panel .flash")
    assert await page.input_value("#f-frequency_cap") == "3"
    await page.get_by_test_id("add-campaign").click()
    await page.wait_for_url("**/console/campaigns/new")
    await page.fill("#f-name", "会员日" if lang == "zh-CN" else "Member day")
    await page.select_option("#f-segment_id", index=1)
    await page.select_option("#f-channel", "portal")
    await page.fill("#f-subject", "会员日")
    await page.fill("#f-template_a", "{name}，您好 {password}")
    await page.fill("#f-holdout_pct", "25")
    await page.fill("#f-message_cost", "0.05")
    await without_axe_traces(page)
    await page.get_by_test_id("save-campaign").click()
    await page.wait_for_selector("#f-template_a[aria-invalid='true']")
    assert "password" in await page.locator("#f-template_a-error, label[for='f-template_a'] .field-error").inner_text()
    await visit.check("campaign-refused")
    await page.fill("#f-template_a", "{name}，会员日全场九折")
    await page.fill("#f-template_b", "{name}，会员日第二杯半价")
    await page.fill("#f-split_a_pct", "50")
    await without_axe_traces(page)
    await page.get_by_test_id("save-campaign").click()
    await page.wait_for_url(re.compile(r"/console/campaigns/[0-9a-f-]{36}$"))
    assert await page.get_by_test_id("preview-a").inner_text() == "A 张三，会员日全场九折"
    assert await page.get_by_test_id("preview-b").inner_text() == "B 张三，会员日第二杯半价"
    await visit.check("campaign-draft")

    await without_axe_traces(page)
    await page.get_by_test_id("send-campaign").click()
    await page.wait_for_url(re.compile(r"/console/campaigns/[0-9a-f-]{36}$"))
    assert await page.get_by_test_id("campaign-status").inner_text() == t("Sending")
    recipients = len(members) - int(await page.locator("[data-testid='attribution'] tbody tr").nth(1)
                                     .locator("td").first.inner_text())  # fmt: skip
    for _ in range(60):  # the served relay and worker deliver the messages
        await visit.goto(page.url.removeprefix(visit.base))
        if await page.locator("[data-sent]").inner_text() == str(recipients):
            break
        await asyncio.sleep(0.5)
    assert await page.locator("[data-sent]").inner_text() == str(recipients)
    await sales_after(browser_db, tenant, members)
    await visit.goto(page.url.removeprefix(visit.base))
    table = await page.get_by_test_id("attribution").inner_text()
    shown = [Decimal(v.replace(",", "")) for v in re.findall(r"¥([0-9,]+\.[0-9]{2})", table)]
    assert len(shown) == 2 and sum(shown) == Decimal("12.34") * len(members[::2])  # yuan, both groups
    assert await page.locator(".chart[data-drawn='true']").count() == 1
    assert await page.get_by_test_id("variants").locator("tbody tr").count() == 2
    await visit.check("campaign-results")
