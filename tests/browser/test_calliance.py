"""The alliance pages in a real browser, in zh-CN and English: a tea shop's owner founds an alliance
(a refused code first, its message beside the field), invites a partner and copies the one-time
code; a bakery's owner, in a browser context of its own, joins with that code; the tea shop sees the
bakery among its partners, suspends it (confirming), then publishes new terms after an inline error.

Screenshots land in tests/browser/artifacts/<language>/alliance-*.png; axe-core and the CSP checks
run on each page (conftest's ``Visit.check``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from lianka.alliance.alliances import membership
from lianka.alliance.alliances import terms as versioned_terms
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


@pytest.mark.parametrize("lang", LANGS)
async def test_found_invite_join_with_the_code_and_see_the_partner(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    zh = lang == "zh-CN"
    t = Language(lang).gettext
    tea, tea_slug = await make_merchant(browser_db, "一点茶" if zh else "Yidian Tea")
    bakery, bakery_slug = await make_merchant(browser_db, "麦香烘焙" if zh else "Maixiang Bakery")
    tea_owner, bakery_owner = await make_staff(browser_db, tea, "owner"), await make_staff(browser_db, bakery, "owner")

    # the tea shop's owner founds an alliance from the menu: a code with capitals is refused first
    operator = await open_page(lang)
    page = operator.page
    await sign_in(operator, tea_owner)
    await page.locator("#side-menu").get_by_role("link", name=t("Alliance"), exact=True).click()
    await page.wait_for_url("**/console/alliance")
    assert await page.get_by_test_id("no-alliances").is_visible()
    await operator.check("alliance-none")
    code = f"city-{uuid.uuid4().hex[:6]}"
    await page.fill("#f-code", "City Card")
    await page.fill("#f-name", "城市卡联盟" if zh else "City Card Alliance")
    await page.get_by_test_id("found-alliance").click()
    await page.wait_for_selector("#f-code-error")
    assert await page.locator("#f-code").get_attribute("aria-invalid") == "true"
    assert await page.locator("#f-code-error").inner_text() == t(
        "Use 2 to 40 lower-case letters, digits or “-”, starting with a letter or a digit."
    )
    await operator.check("alliance-found-error")
    await page.fill("#f-code", code)
    await page.get_by_test_id("found-alliance").click()
    await page.wait_for_url(re.compile(r"/console/alliance/[0-9a-f-]{36}$"))
    alliance = uuid.UUID(page.url.rsplit("/", 1)[1])
    assert await page.locator("#flash .flash").inner_text() == t(
        "Alliance founded: you operate it. Invite partners and set its terms."
    )
    assert await page.get_by_test_id("my-role").inner_text() == t("Operator (hub)")
    hub = page.locator(f"tr[data-partner='{tea_slug}']")
    assert t("Operator (hub)") in await hub.inner_text()
    await operator.check("alliance-founded")

    # an invitation code, shown once with its copy button
    await page.get_by_test_id("invite-partner").click()
    await page.fill("#f-note", "面包店" if zh else "The bakery")
    await page.get_by_test_id("create-invite").click()
    await page.wait_for_selector("[data-testid=invite-code]")
    invitation = await page.get_by_test_id("invite-code").input_value()
    assert re.fullmatch(r"LKA-[A-Za-z0-9_-]+", invitation)
    assert await page.locator("#partners-panel .flash").inner_text() == t("Invitation code created.")
    await operator.check("alliance-invite")

    # the bakery's owner, in a browser of its own, joins with the code
    partner = await open_page(lang)
    await sign_in(partner, bakery_owner)
    await partner.goto("/console/alliance")
    await partner.page.fill("#f-invite_code", "LKA-not-a-code")
    await partner.page.get_by_test_id("join-alliance").click()
    await partner.page.wait_for_selector("#f-invite_code-error")
    assert await partner.page.locator("#f-invite_code-error").inner_text() == t(
        "This code is not valid: mistyped, used already, or expired."
    )
    await partner.check("alliance-join-error")
    await partner.page.fill("#f-invite_code", invitation)
    await partner.page.get_by_test_id("join-alliance").click()
    await partner.page.wait_for_url(f"**/console/alliance/{alliance}")
    assert await partner.page.locator("#flash .flash").inner_text() == t("You have joined the alliance.")
    assert await partner.page.get_by_test_id("my-role").inner_text() == t("Partner")
    assert await partner.page.locator(f"tr[data-partner='{bakery_slug}']").get_attribute("data-status") == "active"
    await partner.check("alliance-joined")

    # the tea shop sees its new partner (slug and name), and suspends it after confirming
    await operator.goto(f"/console/alliance/{alliance}")
    row = page.locator(f"tr[data-partner='{bakery_slug}']")
    assert await row.get_attribute("data-status") == "active"
    assert ("麦香烘焙" if zh else "Maixiang Bakery") in await row.inner_text()
    assert bakery_slug in await row.inner_text()
    await operator.check("alliance-partners")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_test_id("status-suspended").click()
    await page.wait_for_selector(f"tr[data-partner='{bakery_slug}'][data-status='suspended']")
    assert await page.locator("#partners-panel .flash").inner_text() == t(
        "Partner suspended: it can neither issue nor accept points."
    )
    await operator.check("alliance-suspended")
    assert {p["slug"]: p["status"] for p in await membership.partners(browser_db, tea, alliance)} == {
        tea_slug: "active",
        bakery_slug: "suspended",
    }

    # new terms: a reimbursement above the issue price is refused beside it, then published
    await page.get_by_role("link", name=t("Terms"), exact=True).click()
    await page.wait_for_url(f"**/console/alliance/{alliance}/terms")
    await operator.check("alliance-terms")
    await page.fill("#f-reimbursement_price", "0.02")
    await page.get_by_test_id("publish-terms").click()
    await page.wait_for_selector("#f-reimbursement_price-error")
    assert await page.locator("#f-reimbursement_price-error").inner_text() == t(
        "The reimbursement may not exceed the issue price: the operator would lose on every point."
    )
    await operator.check("alliance-terms-error")
    await page.fill("#f-reimbursement_price", "0.009")
    await page.fill("#f-note", "新价格" if zh else "New prices")
    await page.evaluate("document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))")
    await page.get_by_test_id("publish-terms").click()
    await page.wait_for_selector("tr[data-version='2'][data-status='in_force']")
    assert await page.locator("#flash .flash").inner_text() == t("A new version of the terms is in force.")
    history = await versioned_terms.terms_history(browser_db, tea, alliance)
    assert history[0]["version"] == 2 and history[0]["document"]["reimbursement_price"] == "0.009"

    # the statements tab: no month closed yet
    await page.get_by_role("link", name=t("Statements"), exact=True).click()
    await page.wait_for_selector("[data-testid=no-statements]")
    await operator.check("alliance-statements")
