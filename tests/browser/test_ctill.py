"""The "done when" journey in a real browser, in zh-CN and English: a tea-shop owner signs up,
confirms the e-mail, signs in, adds a branch, chooses the programme template for the trade, makes
the first sale at the web till to a new customer who joins by phone, and sees the checklist done —
then invites a cashier and connects a POS client. A second test works the till by keyboard with a
member: a scanner's text + Enter, a top-up, a double-clicked sale that books once, a refund.

Screenshots of every page land in tests/browser/artifacts/<language>/ (till-*, programme-templates,
staff, clients, checklist-*); axe-core and the CSP checks run on each (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text

from lianka.platform import audit
from lianka.tenants.services import programme_templates
from lianka.web.console.i18n import Language
from tests.browser.conftest import PASSWORD, Served, Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import browser_db_tenant, sign_in

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]


def a_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


async def done(page: Any, step: str) -> bool:
    return bool(await page.locator(f"[data-step={step}]").get_attribute("data-done") == "true")


@pytest.mark.parametrize("lang", LANGS)
async def test_sign_up_to_the_first_sale_at_the_web_till(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext

    # sign up as a tea shop, confirm the e-mail, sign in
    slug = f"tea-{uuid.uuid4().hex[:8]}"
    email = f"{slug}@example.com"
    await visit.goto("/sign-up")
    await page.fill("#f-merchant_name", "小王奶茶" if lang == "zh-CN" else "Wang's Tea")
    await page.fill("#f-slug", slug)
    await page.fill("#f-email", email)
    await page.fill("#f-password", PASSWORD)
    await page.select_option("#f-trade", "tea")
    await page.locator("form[action='/sign-up'] button[type=submit]").click()
    await page.wait_for_selector(f"text={email}")
    await page.goto(await asyncio.to_thread(served.mailed_link, email, "/verify-email"))
    await sign_in(visit, email)
    await page.wait_for_url("**/console/start")

    # add a branch, from the checklist
    await page.locator("[data-step=branches] a").click()
    await page.wait_for_url("**/console/branches")
    await page.get_by_test_id("add-branch").click()
    await page.fill("#f-code", "SH01")
    await page.fill("#f-name", "人民广场店" if lang == "zh-CN" else "People's Square")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector("tr[data-branch=SH01]")

    # choose the programme template: the one for tea comes first
    await visit.goto("/console/start")
    await page.locator("[data-step=programme] a").click()
    await page.wait_for_url("**/console/start/programme")
    first = page.locator("[data-template]").first
    assert await first.get_attribute("data-template") == "tea"
    assert t("For your trade") in await first.inner_text()
    await visit.check("programme-templates")
    await page.get_by_test_id("choose-tea").click()
    await page.wait_for_url("**/console/start")
    published = t("Your programme is published: members earn from the next sale.")
    assert await page.locator("#flash").inner_text() == published
    assert await done(page, "programme") and not await done(page, "live")
    await visit.check("checklist-programme")

    # the first sale, at the web till, to a customer who joins by phone
    await page.locator("[data-step=live] a").click()
    await page.wait_for_url("**/console/till")
    await expect(page.locator("#f-q")).to_be_focused()  # the find box has the focus
    await visit.check("till")
    phone = a_phone()
    await page.keyboard.type(phone)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("[data-newcomer]")
    await expect(page.locator("#f-amount")).to_be_focused()  # typing goes on in the amount
    await page.keyboard.type("28")
    await page.wait_for_selector("[data-testid=quote-due]")
    assert await page.get_by_test_id("quote-due").inner_text() == "¥28.00"
    assert await page.get_by_test_id("quote-points").inner_text() == "28"
    await visit.check("till-new-customer")
    await page.keyboard.press("Enter")  # Enter takes the sale
    await page.wait_for_selector("[data-testid=receipt]")
    receipt = await page.get_by_test_id("receipt").inner_text()
    assert t("Welcome! The customer is now a member.") in receipt and "¥28.00" in receipt
    assert await page.get_by_test_id("receipt-points-balance").inner_text() == str(50 + 28)  # welcome + sale
    await page.wait_for_selector("#recent-sales tr[data-sale]")
    await expect(page.locator("#f-q")).to_be_focused()  # ready for the next customer
    await visit.check("till-receipt")

    await page.locator("#side-menu").get_by_role("link", name=t("Getting started"), exact=True).click()
    await page.wait_for_url("**/console/start")
    assert await done(page, "branches") and await done(page, "programme") and await done(page, "live")

    # invite a cashier, then connect a POS client (its secret shown once, with a copy button)
    await page.locator("[data-step=staff] a").click()
    await page.wait_for_url("**/console/staff")
    await page.get_by_test_id("invite-staff").click()
    cashier = f"cashier-{uuid.uuid4().hex[:8]}@example.com"
    await page.fill("#f-email", "not-an-email")
    await page.locator("#staff-form button[type=submit]").click()
    await page.wait_for_selector("#f-email-error")
    assert await page.locator("#f-email-error").inner_text() == t("Enter a valid e-mail address.")
    await page.fill("#f-email", cashier)
    await page.select_option("#f-role", "cashier")
    await page.locator("#staff-form button[type=submit]").click()
    await page.wait_for_selector(f"tr[data-staff='{cashier}']")
    assert await page.locator("#staff-panel .flash").inner_text() == t("Invitation sent.")
    await visit.check("staff")

    await page.locator("#side-menu").get_by_role("link", name=t("POS clients"), exact=True).click()
    await page.wait_for_url("**/console/clients")
    await page.get_by_test_id("new-client").click()
    await page.fill("#f-name", "Till 1")
    await page.locator("#client-form button[type=submit]").click()
    await page.wait_for_selector("[data-testid=client-secret]")
    secret = await page.get_by_test_id("client-secret").input_value()
    assert secret.startswith("lks_")
    await page.locator("[data-copy]").click()
    await expect(page.locator("[data-copy]")).to_have_text(t("Copied"))
    await visit.check("clients")
    await visit.goto("/console/start")
    assert await page.locator("[data-step][data-done=false]").count() == 0  # the new member counts as members too
    await visit.check("checklist-live")

    tenant = await browser_db_tenant(browser_db, slug)
    async with browser_db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM sales")) == 1
        assert await uow.session.scalar(text("SELECT count(*) FROM memberships")) == 1


async def _tea_shop(db: Any) -> tuple[uuid.UUID, str, str]:
    """A tea shop with a branch, the tea template and a member; (merchant, cashier's e-mail, card)."""
    from lianka.platform.identity.members import _find_or_create_person, normalise_phone
    from lianka.tenants.services import branches as branch_svc

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    await programme_templates.apply_template(
        db, tenant, "tea", language="zh-CN", idempotency_key=uuid.uuid4().hex, actor=audit.operator("test")
    )
    email = await make_staff(db, tenant, "cashier")
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, normalise_phone(a_phone()))
        card = await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": member})
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": tenant, "m": member}
        )
        await uow.commit()
    return tenant, email, str(card)


@pytest.mark.parametrize("lang", LANGS)
async def test_a_cashier_works_the_till_with_the_keyboard(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    tenant, email, card = await _tea_shop(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.wait_for_url("**/console/till")
    # the scanner's keystrokes land where the focus is: wait for the page to give it to the find box
    await expect(page.locator("#f-q")).to_be_focused()

    # a scanner types the card number and Enter
    await page.keyboard.type(card)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("[data-member]")
    assert await page.get_by_test_id("member-card-number").inner_text() == card

    # top up 100 → 110 (the plan's bonus)
    await page.select_option("#f-plan", "100-110")
    await page.get_by_test_id("top-up").click()
    await page.wait_for_selector("[data-testid=top-up-receipt]")
    await expect(page.get_by_test_id("stored-value")).to_have_text("¥110.00")

    # a basket paid partly with stored value; an error first, beside its field
    await page.fill("#f-amount", "36")
    await page.fill("#f-stored_value", "500")
    await page.wait_for_selector("[data-testid=quote-errors]")
    await page.get_by_test_id("take-sale").click()
    await page.wait_for_selector("#f-stored_value-error")
    assert await page.locator("#f-stored_value-error").inner_text() == t(
        "Stored value cannot pay more than what is left of the bill."
    )
    await visit.check("till-error")
    await page.fill("#f-stored_value", "20")
    await expect(page.get_by_test_id("quote-due")).to_have_text("¥16.00")
    await page.get_by_test_id("take-sale").dblclick()  # a double click books once
    await page.wait_for_selector("[data-testid=receipt]")
    assert await page.get_by_test_id("receipt-due").inner_text() == "¥16.00"
    await visit.check("till-member-receipt")

    # refund part of it from the receipt
    await page.get_by_role("link", name=t("Refund this sale")).click()
    await page.wait_for_selector("#refund-form")
    await page.locator("#refund-form input[name=mode][value=amount]").check()
    await page.fill("#f-refund_amount", "10")
    await page.get_by_test_id("refund").click()
    await page.wait_for_selector("[data-testid=refund-receipt]")
    assert await page.get_by_test_id("refund-amount").inner_text() == "¥10.00"
    await visit.check("till-refund")

    async with browser_db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT due, refunded, status FROM sales"))).all()
    assert [tuple(r) for r in rows] == [(1600, 1000, "partially_refunded")]
