"""The alliance's liability tab through the app: the operator's page and files carry the report's
figures (the total equal to the journal's hand count), a partner's page and files only its own rows,
a cashier 403, a merchant outside the alliance 404, a bad month or file 400; each download audited
in the downloader's log; zh-CN and English."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.web.console.i18n import LANG_COOKIE
from tests.api.settlement_kit import csv_table, xlsx_sheets
from tests.api.test_audit_log import rows as audit_rows
from tests.api.test_console import sign_in_console
from tests.integration.alliance_reports.test_alliance_dashboard import world

pytestmark = pytest.mark.integration


async def test_the_operator_sees_every_issuer_and_a_partner_its_own(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    base = f"/console/alliance/{w.alliance}/liability"

    console = await sign_in_console(client, auth_kit, w.operator)
    html = (await console.get(base + "?period=2026-10", headers={"Accept-Language": "en"})).text
    assert "Points held by members, by issuing partner" in html and 'data-testid="alliance-liability-tab"' in html
    assert html.count('data-scheme="alliance_points"') == 4  # all partners + the three partners
    assert f'data-issuer="{w.p1}"' in html and f'data-issuer="{w.p2}"' in html
    rows = csv_table((await console.get(f"{base}/download/liability.csv?period=2026-10")).content)
    assert rows[0] == [
        "scheme",
        "issuer_id",
        "issuer",
        "unit",
        "opening",
        "issued",
        "used",
        "expired",
        "refunded",
        "closing",
    ]
    total = next(r for r in rows if r[0] == "alliance_points" and r[1] == "*" and r[3] == "points")
    assert [int(x) for x in total[4:]] == [0, 900, 590, 0, 0, 310]
    money = next(r for r in rows if r[0] == "alliance_points" and r[1] == "*" and r[3] == "CNY")
    assert Decimal(money[-1]) == Decimal("2.48")  # 310 points at the reimbursement price 0.008
    issued = {r[1]: int(r[5]) for r in rows if r[0] == "alliance_points" and r[3] == "points"}
    assert issued == {"*": 900, str(w.operator): 0, str(w.p1): 500, str(w.p2): 400}
    sheet = xlsx_sheets((await console.get(f"{base}/download/liability.xlsx?period=2026-12")).content)["liability"]
    assert next(r for r in sheet if r[0] == "alliance_points" and r[1] == "*" and r[3] == "points")[-1] == 0
    # bad input is a 400 (the console's error page) and nothing else
    for bad in ("2026-13", "x", "2026-10-01"):
        assert (await console.get(f"{base}?period={bad}")).status_code == 400, bad
    assert (await console.get(f"{base}/download/ledger.csv")).status_code == 400
    assert (await console.get(f"{base}/download/liability.pdf")).status_code == 400

    client.cookies.set(LANG_COOKIE, "zh-CN")
    zh = (await console.get(base + "?period=2026-10")).text
    assert "会员持有的积分（按发放伙伴）" in zh and "全部伙伴" in zh and "联盟积分" in zh

    partner = await sign_in_console(client, auth_kit, w.p1)
    mine = (await partner.get(base + "?period=2026-10", headers={"Accept-Language": "en"})).text
    assert f'data-issuer="{w.p1}"' in mine and f'data-issuer="{w.p2}"' not in mine and 'data-issuer="*"' not in mine
    assert 'data-testid="partner-view"' in mine
    own = csv_table((await partner.get(f"{base}/download/liability.csv?period=2026-10")).content)[1:]
    assert {r[1] for r in own} == {str(w.p1)} and len(own) == 4  # points (count + money), principal, bonus

    cashier = await sign_in_console(client, auth_kit, w.operator, "cashier")
    assert (await cashier.get(base)).status_code == 403
    assert (await cashier.get(f"{base}/download/liability.csv")).status_code == 403

    # every download is an export in the downloader's own audit log; refused ones are not
    logged = [r for r in await audit_rows(db, w.operator, "export.downloaded") if r.object_kind == "alliance_liability"]
    assert [(r.object_id, r.details["format"], r.details["period"]) for r in logged] == [
        ("alliance-liability-2026-10.csv", "csv", "2026-10"),
        ("alliance-liability-2026-12.xlsx", "xlsx", "2026-12"),
    ]
    assert logged[0].details["rows"] == len(rows) - 1 and logged[0].details["alliance_id"] == str(w.alliance)
    assert len(await audit_rows(db, w.p1, "export.downloaded")) == 1

    stranger = await sign_in_console(client, auth_kit, await tenant_factory("局外人"))
    assert (await stranger.get(base)).status_code == 404
    assert (await stranger.get(f"{base}/download/liability.csv")).status_code == 404
