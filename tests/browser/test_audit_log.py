"""The audit log page in a real browser, in zh-CN and in English: an owner changes a colleague's role
on the staff page, then opens the audit log (under the staff settings in the menu), finds that change
with who made it, narrows the list to one action (htmx swaps the results and keeps the address), and
sees times in the merchant's zone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import audit
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


@pytest.mark.parametrize("lang", LANGS)
async def test_an_owner_reads_and_filters_the_audit_log(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, _slug = await make_merchant(browser_db, "审计茶铺")
    email = await make_staff(browser_db, tenant, "owner")
    colleague = await make_staff(browser_db, tenant, "cashier")
    async with browser_db.uow(system=True) as uow:
        await uow.session.execute(text("UPDATE staff_users SET display_name = '李店长' WHERE email = :e"), {"e": email})
        await uow.commit()
    async with browser_db.uow(tenant) as uow:
        for month in ("2026-09", "2026-10"):  # earlier entries, by the scheduled close
            await audit.record(uow, audit.SCHEDULED, "period.closed", object_kind="chain_period", object_id=month)
        await uow.commit()
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    # a real action: the cashier becomes an analyst
    await visit.goto("/console/staff")
    await page.get_by_role("link", name=f"{t('Change')} {colleague}").click()
    await page.select_option("#e-role", "analyst")
    await page.locator("#staff-edit-form").get_by_role("button", name=t("Save")).click()
    await page.wait_for_selector(f"tr[data-staff='{colleague}']:not(.staff-edit)")

    await page.locator("a[href='/console/settings/audit']").first.click()  # in the menu, by the staff pages
    await page.wait_for_selector("[data-testid=audit-table]")
    first = page.locator("[data-testid=audit-table] tbody tr").first
    assert await first.get_attribute("data-action") == "staff.role_changed"
    text_of_first = await first.inner_text()
    assert "李店长" in text_of_first and t("Staff role changed") in text_of_first
    assert '"analyst"' in text_of_first and '"cashier"' in text_of_first
    assert await page.locator("[data-testid=audit-table] tbody tr").count() == 3
    await visit.check("audit-log")

    await page.select_option("#f-action", "period.closed")
    await page.wait_for_url(lambda url: "action=period.closed" in url)
    await page.wait_for_function("document.querySelectorAll('[data-testid=audit-table] tbody tr').length === 2")
    rows = page.locator("[data-testid=audit-table] tbody tr")
    assert {await rows.nth(i).get_attribute("data-action") for i in range(2)} == {"period.closed"}
    assert t("System job") in await rows.first.inner_text()
    await visit.check("audit-log-filtered")
