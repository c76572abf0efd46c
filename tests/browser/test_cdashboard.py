"""The HQ dashboard in a real browser, in zh-CN and in English: a tea chain with two branches and
two weeks of sales (members and walk-ins, a stored-value top-up and spend). The owner signs in and
opens the dashboard (first in the menu): the KPI tiles, the three charts drawn, the branch table;
switching the period to the last 30 days (htmx) redraws it; the daily sales chart downloads as CSV."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lianka.tenants.pos import sales, schemas, stored_value
from lianka.tenants.reports import rollups
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services.programme import set_programme
from lianka.web.console import i18n
from lianka.web.console.i18n import Language
from tests.api.settlement_kit import csv_table, programme
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in

BRANCHES = {"SH01": "人民广场店", "SH02": "静安寺店"}


async def arrange(db: Any) -> tuple[str, int]:
    """(the owner's e-mail, the last 30 days' sales in fen)."""
    from lianka.platform.identity.members import _find_or_create_person
    from lianka.tenants.domain.programme import BonusFunder

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    ids = [
        (await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges(code, name, "", "Asia/Shanghai"))).id
        for code, name in BRANCHES.items()
    ]
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme(BonusFunder.HQ), effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    from sqlalchemy import text

    members = []
    async with db.uow(system=True) as uow:
        for _ in range(3):
            member = await _find_or_create_person(uow, f"+86139{uuid.uuid4().int % 10**8:08d}")
            await uow.set_tenant(tenant)
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b)"),
                {"t": tenant, "m": member, "b": ids[0]},
            )
            await uow.set_system()
            members.append(member)
        await uow.commit()
    now = datetime.now(UTC)
    total = 0
    for day in range(14):
        when = now - timedelta(days=day, hours=1)
        for i, branch in enumerate(ids):
            amount = 2_000 + 700 * ((day + i) % 5)
            buyer = members[(day + i) % 3] if (day + i) % 2 == 0 else None
            basket = schemas.Basket(amount=amount, member_id=buyer, business_time=when)
            await sales.sale(db, tenant, basket, uuid.uuid4().hex, branch)
            total += amount
    await stored_value.top_up(
        db, tenant, schemas.TopUpIn(member_id=members[0], plan="500", business_time=now), uuid.uuid4().hex, ids[1]
    )
    await rollups.refresh(db, tenant)
    from lianka.tenants.marketing.services import rfm_scores

    await rfm_scores(db, tenant, now)  # the nightly member snapshot, once now
    return await make_staff(db, tenant, "owner"), total


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_reads_the_dashboard_switches_the_period_and_downloads_a_chart(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    email, total = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.locator("#side-menu").get_by_role("link", name=t("Dashboard"), exact=True).click()
    await page.wait_for_url("**/console/dashboard")
    assert await page.locator("h1").inner_text() == t("Dashboard")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    # sales, points, growth, tiers, the coupon funnel and the lifecycle stages (no tier moves or rewards)
    assert await page.locator("[data-dash-chart][data-drawn]").count() == 6
    assert await page.locator("table[data-testid=rfm-grid] td").count() == 25
    assert await page.get_by_test_id("members-as-of").inner_text() != ""
    assert await page.get_by_test_id("kpi-float_principal").locator(".figure").inner_text() == "¥500.00"
    await visit.check("dashboard-this-month")

    await page.select_option("#d-period", "last_30")
    await page.wait_for_url("**/console/dashboard?*period=last_30*")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    assert await page.get_by_test_id("kpi-sales").locator(".figure").inner_text() == i18n.money(total)
    assert await page.locator("table[data-testid=branch-table] tbody tr").count() == 2
    await visit.check("dashboard-last-30")

    async with page.expect_download() as info:
        await page.get_by_test_id("download-sales-csv").click()
    download = await info.value
    path = Path(await download.path())
    rows = csv_table(await asyncio.to_thread(path.read_bytes))
    assert len(rows) == 31
    assert sum(Decimal(r[1]) + Decimal(r[2]) for r in rows[1:]) * 100 == total
