"""The HQ dashboard through the app: every figure (KPI tiles, the branch table, the charts' files)
against an independent computation straight from the POS and ledger tables — several local days, a
refund, a stored-value spend, two merchants (nothing of the other one shows) — in zh-CN and English,
and what a branch manager sees (its branch only, no merchant-wide figures) and is refused."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.tenants.pos import schemas, stored_value
from lianka.tenants.reports import rollups
from lianka.web.console import i18n
from lianka.web.console.i18n import LANG_COOKIE
from tests.api.settlement_kit import csv_table, xlsx_sheets
from tests.api.test_console import sign_in_console
from tests.integration.reports.test_rollups import activity

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
NOVEMBER = "/console/dashboard?period=custom&first=2026-11-01&last=2026-11-30"


def tile(html: str, key: str) -> str:
    found = re.search(rf'data-testid="kpi-{key}">\s*<header>[^<]*</header>\s*<p class="figure">([^<]*)</p>', html)
    assert found, key
    return unescape(found.group(1)).strip()


def cell(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert found, testid
    return unescape(found.group(1)).strip()


async def independent(db: Database, tenant: uuid.UUID) -> dict[str, Any]:
    """November's figures from the raw rows, in Python."""
    async with db.uow(tenant) as uow:
        sales = (await uow.session.execute(text("SELECT * FROM sales"))).mappings().all()
        refunds = (await uow.session.execute(text("SELECT * FROM refunds"))).mappings().all()
        points = await uow.session.scalar(
            text(
                "SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id"
                " WHERE a.owner_kind = 'member' AND a.kind = 'points'"
            )
        )
        principal = await uow.session.scalar(
            text(
                "SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id"
                " WHERE a.owner_kind = 'member' AND a.kind = 'sv_principal'"
            )
        )
    nov = [s for s in sales if s["business_time"].astimezone(TZ).strftime("%Y-%m") == "2026-11"]
    member = sum(s["gross"] - s["member_discount"] - s["coupon_total"] for s in nov if s["member_id"])
    walk_in = sum(s["gross"] - s["member_discount"] - s["coupon_total"] for s in nov if not s["member_id"])
    by_id = {s["id"]: s for s in sales}
    per_branch: dict[uuid.UUID, int] = defaultdict(int)
    for s in nov:
        per_branch[s["branch_id"]] += s["gross"] - s["member_discount"] - s["coupon_total"]
    for r in refunds:
        if by_id[r["sale_id"]]["member_id"]:
            member -= r["amount"]
        else:
            walk_in -= r["amount"]
        per_branch[r["branch_id"]] -= r["amount"]
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for s in nov:
        if s["member_id"]:
            counts[s["member_id"]] += 1
    return {
        "sales": member + walk_in,
        "member": member,
        "walk_in": walk_in,
        "member_count": sum(1 for s in nov if s["member_id"]),
        "walk_in_count": sum(1 for s in nov if not s["member_id"]),
        "active": len(counts),
        "repeat": sum(1 for n in counts.values() if n >= 2),
        "points": int(points or 0),
        "principal": int(principal or 0),
        "per_branch": per_branch,
    }


async def test_every_figure_equals_an_independent_computation(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, b) = await activity(db, tenant_factory, member_factory)
    other, _ = await activity(db, tenant_factory, member_factory)
    for t in (tenant, other):
        await rollups.refresh(db, t)
    want = await independent(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    html = (await console.get(NOVEMBER, headers={"Accept-Language": "en"})).text

    money = i18n.money
    assert tile(html, "sales") == money(want["sales"]) == "¥271.00"
    share = Decimal(want["member"]) / Decimal(want["sales"]) * 100
    assert tile(html, "member_share") == f"{share.quantize(Decimal('0.1'))}%"
    assert tile(html, "avg_member") == money(round(Decimal(want["member"]) / want["member_count"]))
    assert tile(html, "avg_nonmember") == money(round(Decimal(want["walk_in"]) / want["walk_in_count"]))
    assert tile(html, "active") == str(want["active"]) == "2"
    assert tile(html, "repeat") == f"{Decimal(want['repeat'] * 100) / want['active']:.1f}%" == "50.0%"
    assert tile(html, "liability") == money(want["points"])  # 0.01 yuan a point: a point is a fen
    assert tile(html, "float_principal") == money(want["principal"])
    assert cell(html, "sales-A") == money(want["per_branch"][a])
    assert cell(html, "sales-B") == money(want["per_branch"][b])
    assert "no comparison" in html  # October had nothing

    # the charts' files: the same figures, exact decimals
    sales_csv = csv_table(
        (await console.get(NOVEMBER.replace("/console/dashboard", "/console/dashboard/download/sales.csv"))).content
    )
    assert sales_csv[0] == ["date", "member sales (CNY)", "non-member sales (CNY)"]
    assert sum(Decimal(r[1]) + Decimal(r[2]) for r in sales_csv[1:]) * 100 == want["sales"]
    assert len(sales_csv) == 31
    branches = xlsx_sheets(
        (await console.get(NOVEMBER.replace("/console/dashboard", "/console/dashboard/download/branches.xlsx"))).content
    )
    rows = {r[0]: r for r in branches["branches"][1:]}
    assert Decimal(str(rows["A"][2])) * 100 == want["per_branch"][a]

    # the other merchant's branch is not a branch here; a bad chart is a bad request
    other_branch = (await independent(db, other))["per_branch"]
    assert (await console.get(f"{NOVEMBER}&branch={next(iter(other_branch))}")).status_code == 404
    assert (await console.get("/console/dashboard/download/ledger.csv")).status_code == 400
    one = (await console.get(f"{NOVEMBER}&branch={a}", headers={"Accept-Language": "en"})).text
    assert tile(one, "sales") == money(want["per_branch"][a]) and 'data-testid="sales-B"' not in one

    # Chinese: the same figures, the labels translated
    client.cookies.set(LANG_COOKIE, "zh-CN")
    zh = (await console.get(NOVEMBER)).text
    assert tile(zh, "sales") == money(want["sales"])
    assert "概览" in zh and "会员消费占比" in zh


async def test_a_branch_manager_sees_its_branch_only(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, b) = await activity(db, tenant_factory, member_factory)
    await rollups.refresh(db, tenant)
    want = await independent(db, tenant)
    manager = await sign_in_console(client, auth_kit, tenant, "manager", branches=(a,))
    html = (await manager.get(NOVEMBER, headers={"Accept-Language": "en"})).text
    assert cell(html, "sales-A") == i18n.money(want["per_branch"][a])
    assert 'data-testid="sales-B"' not in html
    assert tile(html, "sales") == i18n.money(want["per_branch"][a])
    assert 'data-testid="kpi-liability"' not in html and "Members by tier" not in html
    refused = await manager.get(f"{NOVEMBER}&branch={b}")
    assert refused.status_code == 403
    assert (await manager.get("/console/dashboard?period=custom&first=2026-11-30&last=2026-11-01")).status_code == 400


async def test_this_months_clearing_shows_per_branch(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    """A top-up at A today and its spend at B: the branches' clearing this month, as the ledger says."""
    tenant, (a, b) = await activity(db, tenant_factory, member_factory)
    m = await member_factory(tenant)
    now = datetime.now(UTC)
    await stored_value.top_up(
        db, tenant, schemas.TopUpIn(member_id=m, plan="p300", business_time=now), uuid.uuid4().hex, a
    )
    from lianka.tenants.pos import sales as pos_sales

    await pos_sales.sale(
        db,
        tenant,
        schemas.Basket(amount=6_000, member_id=m, stored_value=6_000, business_time=now),
        uuid.uuid4().hex,
        b,
    )
    await rollups.refresh(db, tenant)
    month = now.astimezone(TZ).strftime("%Y-%m")
    async with db.uow(tenant) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT a.owner_id, a.kind, a.unit, p.amount, e.period FROM ledger_postings p"
                    " JOIN ledger_accounts a ON a.id = p.account_id JOIN ledger_entries e ON e.id = p.entry_id"
                    " WHERE a.owner_kind = 'branch'"
                )
            )
        ).all()
    owed: dict[uuid.UUID, int] = defaultdict(int)
    for owner, kind, unit, amount, period in rows:
        if kind.startswith("clr_") and unit == "CNY" and period == month:
            owed[owner] += amount
    assert owed[a] != 0 and owed[b] != 0
    console = await sign_in_console(client, auth_kit, tenant)
    body = (await console.get("/console/dashboard/download/branches.csv?period=this_month")).content
    table = {r[0]: r for r in csv_table(body)[1:]}
    assert Decimal(table["A"][6]) * 100 == owed[a]
    assert Decimal(table["B"][6]) * 100 == owed[b]
    assert Decimal(table["A"][4]) * 100 == 30_000  # the top-up's principal, collected at A
