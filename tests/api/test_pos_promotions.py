"""Promotions at the till through the API (decision 0043): the quote and the sale agree, every applied
promotion is recorded on the sale and replayed with it, a refund of a discounted line gives back what
the member paid for it, and another merchant's programme (and sales) stay its own."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import Programme, validate
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration

EVERY_DAY = [0, 1, 2, 3, 4, 5, 6]
PROGRAMME = validate(
    msgspec.convert(
        {
            "tiers": [
                {"code": "regular", "name": "普通", "rank": 0},
                {"code": "gold", "name": "金卡", "rank": 1, "threshold": 10**9, "discount_percent": 10},
            ],
            "promotions": [
                {"code": "tea20", "name": "茶八折", "kind": "percent_off", "percent_off": 20, "categories": ["tea"]},
                {"code": "b2g1", "name": "面包买二送一", "kind": "buy_n_get_one", "buy": 2, "skus": ["bun"]},
                {
                    "code": "mj",
                    "name": "满100减10",
                    "kind": "spend_save",
                    "steps": [{"spend": 10_000, "off": 1_000}, {"spend": 20_000, "off": 3_000}],
                },
                {
                    "code": "vipday",
                    "name": "会员日",
                    "kind": "member_day",
                    "weekdays": EVERY_DAY,
                    "percent_off": 5,
                    "multiplier": "2",
                },
            ],
        },
        Programme,
    )
)
LINES = [
    {"sku": "oolong", "qty": 2, "unit_price": 5_000, "category": "tea"},  # 20% → 2 000 off
    {"sku": "bun", "qty": 3, "unit_price": 600},  # every third bun free → 600 off
    {"sku": "cup", "qty": 1, "unit_price": 2_200},
]
AMOUNT = 10_000 + 1_800 + 2_200


class Till:
    def __init__(self, client: AsyncTestClient[Litestar], headers: dict[str, str], tenant: uuid.UUID) -> None:
        self.client, self.headers, self.tenant = client, headers, tenant

    async def post(self, url: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post(f"/api/v1/pos{url}", json=body, headers=headers)

    async def quote(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post("/api/v1/pos/quote", json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())


async def _till(
    client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit, programme: Programme
) -> Till:
    tenant = await tenant_factory(f"促销{uuid.uuid4().hex[:6]}")
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme)
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    return Till(client, pos.headers, tenant)


@pytest.fixture
async def till(client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit) -> Till:
    return await _till(client, db, tenant_factory, auth_kit, PROGRAMME)


async def test_the_sale_books_the_promotions_the_quote_showed_and_records_them(
    till: Till, member_factory, db: Database
) -> None:
    m = str(await member_factory(till.tenant))
    body = {"amount": AMOUNT, "member_id": m, "lines": LINES}
    q = await till.quote(body)
    # items: tea 2 000, bun 600 → 11 400 left; 满100减10 → 10 400; member day 5% → 520
    assert [(a["code"], a["discount"]) for a in q["applied_promotions"]] == [
        ("tea20", 2_000),
        ("b2g1", 600),
        ("mj", 1_000),
        ("vipday", 520),
    ]
    assert q["promotion_discount"] == 4_120 and q["due"] == AMOUNT - 4_120
    assert q["applied_promotions"][0]["lines"] == [[0, 2_000]]
    assert q["multiplier"] == "2" and q["points_earned"] == 197  # ¥98.80 × 2, rounded down
    assert q["promotions"] == ["tea20", "b2g1", "mj", "vipday"]

    r = await till.post("/sales", body, key="promo-sale-1")
    assert r.status_code == 201, r.text
    sale = r.json()
    assert {k: v for k, v in sale["quote"].items() if k != "max_points_usable"} == {
        k: v for k, v in q.items() if k != "max_points_usable"
    }
    replay = await till.post("/sales", body, key="promo-sale-1")
    assert replay.status_code == 200 and replay.json()["quote"]["applied_promotions"] == q["applied_promotions"]

    async with db.uow(till.tenant) as uow:
        row = (
            await uow.session.execute(
                text("SELECT promotion_discount, applied_promotions, promotions, due FROM sales WHERE id = :s"),
                {"s": sale["sale_id"]},
            )
        ).one()
    assert row.promotion_discount == 4_120 and row.due == AMOUNT - 4_120
    assert [(a["code"], a["kind"], a["discount"]) for a in row.applied_promotions] == [
        ("tea20", "percent_off", 2_000),
        ("b2g1", "buy_n_get_one", 600),
        ("mj", "spend_save", 1_000),
        ("vipday", "member_day", 520),
    ]
    assert row.promotions == ["tea20", "b2g1", "mj", "vipday"]
    got = await till.client.get(f"/api/v1/pos/sales/{sale['sale_id']}", headers=till.headers)
    assert got.status_code == 200, got.text
    assert got.json()["promotion_discount"] == 4_120
    assert [a["name"] for a in got.json()["applied_promotions"]] == ["茶八折", "面包买二送一", "满100减10", "会员日"]


async def test_a_guest_gets_the_promotions_for_everyone_but_not_the_member_day(till: Till) -> None:
    body = {"amount": AMOUNT, "lines": LINES}
    q = await till.quote(body)
    assert [a["code"] for a in q["applied_promotions"]] == ["tea20", "b2g1", "mj"]
    r = await till.post("/sales", body)
    assert r.status_code == 201, r.text
    assert r.json()["quote"]["due"] == q["due"] == AMOUNT - 3_600


async def test_refunding_a_discounted_line_gives_back_what_the_member_paid_for_it(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    r = await till.post("/sales", {"amount": AMOUNT, "member_id": m, "lines": LINES})
    sale = r.json()
    net = AMOUNT - sale["quote"]["promotion_discount"]
    applied = sale["quote"]["applied_promotions"]
    tea_off = sum(off for a in applied for line, off in a["lines"] if line == 0)
    # one of the two teas: half of what the tea line came to after every promotion on it
    r = await till.post(f"/sales/{sale['sale_id']}/refunds", {"lines": [{"line_no": 0, "qty": 1}]})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["amount"] == round((10_000 - tea_off) / 2)
    assert first["sale_status"] == "partially_refunded"
    r = await till.post(f"/sales/{sale['sale_id']}/refunds", {})
    assert r.status_code == 201, r.text
    assert first["amount"] + r.json()["amount"] == net  # the whole refund is what the member paid
    assert r.json()["sale_status"] == "refunded"
    assert first["points_clawed_back"] + r.json()["points_clawed_back"] == sale["quote"]["points_earned"]


async def test_another_merchants_programme_and_sales_are_its_own(
    till: Till, client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit
) -> None:
    other = await _till(client, db, tenant_factory, auth_kit, Programme())
    q = await other.quote({"amount": AMOUNT, "lines": LINES})
    assert q["applied_promotions"] == [] and q["promotion_discount"] == 0 and q["due"] == AMOUNT
    mine = await till.post("/sales", {"amount": AMOUNT, "lines": LINES})
    seen = await other.client.get(f"/api/v1/pos/sales/{mine.json()['sale_id']}", headers=other.headers)
    assert seen.status_code == 404


async def test_a_per_member_limit_counts_sales_not_wholly_refunded(
    client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit, member_factory
) -> None:
    once = validate(
        msgspec.convert(
            {
                "promotions": [
                    {
                        "code": "first",
                        "name": "首单立减",
                        "kind": "spend_save",
                        "steps": [{"spend": 1, "off": 1}, {"spend": 5_000, "off": 500}],
                        "limit_per_member": 1,
                    }
                ]
            },
            Programme,
        )
    )
    till = await _till(client, db, tenant_factory, auth_kit, once)
    m = str(await member_factory(till.tenant))
    body = {"amount": 8_000, "member_id": m}
    assert (await till.quote(body))["promotion_discount"] == 500
    first = (await till.post("/sales", body)).json()
    assert first["quote"]["promotion_discount"] == 500
    assert (await till.quote(body))["promotion_discount"] == 0  # used once
    second = (await till.post("/sales", body)).json()
    assert second["quote"]["applied_promotions"] == [] and second["quote"]["due"] == 8_000
    # a partly refunded sale still counts; a wholly refunded one gives the use back
    r = await till.post(f"/sales/{first['sale_id']}/refunds", {"amount": 100})
    assert r.status_code == 201, r.text
    assert (await till.quote(body))["promotion_discount"] == 0
    r = await till.post(f"/sales/{first['sale_id']}/refunds", {})
    assert r.status_code == 201 and r.json()["amount"] == 7_500 - 100
    assert (await till.quote(body))["promotion_discount"] == 500
    other = str(await member_factory(till.tenant))
    assert (await till.quote({**body, "member_id": other}))["promotion_discount"] == 500
