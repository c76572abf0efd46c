"""The owner's billing page in a real browser, in zh-CN and in English: on the trial, the owner
opens 账单/Billing from the menu, sees what the status means and the usage bars, subscribes to Shop
(the Stripe stand-in's hosted checkout → Pay), comes back to an Active subscription with its first
invoice, upgrades to Chain, and sets the billing e-mail. A restricted merchant trying to add a branch
gets a banner with the link to the billing page, while its till still works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from lianka.billing import services as billing
from lianka.tenants.services import branches as branch_svc
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


async def until(check: Any) -> None:
    """Reload until ``check()`` holds (the worker applies Stripe's webhook in a moment)."""
    deadline = asyncio.get_running_loop().time() + 60  # CI-sized: two shared cores under the whole suite
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("lang", LANGS)
async def test_subscribe_pay_upgrade_and_set_the_billing_email(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, _ = await make_merchant(browser_db, "一点茶 Yidian Tea")
    await branch_svc.open_branch(
        browser_db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai")
    )
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await page.locator("#side-menu").get_by_role("link", name=t("Billing"), exact=True).click()
    await page.wait_for_url("**/console/billing")
    assert await page.locator("#billing").get_attribute("data-status") == "trialing"
    assert await page.locator("[data-limit='branches'] progress").get_attribute("value") == "1"
    await visit.check("billing-trial")

    await page.get_by_test_id("subscribe-shop").click()
    await page.wait_for_url("**/checkout/**")
    await page.get_by_role("button", name="Pay").click()
    await page.wait_for_url("**/console/billing?billing=subscribed")

    async def active() -> bool:
        await page.reload()
        status: str | None = await page.locator("#billing").get_attribute("data-status")
        return status == "active"

    await until(active)
    assert await page.locator("[data-plan='shop']").get_attribute("class") == "plan-card current"
    assert await page.get_by_test_id("billing-invoices").locator("tbody tr").count() == 1
    await visit.check("billing-active")

    await page.get_by_test_id("plan-chain").click()
    await page.wait_for_url("**/console/billing?billing=plan-requested")

    async def on_chain() -> bool:
        # the plan and its proration invoice arrive as separate webhook events: wait for both
        await page.reload()
        card: str | None = await page.locator("[data-plan='chain']").get_attribute("class")
        invoices = await page.get_by_test_id("billing-invoices").locator("tbody tr").count()
        return card == "plan-card current" and invoices >= 2

    await until(on_chain)
    assert await page.get_by_test_id("billing-invoices").locator("tbody tr").count() == 2  # + the proration

    await page.fill("#f-email", "finance@yidian.example")
    await page.get_by_test_id("billing-email-save").click()
    await page.wait_for_url("**/console/billing?billing=email-saved")
    assert await page.locator("#f-email").input_value() == "finance@yidian.example"
    await visit.check("billing-upgraded")


@pytest.mark.parametrize("lang", LANGS)
async def test_a_restricted_merchant_sees_a_banner_with_the_way_to_pay(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, _ = await make_merchant(browser_db, "欠费小店 Overdue Shop")
    await branch_svc.open_branch(
        browser_db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai")
    )
    async with browser_db.uow(tenant) as uow:
        await billing.ensure_account(uow, tenant)
        await uow.session.execute(
            text("UPDATE billing_accounts SET status = 'restricted', past_due_since = now() WHERE tenant_id = :t"),
            {"t": tenant},
        )
        await uow.commit()
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await visit.goto("/console/branches")
    await page.get_by_test_id("add-branch").click()
    await page.fill("#f-code", "SH02")
    await page.fill("#f-name", "静安寺店")
    await page.locator("#branch-form").get_by_role("button", name=t("Save")).click()
    banner = page.get_by_role("alert").filter(has_text=t("See plans and billing"))
    await banner.wait_for()
    assert await banner.get_by_role("link").get_attribute("href") == "/console/billing"
    await visit.check("billing-restricted-banner")
    async with browser_db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM branches")) == 1  # nothing was added

    await banner.get_by_role("link").click()
    await page.wait_for_url("**/console/billing")
    assert await page.locator("#billing").get_attribute("data-status") == "restricted"
    await visit.check("billing-restricted")
