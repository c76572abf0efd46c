"""The member portal's "done when" journey on a phone-sized screen (390 x 844), in zh-CN and English:
a newcomer opens a branch's join link, gets a code by text message (read from the web process's
log, as a developer would with the console SMS backend), accepts the privacy notice, chooses a
consent and joins; the card shows the rotating QR code; a cashier scans that code at the console's
web till and sells; the member's balances and history then show the points.

Screenshots land in tests/browser/artifacts/<language>/portal-*.png; axe-core and the CSP checks run
on each page (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect

from lianka.platform import audit
from lianka.platform.identity.members import normalise_phone
from lianka.tenants.services import programme_templates
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import sign_in

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]
PHONE_SIZE = {"width": 390, "height": 844}


def texted_code(served: Served, phone: str, marker: str = "入会验证码是 ", timeout: float = 20) -> str:
    """The newest code texted to ``phone``, from the web process's log (the console SMS backend)."""
    log = served.worker_log.parent / "web.log"
    e164 = normalise_phone(phone)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text(errors="replace").splitlines() if e164 in line and marker in line]
        if lines:
            found = re.search(re.escape(marker) + r"(\d{6})", lines[-1])
            assert found, lines[-1]
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no code texted to {phone} in {log}")


async def _tea_shop(db: Any) -> tuple[uuid.UUID, str, str]:
    """A tea shop with a branch and the tea template (free join, a welcome bonus); (id, slug, cashier)."""
    from lianka.tenants.services import branches as branch_svc

    tenant, slug = await make_merchant(db, "一点茶 Yidian Tea")
    await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    await programme_templates.apply_template(
        db, tenant, "tea", language="zh-CN", idempotency_key=uuid.uuid4().hex, actor=audit.operator("test")
    )
    return tenant, slug, await make_staff(db, tenant, "cashier")


@pytest.mark.parametrize("lang", LANGS)
async def test_join_from_the_link_then_a_sale_at_the_till_shows_on_the_phone(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    _, slug, cashier = await _tea_shop(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await page.set_viewport_size(PHONE_SIZE)

    # the branch's join link (what its poster's QR code opens)
    await visit.goto(f"/join/{slug}/SH01")
    assert await page.get_by_test_id("join-merchant").inner_text() == "一点茶 Yidian Tea"
    assert await page.get_by_test_id("join-branch").inner_text() == "人民广场店"
    await visit.check("portal-join")
    phone = f"139{random.randrange(10**8):08d}"
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("send-code").click()
    await page.wait_for_selector("#f-code")
    assert await page.get_by_test_id("flash").inner_text() == t("We have sent a code to your phone.")
    code = await asyncio.to_thread(texted_code, served, phone)

    # the privacy notice is required: refused beside its box first
    await page.fill("#f-code", code)
    await page.locator("#f-consent_sms").check()
    await page.get_by_test_id("join").click()
    await page.wait_for_selector("#f-privacy-error")
    assert await page.locator("#f-privacy-error").inner_text() == t("Accept the privacy notice to join.")
    assert await page.locator("#f-consent_sms").is_checked()  # the choice is kept
    await visit.check("portal-join-error")
    await page.fill("#f-code", code)
    await page.locator("#f-privacy").check()
    await page.fill("#f-name", "王小明" if lang == "zh-CN" else "Ming")
    await page.get_by_test_id("join").click()
    await page.wait_for_url("**/m")

    # the card: its number, the rotating QR code, the merchant it works at
    assert await page.get_by_test_id("flash").inner_text() == t(
        "Welcome! You are a member now: show this card at the till."
    )
    card = await page.get_by_test_id("card-number").inner_text()
    token = await page.get_by_test_id("member-qr").get_attribute("data-token")
    assert token and token.startswith(f"LK1.{card}.")
    assert await page.locator("#member-qr svg").count() == 1
    await expect(page.locator(f"a[data-merchant='{slug}']")).to_have_text("一点茶 Yidian Tea")
    await visit.check("portal-card")

    # a cashier scans the member's code at the web till and sells ¥28
    till = await open_page(lang)
    await sign_in(till, cashier)
    await till.page.wait_for_url("**/console/till")
    await expect(till.page.locator("#f-q")).to_be_focused()
    await till.page.keyboard.type(token)  # a scanner types the QR's text and Enter
    await till.page.keyboard.press("Enter")
    await till.page.wait_for_selector("[data-member]")
    assert await till.page.get_by_test_id("member-card-number").inner_text() == card
    await till.page.fill("#f-amount", "28")
    await expect(till.page.get_by_test_id("quote-due")).to_have_text("¥28.00")
    await till.page.get_by_test_id("take-sale").click()
    await till.page.wait_for_selector("[data-testid=receipt]")

    # the member's balances and history show it
    await page.locator(f"a[data-merchant='{slug}']").click()
    await page.wait_for_url(f"**/m/{slug}")
    await expect(page.get_by_test_id("points-available")).to_have_text(str(50 + 28))  # welcome + the sale
    await visit.check("portal-balances")
    await page.get_by_test_id("history-link").click()
    await page.wait_for_url(f"**/m/{slug}/history")
    purchases = await page.get_by_test_id("purchases").inner_text()
    assert t("You paid %(amount)s") % {"amount": "¥28.00"} in purchases
    assert await page.get_by_test_id("sale-points").inner_text() == t("+%(points)s %(name)s earned") % {
        "points": 28,
        "name": "积分",
    }
    assert await page.locator("[data-kind=rule_signup]").count() == 1
    await visit.check("portal-history")

    # sign out, and back in with a sign-in code
    await page.get_by_test_id("sign-out").click()
    await page.wait_for_url("**/m/sign-in")
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("send-code").click()
    await page.wait_for_selector("#f-code")
    await visit.check("portal-sign-in")
    await page.fill("#f-code", await asyncio.to_thread(texted_code, served, phone, "登录验证码是 "))
    await page.get_by_test_id("sign-in").click()
    await page.wait_for_url("**/m")
    assert await page.get_by_test_id("card-number").inner_text() == card
