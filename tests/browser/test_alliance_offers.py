"""Alliance offers in a real browser, zh-CN and English (decision 0044): a tea shop funds an offer
for a bakery's gold members — it counts them (a small group shows as "< 20"), proposes the offer,
and sees it waiting; the bakery's owner, in a browser context of its own, sees what its members
would get and accepts; the tea shop's page then shows the results. Screenshots:
tests/browser/artifacts/<language>/xmkt-*.png."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership
from lianka.alliance.alliances.domain import Terms
from lianka.web.console.i18n import Language
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import without_axe_traces


async def arrange(db: Any, zh: bool) -> tuple[str, str, str]:
    """An alliance of a tea shop and a bakery (the operator is a third merchant); the bakery has 21 gold
    members who accepted alliance offers and 3 silver ones. Returns the two owners' e-mails and the
    bakery's name."""
    from lianka.platform.identity.members import _find_or_create_person

    operator, _ = await make_merchant(db, "街区联盟运营" if zh else "Street Alliance Ops")
    tea, _ = await make_merchant(db, "一点茶" if zh else "Yidian Tea")
    bakery_name = "麦香烘焙" if zh else "Maixiang Bakery"
    bakery, _ = await make_merchant(db, bakery_name)
    a = await membership.create(db, operator, code=f"street-{uuid.uuid4().hex[:6]}", name="街区卡", terms=Terms())
    for p in (tea, bakery):
        code, _ = await membership.invite(db, operator, a.id)
        await membership.accept(db, p, code)
    async with db.uow(system=True) as uow:
        people = [await _find_or_create_person(uow, f"+8613{uuid.uuid4().int % 10**9:09d}") for _ in range(24)]
        await uow.set_tenant(bakery)
        for i, m in enumerate(people):
            await uow.session.execute(text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"),
                                      {"t": bakery, "m": m})  # fmt: skip
            await uow.session.execute(
                text("INSERT INTO member_profiles (tenant_id, member_id, tier_code, consent) "
                     "VALUES (:t, :m, :tier, CAST(:c AS jsonb))"),
                {"t": bakery, "m": m, "tier": "gold" if i < 21 else "silver",
                 "c": '{"alliance": {"granted": true, "at": "2026-01-01T00:00:00+00:00", "history": []}}'},
            )  # fmt: skip
        await uow.commit()
    return await make_staff(db, tea, "owner"), await make_staff(db, bakery, "owner"), bakery_name


@pytest.mark.parametrize("lang", LANGS)
async def test_fund_accept_and_read_results(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    zh = lang == "zh-CN"
    t = Language(lang).gettext
    tea_owner, bakery_owner, bakery_name = await arrange(browser_db, zh)

    funder = await open_page(lang)
    page = funder.page
    await sign_in(funder, tea_owner)
    await page.locator("#side-menu").get_by_role("link", name=t("Alliance offers"), exact=True).click()
    await page.wait_for_url("**/console/alliance-offers")
    await funder.check("xmkt-empty")
    await page.get_by_test_id("new-offer").click()
    await page.wait_for_url("**/console/alliance-offers/new")
    await page.fill("#f-tiers", "silver")
    await page.get_by_test_id("estimate").click()
    await page.wait_for_selector("[data-testid='estimate-count']")
    assert await page.get_by_test_id("estimate-count").inner_text() == t("Members who would get it: %(n)s") % {
        "n": "< 20"
    }
    await funder.check("xmkt-estimate-small")
    await page.fill("#f-tiers", "gold")
    await page.get_by_test_id("estimate").click()
    await page.wait_for_selector("[data-testid='estimate-count']")
    assert "21" in await page.get_by_test_id("estimate-count").inner_text()
    name = "第二杯半价" if zh else "Second cup"
    await page.fill("#f-name", name)
    await page.fill("#f-message", "凭券到一点茶满30减8" if zh else "Show this at Yidian Tea: ¥8 off ¥30")
    await page.fill("#f-discount", "8")
    await page.fill("#f-min_spend", "30")
    await page.fill("#f-fee", "1.50")
    until = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=20)
    await page.fill("#f-valid_until", until.strftime("%Y-%m-%dT%H:%M"))
    await without_axe_traces(page)
    await page.get_by_test_id("propose-offer").click()
    await page.wait_for_url(re.compile(r"/console/alliance-offers/[0-9a-f-]{36}/[0-9a-f-]{36}$"))
    assert await page.get_by_test_id("offer-status").inner_text() == t("Waiting for the partner")
    await funder.check("xmkt-proposed")
    offer_url = page.url

    target = await open_page(lang)
    tpage = target.page
    await sign_in(target, bakery_owner)
    await tpage.goto(offer_url)
    assert "21" in await tpage.locator("article").inner_text()  # the target sees its exact count
    await target.check("xmkt-target-decides")
    await tpage.get_by_test_id("accept-offer").click()
    await tpage.wait_for_selector("[data-testid='recipients']")
    assert await tpage.get_by_test_id("offer-status").inner_text() == t("Accepted and sent")
    assert await tpage.get_by_test_id("recipients").inner_text() == t("Sent to %(n)s members.") % {"n": 21}
    await target.check("xmkt-target-accepted")

    await page.goto(offer_url)
    assert await page.get_by_test_id("result-sent").inner_text() == "21"
    assert await page.get_by_test_id("result-redeemed").inner_text() == "0"
    await funder.check("xmkt-results")
    await page.goto(offer_url.split("/console/")[0] + "/console/alliance-offers")
    assert await page.get_by_test_id(f"status-{name}").inner_text() == t("Accepted and sent")
    assert bakery_name in await page.locator(f"[data-offer='{name}']").inner_text()
    await funder.check("xmkt-list")
