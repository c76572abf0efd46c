"""Paid membership in a real browser, in zh-CN and English: the owner adds a product on the console's
paid-membership page, sells it at the web till to a member found by card (the box in the member
card), sees the term on the member's page; after a sale priced with the perks, the member's portal
page shows the value-back meter and the products. Screenshots land in
tests/browser/artifacts/<language>/membership-*.png; axe-core and the CSP checks run on each."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import audit
from lianka.platform.identity import sessions
from lianka.platform.identity.members import _find_or_create_person, normalise_phone
from lianka.tenants.pos import sales
from lianka.tenants.pos.schemas import Basket
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import programme_templates
from lianka.web.console.i18n import Language
from tests.browser.conftest import Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import sign_in

LANGS = ["zh-CN", "en"]


async def _shop(db: Any) -> tuple[uuid.UUID, str, str, uuid.UUID, uuid.UUID]:
    """A tea shop (the tea template's tiers), a branch, an owner and a member: (merchant, slug, owner's
    e-mail, member, branch)."""
    tenant, slug = await make_merchant(db, "一点茶 Yidian Tea")
    branch = await branch_svc.open_branch(
        db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai")
    )
    await programme_templates.apply_template(
        db, tenant, "tea", language="zh-CN", idempotency_key=uuid.uuid4().hex, actor=audit.operator("test")
    )
    email = await make_staff(db, tenant, "owner")
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, normalise_phone(f"139{random.randrange(10**8):08d}"))
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": tenant, "m": member}
        )
        await uow.commit()
    return tenant, slug, email, member, branch.id


@pytest.mark.parametrize("lang", LANGS)
async def test_a_product_sold_at_the_till_and_its_meter_in_the_portal(
    open_page: Any, browser_db: Any, lang: str
) -> None:
    tenant, slug, email, member, branch = await _shop(browser_db)
    visit: Visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    await visit.goto("/console/membership")
    await page.get_by_test_id("add-membership-product").click()
    await page.fill("#f-code", "plus")
    await page.fill("#f-name", "PLUS 年卡" if lang == "zh-CN" else "PLUS yearly")
    await page.select_option("#f-period", "yearly")
    await page.fill("#f-price", "99")
    await page.fill("#f-extra_discount_percent", "10")
    await page.fill("#f-points_multiplier", "2")
    await page.fill("#f-gifts", "包邮" if lang == "zh-CN" else "free shipping")
    await page.locator("form[action='/console/membership/products'] button[type=submit]").click()
    await page.wait_for_selector("tr[data-product=plus]")
    assert "¥99.00" in await page.locator("tr[data-product=plus]").inner_text()
    await visit.check("membership-products")

    # at the till: find the member by card, sell the membership from the member card's box
    async with browser_db.uow(system=True) as uow:
        card = str(await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": member}))
    await visit.goto("/console/till")
    await page.fill("#f-q", card)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("[data-testid=sell-membership]")
    await page.get_by_test_id("sell-membership").click()
    await page.wait_for_selector("[data-testid=membership-sold]")
    await page.wait_for_selector("[data-testid=membership-current]")
    await visit.check("membership-till")

    await visit.goto(f"/console/members/{member}")
    await page.wait_for_selector("#membership-terms tr[data-term]")
    assert "¥99.00" in await page.locator("#membership-terms").inner_text()
    await visit.check("membership-member")

    # a sale priced with the perks, then the member's own page
    await sales.sale(browser_db, tenant, Basket(amount=10_000, member_id=member), uuid.uuid4().hex, branch)
    sess = await sessions.create_session(
        browser_db, kind="member", subject_id=member, method="otp", ttl=3600, cookie=True
    )
    assert sess.token
    await page.context.add_cookies([{"name": sessions.MEMBER_COOKIE, "value": sess.token, "url": visit.base}])
    await visit.goto(f"/m/{slug}")
    meter = page.get_by_test_id("value-back")
    await meter.wait_for()
    assert "¥99.00" in await meter.inner_text() and "¥0.00" not in await meter.inner_text()
    assert await page.get_by_test_id("buy-membership").count() == 1
    assert t("Paid membership") in await page.get_by_test_id("paid-membership").inner_text()
    await visit.check("membership-portal")
