"""Alliance cross-marketing through the API (decision 0044): P funds an offer to Q's gold members.
P gets counts only (suppressed below 20) and never a member; R (another partner) and a merchant of
another alliance get 404s; Q accepts; P's till redeems a voucher once (a retry replays); P reads its
results, Q cannot; the permissions guard each route."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.settlement_kit import World, make_world
from tests.integration.marketing import kit

pytestmark = pytest.mark.integration
OK = {"alliance": {"granted": True}}


@pytest.fixture
async def world(client, db, tenant_factory, auth_kit, staff_token) -> World:
    return await make_world(client, db, tenant_factory, auth_kit, staff_token)


async def _members(db: Any, member_factory: Any, tenant: uuid.UUID, n: int, tier: str) -> list[uuid.UUID]:
    out = []
    for _ in range(n):
        m = await member_factory(tenant)
        await kit.profile(db, tenant, m, joined=datetime.now(UTC) - timedelta(days=30), branch=None, tier_code=tier,
                          consent=OK)  # fmt: skip
        out.append(m)
    return out


async def test_funder_sees_counts_only_and_redeems_once(
    world: World, db, member_factory, owner_engine, tenant_factory, staff_token
) -> None:
    p, q, r = world.partners["P"], world.partners["Q"], world.partners["R"]
    gold = await _members(db, member_factory, q.tenant, 21, "gold")
    await _members(db, member_factory, q.tenant, 2, "silver")
    base = f"/api/v1/alliances/{world.alliance}/offers"

    est = await world.call(
        "POST", f"{base}/estimate", p.owner, {"target_merchant_id": str(q.tenant), "tiers": ["gold"]}
    )
    assert est == {"count": 21, "shown": "21"}
    est = await world.call(
        "POST", f"{base}/estimate", p.owner, {"target_merchant_id": str(q.tenant), "tiers": ["silver"]}
    )
    assert est == {"count": None, "shown": "< 20"}

    body = {
        "target_merchant_id": str(q.tenant),
        "name": "咖啡第二杯",
        "message": "凭券到店满50减10",
        "discount": 1_000,
        "min_spend": 5_000,
        "fee": 250,
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "tiers": ["gold"],
    }
    bad = await world.call("POST", f"{base}/", p.owner, {**body, "discount": "1000"}, expect=400)
    assert bad["status"] == 400
    created = await world.call("POST", f"{base}/", p.owner, body, expect=201)
    offer = created["id"]
    assert created["role"] == "funder" and created["audience"] == {"count": 21, "shown": "21"}
    as_funder = await world.client.get(f"{base}/{offer}", headers=p.owner)
    assert as_funder.status_code == 200
    assert not any(str(m) in as_funder.text for m in gold)  # counts, never members

    missing = await world.call("GET", f"{base}/{offer}", r.owner, expect=404)
    assert missing["type"].endswith("/alliance-offer-not-found")
    assert await world.call("GET", "/api/v1/alliance-offers", r.owner) == []
    stranger = await tenant_factory("外人")
    await world.call("GET", f"{base}/{offer}", (await staff_token(stranger, "owner")).headers, expect=404)
    await world.call("POST", f"{base}/{offer}/accept", p.owner, expect=404)  # the funder cannot accept
    await world.call("POST", f"{base}/{offer}/accept", (await staff_token(q.tenant, "cashier")).headers, expect=403)

    accepted = await world.call("POST", f"{base}/{offer}/accept", q.owner)
    assert accepted["status"] == "accepted" and accepted["role"] == "target"
    await world.call("POST", f"{base}/{offer}/decline", q.owner, expect=409)

    async with owner_engine.connect() as conn:
        code = await conn.scalar(
            text("SELECT code FROM xmkt_vouchers WHERE offer_id = :o AND member_id = :m"), {"o": offer, "m": gold[0]}
        )
    redeem = {"code": code, "sale_amount": 7_000, "branch_id": str(p.branches["P1"])}
    headers = {**p.pos, "Idempotency-Key": uuid.uuid4().hex}
    first = await world.client.post(f"{base}/vouchers/redeem", json=redeem, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["discount"], first.json()["fee"]) == (1_000, 250)
    again = await world.client.post(f"{base}/vouchers/redeem", json=redeem, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    used = await world.call("POST", f"{base}/vouchers/redeem", p.pos, redeem, expect=422)
    assert used["type"].endswith("/alliance-voucher-not-valid")
    await world.call("POST", f"{base}/vouchers/redeem", q.pos, {**redeem, "branch_id": str(q.branches["Q1"])},
                     expect=422)  # fmt: skip

    results = await world.call("GET", f"{base}/{offer}/results", p.owner)
    assert results == {
        "sent": {"count": 21, "shown": "21"}, "redeemed": 1, "attributed_sales": 7_000, "discounts": 1_000,
        "fees": 250, "cost": 1_250,
    }  # fmt: skip
    await world.call("GET", f"{base}/{offer}/results", q.owner, expect=404)
    mine = await world.call("GET", "/api/v1/alliance-offers", q.owner)
    assert [o["id"] for o in mine] == [offer] and mine[0]["role"] == "target"


async def test_alliance_consent_is_a_portal_toggle_off_by_default(client, app, db, auth_kit, tenant_factory) -> None:
    """A member joins with no alliance consent (not counted), grants it in the portal (counted), and
    withdraws it like any other consent (not counted again)."""
    from lianka.tenants.marketing import services as segments
    from lianka.tenants.marketing.offer_domain import Audience
    from lianka.tenants.services import enrolment
    from tests.api.test_portal_pages import a_phone, shop
    from tests.api.test_portal_privacy import api_sign_in

    s = await shop(db, auth_kit, tenant_factory)
    phone = a_phone()
    await enrolment.enrol(auth_kit.ident, s["tenant"], phone, s["sh01"])
    h = await api_sign_in(client, app, phone)
    everyone = Audience().rules()

    async def counted() -> int:
        return (await segments.preview(db, s["tenant"], everyone)).count

    page = await client.get(f"/m/{s['slug']}/profile")
    assert 'data-testid="grant-alliance"' in page.text and 'data-testid="withdraw-alliance"' not in page.text
    assert await counted() == 0
    url = f"/api/v1/portal/merchants/{s['slug']}/consent/alliance"
    r = await client.put(url, json={"granted": True}, headers=h)
    assert r.status_code == 200 and r.json()["alliance"]["granted"] is True, r.text
    assert await counted() == 1
    r = await client.put(url, json={"granted": False}, headers=h)
    assert r.status_code == 200 and [e["granted"] for e in r.json()["alliance"]["history"]] == [True, False]
    assert await counted() == 0


async def test_who_may_use_alliance_offers(world: World, security_matrix, db, member_factory, owner_engine) -> None:
    """Every refused caller of an offer's routes gets its problem and changes nothing; R (a partner of
    the same alliance, not party to the offer) answers exactly like an offer that does not exist."""
    p, q, r = world.partners["P"], world.partners["Q"], world.partners["R"]
    base = f"/api/v1/alliances/{world.alliance}/offers"
    body = {
        "target_merchant_id": str(q.tenant), "name": "Tea", "message": "满30减8", "discount": 800, "fee": 100,
        "valid_until": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
    }  # fmt: skip
    offer = (await world.call("POST", f"{base}/", p.owner, body, expect=201))["id"]

    async def snapshot() -> tuple[Any, ...]:
        async with owner_engine.connect() as conn:
            row = (
                await conn.execute(text("SELECT status, decided_at FROM xmkt_offers WHERE id = :o"), {"o": offer})
            ).one()
            n = await conn.scalar(text("SELECT count(*) FROM xmkt_vouchers WHERE offer_id = :o"), {"o": offer})
        return (*row, n)

    await security_matrix.check(
        "GET", f"{base}/{offer}", tenant=p.tenant, other=r.tenant, denied_roles=["cashier"], denied_scopes=[["pos"]],
        missing_url=f"{base}/{uuid.uuid4()}",
    )  # fmt: skip
    await security_matrix.check(
        "GET", f"{base}/{offer}/results", tenant=p.tenant, other=r.tenant, denied_roles=["cashier"],
        denied_scopes=[["pos"]], missing_url=f"{base}/{uuid.uuid4()}/results",
    )  # fmt: skip
    for action in ("accept", "decline"):
        await security_matrix.check(
            "POST", f"{base}/{offer}/{action}", tenant=q.tenant, other=r.tenant,
            denied_roles=["cashier", "manager", "analyst"], denied_scopes=[["pos"]],
            missing_url=f"{base}/{uuid.uuid4()}/{action}", snapshot=snapshot,
        )  # fmt: skip
    assert (await snapshot())[0] == "proposed"
