"""The bonus-funding simulator in a real browser, in zh-CN and in English: a tea chain whose SH01
sold a 1000送100 top-up last month that was spent at SH02, the issuing branch funding bonuses. The
owner opens the simulator from the menu (报表): last month by default, the grouped bar chart drawn,
each branch's net under the three policies — the current policy's column is the real net — and the
table downloads as CSV."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lianka.tenants.domain.programme import BonusFunder
from lianka.tenants.pos import sales, schemas, stored_value
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from tests.api.settlement_kit import csv_table, programme
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in

BRANCHES = {"SH01": "人民广场店", "SH02": "静安寺店"}


def last_month_day() -> datetime:
    first = datetime.now(ZoneInfo("Asia/Shanghai")).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=20)).astimezone(UTC)


async def arrange(db: Any) -> str:
    from sqlalchemy import text

    from lianka.platform.identity.members import _find_or_create_person

    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    ids = [
        (await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges(code, name, "", "Asia/Shanghai"))).id
        for code, name in BRANCHES.items()
    ]
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme(BonusFunder.ISSUING_BRANCH), effective_from=datetime(2025, 1, 1, tzinfo=UTC))
        await uow.commit()
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, f"+86139{uuid.uuid4().int % 10**8:08d}")
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b)"),
            {"t": tenant, "m": member, "b": ids[0]},
        )
        await uow.commit()
    at = last_month_day()
    await stored_value.top_up(
        db, tenant, schemas.TopUpIn(member_id=member, plan="1000-1100", business_time=at), uuid.uuid4().hex, ids[0]
    )
    basket = schemas.Basket(amount=55_000, member_id=member, stored_value=55_000, business_time=at + timedelta(hours=2))
    await sales.sale(db, tenant, basket, uuid.uuid4().hex, ids[1])
    return await make_staff(db, tenant, "owner")


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_compares_bonus_policies_for_last_month(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    email = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.locator("#side-menu").get_by_role("link", name=t("Bonus-funding simulator"), exact=True).click()
    await page.wait_for_url("**/console/reports/bonus-simulator")
    assert await page.locator("h1").inner_text() == t("Bonus-funding simulator")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")
    assert t("Issuing branch funds it") in await page.get_by_test_id("current-policy").inner_text()
    bonus = await page.get_by_test_id("bonus-consumed").inner_text()
    assert bonus == "¥50.00"  # 550 of 1100 spent: half of the 100 bonus

    def cell(test_id: str) -> Any:
        return page.get_by_test_id(test_id).inner_text()

    # SH01 took ¥1000 cash (owes HQ) and, issuing the bonus, is charged the ¥50 spent at SH02
    assert await cell("net-SH01-issuing_branch") == "-¥1,050.00"
    assert await cell("net-SH01-hq") == "-¥1,000.00"
    assert await cell("net-SH02-hq") == "¥550.00"
    assert await cell("net-SH02-redeeming_branch") == "¥500.00"
    assert await cell("actual-SH01") == await cell("net-SH01-issuing_branch")
    assert await cell("actual-SH02") == await cell("net-SH02-issuing_branch")
    assert await cell("hub-hq") == "¥450.00"
    await visit.check("bonus-simulator")

    async with page.expect_download() as info:
        await page.get_by_test_id("download-csv").click()
    download = await info.value
    rows = csv_table(await asyncio.to_thread(Path(await download.path()).read_bytes))
    assert rows[0][0] == "branch"
    by_code = {r[0]: r for r in rows[1:]}
    assert Decimal(by_code["SH01"][2]) == Decimal("-1050.00")
    assert sum(Decimal(r[3]) for r in rows[1:]) == 0  # the HQ column nets the branches to zero


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_reads_last_months_liability(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    email = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.locator("#side-menu").get_by_role("link", name=t("Liability and breakage"), exact=True).click()
    await page.wait_for_url("**/console/reports/liability")
    assert await page.locator("h1").inner_text() == t("Liability and breakage")
    await page.wait_for_selector("[data-dash-chart][data-drawn] canvas")

    async def cell(test_id: str) -> str:
        return str(await page.get_by_test_id(test_id).inner_text()).strip()

    # ¥1000 principal and ¥100 bonus topped up at SH01; ¥550 spent at SH02 (500 principal, 50 bonus)
    assert await cell("sv_principal-issued") == "¥1,000.00"
    assert await cell("sv_principal-used") == "¥500.00"
    assert await cell("sv_principal-closing") == "¥500.00"
    assert await cell("sv_bonus-closing") == "¥50.00"
    assert await page.locator("tr[data-scheme=sv_principal][data-branch=SH02]").count() == 1
    await visit.check("liability")

    async with page.expect_download() as info:
        await page.get_by_test_id("download-csv").click()
    rows = csv_table(await asyncio.to_thread(Path(await (await info.value).path()).read_bytes))
    assert rows[0] == ["scheme", "branch", "unit", "opening", "issued", "used", "expired", "refunded", "closing"]
    total = next(r for r in rows if r[0] == "sv_principal" and r[1] == "*")
    assert [Decimal(x) for x in total[3:]] == [0, 1000, 500, 0, 0, 500]


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_maps_an_account_and_downloads_last_months_vouchers(
    open_page: OpenPage, browser_db: Any, lang: str
) -> None:
    email = await arrange(browser_db)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)
    await page.locator("#side-menu").get_by_role("link", name=t("Accounting vouchers"), exact=True).click()
    await page.wait_for_url("**/console/reports/vouchers")
    assert await page.locator("h1").inner_text() == t("Accounting vouchers")
    totals = page.locator("tr.voucher-total")
    assert await totals.count() >= 3  # the top-up, the spend, its clearing
    for row in await totals.all():
        cells = await row.locator("td.num").all_inner_texts()
        assert cells[0] == cells[1]  # debit = credit
    assert await page.locator("td", has_text="2203.01 预收账款-储值本金").count() >= 1

    await page.fill("input[name='code_sv_principal']", "2203")
    await page.fill("input[name='name_sv_principal']", "预收账款")
    await page.get_by_test_id("save-mapping").click()
    await page.wait_for_url("**/console/reports/vouchers?period=*")
    assert await page.locator("td", has_text="2203.01 预收账款-储值本金").count() == 0
    assert await page.locator("td", has_text="2203 预收账款").count() >= 1
    await visit.check("vouchers")

    async with page.expect_download() as info:
        await page.get_by_test_id("download-csv").click()
    body = await asyncio.to_thread(Path(await (await info.value).path()).read_bytes)
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    rows = csv_table(body)
    assert rows[0] == [
        "voucher_date",
        "voucher_no",
        "summary",
        "account_code",
        "account_name",
        "debit",
        "credit",
        "currency",
    ]
    debit = sum(Decimal(r[5] or 0) for r in rows[1:])
    assert debit == sum(Decimal(r[6] or 0) for r in rows[1:]) > 0
    assert any(r[3] == "2203" and r[6] == "1000.00" for r in rows[1:])  # the top-up's principal, credited
