"""The member portal's referral journey on a phone-sized screen (390 x 844), in zh-CN and English:
a member shares their invitation link; a friend opens it, joins, and buys at the console's web till;
the member's "Invite friends" page then shows the friend and the referral reward, and the friend's
balances show the welcome and the sale's points. Then the member's check-in, coupon centre and
rewards pages: check in, claim a coupon, redeem a gift (awaiting pickup).

Screenshots land in tests/browser/artifacts/<language>/portal-*.png; axe-core and the CSP checks run
on each page (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from lianka.tenants.catalogue import schemas
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import coupon_admin, rewards
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, Visit, make_merchant, make_staff
from tests.browser.test_console_journeys import sign_in
from tests.browser.test_portal import LANGS, PHONE_SIZE, OpenPage, texted_code

PROGRAMME = Programme(
    rules=[
        EarningRule(code="welcome", kind=RuleKind.SIGNUP, points=50),
        EarningRule(code="refer", kind=RuleKind.REFERRAL, points=200, min_spend=5_000),
        EarningRule(code="daily", kind=RuleKind.CHECKIN, points=5, streak_bonus={"7": 20}),
    ]
)


async def _shop(db: Any) -> tuple[str, str]:
    """A tea shop with a branch, the referral programme, a claimable coupon and a gift; (slug, cashier)."""
    tenant, slug = await make_merchant(db, "一点茶 Yidian Tea")
    sh01 = await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    await coupon_admin.create_template(
        db,
        tenant,
        schemas.TemplateIn(
            code="TEA5",
            name="奶茶立减5元",
            kind=CouponKind.FIXED,
            amount_off=500,
            min_spend=2_000,
            valid_days=30,
            stock_total=100,
            per_member_limit=1,
            claimable=True,
        ),
    )
    await rewards.create(
        db,
        tenant,
        schemas.RewardIn(code="CUP", name="随行杯", kind="gift", points_cost=100, pickup_branch_id=sh01.id),
    )
    return slug, await make_staff(db, tenant, "cashier")


async def _join(visit: Visit, served: Served, path: str) -> str:
    """Join through ``path`` (a join link) with a new phone; returns the phone."""
    page = visit.page
    await visit.goto(path)
    phone = f"139{random.randrange(10**8):08d}"
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("send-code").click()
    await page.wait_for_selector("#f-code")
    await page.fill("#f-code", await asyncio.to_thread(texted_code, served, phone))
    await page.locator("#f-privacy").check()
    await page.get_by_test_id("join").click()
    await page.wait_for_url("**/m")
    return phone


@pytest.mark.parametrize("lang", LANGS)
async def test_a_friend_joins_by_the_link_buys_and_both_see_their_rewards(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    slug, cashier = await _shop(browser_db)
    t = Language(lang).gettext
    alice = await open_page(lang)
    await alice.page.set_viewport_size(PHONE_SIZE)
    await _join(alice, served, f"/join/{slug}")

    # the member's page links to the programme pages; "Invite friends" shows the code, link and QR
    await alice.page.locator(f"a[data-merchant='{slug}']").click()
    await alice.page.wait_for_url(f"**/m/{slug}")
    await alice.check("portal-merchant-perks")
    await alice.page.get_by_test_id("invite-link").click()
    await alice.page.wait_for_url(f"**/m/{slug}/invite")
    code = await alice.page.get_by_test_id("referral-code").inner_text()
    link = await alice.page.get_by_test_id("referral-link").input_value()
    assert link.endswith(f"/join/{slug}?ref={code}")
    assert await alice.page.locator(".invite-qr svg").count() == 1
    await alice.check("portal-invite")

    # the friend opens the link on their phone and joins
    friend = await open_page(lang)
    await friend.page.set_viewport_size(PHONE_SIZE)
    parts = urlsplit(link)
    await friend.goto(f"{parts.path}?{parts.query}")
    await expect(friend.page.get_by_test_id("join-invited")).to_have_text(
        t("A friend invited you: join, and your friend is thanked after your first purchase.")
    )
    await friend.check("portal-join-invited")
    await _join(friend, served, f"{parts.path}?{parts.query}")
    await expect(friend.page.get_by_test_id("flash")).to_have_text(
        t("Welcome! You joined through a friend's invitation: your friend is thanked after your first purchase.")
    )
    token = await friend.page.get_by_test_id("member-qr").get_attribute("data-token")
    assert token

    # a cashier scans the friend's code at the web till and sells ¥60 (the rule's minimum is ¥50)
    till = await open_page(lang)
    await sign_in(till, cashier)
    await till.page.wait_for_url("**/console/till")
    await expect(till.page.locator("#f-q")).to_be_focused()
    await till.page.keyboard.type(token)
    await till.page.keyboard.press("Enter")
    await till.page.wait_for_selector("[data-member]")
    await till.page.fill("#f-amount", "60")
    await expect(till.page.get_by_test_id("quote-due")).to_have_text("¥60.00")
    await till.page.get_by_test_id("take-sale").click()
    await till.page.wait_for_selector("[data-testid=receipt]")

    # both see their rewards: the referrer's 200 points, the friend's welcome and the sale's points
    await alice.page.reload()
    await expect(alice.page.get_by_test_id("friend-reward")).to_have_text(
        t("+%(points)s %(name)s for you") % {"points": 200, "name": "积分"}
    )
    assert await alice.page.locator("[data-stage=bought]").count() == 1
    await alice.check("portal-invite-rewarded")
    await friend.goto(f"/m/{slug}")
    await expect(friend.page.get_by_test_id("points-available")).to_have_text(str(50 + 60))
    await friend.check("portal-friend-balances")

    # the referrer checks in, claims a coupon, and redeems a gift with the points
    page = alice.page
    await alice.goto(f"/m/{slug}")
    await page.get_by_test_id("checkin-link").click()
    await page.wait_for_url(f"**/m/{slug}/checkin")
    await page.get_by_test_id("check-in").click()
    await expect(page.get_by_test_id("checked-in")).to_have_text(
        t("Checked in: +%(points)s %(name)s.") % {"points": 5, "name": "积分"}
    )
    await expect(page.get_by_test_id("streak")).to_have_text("1")
    await alice.check("portal-checkin")

    await alice.goto(f"/m/{slug}")
    await page.get_by_test_id("coupon-centre-link").click()
    await page.wait_for_url(f"**/m/{slug}/coupon-centre")
    await alice.check("portal-coupon-centre")
    await page.get_by_test_id("claim-TEA5").click()
    await expect(page.get_by_test_id("flash")).to_have_text(
        t("The coupon is in your wallet: show your card at the till to use it.")
    )
    await expect(page.get_by_test_id("why-TEA5")).to_contain_text(t("You hold as many as allowed"))
    await alice.check("portal-coupon-claimed")

    await alice.goto(f"/m/{slug}")
    await page.get_by_test_id("rewards-link").click()
    await page.wait_for_url(f"**/m/{slug}/rewards")
    await expect(page.get_by_test_id("points-available")).to_have_text(str(50 + 200 + 5))
    await alice.check("portal-rewards")
    await page.get_by_test_id("redeem-CUP").click()
    await page.wait_for_url(f"**/m/{slug}/redemptions")
    await expect(page.get_by_test_id("redemption-status")).to_have_text(
        t("Awaiting pickup at %(branch)s: show your card there.") % {"branch": "人民广场店"}
    )
    await alice.check("portal-redemptions")
