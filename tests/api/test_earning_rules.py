"""Earning rules beyond spend, as the seed documents tell them: a welcome gift when you join (online
or at the till), points for a review, a custom task through the API, the referrer rewarded on the
referee's first purchase, a coupon when you reach gold — through the API, two merchants."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import EarningRule, JoinRules, Programme, RuleKind, Tier
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration

PROGRAMME = Programme(
    tiers=[Tier(code="regular", name="普通", rank=0), Tier(code="gold", name="金卡", rank=1, threshold=100_000)],
    join=JoinRules(),
    rules=[
        EarningRule(code="welcome", kind=RuleKind.SIGNUP, points=50, coupon_template="welcome"),
        EarningRule(code="review", kind=RuleKind.REVIEW, points=20, cap_per_day=30),
        EarningRule(code="share", kind=RuleKind.CUSTOM, event="wechat_share", points=5, cap_per_member=10),
        EarningRule(code="share-sh01", kind=RuleKind.CUSTOM, event="wechat_share", points=1, branches=["SH01"]),
        EarningRule(code="survey-gold", kind=RuleKind.CUSTOM, event="survey", points=30, tiers=["gold"]),
        EarningRule(code="refer", kind=RuleKind.REFERRAL, points=200, min_spend=5_000),
        EarningRule(code="gold-gift", kind=RuleKind.TIER_UPGRADE, tiers=["gold"], coupon_template="gold-tea"),
    ],
)


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory)
    for code in ("welcome", "gold-tea"):
        await s.ok(
            "POST",
            "/coupon-templates",
            status=201,
            json={"code": code, "name": code, "kind": "gift", "gift_sku": code.upper(), "valid_days": 30},
        )
    await s.programme(PROGRAMME)
    return s


def phone() -> str:
    return f"138{uuid.uuid4().int % 10**8:08d}"


async def _coupons(shop: Shop, member: str) -> list[str]:
    return [c["template_code"] for c in await shop.ok("GET", f"/members/{member}/coupons")]


async def test_joining_online_gives_the_welcome_points_and_coupon_once(shop: Shop) -> None:
    p = phone()
    joined = await shop.ok("POST", "/members", json={"phone": p, "branch_id": str(shop.sh01)}, status=201)
    again = await shop.ok("POST", "/members", json={"phone": p}, status=200)
    m = joined["member_id"]
    assert again["member_id"] == m
    assert await shop.points(uuid.UUID(m)) == 50
    assert await _coupons(shop, m) == ["welcome"]


async def test_joining_at_the_till_gives_the_welcome_bonus_too(shop: Shop) -> None:
    pos = await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh01)
    sale = await shop.ok(
        "POST", "/pos/sales", pos, {"amount": 3_000, "join_phone": phone()}, status=201, idempotent=True
    )
    assert sale["balances"]["points"] == 50 + 30  # welcome + ¥30 spent
    assert await _coupons(shop, sale["member_id"]) == ["welcome"]


async def test_reviews_earn_up_to_the_daily_cap(shop: Shop, member_factory) -> None:
    m = str(await member_factory(shop.tenant))
    first = await shop.call("POST", "/reviews", json={"member_id": m, "reference": "dianping:123"}, key="rv-1")
    assert first.status_code == 201, first.text
    assert (first.json()["points_awarded"], first.json()["points_balance"]) == (20, 20)
    retry = await shop.call("POST", "/reviews", json={"member_id": m, "reference": "dianping:123"}, key="rv-1")
    assert (retry.status_code, retry.json()) == (200, first.json())
    second = await shop.ok("POST", "/reviews", json={"member_id": m}, status=201, idempotent=True)
    assert second["awards"][0]["points"] == 10  # cut to the 30-a-day cap
    third = await shop.ok("POST", "/reviews", json={"member_id": m}, status=201, idempotent=True)
    assert third["awards"] == [
        {"rule": "review", "kind": "review", "status": "skipped", "points": 0, "coupon": None, "reason": "cap reached"}
    ]
    assert await shop.points(uuid.UUID(m)) == 30


async def test_custom_events_apply_every_listening_rule_with_its_filters(shop: Shop, member_factory) -> None:
    m = str(await member_factory(shop.tenant))
    at_sh01 = await shop.ok(
        "POST",
        "/events",
        json={"event": "wechat_share", "member_id": m, "branch_id": str(shop.sh01)},
        status=201,
        idempotent=True,
    )
    assert {a["rule"]: a["points"] for a in at_sh01["awards"]} == {"share": 5, "share-sh01": 1}
    at_sh02 = await shop.ok(
        "POST",
        "/events",
        json={"event": "wechat_share", "member_id": m, "branch_id": str(shop.sh02)},
        status=201,
        idempotent=True,
    )
    assert {a["rule"]: a["status"] for a in at_sh02["awards"]} == {"share": "awarded", "share-sh01": "skipped"}
    capped = await shop.ok(
        "POST", "/events", json={"event": "wechat_share", "member_id": m}, status=201, idempotent=True
    )
    assert capped["points_awarded"] == 0  # 10 per member in all
    survey = await shop.ok("POST", "/events", json={"event": "survey", "member_id": m}, status=201, idempotent=True)
    assert survey["awards"][0]["reason"] == "not for this tier"
    await shop.set_tier(uuid.UUID(m), "gold")
    survey = await shop.ok("POST", "/events", json={"event": "survey", "member_id": m}, status=201, idempotent=True)
    assert survey["points_awarded"] == 30
    assert await shop.points(uuid.UUID(m)) == 5 + 1 + 5 + 30


async def test_event_problems_change_nothing(shop: Shop, member_factory, tenant_factory) -> None:
    m = str(await member_factory(shop.tenant))
    stranger = str(await member_factory(await tenant_factory()))
    cases = [
        ({"event": "no_such_event", "member_id": m}, 422, "unknown-event"),
        ({"event": "wechat_share", "member_id": stranger}, 404, "not-found"),
        ({"event": "wechat_share", "member_id": str(uuid.uuid4())}, 404, "not-found"),
        ({"event": "wechat_share", "member_id": m, "branch_id": str(uuid.uuid4())}, 404, "not-found"),
        ({"event": "wechat_share", "member_id": m, "business_time": "2026-11-23T10:00:00"}, 400, "validation-failed"),
        ({"event": "", "member_id": m}, 400, "validation-failed"),
        ({"event": "wechat_share", "member_id": m, "points": 1_000}, 400, "validation-failed"),
    ]
    for body, status, slug in cases:
        r = await shop.call("POST", "/events", json=body, idempotent=True)
        assert (r.status_code, r.json()["type"].split("/")[-1]) == (status, slug), (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await shop.scalar("SELECT count(*) FROM rule_awards") == 0
    assert await shop.points(uuid.UUID(m)) == 0


async def test_the_referrer_is_rewarded_on_the_first_qualifying_purchase(shop: Shop, member_factory) -> None:
    referrer, referee = await member_factory(shop.tenant), await member_factory(shop.tenant)
    async with shop.db.uow(shop.tenant) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, referrer_member_id) VALUES (:t, :m, :r)"),
            {"t": shop.tenant, "m": referee, "r": referrer},
        )
        await uow.commit()
    pos = await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh01)
    await shop.ok("POST", "/pos/sales", pos, {"amount": 6_000, "member_id": str(referee)}, status=201, idempotent=True)
    await shop.ok("POST", "/pos/sales", pos, {"amount": 9_000, "member_id": str(referee)}, status=201, idempotent=True)
    assert await shop.points(referrer) == 200  # once, on the first purchase


async def test_reaching_gold_at_the_till_issues_the_gold_coupon_once(shop: Shop, member_factory) -> None:
    m = await member_factory(shop.tenant)
    pos = await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh01)
    small = await shop.ok(
        "POST", "/pos/sales", pos, {"amount": 50_000, "member_id": str(m)}, status=201, idempotent=True
    )
    assert small["tier_changed"] is False
    assert await _coupons(shop, str(m)) == []
    big = await shop.ok("POST", "/pos/sales", pos, {"amount": 60_000, "member_id": str(m)}, status=201, idempotent=True)
    assert (big["tier"], big["tier_changed"]) == ("gold", True)
    assert await _coupons(shop, str(m)) == ["gold-tea"]
    await shop.ok("POST", "/pos/sales", pos, {"amount": 60_000, "member_id": str(m)}, status=201, idempotent=True)
    assert await _coupons(shop, str(m)) == ["gold-tea"]


async def test_event_routes_are_guarded(security_matrix, shop: Shop, member_factory, tenant_factory) -> None:
    other = await tenant_factory()
    m = str(await member_factory(shop.tenant))

    async def snapshot() -> int:
        return int(await shop.scalar("SELECT count(*) FROM rule_awards"))

    for url, body in (
        ("/api/v1/events", {"event": "wechat_share", "member_id": m}),
        ("/api/v1/reviews", {"member_id": m}),
    ):
        await security_matrix.check(
            "POST",
            url,
            tenant=shop.tenant,
            other=other,
            json=body,
            denied_roles=["analyst"],
            denied_scopes=[["members:read"], ["reports:read"]],
            allowed_scopes=["pos"],
            other_tenant_status=None,
            snapshot=snapshot,
        )
