"""The finance report pages through the app: HQ only (a branch manager is refused), a bad month or
file name is a 400, and a bad mapping row is a 400 that saves nothing (the other rows neither)."""

from __future__ import annotations

from typing import Any

from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.tenants.reports import vouchers
from tests.api.test_console import sign_in_console
from tests.integration.reports.test_rollups import activity

PAGES = ("/console/reports/liability", "/console/reports/vouchers", "/console/reports/bonus-simulator")


async def test_hq_only_and_strict_input(
    client: Any, auth_kit: AuthKit, db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, _) = await activity(db, tenant_factory, member_factory)
    manager = await sign_in_console(client, auth_kit, tenant, "manager", branches=(a,))
    for url in PAGES:
        assert (await manager.get(url)).status_code == 403, url
    owner = await sign_in_console(client, auth_kit, tenant)
    for url in PAGES:
        assert (await owner.get(url)).status_code == 200, url
        assert (await owner.get(f"{url}?period=2026-13")).status_code == 400, url
        assert (await owner.get(f"{url}/download/other.csv")).status_code == 400, url
    ok = await owner.get("/console/reports/vouchers/download/vouchers.xlsx?period=2026-11")
    assert ok.status_code == 200 and ok.content[:2] == b"PK"
    bad = await owner.post(
        "/console/reports/vouchers/mapping",
        {"kind_1": "sales", "code_sales": "6001.9", "name_sales": "收入", "kind_2": "cash", "code_cash": "10 01"},
    )
    assert bad.status_code == 400
    assert (await vouchers.vouchers(db, tenant, "2026-11")).mapping == {}
    good = await owner.post(
        "/console/reports/vouchers/mapping", {"kind_1": "sales", "code_sales": "6001.9", "name_sales": "收入"}
    )
    assert good.status_code in (200, 303)
    assert (await vouchers.vouchers(db, tenant, "2026-11")).mapping == {"sales": ("6001.9", "收入")}
