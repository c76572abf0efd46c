"""Issue 16's "Done when", in a real browser, zh-CN and English, on the demo's marketing audience
(``lianka.demo.seed_marketing_audience``: sixty gold members with SMS consent and points expiring this
month, and the ¥10 回馈券): a newcomer builds the segment "gold members with points expiring this
month" in the builder (its live count), sends an SMS campaign with the coupon and a 10 % control
group, sees the messages in the development log (the served worker's console SMS backend), and the
results page fills as the demo shopper (``lianka.demo_shopper``, the real sale service) buys for
demo members: recipients' sales and the control group, coupons redeemed.

SMS waits for the morning outside 09:00-21:00 in the merchant's time zone; so that the test does not
depend on the hour it runs at, the merchant's zone is one where it is early afternoon now."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.demo import DEMO_PROGRAMME, MARKETING_MEMBERS, seed_marketing_audience
from lianka.demo_shopper import shop_once
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.browser.test_members import htmx_settled, without_axe_traces


def afternoon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about 14:00 now (``Etc/GMT-N`` is UTC+N)."""
    offset = 14 - now.hour  # -9 … +14
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def arrange(db: Any) -> tuple[uuid.UUID, str, str]:
    tenant, slug = await make_merchant(db, "一点茶 Yidian Tea")
    async with db.uow(tenant) as uow:
        await uow.session.execute(text("UPDATE merchants SET timezone = :z WHERE id = :t"),
                                  {"z": afternoon_zone(datetime.now(UTC)), "t": tenant})  # fmt: skip
        for code, name in (("SH01", "人民广场店"), ("SH02", "徐家汇店")):
            await uow.session.execute(text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :n)"),
                                      {"t": tenant, "c": code, "n": name})  # fmt: skip
        await set_programme(uow, DEMO_PROGRAMME, note="demo programme")
        await uow.commit()
    assert await seed_marketing_audience(db, tenant) == MARKETING_MEMBERS
    return tenant, slug, await make_staff(db, tenant, "owner")


async def phones_of(db: Any, tenant: uuid.UUID, campaign: str) -> list[str]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.scalars(
            text("SELECT m.phone FROM campaign_messages cm JOIN members m ON m.id = cm.member_id "
                 "WHERE cm.campaign_id = :c ORDER BY m.phone"), {"c": campaign})  # fmt: skip
        return [str(p) for p in rows]


@pytest.mark.parametrize("lang", LANGS)
async def test_segment_sms_campaign_with_coupon_and_control_then_results_fill(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, slug, email = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    # 1. the segment: SMS consent (the first condition), gold, points expiring this month
    await page.locator("#side-menu").get_by_role("link", name=t("Segments"), exact=True).click()
    await page.wait_for_url("**/console/segments")
    await page.get_by_test_id("add-segment").click()
    await page.wait_for_url("**/console/segments/new")
    await without_axe_traces(page)
    await page.get_by_test_id("add-condition-r").click()
    await page.wait_for_selector('[data-node="r.1"]')
    await htmx_settled(page)
    await page.select_option('[data-testid="kind-r.1"]', "tier")
    await page.wait_for_selector('input[name="r.1.tiers"]')
    await htmx_settled(page)
    await page.fill('input[name="r.1.tiers"]', "gold")
    await page.locator("#seg-name").click()
    await page.wait_for_selector(f'[data-testid="segment-count"] strong[data-count="{MARKETING_MEMBERS}"]')
    await page.get_by_test_id("add-condition-r").click()
    await page.wait_for_selector('[data-node="r.2"]')
    await htmx_settled(page)
    await page.select_option('[data-testid="kind-r.2"]', "points_expiring")
    await page.wait_for_selector('select[name="r.2.this_month"]')
    await htmx_settled(page)
    await page.select_option('select[name="r.2.this_month"]', "true")
    await page.wait_for_selector(f'[data-testid="segment-count"] strong[data-count="{MARKETING_MEMBERS}"]')
    assert await page.locator('select[name="r.2.this_month"]').input_value() == "true"
    name = "金卡本月积分到期" if lang == "zh-CN" else "Gold, points expiring this month"
    await page.fill("#seg-name", name)
    await visit.check("first-campaign-segment")
    await without_axe_traces(page)
    await page.get_by_test_id("save-segment").click()
    await page.wait_for_url(re.compile(r"/console/segments$"))

    # 2. the SMS campaign: the coupon, a 10 % control group
    await page.locator("#side-menu").get_by_role("link", name=t("Campaigns"), exact=True).click()
    await page.wait_for_url("**/console/campaigns")
    await page.get_by_test_id("add-campaign").click()
    await page.wait_for_url("**/console/campaigns/new")
    await page.fill("#f-name", "积分到期提醒" if lang == "zh-CN" else "Points expiring")
    await page.select_option("#f-segment_id", label=f"{name} ({MARKETING_MEMBERS})")
    await page.select_option("#f-channel", "sms")
    await page.fill("#f-template_a", "{name}，您有{expiring_points}积分将于{expiring_date}到期，送您¥10券{coupon_code}")
    await page.fill("#f-holdout_pct", "10")
    await page.select_option("#f-coupon_template_id", index=1)
    await visit.check("first-campaign-new")
    await without_axe_traces(page)
    await page.get_by_test_id("save-campaign").click()
    await page.wait_for_url(re.compile(r"/console/campaigns/[0-9a-f-]{36}$"))
    campaign = page.url.rsplit("/", 1)[1]
    await without_axe_traces(page)
    await page.get_by_test_id("send-campaign").click()
    await page.wait_for_url(re.compile(r"/console/campaigns/[0-9a-f-]{36}$"))
    control = int(await page.locator("[data-testid='attribution'] tbody tr").nth(1).locator("td").first.inner_text())
    assert 0 < control < MARKETING_MEMBERS // 4  # about 10 %
    recipients = MARKETING_MEMBERS - control
    for _ in range(90):  # the served relay and worker deliver the messages
        if await page.locator("[data-sent]").inner_text() == str(recipients):
            break
        await asyncio.sleep(0.5)
        await visit.goto(page.url.removeprefix(visit.base))
    assert await page.locator("[data-sent]").inner_text() == str(recipients)

    # 3. the development log: one console SMS per recipient, with the coupon and the opt-out
    phones = await phones_of(browser_db, tenant, campaign)
    assert len(phones) == recipients
    logged = [line for line in served.worker_log.read_text(errors="replace").splitlines()
              if "sms (console backend)" in line and "回复TD退订" in line]  # fmt: skip
    for phone in phones:
        mine = [line for line in logged if phone in line and "到期，送您¥10券" in line]
        assert mine, f"no console SMS to {phone}"
    await visit.check("first-campaign-sent")

    # 4. the demo shopper buys; the results page fills
    done = await shop_once(browser_db, slug, 40, rng=random.Random(16))
    assert any(d.coupon for d in done) and any(d.messaged for d in done)
    await visit.goto(page.url.removeprefix(visit.base))
    table = await page.get_by_test_id("attribution").inner_text()
    rows = page.locator("[data-testid='attribution'] tbody tr")
    assert await rows.nth(1).locator("td").first.inner_text() == str(control)
    bought = int(await rows.nth(0).locator("td").nth(1).inner_text())
    assert bought > 0
    shown = [Decimal(v.replace(",", "")) for v in re.findall(r"¥([0-9,]+\.[0-9]{2})", table)]
    assert len(shown) == 2 and shown[0] > 0
    cells = await page.get_by_test_id("campaign-counts").locator("tbody td").all_inner_texts()
    assert int(cells[-1]) == len({d.coupon for d in done if d.coupon})  # coupons redeemed
    assert await page.locator(".chart[data-drawn='true']").count() == 1
    await visit.check("first-campaign-results")
