"""The SMS replies page in a real browser, zh-CN and English (decision 0045): a marketer opens it from
the menu, sees the replies with masked phones and what each did, and filters the opt-outs.
Screenshots: tests/browser/artifacts/<language>/sms-replies*.png."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.web.console.i18n import Language
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


async def arrange(db: Any) -> str:
    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    now = datetime.now(UTC)
    rows = [("TD", "unsubscribe"), ("退订", "unsubscribe"), ("周末营业吗？", "stored"), ("thanks!", "stored")]
    async with db.uow(tenant) as uow:
        for i, (content, action) in enumerate(rows):
            await uow.session.execute(
                text(
                    "INSERT INTO sms_replies (tenant_id, provider, reply_id, phone, content, action, payload, "
                    "received_at) VALUES (:t, 'aliyun', :r, :p, :c, :a, CAST('{}' AS jsonb), :at)"
                ),
                {"t": tenant, "r": uuid.uuid4().hex, "p": f"+8613912345{i:03d}", "c": content, "a": action,
                 "at": now - timedelta(hours=i)},
            )  # fmt: skip
        await uow.commit()
    return await make_staff(db, tenant, "analyst")


@pytest.mark.parametrize("lang", LANGS)
async def test_a_marketer_reads_and_filters_sms_replies(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    t = Language(lang).gettext
    email = await arrange(browser_db)
    visit = await open_page(lang)
    page = visit.page
    await sign_in(visit, email)
    await page.locator("#side-menu").get_by_role("link", name=t("SMS replies"), exact=True).click()
    await page.wait_for_url("**/console/messaging/replies")
    table = page.get_by_test_id("replies")
    assert await table.locator("tbody tr").count() == 4
    text_of = await table.inner_text()
    assert "+86139****5000" in text_of and "+8613912345000" not in text_of
    assert t("Unsubscribed") in text_of and t("Stored") in text_of
    await visit.check("sms-replies")
    await page.select_option("#f-action", "unsubscribe")
    await page.get_by_test_id("reply-filter").locator("button[type=submit]").click()
    await page.wait_for_url("**/console/messaging/replies?action=unsubscribe")
    assert await table.locator("tbody tr").count() == 2
    await visit.check("sms-replies-unsubscribed")
    assert await table.locator("tbody tr").first.get_attribute("data-action") == "unsubscribe"
