"""The console in a real browser, in zh-CN and in English: a merchant signs up, confirms its e-mail,
signs in, sees its checklist, manages branches (with inline errors), switches language, signs out;
CSRF and role refusals; staff of two merchants switch between them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lianka.billing import services as billing
from lianka.tenants.services import branches as branch_svc
from lianka.web.console.i18n import Language
from tests.browser.conftest import PASSWORD, Served, Visit, make_merchant, make_staff

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]
OTHER = {"zh-CN": "en", "en": "zh-CN"}


async def sign_in(visit: Visit, email: str, password: str = PASSWORD) -> None:
    page, t = visit.page, Language(visit.lang).gettext
    await visit.goto("/sign-in")
    await page.fill("#f-email", email)
    await page.fill("#f-password", password)
    await page.get_by_role("main").get_by_role("button", name=t("Sign in")).click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)


@pytest.mark.parametrize("lang", LANGS)
async def test_sign_up_verify_sign_in_set_up_branches_switch_language_sign_out(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext

    await visit.goto("/")
    assert await page.locator("h1").inner_text() == t("Membership marketing for your shops")
    shown = await page.locator("table.plans tbody tr").evaluate_all("rows => rows.map(r => r.dataset.plan)")
    assert shown == [plan.code for plan in await billing.plans(browser_db)]  # billing's rows, in its order
    assert "¥599.00" in await page.locator("tr[data-plan=chain]").inner_text()
    await visit.check("home")

    # sign-up, first with a bad slug: the error stands beside its field
    await page.get_by_role("button", name=t("Sign up free")).click()
    await page.wait_for_url("**/sign-up")
    await visit.check("sign-up")
    slug = f"shop-{uuid.uuid4().hex[:8]}"
    email = f"{slug}@example.com"
    name = "小王奶茶" if lang == "zh-CN" else "Wang's Tea"
    await page.fill("#f-merchant_name", name)
    await page.fill("#f-slug", "Not A Slug!")
    await page.fill("#f-email", email)
    await page.fill("#f-password", PASSWORD)
    await page.select_option("#f-trade", "bakery")
    await page.locator("form[action='/sign-up'] button[type=submit]").click()
    await page.wait_for_selector("#f-slug-error")
    assert await page.locator("#f-slug-error").inner_text() == t("Use 2 to 63 lower-case letters, digits and hyphens.")
    assert await page.locator("#f-slug").get_attribute("aria-invalid") == "true"
    assert await page.input_value("#f-merchant_name") == name
    await visit.check("sign-up-error")
    await page.fill("#f-slug", slug)
    await page.fill("#f-password", PASSWORD)
    await page.locator("form[action='/sign-up'] button[type=submit]").click()
    await page.wait_for_selector(f"text={email}")
    assert await page.locator("h1").inner_text() == t("Check your e-mail")
    await visit.check("sign-up-sent")

    # the link as the console mail backend logged it (outbox -> relay -> worker)
    link = await asyncio.to_thread(served.mailed_link, email, "/verify-email")
    await page.goto(link)
    assert await page.locator("h1").inner_text() == t("Your e-mail address is confirmed")
    await visit.check("verified")

    await page.locator("main").get_by_role("button", name=t("Sign in")).click()
    await page.wait_for_url("**/sign-in**")
    await visit.check("sign-in")
    await sign_in(visit, email)
    await page.wait_for_url("**/console/start")
    assert await page.get_by_test_id("merchant-name").inner_text() == name
    assert await page.locator("[data-step][data-done=false]").count() == 6
    await visit.check("onboarding")

    # branches: add with an inline error (htmx: no page load), fix it, add, a duplicate, edit
    await page.locator("#side-menu").get_by_role("link", name=t("Branches"), exact=True).click()
    await page.wait_for_url("**/console/branches")
    await visit.check("branches-empty")
    await page.get_by_test_id("add-branch").click()
    await page.wait_for_selector("#branch-form")
    await page.fill("#f-code", "SH01")
    await page.fill("#f-name", "人民广场店" if lang == "zh-CN" else "People's Square")
    await page.fill("#f-timezone", "Mars/Olympus")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector("#f-timezone-error")
    assert await page.locator("#f-timezone-error").inner_text() == t("Enter a time zone such as Asia/Shanghai.")
    assert page.url.endswith("/console/branches")
    await visit.check("branch-form-error")
    await page.fill("#f-timezone", "Asia/Shanghai")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector("tr[data-branch=SH01]")
    assert await page.locator("#branches-panel .flash").inner_text() == t("Branch added.")
    await visit.check("branches")

    await page.get_by_test_id("add-branch").click()
    await page.fill("#f-code", "SH01")
    await page.fill("#f-name", "Again")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector("#f-code-error")
    assert await page.locator("#f-code-error").inner_text() == t("Another branch already uses this code.")

    await page.locator("tr[data-branch=SH01]").get_by_role("link").click()
    await page.wait_for_selector("#branch-form[action^='/console/branches/']")
    assert await page.input_value("#f-code") == "SH01"
    await page.fill("#f-name", "旗舰店" if lang == "zh-CN" else "Flagship")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector(f"tr[data-branch=SH01] >> text={'旗舰店' if lang == 'zh-CN' else 'Flagship'}")
    assert await page.locator("#branches-panel .flash").inner_text() == t("Branch saved.")

    # the checklist now says so
    await visit.goto("/console/start")
    assert await page.locator("[data-step=branches]").get_attribute("data-done") == "true"

    # every menu entry opens its page (none says "coming soon")
    hrefs = await page.locator("#side-menu a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and not any("/soon/" in h for h in hrefs), hrefs
    settlement = "/console/settlement"
    await page.locator(f"#side-menu a[href='{settlement}']").click()
    await page.wait_for_url(f"**{settlement}")
    await visit.check("settlement-months")

    # narrow screen: the menu folds behind its toggle (Alpine, CSP build)
    await page.set_viewport_size({"width": 390, "height": 844})
    assert not await page.locator("#side-menu").is_visible()
    await page.get_by_role("button", name=t("Menu")).click()
    assert await page.locator("#side-menu").is_visible()
    await visit.check("mobile-menu")
    await page.set_viewport_size({"width": 1280, "height": 900})

    # language: the choice sticks, whatever the browser asks for
    other = OTHER[lang]
    async with page.expect_navigation(wait_until="load"):  # the switch posts and redirects back
        await page.locator("form.lang-switch").locator(f"button[value='{other}']").click()
    await page.wait_for_function(f"document.documentElement.lang === '{other}'")
    assert page.url.endswith(settlement)
    await visit.goto("/console/branches")
    assert await page.locator("h1").inner_text() == Language(other).gettext("Branches")
    visit.lang = f"{lang}-then-{other}"
    await visit.check("switched-language")
    visit.lang = lang
    await page.locator("form.lang-switch").locator(f"button[value='{lang}']").click()
    await page.wait_for_function(f"document.documentElement.lang === '{lang}'")

    # sign out: back to sign-in, and the console is closed
    await page.get_by_role("button", name=t("Sign out")).click()
    await page.wait_for_url("**/sign-in")
    assert await page.locator("#flash").inner_text() == t("You have signed out.")
    await visit.goto("/console/branches")
    assert "/sign-in?next=/console/branches" in page.url

    tenant = await browser_db_tenant(browser_db, slug)
    assert {b.code for b in await branch_svc.branches(browser_db, tenant)} == {"SH01"}


async def browser_db_tenant(db: Any, slug: str) -> uuid.UUID:
    from lianka.platform.identity.services import resolve_merchant_ref

    return await resolve_merchant_ref(db, slug)


@pytest.mark.parametrize("lang", LANGS)
async def test_writes_without_the_csrf_token_are_refused(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, _ = await make_merchant(browser_db, "CSRF")
    email = await make_staff(browser_db, tenant, "owner")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await visit.goto("/console/branches")

    # a request carrying the session cookie but not the page's token (what another site can send)
    refused = await page.request.post(
        f"{served.url}/console/branches", form={"code": "EVIL1", "name": "x", "timezone": "UTC"}
    )
    assert refused.status == 403
    # htmx with a wrong token (as if the page were forged): the refusal shows in the flash area
    await page.get_by_test_id("add-branch").click()
    await page.wait_for_selector("#branch-form")
    await page.evaluate("document.querySelector('meta[name=csrf-token]').content = 'forged'")
    await page.fill("#f-code", "EVIL2")
    await page.fill("#f-name", "x")
    await page.locator("#branch-form button[type=submit]").click()
    await page.wait_for_selector("#flash .error")
    assert await page.locator("#flash .error").inner_text() == t("This page has expired. Reload it and try again.")
    await visit.check("csrf-refused")
    assert await branch_svc.branches(browser_db, tenant) == []


@pytest.mark.parametrize("lang", LANGS)
async def test_an_analyst_sees_no_add_button_and_a_crafted_post_is_refused(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, _ = await make_merchant(browser_db, "Analysed")
    await branch_svc.open_branch(browser_db, tenant, branch_svc.BranchChanges("KEEP", "Keep", "", "Asia/Shanghai"))
    email = await make_staff(browser_db, tenant, "analyst")
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await visit.goto("/console/branches")
    assert await page.locator("tr[data-branch=KEEP]").count() == 1
    assert await page.get_by_test_id("add-branch").count() == 0
    assert await page.locator("tr[data-branch=KEEP] a").count() == 0
    await visit.check("branches-analyst")

    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    for url in ("/console/branches", f"/console/branches/{(await branch_svc.branches(browser_db, tenant))[0].id}"):
        crafted = await page.request.post(
            f"{served.url}{url}",
            headers={"Accept-Language": lang},
            form={"code": "HACK", "name": "x", "timezone": "UTC", "_csrf": token},
        )
        assert crafted.status == 403
        assert t("Your role does not allow this.") in await crafted.text()
    await visit.goto("/console/branches/new")
    assert await page.locator("h1").inner_text() == t("Your role does not allow this.")
    await visit.check("forbidden")
    assert {b.code for b in await branch_svc.branches(browser_db, tenant)} == {"KEEP"}


async def test_staff_of_two_merchants_switch_between_them(open_page: OpenPage, browser_db: Any) -> None:
    tea, _ = await make_merchant(browser_db, "一点茶 Yidian Tea")
    bakery, _ = await make_merchant(browser_db, "麦香烘焙 Maixiang Bakery")
    email = await make_staff(browser_db, tea, "owner")
    await make_staff(browser_db, bakery, "analyst", email=email)
    for lang in LANGS:
        visit = await open_page(lang)
        page, t = visit.page, Language(lang).gettext
        await sign_in(visit, email)
        await page.wait_for_url("**/console/merchants")
        await visit.check("choose-merchant")
        await page.get_by_role("button", name="一点茶 Yidian Tea").click()
        await page.wait_for_url("**/console/start")
        assert await page.get_by_test_id("merchant-name").inner_text() == "一点茶 Yidian Tea"
        assert await page.locator("#flash").inner_text() == t("Switched merchant.")

        await page.locator("details.dropdown summary").click()
        await page.locator("details.dropdown").get_by_role("button", name="麦香烘焙 Maixiang Bakery").click()
        await page.wait_for_url("**/console/start")
        assert await page.get_by_test_id("merchant-name").inner_text() == "麦香烘焙 Maixiang Bakery"
        await visit.goto("/console/branches")
        assert await page.get_by_test_id("add-branch").count() == 0  # an analyst at the bakery
        await visit.check("switched-merchant")
