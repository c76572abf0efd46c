"""Settlement drill-down in a real browser, zh-CN and English (issue 17): the month's summary shows the
stored-value float trend as a chart; from SH03's statement the owner opens its "stored value collected"
line and sees the one late top-up behind it (amount, business time, late), then goes back."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.settlement import services as settlement
from lianka.platform import audit
from lianka.web.console import i18n
from lianka.web.console.i18n import Language
from lianka.web.console.settlement import month_label
from tests.browser.conftest import Served
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_csettle import arrange, at


@pytest.mark.parametrize("lang", LANGS)
async def test_float_trend_and_a_line_down_to_its_entries(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, email, ids = await arrange(browser_db)
    await settlement.close_now(browser_db, tenant, "2026-11", actor=audit.SCHEDULED)
    async with browser_db.uow(tenant) as uow:
        entry = await uow.session.scalar(text("SELECT entry_id FROM top_ups WHERE branch_id = :b"), {"b": ids["SH03"]})
    visit = await open_page(lang)
    page, language = visit.page, Language(lang)
    t = language.gettext
    await sign_in(visit, email)

    # the month: the float at the end of October and of November, drawn
    await visit.goto("/console/settlement/2026-11")
    trend = page.get_by_test_id("float-trend")
    await trend.locator(".chart[data-drawn] canvas").wait_for()
    label = await trend.locator(".chart").get_attribute("aria-label") or ""
    assert month_label("2026-10", language) in label and month_label("2026-11", language) in label
    await visit.check("settlement-float-trend")

    # SH03's statement: the collected line is a link to its entries
    await page.get_by_test_id("statement-SH03").click()
    await page.wait_for_url(f"**/statements/{ids['SH03']}")
    await page.locator("tr[data-line='stored_value_collected'] a").click()
    await page.wait_for_url("**/lines/stored_value_collected")
    assert await page.locator("h1").inner_text() == t("Stored value collected")
    totals = page.get_by_test_id("line-totals")
    assert await totals.get_attribute("data-entries") == "1"
    assert await totals.get_attribute("data-amount") == "-50000"
    rows = page.locator("[data-testid=line-entries] tbody tr")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-entry") == str(entry)
    text_of_row = await rows.first.inner_text()
    assert "-¥500.00" in text_of_row and t("Late") in text_of_row
    assert i18n.localtime(at("2026-10-31T20:00:00+08:00"), language, "Asia/Shanghai", "short") in text_of_row
    await visit.check("settlement-line-entries")

    await page.get_by_test_id("back-to-statement").click()
    await page.wait_for_url(f"**/statements/{ids['SH03']}")
