"""Settings → Payments in the console, in zh-CN and English: the owner chooses WeChat Pay, a missing
field is refused beside it, the saved credentials come back as their last four characters only.

Screenshots land in tests/browser/artifacts/<language>/console-payments-*.png."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from lianka.billing.wechatpay_standin import merchant_keys
from lianka.web.console.i18n import Language
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_enters_wechat_pay_credentials(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    tenant, _ = await make_merchant(browser_db, "一点茶 Yidian Tea")
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await visit.goto("/console/settings/payments")
    await expect(page.get_by_test_id("payments-current")).to_contain_text(
        t("No provider yet: members cannot pay online until you choose one.")
    )
    await visit.check("console-payments-empty")

    creds, _ = merchant_keys()
    await page.select_option("#f-provider", "wechatpay")
    await page.fill("#f-mchid", creds.mchid)
    await page.fill("#f-appid", creds.appid)
    await page.fill("#f-serial_no", creds.serial_no)
    await page.fill("#f-apiv3_key", creds.apiv3_key)
    await page.get_by_test_id("save-payments").click()
    await expect(page.locator("#f-private_key-error")).to_be_visible()  # the private key is missing: said beside it
    await visit.check("console-payments-refused")

    await page.fill("#f-mchid", creds.mchid)
    await page.fill("#f-appid", creds.appid)
    await page.fill("#f-serial_no", creds.serial_no)
    await page.fill("#f-apiv3_key", creds.apiv3_key)
    await page.fill("#f-private_key", creds.private_key)
    await page.get_by_test_id("save-payments").click()
    await expect(page.get_by_test_id("hint-apiv3_key")).to_have_text(f"…{creds.apiv3_key[-4:]}")
    html = await page.content()
    assert creds.apiv3_key not in html and creds.serial_no not in html and "PRIVATE KEY" not in html
    await visit.check("console-payments-saved")
