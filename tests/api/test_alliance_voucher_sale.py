"""Alliance offer vouchers inside the POS sale (decisions 0044 and 0043): the quote shows the voucher's
discount after the promotions, the sale redeems it in its own transaction (a replay with the sale's key
changes nothing, a used, foreign or under-minimum voucher refuses the whole sale and writes nothing),
the sale records it, and a full refund gives it back and reverses the fee."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.tenants.services.programme import set_programme
from tests.api.settlement_kit import World, make_world
from tests.api.test_alliance_offers import _members
from tests.api.test_pos_promotions import PROGRAMME

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(client, db, tenant_factory, auth_kit, staff_token) -> World:
    w = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    async with db.uow(w.partners["P"].tenant) as uow:
        await set_programme(uow, PROGRAMME)  # 满100减10 among its promotions
        await uow.commit()
    return w


async def _offer(world: World, db: Any, member_factory: Any, owner_engine: Any) -> tuple[str, list[str]]:
    p, q = world.partners["P"], world.partners["Q"]
    gold = await _members(db, member_factory, q.tenant, 3, "gold")
    base = f"/api/v1/alliances/{world.alliance}/offers"
    body = {
        "target_merchant_id": str(q.tenant), "name": "咖啡第二杯", "message": "凭券到店满50减10", "discount": 1_000,
        "min_spend": 5_000, "fee": 250, "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "tiers": ["gold"],
    }  # fmt: skip
    offer = (await world.call("POST", f"{base}/", p.owner, body, expect=201))["id"]
    await world.call("POST", f"{base}/{offer}/accept", q.owner)
    async with owner_engine.connect() as conn:
        codes = [
            await conn.scalar(
                text("SELECT code FROM xmkt_vouchers WHERE offer_id = :o AND member_id = :m"), {"o": offer, "m": m}
            )
            for m in gold
        ]
    return offer, codes


async def _voucher(owner_engine: Any, code: str) -> tuple[Any, ...]:
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT redeemed_at IS NOT NULL, sale_id, discount, sale_amount FROM xmkt_vouchers WHERE code = :c"
                ),
                {"c": code},
            )
        ).one()
    return tuple(row)


async def _count(owner_engine: Any, sql: str, **params: Any) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(sql), params) or 0)


async def test_the_sale_redeems_the_voucher_in_its_transaction(world: World, db, member_factory, owner_engine) -> None:
    p, q, r = world.partners["P"], world.partners["Q"], world.partners["R"]
    offer, (code, second, third) = await _offer(world, db, member_factory, owner_engine)
    branch = str(p.branches["P1"])
    basket = {"amount": 12_000, "branch_id": branch, "alliance_voucher": code.lower()}

    # the quote: 满100减10 first (decision 0043's order), then the voucher in the coupon step; nothing written
    quote = await world.client.post("/api/v1/pos/quote", json=basket, headers=p.pos)
    assert quote.status_code == 200, quote.text
    qt = quote.json()
    assert qt["promotion_discount"] == 1_000 and [a["code"] for a in qt["applied_promotions"]] == ["mj"]
    assert qt["alliance_voucher"] == {
        "code": code, "alliance_id": world.alliance, "offer_id": offer, "name": "咖啡第二杯", "discount": 1_000
    }  # fmt: skip
    assert qt["coupons"] == [[code, 1_000]] and qt["due"] == 10_000
    assert await _voucher(owner_engine, code) == (False, None, None, None)

    # the sale: redeemed in it, recorded on it; the same key replays without a second redemption
    key = uuid.uuid4().hex
    headers = {**p.pos, "Idempotency-Key": key}
    sold = await world.client.post("/api/v1/pos/sales", json=basket, headers=headers)
    assert sold.status_code == 201, sold.text
    sale = sold.json()
    assert sale["quote"]["due"] == 10_000 and sale["quote"]["alliance_voucher"]["discount"] == 1_000
    assert await _voucher(owner_engine, code) == (True, uuid.UUID(sale["sale_id"]), 1_000, 11_000)
    again = await world.client.post("/api/v1/pos/sales", json=basket, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == sale
    async with owner_engine.connect() as conn:
        recorded, coupon_total = (
            await conn.execute(
                text("SELECT alliance_voucher, coupon_total FROM sales WHERE id = :s"), {"s": sale["sale_id"]}
            )
        ).one()
    assert coupon_total == 1_000
    assert {k: recorded[k] for k in ("code", "alliance_id", "offer_id", "discount", "fee")} == {
        "code": code, "alliance_id": world.alliance, "offer_id": offer, "discount": 1_000, "fee": 250
    }  # fmt: skip
    charged = (
        "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_accounts a "
        "ON a.tenant_id = p.tenant_id AND a.id = p.account_id "
        "WHERE p.tenant_id = :a AND a.kind = 'clr_cross_marketing_charged'"
    )
    assert await _count(owner_engine, charged, a=world.alliance) == -250

    # refused vouchers refuse the whole sale and write nothing
    sales_of_p = "SELECT count(*) FROM sales WHERE tenant_id = :t"
    before = await _count(owner_engine, sales_of_p, t=p.tenant)
    used = await world.call("POST", "/api/v1/pos/sales", p.pos, basket, expect=422)
    assert used["type"].endswith("/alliance-voucher-not-valid") and "already used" in used["detail"]
    small = await world.call(
        "POST", "/api/v1/pos/sales", p.pos, {**basket, "amount": 4_000, "alliance_voucher": second}, expect=422
    )
    assert small["type"].endswith("/alliance-voucher-not-valid")
    assert await _voucher(owner_engine, second) == (False, None, None, None)
    for other in (q, r):  # the voucher funds P's offer: another partner's till cannot use it
        b = {**basket, "alliance_voucher": third, "branch_id": str(next(iter(other.branches.values())))}
        await world.call("POST", "/api/v1/pos/sales", other.pos, b, expect=422)
    unknown = await world.call("POST", "/api/v1/pos/quote", p.pos, {**basket, "alliance_voucher": "XNOPE"}, expect=422)
    assert unknown["type"].endswith("/alliance-voucher-not-valid")
    assert await _count(owner_engine, sales_of_p, t=p.tenant) == before
    assert await _voucher(owner_engine, third) == (False, None, None, None)

    # a partial refund keeps the voucher used; the full refund gives it back and reverses the fee
    refunds = f"/api/v1/pos/sales/{sale['sale_id']}/refunds"
    await world.call("POST", refunds, p.pos, {"amount": 1_000}, expect=201)
    assert (await _voucher(owner_engine, code))[0] is True
    await world.call("POST", refunds, p.pos, {}, expect=201)
    assert await _voucher(owner_engine, code) == (False, None, None, None)
    assert await _count(owner_engine, charged, a=world.alliance) == 0  # the fee and its reversal

    # given back: the customer can use it again (its fee booked again under the new sale)
    again_sold = await world.call("POST", "/api/v1/pos/sales", p.pos, basket, expect=201)
    assert (await _voucher(owner_engine, code))[1] == uuid.UUID(again_sold["sale_id"])
    assert await _count(owner_engine, charged, a=world.alliance) == -250
    results = await world.call("GET", f"/api/v1/alliances/{world.alliance}/offers/{offer}/results", p.owner)
    assert (results["redeemed"], results["discounts"], results["fees"]) == (1, 1_000, 250)
