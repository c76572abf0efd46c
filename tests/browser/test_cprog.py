"""The programme editor, coupons and rewards in a real browser, in zh-CN and in English.

A merchant raises the gold threshold from next month with a note, sees the version scheduled and the
change in the diff, prices a sample basket with an edit; creates a coupon template and issues a
coupon to a member by card; adds a reward and sees it in the catalogue. Every main page is
screenshot per language (tests/browser/artifacts/<lang>/) and checked with axe-core.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.demo import DEMO_PROGRAMME
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import coupon_admin, rewards
from lianka.tenants.services import programme as programme_svc
from lianka.web.console.i18n import Language
from tests.browser.conftest import Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import sign_in

OpenPage = Callable[..., Awaitable[Visit]]
LANGS = ["zh-CN", "en"]


async def arrange(db: Any) -> tuple[uuid.UUID, str, str]:
    """A tea shop with the demo programme, a branch and a member: (merchant, owner's e-mail, member's card)."""
    from lianka.platform.identity.members import _find_or_create_person

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    async with db.uow(tenant) as uow:
        await programme_svc.set_programme(uow, DEMO_PROGRAMME, note="开业方案")
        await uow.commit()
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, f"+86139{uuid.uuid4().int % 10**8:08d}")
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": tenant, "m": member}
        )
        await uow.set_system()
        card = str(await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": member}))
        await uow.commit()
    return tenant, await make_staff(db, tenant, "owner"), card


async def from_menu(visit: Visit, label: str, path: str) -> None:
    await (
        visit.page.locator("#side-menu")
        .get_by_role("link", name=Language(visit.lang).gettext(label), exact=True)
        .click()
    )
    await visit.page.wait_for_url(f"**{path}")


async def fill_in(visit: Visit, opener: str, form: str, values: dict[str, str]) -> None:
    """Open a form with the button ``opener`` (a test id), type ``values`` (input ids) and submit it."""
    await visit.page.get_by_test_id(opener).click()
    await visit.page.wait_for_selector(form)
    for field, value in values.items():
        await visit.page.fill(field, value)
    await visit.page.locator(f"{form} button[type=submit]").click()


@pytest.mark.parametrize("lang", LANGS)
async def test_programme_change_next_month_preview_coupon_and_reward(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    tenant, email, card = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    # the programme: its versions, then the tiers form
    await from_menu(visit, "Programme", "/console/programme")
    await visit.check("programme-versions")
    await page.locator("nav.tabs").get_by_role("link", name=t("Tiers"), exact=True).click()
    await page.wait_for_url("**/console/programme/tiers")
    assert await page.input_value("#f-tiers-2-threshold") == "3000.00"
    await visit.check("programme-tiers")

    # a fraction of a fen is an inline error (htmx: the form comes back in place)
    await page.fill("#f-tiers-2-threshold", "5000.005")
    await page.get_by_test_id("publish").click()
    await page.wait_for_selector("#f-tiers-2-threshold-error")
    assert await page.locator("#f-tiers-2-threshold-error").inner_text() == t(
        "Enter an amount in yuan with at most two decimals, e.g. 12.50."
    )
    assert await page.locator("#f-tiers-2-threshold").get_attribute("aria-invalid") == "true"
    await visit.check("programme-tiers-error")

    # gold from ¥3,000 to ¥5,000, from the first day of next month, with a note
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
    await page.fill("#f-tiers-2-threshold", "5000")
    await page.check("#f-effective-later")
    await page.fill("#f-effective_at", start.strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#f-note", "金卡门槛上调" if lang == "zh-CN" else "Gold threshold raised")
    await page.get_by_test_id("publish").click()
    await page.wait_for_url("**/console/programme")
    assert await page.locator("#flash").inner_text() == t("A new version of the programme is scheduled.")
    assert await page.locator("tr[data-version='2']").get_attribute("data-status") == "scheduled"
    assert await page.locator("tr[data-version='2'] .status").inner_text() == t("Scheduled")
    assert await page.locator("tr[data-version='1']").get_attribute("data-status") == "in_force"
    await visit.check("programme-scheduled")

    # the diff of version 1 -> 2 (htmx swaps it under the form)
    await page.locator("#compare-form button[type=submit]").click()
    await page.wait_for_selector("#comparison table.diff")
    row = page.locator("#comparison tr.diff-changed")
    assert await row.count() == 1
    cells = [c.strip() for c in await row.locator("th, td").all_inner_texts()]
    assert cells == [f"金卡 · {t('Threshold')}", "¥3,000.00", "¥5,000.00"]
    await visit.check("programme-diff")

    # the preview: a ¥200 basket for a gold member, with gold's discount raised to 20%
    await page.locator("nav.tabs").get_by_role("link", name=t("Tiers"), exact=True).click()
    await page.wait_for_url("**/console/programme/tiers")
    assert await page.input_value("#f-tiers-2-threshold") == "5000.00"  # built on the newest version
    await page.fill("#f-tiers-2-discount_percent", "20")
    await page.fill("#f-sample-amount", "200")
    await page.fill("#f-sample-day", "2027-01-06")  # a Wednesday: no Tuesday promotion
    await page.get_by_test_id("preview").click()
    await page.wait_for_selector("[data-testid=preview-result]")
    discount = await page.locator("tr[data-row=member_discount] td").all_inner_texts()
    assert discount == ["¥20.00", "¥40.00"]
    assert page.url.endswith("/console/programme/tiers")  # nothing was published
    await visit.check("programme-preview")
    assert len((await programme_svc.versions(browser_db, tenant))[1]) == 2

    # coupons: a template, then one coupon to the member's card
    await from_menu(visit, "Coupons", "/console/coupons")
    await fill_in(
        visit,
        "add-coupon-template",
        "#coupon-form",
        {
            "#f-code": "NEW10",
            "#f-name": "新客立减" if lang == "zh-CN" else "Welcome ¥10 off",
            "#f-amount_off": "10",
            "#f-min_spend": "50",
            "#f-stock_total": "100",
        },
    )
    await page.wait_for_selector("tr[data-template=NEW10]")
    assert await page.locator("#coupons-panel .flash").inner_text() == t("Coupon template created.")
    await visit.check("coupons")
    await page.locator("tr[data-template=NEW10]").get_by_test_id("issue").click()
    await page.wait_for_selector("#issue-form")
    await page.fill("#f-card", card)
    await page.locator("#issue-form button[type=submit]").click()  # the key came with the form
    await page.wait_for_selector("[data-testid=issued-coupon]")
    issued = await page.get_by_test_id("issued-coupon").inner_text()
    code = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", issued)
    assert code is not None
    await visit.check("coupon-issued")
    (template,) = await coupon_admin.list_templates(browser_db, tenant, active=None)
    assert (template.amount_off, template.issued_count) == (1000, 1)

    # rewards: add one, see it in the catalogue with its stock
    await from_menu(visit, "Rewards", "/console/rewards")
    await fill_in(
        visit,
        "add-reward",
        "#reward-form",
        {
            "#f-code": "MUG",
            "#f-name": "马克杯" if lang == "zh-CN" else "Mug",
            "#f-points_cost": "500",
            "#f-stock_total": "20",
        },
    )
    await page.wait_for_selector("tr[data-reward=MUG]")
    assert await page.locator("tr[data-reward=MUG] [data-testid=stock]").inner_text() == "20 / 20"
    assert await page.locator("#rewards-panel .flash").inner_text() == t("Reward added.")
    await visit.check("rewards")
    assert [r.code for r in await rewards.list_rewards(browser_db, tenant)] == ["MUG"]
