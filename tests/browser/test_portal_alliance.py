"""The member's alliance card and monthly statement on a phone-sized screen (390 x 844), in zh-CN and
English: a member of one partner signs in, opens the alliance card (partners, alliance points), switches
one partner off — that partner's till no longer finds the card, the others still do — sees the change
in the history and switches it back on; then opens the monthly statement of their merchant.

Screenshots land in tests/browser/artifacts/<language>/portal-alliance*.png and
portal-statement*.png; axe-core and the CSP checks run on each page (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text

from lianka.alliance.alliances import membership, till
from lianka.alliance.alliances.domain import Terms
from lianka.alliance.alliances.errors import NotACardholder
from lianka.alliance.settlement.domain import period_end, period_of
from lianka.platform.identity.members import _find_or_create_person, normalise_phone
from lianka.tenants.domain.programme import Programme
from lianka.tenants.services import accounts, member_statements
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant
from tests.browser.test_portal import LANGS, PHONE_SIZE, OpenPage, texted_code


async def _alliance(db: Any) -> dict[str, Any]:
    """Operator 茶联 (a tea shop with a branch) and partners 面包坊 and 花店, one alliance; a member of
    the tea shop with alliance points and a month's points activity."""
    tea, tea_slug = await make_merchant(db, "一点茶 Yidian Tea")
    bakery, _ = await make_merchant(db, "麦香面包坊 Bakery")
    florist, _ = await make_merchant(db, "花间花店 Florist")
    branches = {}
    async with db.uow(system=True) as uow:
        for tenant, code in ((tea, "T1"), (bakery, "B1"), (bakery, "B2"), (florist, "F1")):
            await uow.set_tenant(tenant)
            branches[code] = await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
        await uow.commit()
    a = await membership.create(
        db,
        tea,
        code=f"city-{uuid.uuid4().hex[:8]}",
        name="城市生活联盟",
        terms=Terms(issue_price=Decimal("0.010"), reimbursement_price=Decimal("0.008"), member_value=Decimal("0.010")),
    )
    for partner in (bakery, florist):
        code, _ = await membership.invite(db, tea, a.id)
        await membership.accept(db, partner, code)
    phone = f"+86139{random.randrange(10**8):08d}"
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, phone)
        await uow.set_tenant(tea)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": tea, "m": member}
        )
        await set_programme(uow, Programme(), effective_from=datetime.now(UTC) - timedelta(days=1))
        await accounts.award_points(
            uow,
            member,
            1_200,
            programme=Programme(),
            reason="purchase",
            key=uuid.uuid4().hex,
            business_time=datetime.now(UTC),
        )
        await uow.commit()
    await till.earn(
        db,
        tea,
        a.id,
        member_id=member,
        amount=38_800,
        branch_id=branches["T1"],
        key=uuid.uuid4().hex,
        business_time=None,
    )
    # the statement of this month, made as the job would after it ends
    month = period_of(datetime.now(UTC), "Asia/Shanghai")
    await member_statements.make_for_month(db, tea, month, now=period_end(month, "Asia/Shanghai") + timedelta(hours=1))
    return {"alliance": a.id, "tea": tea, "slug": tea_slug, "bakery": bakery, "florist": florist, "phone": phone}


async def _found_by(db: Any, partner: uuid.UUID, alliance: uuid.UUID, card: str) -> bool:
    try:
        await till.find_card(db, partner, alliance, card=card, qr=None)
    except NotACardholder:
        return False
    return True


@pytest.mark.parametrize("lang", LANGS)
async def test_alliance_card_with_one_partner_switched_off_then_the_statement(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    w = await _alliance(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await page.set_viewport_size(PHONE_SIZE)

    await visit.goto("/m/sign-in")
    await page.fill("#f-phone", w["phone"])
    await page.get_by_test_id("send-code").click()
    await page.wait_for_selector("#f-code")
    await page.fill(
        "#f-code", await asyncio.to_thread(texted_code, served, normalise_phone(w["phone"]), "登录验证码是 ")
    )
    await page.get_by_test_id("sign-in").click()
    await page.wait_for_url("**/m")
    card = await page.get_by_test_id("card-number").inner_text()

    # the alliance card: its partners, the alliance points (¥388 at 1 point per ¥1)
    await page.get_by_test_id("alliance-link").click()
    await page.wait_for_url("**/m/alliances")
    await expect(page.get_by_test_id("alliance-points")).to_have_text("388")
    bakery = page.locator(f"[data-partner='{w['bakery']}']")
    await expect(bakery).to_contain_text("麦香面包坊 Bakery")
    await expect(bakery).to_contain_text(t("Recognises my card"))
    await visit.check("portal-alliance")
    assert await _found_by(browser_db, w["bakery"], w["alliance"], card)

    # switch the bakery off: its till no longer finds the card; the florist's still does
    await bakery.get_by_test_id("switch-off").click()
    await page.wait_for_url("**/m/alliances**")
    assert await page.get_by_test_id("flash").inner_text() == t("Done: this partner no longer recognises your card.")
    await expect(page.locator(f"[data-partner='{w['bakery']}']")).to_have_attribute("data-recognised", "no")
    await expect(page.get_by_test_id("recognition-history")).to_contain_text("麦香面包坊 Bakery")
    await expect(page.get_by_test_id("recognition-history")).to_contain_text(t("switched off"))
    await visit.check("portal-alliance-off")
    assert not await _found_by(browser_db, w["bakery"], w["alliance"], card)
    assert await _found_by(browser_db, w["florist"], w["alliance"], card)

    # and back on
    await page.locator(f"[data-partner='{w['bakery']}']").get_by_test_id("switch-on").click()
    await page.wait_for_url("**/m/alliances**")
    await expect(page.locator(f"[data-partner='{w['bakery']}']")).to_have_attribute("data-recognised", "yes")
    assert await _found_by(browser_db, w["bakery"], w["alliance"], card)

    # the monthly statement of the tea shop: 1,200 points earned, worth ¥12.00
    await visit.goto(f"/m/{w['slug']}")
    await page.get_by_test_id("statements-link").click()
    await page.wait_for_url(f"**/m/{w['slug']}/statements")
    await visit.check("portal-statements")
    await page.locator("[data-month]").first.click()
    await page.wait_for_url(f"**/m/{w['slug']}/statements/*")
    await expect(page.locator("[data-figure=points-earned]")).to_contain_text("1200")
    await expect(page.locator("[data-figure=points-earned]")).to_contain_text("¥12.00")
    await visit.check("portal-statement")
