"""Coupon templates and coupons through the API, as a merchant runs them: "¥10 off ¥100",
"20% off, at most ¥30", a free drink; issued to members exactly once, never past stock or limits."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration

TEN_OFF = {
    "code": "ten-off",
    "name": "满100减10",
    "kind": "fixed",
    "amount_off": 1_000,
    "min_spend": 10_000,
    "valid_days": 30,
    "stock_total": 3,
    "per_member_limit": 2,
}


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    return await make_shop(client, auth_kit, db, tenant_factory)


async def test_templates_are_created_listed_and_deactivated(shop: Shop) -> None:
    t = await shop.ok("POST", "/coupon-templates", json=TEN_OFF, status=201)
    assert (t["kind"], t["amount_off"], t["remaining"], t["active"]) == ("fixed", 1_000, 3, True)
    pct = await shop.ok(
        "POST",
        "/coupon-templates",
        status=201,
        json={
            "code": "p20",
            "name": "8折 最高减30",
            "kind": "percent",
            "percent_off": 20,
            "cap": 3_000,
            "valid_from": "2026-12-01T00:00:00+08:00",
            "valid_until": "2027-01-01T00:00:00+08:00",
            "branches": ["SH01"],
            "stackable": False,
        },
    )
    assert (pct["cap"], pct["branches"], pct["stackable"], pct["remaining"]) == (3_000, ["SH01"], False, None)
    gift = await shop.ok(
        "POST",
        "/coupon-templates",
        status=201,
        json={"code": "free-tea", "name": "免费奶茶", "kind": "gift", "gift_sku": "MILK-TEA", "valid_days": 7},
    )
    assert gift["gift_sku"] == "MILK-TEA"
    listed = await shop.ok("GET", "/coupon-templates")
    assert {x["code"] for x in listed} == {"ten-off", "p20", "free-tea"}
    assert (await shop.ok("GET", f"/coupon-templates/{t['id']}"))["code"] == "ten-off"
    off = await shop.ok("POST", f"/coupon-templates/{gift['id']}/deactivate")
    assert off["active"] is False
    assert [x["code"] for x in await shop.ok("GET", "/coupon-templates?active=false")] == ["free-tea"]
    dup = await shop.call("POST", "/coupon-templates", json=TEN_OFF)
    assert dup.status_code == 409


BAD_TEMPLATES: list[dict[str, object]] = [
    {**TEN_OFF, "amount_off": 0},  # fixed needs an amount
    {**TEN_OFF, "kind": "percent", "percent_off": 120},
    {**TEN_OFF, "kind": "gift"},  # no gift_sku
    {k: v for k, v in TEN_OFF.items() if k != "valid_days"},  # no validity at all
    {**TEN_OFF, "amount_off": "10"},  # a string is not an amount
    {**TEN_OFF, "amount_off": 10.5},
    {**TEN_OFF, "branches": ["NOPE"]},  # no such branch
    {**TEN_OFF, "valid_until": "2027-01-01T00:00:00"},  # no time zone
    {**TEN_OFF, "surprise": True},
    {**TEN_OFF, "kind": "cashback"},
]


async def test_bad_templates_are_problems_and_create_nothing(shop: Shop) -> None:
    for body in BAD_TEMPLATES:
        r = await shop.call("POST", "/coupon-templates", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await shop.scalar("SELECT count(*) FROM coupon_templates") == 0


async def test_issuing_is_exactly_once_and_honours_limits_and_stock(shop: Shop, member_factory) -> None:
    t = await shop.ok("POST", "/coupon-templates", json=TEN_OFF, status=201)
    ann, bob = await member_factory(shop.tenant), await member_factory(shop.tenant)
    url = f"/coupon-templates/{t['id']}/issue"
    first = await shop.call("POST", url, json={"member_id": str(ann)}, key="gift-ann-1")
    retry = await shop.call("POST", url, json={"member_id": str(ann)}, key="gift-ann-1")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    coupon = first.json()
    assert len(coupon["code"]) == 14
    assert (coupon["status"], coupon["source"], coupon["amount_off"]) == ("issued", "staff", 1_000)
    other_body = await shop.call("POST", url, json={"member_id": str(bob)}, key="gift-ann-1")
    assert other_body.status_code == 409
    await shop.ok("POST", url, json={"member_id": str(ann)}, status=201, idempotent=True)
    limit = await shop.call("POST", url, json={"member_id": str(ann)}, idempotent=True)
    assert (limit.status_code, limit.json()["type"].split("/")[-1]) == (422, "coupon-limit-reached")
    await shop.ok("POST", url, json={"member_id": str(bob)}, status=201, idempotent=True)
    sold_out = await shop.call("POST", url, json={"member_id": str(bob)}, idempotent=True)
    assert (sold_out.status_code, sold_out.json()["type"].split("/")[-1]) == (422, "coupon-sold-out")
    assert (await shop.ok("GET", f"/coupon-templates/{t['id']}"))["remaining"] == 0
    mine = await shop.ok("GET", f"/members/{ann}/coupons")
    assert [c["code"] for c in mine][-1] == coupon["code"]
    assert len(mine) == 2
    assert await shop.ok("GET", f"/members/{ann}/coupons?status=redeemed") == []
    missing = await shop.call("POST", url, json={"member_id": str(ann)})
    assert missing.status_code == 400  # no Idempotency-Key
    assert await shop.scalar("SELECT count(*) FROM coupons") == 3


async def test_concurrent_issues_never_pass_the_per_member_limit(shop: Shop, member_factory) -> None:
    t = await shop.ok(
        "POST", "/coupon-templates", status=201, json={**TEN_OFF, "stock_total": None, "per_member_limit": 2}
    )
    ann = await member_factory(shop.tenant)
    results = await asyncio.gather(
        *[
            shop.call("POST", f"/coupon-templates/{t['id']}/issue", json={"member_id": str(ann)}, idempotent=True)
            for _ in range(6)
        ]
    )
    assert sorted(r.status_code for r in results) == [201, 201, 422, 422, 422, 422]
    assert await shop.scalar("SELECT count(*) FROM coupons WHERE member_id = :m", m=ann) == 2


async def test_inactive_unknown_and_foreign_ids(
    shop: Shop, member_factory, tenant_factory, auth_kit, client, db: Database
) -> None:
    other = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    theirs = await other.ok("POST", "/coupon-templates", json=TEN_OFF, status=201)
    stranger = await member_factory(other.tenant)
    mine = await shop.ok("POST", "/coupon-templates", json={**TEN_OFF, "code": "mine"}, status=201)
    ann = await member_factory(shop.tenant)
    for url, body in [
        (f"/coupon-templates/{theirs['id']}/issue", {"member_id": str(ann)}),
        (f"/coupon-templates/{uuid.uuid4()}/issue", {"member_id": str(ann)}),
        (f"/coupon-templates/{mine['id']}/issue", {"member_id": str(stranger)}),
        (f"/coupon-templates/{mine['id']}/issue", {"member_id": str(uuid.uuid4())}),
    ]:
        r = await shop.call("POST", url, json=body, idempotent=True)
        assert (r.status_code, r.json()["type"].split("/")[-1]) == (404, "not-found"), url
    for url in (f"/coupon-templates/{theirs['id']}", f"/members/{stranger}/coupons"):
        assert (await shop.call("GET", url)).status_code == 404
    await shop.ok("POST", f"/coupon-templates/{mine['id']}/deactivate")
    r = await shop.call("POST", f"/coupon-templates/{mine['id']}/issue", json={"member_id": str(ann)}, idempotent=True)
    assert (r.status_code, r.json()["type"].split("/")[-1]) == (422, "coupon-template-inactive")
    async with db.uow(shop.tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM coupons")) == 0
    async with db.uow(other.tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM coupons")) == 0


async def test_coupon_routes_are_guarded(security_matrix, shop: Shop, tenant_factory, member_factory) -> None:
    other = await tenant_factory()
    t = await shop.ok("POST", "/coupon-templates", json=TEN_OFF, status=201)
    ann = await member_factory(shop.tenant)

    async def snapshot() -> tuple[int, int]:
        return (
            await shop.scalar("SELECT count(*) FROM coupon_templates"),
            await shop.scalar("SELECT count(*) FROM coupons"),
        )

    await security_matrix.check(
        "POST",
        "/api/v1/coupon-templates",
        tenant=shop.tenant,
        other=other,
        json={**TEN_OFF, "code": "x"},
        denied_roles=["cashier", "manager", "analyst"],
        denied_scopes=[["pos"]],
        other_tenant_status=None,
        snapshot=snapshot,
    )
    await security_matrix.check(
        "POST",
        f"/api/v1/coupon-templates/{t['id']}/deactivate",
        tenant=shop.tenant,
        other=other,
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        missing_url=f"/api/v1/coupon-templates/{uuid.uuid4()}/deactivate",
        snapshot=snapshot,
    )
    await security_matrix.check(
        "POST",
        f"/api/v1/coupon-templates/{t['id']}/issue",
        tenant=shop.tenant,
        other=other,
        json={"member_id": str(ann)},
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"], ["members:read"]],
        snapshot=snapshot,
        other_tenant_status=None,
    )  # foreign ids: test_inactive_unknown_and_foreign_ids
    await security_matrix.check(
        "GET",
        f"/api/v1/members/{ann}/coupons",
        tenant=shop.tenant,
        other=other,
        denied_scopes=[["reports:read"]],
        allowed_scopes=["pos"],
        missing_url=f"/api/v1/members/{uuid.uuid4()}/coupons",
    )
