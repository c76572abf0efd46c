"""Chain settlement through the API, the design's worked example: "pay ¥1000 get ¥1100", proportional
consumption. X tops up ¥1000 at A, spends ¥550 at B and ¥110 at C; Y tops up ¥500 at B (no bonus)
and spends ¥200 at A. Month end nets each branch with HQ under each bonus-funding policy."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from openpyxl import load_workbook

from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder
from tests.api.settlement_kit import OCT, Chain
from tests.api.settlement_kit import make_chain as build_chain

pytestmark = pytest.mark.integration


@pytest.fixture
def make_chain(client, db: Database, tenant_factory, auth_kit, staff_token):
    async def make(funder: BonusFunder) -> Chain:
        return await build_chain(client, db, tenant_factory, auth_kit, staff_token, funder)

    return make


async def worked_example(chain: Chain, member_factory) -> dict[str, Any]:
    x, y = await member_factory(chain.tenant), await member_factory(chain.tenant)
    await chain.top_up(x, "1000-1100", "A")
    s1 = await chain.spend(x, 55_000, "B")
    assert (s1["quote"]["sv_principal"], s1["quote"]["sv_bonus"]) == (50_000, 5_000)
    s2 = await chain.spend(x, 11_000, "C")
    assert (s2["quote"]["sv_principal"], s2["quote"]["sv_bonus"]) == (10_000, 1_000)
    await chain.top_up(y, "500", "B")
    await chain.spend(y, 20_000, "A")
    out = await chain.close()
    return {s["code"]: s for s in out["statements"]} | {"summary": out["summary"], "checksum": out["checksum"]}


@pytest.mark.parametrize(
    ("funder", "nets", "bonus_expense"),
    [
        (BonusFunder.HQ, {"A": -80_000, "B": 5_000, "C": 11_000}, 6_000),
        (BonusFunder.REDEEMING_BRANCH, {"A": -80_000, "B": 0, "C": 10_000}, 0),
        (BonusFunder.ISSUING_BRANCH, {"A": -86_000, "B": 5_000, "C": 11_000}, 0),
    ],
)
async def test_month_end_nets_each_branch_with_hq(make_chain, member_factory, funder, nets, bonus_expense) -> None:
    chain = await make_chain(funder)
    got = await worked_example(chain, member_factory)
    assert {code: got[code]["net"] for code in "ABC"} == nets
    hub = next(v for k, v in got.items() if isinstance(v, dict) and v.get("entity_kind") == "hub")
    assert hub["net"] == -sum(nets.values())
    summary = got["summary"]
    assert summary["sum_with_hub"] == 0
    assert summary["float_change"] == 70_000  # HQ keeps ¥700 principal outstanding
    assert summary["bonus_expense"] == bonus_expense
    assert got["A"]["direction"] == "pays"
    assert got["A"]["lines"]["stored_value_collected"] == {"amount": -100_000, "points": 0}


async def test_close_is_idempotent_and_later_entries_land_in_the_next_period(make_chain, member_factory) -> None:
    chain = await make_chain(BonusFunder.HQ)
    first = await worked_example(chain, member_factory)
    again = await chain.close()
    assert again["checksum"] == first["checksum"]
    # a till that was offline sends an October sale after the close: it keeps its business time but
    # lands in November, as a late item
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "500", "C", at="2026-10-31T20:00:00+08:00")
    nov = await chain.close("2026-11")
    by_code = {s["code"]: s for s in nov["statements"]}
    assert by_code["C"]["net"] == -50_000
    assert by_code["C"]["late"] == -50_000
    assert by_code["C"]["opening"] == first["C"]["net"]  # October's position carried forward
    r = await chain.client.get("/api/v1/settlement/periods/2026-10", headers=chain.owner)
    assert r.json()["checksum"] == first["checksum"]  # October did not move


async def test_refund_of_a_stored_value_sale_undoes_its_clearing(make_chain, member_factory) -> None:
    chain = await make_chain(BonusFunder.ISSUING_BRANCH)
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "1000-1100", "A")
    sale = await chain.spend(x, 55_000, "B")
    await chain.post(f"/api/v1/pos/sales/{sale['sale_id']}/refunds", {"amount": 22_000, "business_time": OCT})
    got = {s["code"]: s for s in (await chain.close())["statements"]}
    # 2/5 of the sale came back: B keeps 3/5 of 500 + 50; A is charged 3/5 of the 50 bonus
    assert got["B"]["net"] == 30_000 + 3_000
    assert got["A"]["net"] == -100_000 - 3_000
    assert sum(s["net"] for s in got.values()) == 0


async def test_downloads(make_chain, member_factory) -> None:
    chain = await make_chain(BonusFunder.HQ)
    got = await worked_example(chain, member_factory)
    base = "/api/v1/settlement/periods/2026-10/download"
    r = await chain.client.get(f"{base}/csv", headers=chain.owner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    nets = {row[2]: int(row[7]) for row in table[1:] if len(row) > 7 and row[4] == "net"}
    assert nets["A"] == -80_000 and nets["B"] == 5_000 and nets["C"] == 11_000
    assert table[-1] == ["checksum", got["checksum"]]
    r = await chain.client.get(f"{base}/xlsx", headers=chain.owner)
    wb = load_workbook(io.BytesIO(r.content))
    assert wb["Summary"]["D1"].value == got["checksum"]
    nets_xlsx = {row[0].split()[0]: row[3] for row in wb["Summary"].iter_rows(min_row=4, values_only=True)}
    assert nets_xlsx["A"] == -800 and nets_xlsx["B"] == 50 and nets_xlsx["C"] == 110
    r = await chain.client.get(f"{base}/pdf", headers=chain.owner)
    assert r.content.startswith(b"%PDF") and len(r.content) > 1000
    r = await chain.client.get(f"{base}/instructions", headers=chain.owner)
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    pays = {(row[1].split()[0], row[2].split()[0]): int(row[3]) for row in lines[1:]}
    assert pays == {("A", "连锁茶饮"): 80_000, ("连锁茶饮", "B"): 5_000, ("连锁茶饮", "C"): 11_000}


async def test_settlement_needs_permission_and_stays_in_its_merchant(
    make_chain, member_factory, staff_token, tenant_factory
) -> None:
    chain = await make_chain(BonusFunder.HQ)
    await worked_example(chain, member_factory)
    cashier = await staff_token(chain.tenant, "cashier")
    r = await chain.client.post("/api/v1/settlement/periods/2026-10/close?wait=true", headers=cashier.headers)
    assert r.status_code == 403
    r = await chain.client.get("/api/v1/settlement/periods/2026-10", headers=cashier.headers)
    assert r.status_code == 403
    other = await staff_token(await tenant_factory("别家"), "owner")
    r = await chain.client.get("/api/v1/settlement/periods/2026-10", headers=other.headers)
    assert r.json()["status"] == "open" and r.json()["statements"] == []
    r = await chain.client.get("/api/v1/settlement/periods/2026-13", headers=chain.owner)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


async def test_unused_principal_refund_forfeits_bonus_and_is_reimbursed(make_chain, member_factory) -> None:
    chain = await make_chain(BonusFunder.HQ)
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "1000-1100", "A")
    await chain.spend(x, 55_000, "B")  # leaves ¥450 principal + ¥45 bonus
    url = "/api/v1/pos/stored-value/refunds"
    r = await chain.post(
        url, {"member_id": str(x), "amount": 20_000, "branch_id": str(chain.branches["C"]), "business_time": OCT}
    )
    assert (r["principal_refunded"], r["bonus_forfeited"]) == (20_000, 2_000)
    assert (r["balances"]["sv_principal"], r["balances"]["sv_bonus"]) == (30_000, 3_000)
    too_much = await chain.client.post(
        url,
        json={"member_id": str(x), "amount": 30_001, "business_time": OCT, "branch_id": str(chain.branches["C"])},
        headers={**chain.pos, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert too_much.status_code == 422 and too_much.json()["type"].endswith("/insufficient-stored-value")
    rest = await chain.post(url, {"member_id": str(x), "branch_id": str(chain.branches["C"]), "business_time": OCT})
    assert (rest["principal_refunded"], rest["bonus_forfeited"]) == (30_000, 3_000)
    got = {s["code"]: s for s in (await chain.close())["statements"]}
    assert got["C"]["lines"]["stored_value_refunded"]["amount"] == 50_000  # HQ reimburses the cash paid out
    assert got["C"]["net"] == 50_000 and got["A"]["net"] == -100_000 and got["B"]["net"] == 55_000
    summary = (await chain.client.get("/api/v1/settlement/periods/2026-10", headers=chain.owner)).json()["summary"]
    assert summary["float_change"] == 0  # nothing left on the card
