"""Promotions at the till in a real browser, in zh-CN and in English (decision 0043): the owner adds a
满减 promotion on the programme's promotions tab (a bad step is refused beside its field first), a
cashier sells to a member at the web till and sees the promotion in the live quote and on the
receipt. Screenshots per language in tests/browser/artifacts/<lang>/ (promotions-*, till-promotion-*),
checked with axe-core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect

from lianka.web.console.i18n import Language
from tests.browser.conftest import Visit, make_staff
from tests.browser.test_console_journeys import sign_in
from tests.browser.test_cprog import arrange

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]


@pytest.mark.parametrize("lang", LANGS)
async def test_an_owner_adds_a_spend_and_save_and_the_till_applies_it(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    tenant, email, card = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await visit.goto("/console/programme/promotions")
    await expect(page.locator("nav.tabs").get_by_role("link", name=t("Promotions"), exact=True)).to_be_visible()
    name = "满100减10" if lang == "zh-CN" else "¥10 off ¥100"
    await page.fill("#f-promotions-0-code", "mj")
    await page.fill("#f-promotions-0-name", name)
    await page.select_option("#f-promotions-0-kind", "spend_save")
    await page.fill("#f-promotions-0-steps", "100:200")
    await page.get_by_test_id("publish").click()
    await page.wait_for_selector("#f-promotions-0-steps-error")
    assert await page.locator("#f-promotions-0-steps-error").inner_text() == t(
        "A saving cannot be more than its spend."
    )
    await visit.check("promotions-error")
    await page.fill("#f-promotions-0-steps", "100:10, 200:30")
    await page.get_by_test_id("publish").click()
    await page.wait_for_url("**/console/programme")
    await visit.goto("/console/programme/promotions")
    assert await page.input_value("#f-promotions-0-steps") == "100.00:10.00, 200.00:30.00"
    await visit.check("promotions")

    cashier = await open_page(lang)
    await sign_in(cashier, await make_staff(browser_db, tenant, "cashier"))
    till = cashier.page
    await till.wait_for_url("**/console/till")
    await expect(till.locator("#f-q")).to_be_focused()
    await till.keyboard.type(card)
    await till.keyboard.press("Enter")
    await till.wait_for_selector("[data-member]")
    await till.fill("#f-amount", "250")
    await expect(till.get_by_test_id("quote-due")).to_have_text("¥220.00")
    promo = till.locator("#quote [data-testid=promotion][data-code=mj]")
    await expect(promo).to_contain_text(name)
    await expect(promo).to_contain_text("−¥30.00")
    await cashier.check("till-promotion-quote")
    await till.get_by_test_id("take-sale").click()
    await till.wait_for_selector("[data-testid=receipt]")
    assert await till.get_by_test_id("receipt-due").inner_text() == "¥220.00"
    await expect(till.locator("[data-testid=receipt] [data-testid=promotion][data-code=mj]")).to_contain_text(name)
    await cashier.check("till-promotion-receipt")
