"""Accounts and roles in a real browser, in zh-CN and in English.

- Forgot password: from the sign-in page, ask for a link, read it from the e-mail (outbox → relay →
  worker → the console mail backend's log), choose a new password (an inline error first), sign in
  with it; the used link then says it no longer works and leads to asking again.
- An invitation: the owner invites a cashier; the cashier opens the e-mailed link, sets a password,
  signs in and sees the till only; the owner's list then shows the account active. The staff page
  fits a narrow screen (its table scrolls inside its panel, the page does not).
- A cashier does not see the programme editor, and a crafted POST to it — with the page's own CSRF
  token — is refused (403) and changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import audit
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import programme_templates
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import sign_in

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]
NEW_PASSWORD = "a fresh passphrase 2026"


async def tea_shop(db: Any) -> uuid.UUID:
    """A merchant with a branch and the tea template's programme."""
    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    await programme_templates.apply_template(
        db, tenant, "tea", language="zh-CN", idempotency_key=uuid.uuid4().hex, actor=audit.operator("test")
    )
    return tenant


async def menu_links(visit: Visit) -> list[str]:
    return [str(await a.get_attribute("href")) for a in await visit.page.locator("#side-menu a").all()]


async def page_fits(visit: Visit) -> bool:
    """No horizontal scrolling of the whole page (a wide table scrolls in its own box)."""
    return bool(await visit.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("lang", LANGS)
async def test_forgot_password_read_the_email_reset_and_sign_in(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant = await tea_shop(browser_db)
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext

    await visit.goto("/sign-in")
    await page.get_by_role("link", name=t("Forgot your password?")).click()
    await page.wait_for_url("**/forgot-password")
    await visit.check("forgot-password")
    await page.fill("#f-email", "not an address")
    await page.get_by_role("button", name=t("Send the link")).click()
    await page.wait_for_selector("#f-email-error")
    assert await page.locator("#f-email-error").inner_text() == t("Enter a valid e-mail address.")
    await page.fill("#f-email", email)
    await page.get_by_role("button", name=t("Send the link")).click()
    await page.wait_for_selector("[data-testid=reset-sent]")
    assert await page.locator("h1").inner_text() == t("Check your e-mail")
    assert email in await page.get_by_test_id("reset-sent").inner_text()
    await visit.check("reset-sent")

    link = await asyncio.to_thread(served.mailed_link, email, "/reset-password")
    await page.goto(link)
    assert await page.locator("h1").inner_text() == t("Choose a new password")
    await page.fill("#f-password", NEW_PASSWORD)
    await page.fill("#f-password_again", "not the same one")
    await page.get_by_role("button", name=t("Change password")).click()
    await page.wait_for_selector("#f-password_again-error")
    assert await page.locator("#f-password_again-error").inner_text() == t("The two passwords differ.")
    await visit.check("reset-password-error")
    await page.fill("#f-password", NEW_PASSWORD)
    await page.fill("#f-password_again", NEW_PASSWORD)
    await page.get_by_role("button", name=t("Change password")).click()
    await page.wait_for_url("**/sign-in")
    assert await page.locator("#flash").inner_text() == t("Your password has been changed. Sign in with the new one.")
    await visit.check("reset-done")

    await sign_in(visit, email, NEW_PASSWORD)
    await page.wait_for_url("**/console/start")

    # the link worked once: now it says so and leads to asking again
    await page.goto(link)
    assert await page.locator("h1").inner_text() == t("This link does not work")
    await visit.check("reset-link-used")
    await page.get_by_role("button", name=t("Ask for a new link")).click()  # a link styled as a button
    await page.wait_for_url("**/forgot-password")


@pytest.mark.parametrize("lang", LANGS)
async def test_an_invited_cashier_sets_a_password_and_sees_only_the_till(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant = await tea_shop(browser_db)
    owner_email = await make_staff(browser_db, tenant, "owner")
    owner = await open_page(lang)
    page, t = owner.page, Language(lang).gettext
    await sign_in(owner, owner_email)
    await owner.goto("/console/staff")
    await page.get_by_test_id("invite-staff").click()
    cashier = f"cashier-{uuid.uuid4().hex[:8]}@example.com"
    await page.fill("#f-email", cashier)
    await page.select_option("#f-role", "cashier")
    await page.locator("#staff-form button[type=submit]").click()
    row = page.locator(f"tr[data-staff='{cashier}']")
    await row.wait_for()
    assert Language(lang).pgettext("staff account", "Invited") in await row.inner_text()

    # the invitee, in a browser of their own
    invitee = await open_page(lang)
    link = await asyncio.to_thread(served.mailed_link, cashier, "/set-password")
    await invitee.page.goto(link)
    assert await invitee.page.locator("h1").inner_text() == t("Set your password")
    await invitee.check("invitation-set-password")
    await invitee.page.fill("#f-password", NEW_PASSWORD)
    await invitee.page.fill("#f-password_again", NEW_PASSWORD)
    await invitee.page.get_by_role("button", name=t("Set password")).click()
    await invitee.page.wait_for_url("**/sign-in")
    assert await invitee.page.locator("#flash").inner_text() == t("Your password is set. Sign in with it.")
    await sign_in(invitee, cashier, NEW_PASSWORD)
    await invitee.page.wait_for_url("**/console/till")
    assert await menu_links(invitee) == ["/console/till"]
    assert await invitee.page.locator("#side-menu").inner_text() == t("Till")
    await invitee.check("invitee-till")

    # the owner sees the account active; the staff page fits a tablet and a phone
    await owner.goto("/console/staff")
    assert Language(lang).pgettext("staff account", "Active") in await row.inner_text()
    for width in (800, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        assert await page_fits(owner), f"the staff page scrolls sideways at {width}px"
        await owner.check(f"staff-{width}px")


@pytest.mark.parametrize("lang", LANGS)
async def test_a_cashier_cannot_see_the_programme_editor_and_a_crafted_post_is_refused(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant = await tea_shop(browser_db)
    email = await make_staff(browser_db, tenant, "cashier")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.wait_for_url("**/console/till")
    assert "/console/programme" not in await menu_links(visit)
    assert await page.locator("a[href^='/console/programme']").count() == 0

    for path in ("/console/programme", "/console/programme/tiers"):
        answer = await visit.goto(path)
        assert answer.status == 403
        assert await page.locator("h1").inner_text() == t("Your role does not allow this.")
    await visit.check("cashier-programme-forbidden")

    async def versions() -> int:
        async with browser_db.uow(tenant) as uow:
            return int(await uow.session.scalar(text("SELECT count(*) FROM programme_versions")) or 0)

    before = await versions()
    await visit.goto("/console/till")
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    # what the editor's form would send, with this session's own token: the role, not the token, refuses it
    for path in ("/console/programme/points", "/console/programme/tiers", "/console/programme/points/preview"):
        crafted = await page.request.post(
            f"{served.url}{path}",
            headers={"Accept-Language": lang},
            form={"_csrf": token, "earn_per_yuan": "100", "note": "crafted"},
        )
        assert crafted.status == 403, path
        assert t("Your role does not allow this.") in await crafted.text()
    assert await versions() == before
