"""The alliance dashboard in a real browser, in zh-CN and English: an operator and two partners
earning and redeeming each other's points (an expiry, a refunded redemption — the integration test's
story). The operator opens the alliance, its Dashboard tab, picks October to December: the tiles, the
activity bars, both Sankey charts and the credit bars are drawn, the partner table has three rows, the
flows chart downloads as CSV; its Liability tab shows October's points held by issuing partner. A
partner's owner, in a context of its own, sees its own row only.

Screenshots land in tests/browser/artifacts/<language>/alliance-dashboard-*.png."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.reports import rollups
from lianka.web.console.i18n import Language
from tests.api.settlement_kit import csv_table
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in
from tests.integration.alliance_reports.test_alliance_dashboard import World, world

QUERY = "?period=custom&first=2026-10-01&last=2026-12-31"


async def arrange(db: Any, zh: bool) -> World:
    from lianka.platform.identity.members import _find_or_create_person

    names = iter(["运营方茶饮", "甲面包", "乙咖啡"] if zh else ["Operator Tea", "Alpha Bakery", "Beta Coffee"])

    async def tenant_factory(_name: str, **_: object) -> uuid.UUID:
        tenant, _slug = await make_merchant(db, next(names))
        return tenant

    async def member_factory(tenant: uuid.UUID, phone: str | None = None) -> uuid.UUID:
        async with db.uow(system=True) as uow:
            member: uuid.UUID = await _find_or_create_person(uow, phone or f"+86139{random.randrange(10**8):08d}")
            await uow.set_tenant(tenant)
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m) ON CONFLICT DO NOTHING"),
                {"t": tenant, "m": member},
            )
            await uow.commit()
        return member

    w = await world(db, tenant_factory, member_factory)
    await rollups.refresh(db, w.alliance)
    return w


@pytest.mark.parametrize("lang", LANGS)
async def test_the_operator_reads_the_flows_and_a_partner_sees_its_own(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    t = Language(lang).gettext
    w = await arrange(browser_db, lang == "zh-CN")
    visit = await open_page(lang)
    page = visit.page
    await sign_in(visit, await make_staff(browser_db, w.operator, "owner"))
    await visit.goto(f"/console/alliance/{w.alliance}")
    await page.get_by_test_id("alliance-dashboard-tab").click()
    await page.wait_for_url(f"**/console/alliance/{w.alliance}/dashboard")
    await visit.goto(f"/console/alliance/{w.alliance}/dashboard{QUERY}")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    assert await page.locator("[data-dash-chart][data-drawn]").count() == 4  # activity, 2 Sankeys, credit
    assert await page.get_by_test_id("kpi-points_issued").locator(".figure").inner_text() == "900"  # 500 + 100 + 300
    assert await page.locator("table[data-testid=partner-table] tbody tr").count() == 3
    assert await page.get_by_role("heading", name=t("Who redeems whose points")).is_visible()
    await visit.check("alliance-dashboard-operator")

    async with page.expect_download() as info:
        await page.get_by_test_id("download-flows-csv").click()
    rows = csv_table(await asyncio.to_thread(Path(await (await info.value).path()).read_bytes))
    assert rows[0] == ["issuing partner", "redeeming partner", "points", "reimbursed (CNY)"]
    assert len(rows) > 3

    # the Liability tab: October's points and stored value held, by issuing partner
    await page.get_by_test_id("alliance-liability-tab").click()
    await page.wait_for_url(f"**/console/alliance/{w.alliance}/liability")
    await visit.goto(f"/console/alliance/{w.alliance}/liability?period=2026-10")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    issued = await page.get_by_test_id("alliance_points-issued").inner_text()
    assert issued.split()[0] == "900" and "¥7.20" in issued  # at the reimbursement price 0.008
    assert await page.locator("table[data-testid=alliance-liability-table] tbody tr").count() == 12  # 3 schemes x 4
    await visit.check("alliance-liability-operator")

    partner = await open_page(lang)
    await sign_in(partner, await make_staff(browser_db, w.p2, "owner"))
    await partner.goto(f"/console/alliance/{w.alliance}/dashboard{QUERY}")
    await partner.page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    assert await partner.page.locator("table[data-testid=partner-table] tbody tr").count() == 1
    assert await partner.page.get_by_test_id("partner-view").is_visible()
    await partner.check("alliance-dashboard-partner")
