"""The settlement pages in a real browser, in zh-CN and in English: a chain whose October is closed
and whose November holds a late October top-up (a till that was offline). The owner opens
Settlement from the menu, closes November (confirming), watches the progress (polled by htmx, the
close run by the real worker) reach "closed", opens the month's summary with its chart, opens a
branch's statement with its late item, and downloads its PDF."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.settlement import services as settlement
from lianka.platform import audit
from lianka.tenants.domain.programme import BonusFunder
from lianka.tenants.pos import sales, schemas, stored_value
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services.programme import set_programme
from lianka.web.console import i18n
from lianka.web.console.i18n import Language
from lianka.web.console.settlement import month_label
from tests.api.settlement_kit import programme
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in

BRANCHES = {"SH01": "人民广场店", "SH02": "静安寺店", "SH03": "徐家汇店"}


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def arrange(db: Any) -> tuple[uuid.UUID, str, dict[str, uuid.UUID]]:
    """A tea chain with three branches and stored value: October's worked example, closed; then an
    October top-up that arrives late at SH03 and a November sale at SH01. (merchant, owner, branches)"""
    from lianka.platform.identity.members import _find_or_create_person

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    ids = {
        code: (await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges(code, name, "", "Asia/Shanghai"))).id
        for code, name in BRANCHES.items()
    }
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme(BonusFunder.HQ), effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    members = []
    async with db.uow(system=True) as uow:
        for _ in range(3):
            member = await _find_or_create_person(uow, f"+86139{uuid.uuid4().int % 10**8:08d}")
            await uow.set_tenant(tenant)
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": tenant, "m": member}
            )
            await uow.set_system()
            members.append(member)
        await uow.commit()
    x, y, z = members

    async def top_up(member: uuid.UUID, plan: str, branch: str, when: str) -> None:
        body = schemas.TopUpIn(member_id=member, plan=plan, branch_id=ids[branch], business_time=at(when))
        await stored_value.top_up(db, tenant, body, uuid.uuid4().hex, ids[branch])

    async def spend(member: uuid.UUID, amount: int, branch: str, when: str) -> None:
        basket = schemas.Basket(
            amount=amount, member_id=member, branch_id=ids[branch], stored_value=amount, business_time=at(when)
        )
        await sales.sale(db, tenant, basket, uuid.uuid4().hex, ids[branch])

    october = "2026-10-15T12:00:00+08:00"
    await top_up(x, "1000-1100", "SH01", october)
    await spend(x, 55_000, "SH02", october)
    await spend(x, 11_000, "SH03", october)
    await top_up(y, "500", "SH02", october)
    await spend(y, 20_000, "SH01", october)
    await settlement.close_now(db, tenant, "2026-10", actor=audit.SCHEDULED)
    await top_up(z, "500", "SH03", "2026-10-31T20:00:00+08:00")  # after October's close: late, in November
    await spend(y, 8_800, "SH01", "2026-11-10T15:30:00+08:00")
    return tenant, await make_staff(db, tenant, "owner"), ids


@pytest.mark.parametrize("lang", LANGS)
async def test_close_a_month_watch_its_progress_open_a_statement_download_the_pdf(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    _tenant, email, ids = await arrange(browser_db)
    visit = await open_page(lang)
    page, language = visit.page, Language(lang)
    t = language.gettext
    await sign_in(visit, email)

    # the months, from the menu: October closed, November may be closed, this month not yet
    await page.locator("#side-menu").get_by_role("link", name=t("Settlement"), exact=True).click()
    await page.wait_for_url("**/console/settlement")
    assert await page.locator("tr[data-period='2026-10']").get_attribute("data-status") == "closed"
    assert await page.locator("tr[data-period='2026-11']").get_attribute("data-closable") == "true"
    current = page.locator("tbody tr").first
    assert await current.get_attribute("data-closable") == "false"
    assert "Asia/Shanghai" in await current.inner_text()
    await visit.check("settlement-months")

    # close November: confirm, then the progress page, polled until the worker has closed it
    november = month_label("2026-11", language)
    asked: list[str] = []

    async def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await page.get_by_test_id("close-2026-11").click()
    await page.wait_for_url("**/console/settlement/2026-11/progress")
    assert asked and november in asked[0]
    await page.wait_for_selector("#close-progress[data-step='closed'][data-percent='100']", timeout=30_000)
    assert await page.get_by_test_id("close-percent").inner_text() == "100%"
    await visit.check("settlement-progress-done")

    # the month's summary: a net per branch, who pays whom, and the chart drawn from its data
    await page.get_by_test_id("see-statements").click()
    await page.wait_for_url("**/console/settlement/2026-11")
    await page.wait_for_selector(".chart[data-drawn] canvas")
    assert await page.locator("h1").inner_text() == t("Settlement for %(month)s") % {"month": november}
    sh03 = page.locator("tr[data-branch='SH03']")
    assert await sh03.get_attribute("data-net") == "-50000"
    assert t("%(branch)s pays HQ") % {"branch": "SH03"} in await sh03.inner_text()
    assert "¥500.00" in await sh03.inner_text()
    assert await page.get_by_test_id("late-count").inner_text() == "1"
    await visit.check("settlement-month")

    # SH03's statement: its October top-up, late, and what it owes HQ
    await page.get_by_test_id("statement-SH03").click()
    await page.wait_for_url(f"**/console/settlement/2026-11/statements/{ids['SH03']}")
    late = page.locator("[data-testid=late-items] tbody tr")
    assert await late.count() == 1
    row = await late.first.inner_text()
    assert month_label("2026-10", language) in row and t("Stored value collected") in row and "-¥500.00" in row
    assert i18n.localtime(at("2026-10-31T20:00:00+08:00"), language, "Asia/Shanghai", "short") in row, row
    verdict = await page.get_by_test_id("verdict").inner_text()
    assert t("%(branch)s pays HQ") % {"branch": "SH03"} in verdict and "¥500.00" in verdict
    await visit.check("settlement-statement")

    # its PDF, made by the API's exporter
    async with page.expect_download() as download_info:
        await page.get_by_test_id("statement-files").locator("a[data-format='pdf']").click()
    download = await download_info.value
    assert re.fullmatch(r"m-[0-9a-f]{10}-SH03-2026-11\.pdf", download.suggested_filename)
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert body.startswith(b"%PDF") and len(body) > 1000
