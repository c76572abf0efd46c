"""An alliance through the API, the design's worked example: issue_price ¥0.010, reimbursement ¥0.008.
P issues 10,000 points (branch P1 6,000, P2 4,000), Q 5,000, R none; Q accepts 6,000, R 4,000 and
P1 1,000. Month end: P pays 92.00 (P1 52.00, P2 40.00), Q pays 2.00, R receives 32.00, and the
operator nets +62.00 = 40.00 float for the 4,000 outstanding points + 22.00 spread."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.settlement_kit import World, make_world

pytestmark = pytest.mark.integration
OCT = "2026-10-20T15:00:00+08:00"


@pytest.fixture
async def world(client, db, tenant_factory, auth_kit, staff_token) -> World:
    return await make_world(client, db, tenant_factory, auth_kit, staff_token)


async def test_the_worked_example_nets_exactly(world: World, member_factory, db) -> None:
    x = await member_factory(world.partners["P"].tenant)
    y = await member_factory(world.partners["Q"].tenant)
    e = await world.earn("P", "P1", x, 600_000)
    assert e["points"] == 6_000 and e["issue_cost"] == 6_000
    await world.earn("P", "P2", x, 400_000)
    await world.earn("Q", "Q1", y, 500_000)
    r = await world.redeem("Q", "Q1", x, 6_000)
    assert (r["discount"], r["reimbursement"]) == (6_000, 4_800)
    await world.redeem("R", "R1", x, 4_000)
    await world.redeem("P", "P1", y, 1_000)
    await world.redeem("R", "R1", x, 1, expect=422)  # X has spent everything

    card = await world.call("GET", f"/api/v1/pos/alliances/{world.alliance}/cards/{y}", world.partners["R"].pos)
    assert card["points"] == 4_000
    # R's till scans Y's card (Y is Q's member): the id and alliance balances, nothing about the person
    async with db.uow(system=True) as uow:
        card_no = await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": y})
    found = await world.call(
        "GET", f"/api/v1/pos/alliances/{world.alliance}/cards?card={card_no}", world.partners["R"].pos
    )
    assert found["member_id"] == str(y) and found["points"] == 4_000 and "phone" not in found
    bad = await world.call(
        "GET",
        f"/api/v1/pos/alliances/{world.alliance}/cards?card=4000000000000002",
        world.partners["R"].pos,
        expect=404,
    )
    assert bad["type"].endswith("/not-a-cardholder")

    o = world.partners["O"]
    out = await world.call("POST", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/close", o.owner)
    partners = {s["name"]: s["net"] for s in out["statements"] if s["entity_kind"] == "partner"}
    assert partners == {"Partner P": -9_200, "Partner Q": -200, "Partner R": 3_200}  # the operator is the hub
    branches = {s["code"]: s["net"] for s in out["statements"] if s["entity_kind"] == "branch"}
    assert (branches["P1"], branches["P2"]) == (-5_200, -4_000)
    hub = next(s for s in out["statements"] if s["entity_kind"] == "hub")
    assert hub["net"] == 6_200
    assert out["summary"]["sum_with_hub"] == 0
    p_stmt = next(s for s in out["statements"] if s["name"] == "Partner P")
    assert p_stmt["lines"]["points_issued"] == {"amount": -10_000, "points": -10_000}
    assert p_stmt["lines"]["points_redeemed"] == {"amount": 800, "points": 1_000}

    again = await world.call("POST", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/close", o.owner)
    assert again["checksum"] == out["checksum"]

    # Q sees its own statement and nobody else's
    q = world.partners["Q"]
    mine = await world.call("GET", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10", q.owner)
    assert {s["name"] for s in mine["statements"] if s["entity_kind"] == "partner"} == {"Partner Q"}
    assert all(s["entity_kind"] != "hub" for s in mine["statements"])
    assert {s["code"] for s in mine["statements"] if s["entity_kind"] == "branch"} == {"Q1"}
    pdf = await world.client.get(
        f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/download/pdf", headers=q.owner
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    r2 = await world.client.get(
        f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/download/instructions", headers=q.owner
    )
    assert r2.status_code == 404
    # ... and none of P's members
    r3 = await world.client.get(f"/api/v1/members/{x}", headers=q.pos)
    assert r3.status_code == 404
    # P's HQ sees the split across its branches
    p = world.partners["P"]
    theirs = await world.call("GET", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10", p.owner)
    assert {s["code"]: s["net"] for s in theirs["statements"] if s["entity_kind"] == "branch"} == {
        "P1": -5_200,
        "P2": -4_000,
    }


async def test_partners_only_and_suspension(world: World, member_factory, tenant_factory, staff_token) -> None:
    x = await member_factory(world.partners["P"].tenant)
    stranger = await tenant_factory("Outsider")
    outsider = await staff_token(stranger, "owner")
    r = await world.client.get(f"/api/v1/alliances/{world.alliance}", headers=outsider.headers)
    assert r.status_code == 404
    # a card that belongs to no partner is not an alliance card
    nobody = await member_factory(stranger)
    await world.earn("Q", "Q1", nobody, 10_000, expect=404)
    # the operator suspends Q: Q can neither issue nor accept; X's points stay good at R
    await world.earn("P", "P1", x, 100_000)
    q = world.partners["Q"]
    await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/partners/{q.tenant}/status",
        world.partners["O"].owner,
        {"status": "suspended"},
        expect=204,
    )
    await world.redeem("Q", "Q1", x, 100, expect=422)
    await world.redeem("R", "R1", x, 100)
    # a partner cannot suspend another; P leaves, and X's balance stays valid at R
    await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/partners/{world.partners['R'].tenant}/status",
        world.partners["P"].owner,
        {"status": "suspended"},
        expect=403,
    )
    await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/partners/{world.partners['P'].tenant}/status",
        world.partners["P"].owner,
        {"status": "left"},
        expect=204,
    )
    await world.redeem("R", "R1", x, 100)
    await world.earn("P", "P1", x, 100_000, expect=422)


async def test_till_moves_are_idempotent_and_capped(world: World, member_factory) -> None:
    x = await member_factory(world.partners["P"].tenant)
    p = world.partners["P"]
    body = {"member_id": str(x), "amount": 50_000, "branch_id": str(p.branches["P1"]), "business_time": OCT}
    headers = {**p.pos, "Idempotency-Key": "till-42"}
    first = await world.client.post(f"/api/v1/pos/alliances/{world.alliance}/earn", json=body, headers=headers)
    again = await world.client.post(f"/api/v1/pos/alliances/{world.alliance}/earn", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["entry_id"] == first.json()["entry_id"]
    clash = await world.client.post(
        f"/api/v1/pos/alliances/{world.alliance}/earn", json={**body, "amount": 60_000}, headers=headers
    )
    assert clash.status_code == 409
    # the operator caps monthly issuance and sets a credit limit
    await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/terms",
        world.partners["O"].owner,
        {
            "issue_price": "0.010",
            "reimbursement_price": "0.008",
            "monthly_issuance_cap": 1_000,
            "credit_limit": 100_000,
        },
    )
    now = {"member_id": str(x), "branch_id": str(p.branches["P1"])}
    ok = await world.call("POST", f"/api/v1/pos/alliances/{world.alliance}/earn", p.pos, {**now, "amount": 90_000})
    assert ok["points"] == 900
    capped = await world.call(
        "POST", f"/api/v1/pos/alliances/{world.alliance}/earn", p.pos, {**now, "amount": 20_000}, expect=422
    )
    assert capped["type"].endswith("/issuance-cap-reached")
    # a per-partner credit limit: P may owe at most ¥5; it already owes ¥14 (500 + 900 points issued)
    await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/terms",
        world.partners["O"].owner,
        {"issue_price": "0.010", "reimbursement_price": "0.008", "credit_limits": {str(p.tenant): 500}},
    )
    over = await world.call(
        "POST", f"/api/v1/pos/alliances/{world.alliance}/earn", p.pos, {**now, "amount": 1_000}, expect=422
    )
    assert over["type"].endswith("/credit-limit-exceeded")
    q = world.partners["Q"]
    y = await member_factory(q.tenant)
    await world.call(
        "POST",
        f"/api/v1/pos/alliances/{world.alliance}/earn",
        q.pos,
        {"member_id": str(y), "amount": 1_000, "branch_id": str(q.branches["Q1"])},
    )  # Q has no limit
    bad = await world.call(
        "PUT",
        f"/api/v1/alliances/{world.alliance}/terms",
        world.partners["O"].owner,
        {"issue_price": "0.008", "reimbursement_price": "0.010"},
        expect=400,
    )
    assert "reimbursement_price" in bad["detail"]


async def test_fees_per_transaction_and_monthly(world: World, member_factory) -> None:
    o = world.partners["O"]
    created = await world.call(
        "POST",
        "/api/v1/alliances",
        o.owner,
        {
            "code": f"fees-{uuid.uuid4().hex[:8]}",
            "name": "收费联盟",
            "terms": {
                "issue_price": "0.010",
                "reimbursement_price": "0.008",
                "fee_per_transaction": 10,
                "fee_monthly": 5_000,
            },
        },
    )
    world.alliance = created["id"]
    for name in "PQ":
        invite = await world.call("POST", f"/api/v1/alliances/{world.alliance}/invites", o.owner, {})
        await world.call("POST", "/api/v1/alliances/join", world.partners[name].owner, {"code": invite["code"]})
    x = await member_factory(world.partners["P"].tenant)
    earned = await world.earn("P", "P1", x, 100_000)  # 1,000 points: ¥10 issue cost + ¥0.10 fee
    assert (earned["issue_cost"], earned["fee"]) == (1_000, 10)
    await world.redeem("Q", "Q1", x, 500)  # ¥4 reimbursement − ¥0.10 fee
    url = f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/close"
    out = await world.call("POST", url, o.owner)
    nets = {s["name"]: s for s in out["statements"] if s["entity_kind"] == "partner"}
    assert nets["Partner P"]["net"] == -1_000 - 10 - 5_000
    assert nets["Partner P"]["lines"]["fee"]["amount"] == -5_010
    assert nets["Partner Q"]["net"] == 400 - 10 - 5_000
    assert "Partner O" not in nets  # the operator is the hub, and pays no fee to itself
    assert out["summary"]["sum_with_hub"] == 0
    again = await world.call("POST", url, o.owner)  # fees are booked once
    assert again["checksum"] == out["checksum"]


async def test_alliance_stored_value_nets_like_a_chain(world: World, member_factory) -> None:
    """The chain example with partners in place of branches: X tops up ¥1000 (+¥100) at P, spends ¥550
    at Q and ¥110 at R; Y tops up ¥500 at Q and spends ¥200 at P; the operator funds bonuses."""
    o = world.partners["O"]
    created = await world.call(
        "POST",
        "/api/v1/alliances",
        o.owner,
        {
            "code": f"sv-{uuid.uuid4().hex[:8]}",
            "name": "储值联盟",
            "terms": {
                "stored_value": {
                    "plans": [
                        {"code": "1000-1100", "name": "储值1000送100", "pay": 100_000, "get": 110_000},
                        {"code": "500", "name": "储值500", "pay": 50_000, "get": 50_000},
                    ]
                }
            },
        },
    )
    world.alliance = created["id"]
    for name in "PQR":
        invite = await world.call("POST", f"/api/v1/alliances/{world.alliance}/invites", o.owner, {})
        await world.call("POST", "/api/v1/alliances/join", world.partners[name].owner, {"code": invite["code"]})
    x = await member_factory(world.partners["P"].tenant)
    y = await member_factory(world.partners["Q"].tenant)

    async def top_up(who: str, branch: str, member: uuid.UUID, plan: str) -> Any:
        p = world.partners[who]
        return await world.call(
            "POST",
            f"/api/v1/pos/alliances/{world.alliance}/stored-value/top-ups",
            p.pos,
            {"member_id": str(member), "plan": plan, "branch_id": str(p.branches[branch]), "business_time": OCT},
        )

    async def spend(who: str, branch: str, member: uuid.UUID, amount: int, **kw: Any) -> Any:
        p = world.partners[who]
        return await world.call(
            "POST",
            f"/api/v1/pos/alliances/{world.alliance}/stored-value/spend",
            p.pos,
            {"member_id": str(member), "amount": amount, "branch_id": str(p.branches[branch]), "business_time": OCT},
            **kw,
        )

    t = await top_up("P", "P1", x, "1000-1100")
    assert t["balance"] == {"sv_principal": 100_000, "sv_bonus": 10_000}
    s = await spend("Q", "Q1", x, 55_000)
    assert (s["sv_principal"], s["sv_bonus"]) == (50_000, 5_000)
    await spend("R", "R1", x, 11_000)
    await top_up("Q", "Q1", y, "500")
    await spend("P", "P2", y, 20_000)
    over = await spend("R", "R1", y, 30_001, expect=422)
    assert over["type"].endswith("/insufficient-stored-value")
    out = await world.call("POST", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-10/close", o.owner)
    nets = {s["name"]: s["net"] for s in out["statements"] if s["entity_kind"] == "partner"}
    assert nets == {"Partner P": -80_000, "Partner Q": 5_000, "Partner R": 11_000}
    branches = {s["code"]: s["net"] for s in out["statements"] if s["entity_kind"] == "branch"}
    assert (branches["P1"], branches["P2"]) == (-100_000, 20_000)
    assert out["summary"]["float_change"] == 70_000 and out["summary"]["bonus_expense"] == 6_000
    assert out["summary"]["sum_with_hub"] == 0


async def test_breakage_returns_to_issuers_pro_rata(world: World, member_factory, db) -> None:
    from datetime import UTC, datetime

    from lianka.alliance.ledger.jobs import expire_book

    o = world.partners["O"]
    created = await world.call(
        "POST",
        "/api/v1/alliances",
        o.owner,
        {
            "code": f"brk-{uuid.uuid4().hex[:8]}",
            "name": "过期返还联盟",
            "terms": {"breakage": "issuers", "expiry": {"kind": "rolling_months", "months": 1}},
        },
    )
    world.alliance = created["id"]
    for name in "PQR":
        invite = await world.call("POST", f"/api/v1/alliances/{world.alliance}/invites", o.owner, {})
        await world.call("POST", "/api/v1/alliances/join", world.partners[name].owner, {"code": invite["code"]})
    x = await member_factory(world.partners["P"].tenant)
    for who, branch, amount, day in (("P", "P1", 100_000, "01"), ("Q", "Q1", 50_000, "02")):
        p = world.partners[who]
        await world.call(
            "POST",
            f"/api/v1/pos/alliances/{world.alliance}/earn",
            p.pos,
            {
                "member_id": str(x),
                "amount": amount,
                "branch_id": str(p.branches[branch]),
                "business_time": f"2026-08-{day}T10:00:00+08:00",
            },
        )
    r = world.partners["R"]
    await world.call(
        "POST",
        f"/api/v1/pos/alliances/{world.alliance}/redeem",
        r.pos,
        {
            "member_id": str(x),
            "points": 300,
            "branch_id": str(r.branches["R1"]),
            "business_time": "2026-08-05T10:00:00+08:00",
        },
    )  # taken from P's lot, first to expire
    expired = await expire_book(db, uuid.UUID(world.alliance), datetime(2026, 10, 1, tzinfo=UTC))
    assert expired == 2
    assert await expire_book(db, uuid.UUID(world.alliance), datetime(2026, 10, 1, tzinfo=UTC)) == 0
    out = await world.call("POST", f"/api/v1/alliances/{world.alliance}/settlement/periods/2026-09/close", o.owner)
    partners = {s["name"]: s for s in out["statements"] if s["entity_kind"] == "partner"}
    assert partners["Partner P"]["lines"]["points_expired"] == {"amount": 700, "points": 700}
    assert partners["Partner Q"]["lines"]["points_expired"] == {"amount": 500, "points": 500}
    assert out["summary"]["sum_with_hub"] == 0
