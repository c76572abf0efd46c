"""Lucky draws in a real browser, zh-CN and English: from the Marketing menu a draw is created (a
prize with a 0 % chance is refused beside its field), it appears in the list with its stock left and
draws count, and is switched off and on. Screenshots: tests/browser/artifacts/<language>/draws-*.png."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lianka.web.console.i18n import Language
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import without_axe_traces


@pytest.mark.parametrize("lang", LANGS)
async def test_create_and_switch_a_lucky_draw(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    tenant, _ = await make_merchant(browser_db, "一点茶 Yidian Tea")
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await page.locator("#side-menu").get_by_role("link", name=t("Lucky draws"), exact=True).click()
    await page.wait_for_url("**/console/draws")
    await visit.check("draws-empty")
    await page.get_by_test_id("add-draw").click()
    await page.wait_for_url("**/console/draws/new")
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    name = "每日抽奖" if lang == "zh-CN" else "Daily draw"
    await page.fill("#f-name", name)
    await page.fill("#f-starts_at", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#f-ends_at", (now + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("[id='f-prizes[0].name']", "20 积分")
    await page.fill("[id='f-prizes[0].chance_bp']", "0")
    await page.fill("[id='f-prizes[0].stock']", "5")
    await page.fill("[id='f-prizes[0].points']", "20")
    await page.fill("[id='f-prizes[1].name']", "随行杯")
    await page.select_option("[id='f-prizes[1].kind']", "gift")
    await page.fill("[id='f-prizes[1].chance_bp']", "1.5")
    await page.fill("[id='f-prizes[1].stock']", "2")
    await page.fill("[id='f-prizes[1].gift']", "到店领取")
    await without_axe_traces(page)
    await page.get_by_test_id("save-draw").click()
    await page.wait_for_selector("[id='f-prizes[0].chance_bp'][aria-invalid='true']")
    assert (
        t("Enter a chance from 0.01 to 100 percent.")
        in await page.locator("[id='f-prizes[0].chance_bp-error']").inner_text()
    )
    await visit.check("draws-refused")
    await page.fill("[id='f-prizes[0].chance_bp']", "30")
    await without_axe_traces(page)
    await page.get_by_test_id("save-draw").click()
    await page.wait_for_url("**/console/draws")
    assert await page.get_by_test_id("stock-20 积分").inner_text() == "5 / 5"
    assert await page.get_by_test_id("stock-随行杯").inner_text() == "2 / 2"
    assert await page.get_by_test_id(f"draws-{name}").inner_text() == "0"
    toggle = page.get_by_test_id(f"toggle-{name}")
    assert await toggle.inner_text() == t("On")
    await without_axe_traces(page)
    await toggle.click()
    await page.wait_for_selector(f"[data-testid='toggle-{name}'][aria-pressed='false']")
    await visit.check("draws-list")
