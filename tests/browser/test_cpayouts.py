"""The payouts panel in a real browser, in zh-CN and in English: a chain whose October is closed
(tests/browser/test_csettle.py's arrangement). The owner opens October, the panel loads (htmx),
"Pay all owed" (confirmed) makes one line per branch — in the bank file, since no branch is
connected to Stripe — then marks SH01's collection received; the branches page says how each
branch is paid."""

from __future__ import annotations

from typing import Any

import pytest

from lianka.web.console.i18n import Language
from lianka.web.console.settlement import month_label
from tests.browser.conftest import Served
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_csettle import arrange


@pytest.mark.parametrize("lang", LANGS)
async def test_pay_all_owed_and_mark_a_bank_line(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    _tenant, email, _ids = await arrange(browser_db)
    visit = await open_page(lang)
    page, language = visit.page, Language(lang)
    t = language.gettext
    await sign_in(visit, email)

    await visit.goto("/console/settlement/2026-10")
    await page.wait_for_selector("[data-testid=no-payouts]")  # the panel, loaded by htmx
    asked: list[str] = []

    async def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await page.get_by_test_id("pay-all").click()
    await page.wait_for_selector("table[data-testid=payouts] tbody tr")
    assert asked and month_label("2026-10", language) in asked[0]
    rows = page.locator("table[data-testid=payouts] tbody tr")
    assert await rows.count() == 3
    sh01 = page.locator("tr[data-payee='SH01']")
    assert await sh01.get_attribute("data-direction") == "collection"
    assert await sh01.get_attribute("data-method") == "bank"
    assert t("%(branch)s pays HQ") % {"branch": "SH01"} in await sh01.inner_text()
    assert "¥800.00" in await sh01.inner_text()
    await page.wait_for_selector("#payouts-panel:not([hx-trigger])")  # everything sent: no more polling
    await visit.check("payouts-panel")

    await page.get_by_test_id("mark-paid-SH01").click()
    await page.wait_for_selector("tr[data-payee='SH01'][data-status='paid']")
    assert t("Mark received") not in await page.locator("tr[data-payee='SH01']").inner_text()
    await visit.check("payouts-marked")

    await visit.goto("/console/branches")
    cell = page.get_by_test_id("payout-connection-SH02")
    assert await cell.get_attribute("data-connection") == "none"
    assert t("Not connected: paid by bank file") in await cell.inner_text()
    await visit.check("branches-payouts")
