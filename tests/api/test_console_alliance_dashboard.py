"""The alliance dashboard through the app: the operator's page and files carry the journal's figures
(computed independently), a partner's page and files only its own, a merchant outside the alliance
gets 404, a bad chart 400; zh-CN and English."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from lianka.alliance.reports import rollups
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.web.console.i18n import LANG_COOKIE
from tests.api.settlement_kit import csv_table, xlsx_sheets
from tests.api.test_console import sign_in_console
from tests.integration.alliance_reports.test_alliance_dashboard import expected, world

pytestmark = pytest.mark.integration
QUERY = "?period=custom&first=2026-10-01&last=2026-12-31"


async def test_the_operator_sees_every_partner_and_a_partner_its_own(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    from datetime import date

    w = await world(db, tenant_factory, member_factory)
    await rollups.refresh(db, w.alliance)
    exp = await expected(db, w.alliance, date(2026, 10, 1), date(2026, 12, 31))
    base = f"/console/alliance/{w.alliance}/dashboard"

    console = await sign_in_console(client, auth_kit, w.operator)
    html = (await console.get(base + QUERY, headers={"Accept-Language": "en"})).text
    assert "Who redeems whose points" in html and 'data-testid="sankey-points"' in html
    assert html.count("data-partner=") == 3
    assert 'aria-current="page"' in html and f'href="{base}"' in html  # the alliance's tab
    partners = csv_table((await console.get(f"{base}/download/partners.csv{QUERY}")).content)
    assert partners[0][:3] == ["partner", "points issued", "points accepted"]
    assert sorted(int(r[1]) for r in partners[1:]) == sorted(
        exp.partners.get(p, {}).get("points_issued", 0) for p in (w.operator, w.p1, w.p2)
    )
    flows = xlsx_sheets((await console.get(f"{base}/download/flows.xlsx{QUERY}")).content)["flows"]
    assert sum(r[2] for r in flows[1:]) == sum(p for p, _ in exp.flows.values())
    assert sum(Decimal(str(r[3])) * 100 for r in flows[1:]) == sum(a for _, a in exp.flows.values())
    assert (await console.get(f"{base}/download/ledger.csv")).status_code == 400
    # the picker (htmx) gets the body alone; a bad period is a 400
    body = (await console.get(base + "?period=last_30", headers={"HX-Request": "true"})).text
    assert 'id="dashboard-body"' in body and "<html" not in body
    assert (await console.get(base + "?period=custom&first=2026-12-01&last=2026-01-01")).status_code == 400

    client.cookies.set(LANG_COOKIE, "zh-CN")
    zh = (await console.get(base + QUERY)).text
    assert "谁兑换了谁的积分" in zh and "积分流向" in zh and "共享会员" in zh

    # a partner: one row (its own), the flows touching it, files alike
    partner = await sign_in_console(client, auth_kit, w.p1)
    mine = (await partner.get(base + QUERY, headers={"Accept-Language": "en"})).text
    assert mine.count("data-partner=") == 1 and f'data-partner="{w.p1}"' in mine
    assert f'data-partner="{w.p2}"' not in mine and 'data-testid="partner-view"' in mine
    rows = csv_table((await partner.get(f"{base}/download/partners.csv{QUERY}")).content)
    assert len(rows) == 2 and int(rows[1][1]) == exp.partners[w.p1]["points_issued"]
    flow_rows = csv_table((await partner.get(f"{base}/download/flows.csv{QUERY}")).content)[1:]
    assert len(flow_rows) == sum(1 for k in exp.flows if w.p1 in k)
    credit = csv_table((await partner.get(f"{base}/download/credit.csv{QUERY}")).content)
    assert len(credit) == 2

    # a cashier of the operator has no reports: refused before anything is read
    cashier = await sign_in_console(client, auth_kit, w.operator, "cashier")
    assert (await cashier.get(base)).status_code == 403
    assert (await cashier.get(f"{base}/download/flows.csv")).status_code == 403

    # outside the alliance: the alliance's 404, on the page and the files
    stranger = await sign_in_console(client, auth_kit, await tenant_factory("局外人"))
    assert (await stranger.get(base)).status_code == 404
    assert (await stranger.get(f"{base}/download/flows.csv")).status_code == 404
    assert (await stranger.get(f"/console/alliance/{uuid.uuid4()}/dashboard")).status_code == 404
