"""Automations in a real browser, zh-CN and English: from the Marketing menu, a win-back automation
is created (an unknown template variable is refused beside the field), it appears in the list with
its stats, is switched off and on, and after a run of the engine its stats show the member fired,
the coupon and the points given."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.tenants.marketing import automations
from lianka.web.console.i18n import Language
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import without_axe_traces


async def arrange(db: Any) -> tuple[uuid.UUID, str]:
    from lianka.platform.identity.members import _find_or_create_person

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    async with db.uow(system=True) as uow:
        m = await _find_or_create_person(uow, f"+8613{uuid.uuid4().int % 10**9:09d}")
        await uow.set_tenant(tenant)
        await uow.session.execute(text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"),
                                  {"t": tenant, "m": m})  # fmt: skip
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, name, last_purchase_at) VALUES (:t, :m, '王芳', :at)"),
            {"t": tenant, "m": m, "at": datetime.now(UTC) - timedelta(days=120)},
        )  # fmt: skip
        await uow.commit()
    return tenant, await make_staff(db, tenant, "owner")


@pytest.mark.parametrize("lang", LANGS)
async def test_create_toggle_and_read_an_automation(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    tenant, email = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await page.locator("#side-menu").get_by_role("link", name=t("Automations"), exact=True).click()
    await page.wait_for_url("**/console/automations")
    await visit.check("automations-empty")
    await page.get_by_test_id("add-automation").click()
    await page.wait_for_url("**/console/automations/new")
    name = "老客召回" if lang == "zh-CN" else "Win-back"
    await page.fill("#f-name", name)
    await page.select_option("#f-trigger", "win_back")
    await page.fill("#f-days", "90")
    await page.select_option("#f-channel", "portal")
    await page.fill("#f-subject", "好久不见")
    await page.fill("#f-template", "{name}，好久不见 {password}")
    await page.fill("#f-points", "20")
    await without_axe_traces(page)
    await page.get_by_test_id("save-automation").click()
    await page.wait_for_selector("#f-template[aria-invalid='true']")
    assert "password" in await page.locator("label[for='f-template'] .field-error").inner_text()
    await visit.check("automation-refused")
    await page.fill("#f-template", "{name}，好久不见，送您 20 积分")
    await without_axe_traces(page)
    await page.get_by_test_id("save-automation").click()
    await page.wait_for_url(re.compile(r"/console/automations$"))
    row = page.locator(f"tr[data-automation='{name}']")
    assert await row.count() == 1
    toggle = page.get_by_test_id(f"toggle-{name}")
    assert await toggle.inner_text() == t("On")
    await without_axe_traces(page)
    await toggle.click()
    await page.wait_for_selector(f"[data-testid='toggle-{name}'][aria-pressed='false']")
    await without_axe_traces(page)
    await page.get_by_test_id(f"toggle-{name}").click()
    await page.wait_for_selector(f"[data-testid='toggle-{name}'][aria-pressed='true']")

    done = await automations.run(browser_db, tenant)  # the daily job's step
    assert done.fired == 1 and done.messages == 1
    # the served relay and worker deliver the portal message; the list counts it once it is sent
    for _ in range(120):
        async with browser_db.uow(tenant) as uow:
            sent = await uow.session.scalar(
                text("SELECT count(*) FROM campaign_messages WHERE status IN ('sent', 'delivered')")
            )
        if sent:
            break
        await asyncio.sleep(0.5)
    await visit.goto("/console/automations")
    cells = [await c.inner_text() for c in await row.locator("td").all()]
    assert cells[3:7] == ["1", "1", "0", "20"], cells  # fired, sent, coupons, points
    assert await page.locator("tr[data-automation]").count() == 4  # with the three defaults
    await visit.check("automations-list")
