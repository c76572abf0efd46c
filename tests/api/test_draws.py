"""The lucky draw (抽奖) through the app and its use case: staff define a draw (a bad one is a problem
naming the field), members draw in the portal — points spent exactly once per Idempotency-Key, the
free draw once per local day, stock exact under 50 concurrent draws, the budget never passed, a
refused draw changes nothing — and another merchant sees none of it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lianka.platform.db import Database
from lianka.tenants.marketing import draws
from lianka.tenants.marketing.errors import AlreadyDrawnToday
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
ALWAYS_FIRST = lambda n: 0  # noqa: E731 — the first prize's chance always comes up


def window(**kw: Any) -> dict[str, Any]:
    return {"starts_at": (NOW - timedelta(days=1)).isoformat(), "ends_at": (NOW + timedelta(days=30)).isoformat()} | kw


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory)
    await s.ok(
        "POST",
        "/coupon-templates",
        status=201,
        json={"code": "five-off", "name": "¥5 off", "kind": "fixed", "amount_off": 500, "valid_days": 30},
    )
    return s


PAID = window(
    name="积分抽奖",
    cost_points=100,
    prizes=[
        {
            "name": "¥5 券",
            "kind": "coupon",
            "chance_bp": 3000,
            "stock": 10,
            "coupon_template": "five-off",
            "value": 500,
        },
        {"name": "50 积分", "kind": "points", "chance_bp": 3000, "stock": 10, "points": 50},
        {"name": "随行杯", "kind": "gift", "chance_bp": 1000, "stock": 1, "gift": "到店领取随行杯", "value": 3000},
    ],
)


async def counts(shop: Shop) -> tuple[int, int, int]:
    """(draw entries, prize stock left, coupons issued) — for "nothing changed"."""
    return (
        int(await shop.scalar("SELECT count(*) FROM lucky_draw_entries")),
        int(await shop.scalar("SELECT coalesce(sum(stock), 0) FROM lucky_draw_prizes")),
        int(await shop.scalar("SELECT count(*) FROM coupons")),
    )


async def test_staff_define_draws_and_bad_ones_are_problems(shop: Shop, client, auth_kit, db, tenant_factory) -> None:
    bad: list[tuple[dict[str, Any], int, str]] = [
        (PAID | {"prizes": []}, 400, "prizes"),
        (PAID | {"ends_at": PAID["starts_at"]}, 400, "ends_at"),
        (PAID | {"prizes": [PAID["prizes"][0] | {"chance_bp": 9000}, PAID["prizes"][1]]}, 400, "prizes"),
        (PAID | {"prizes": [PAID["prizes"][1] | {"points": 0}]}, 400, "prizes[0].points"),
        (PAID | {"prizes": [PAID["prizes"][0] | {"coupon_template": "nope"}]}, 404, "prizes[0].coupon_template"),
        (PAID | {"budget": -1}, 400, "budget"),
    ]
    for body, status, field in bad:
        r = await shop.call("POST", "/draws", json=body)
        assert (r.status_code, r.json().get("field")) == (status, field), r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await shop.scalar("SELECT count(*) FROM lucky_draws") == 0
    made = await shop.ok("POST", "/draws", json=PAID, status=201)
    assert (made["free_daily"], made["cost_points"], made["draws"]) == (False, 100, 0)
    assert [(p["kind"], p["stock"], p["won"]) for p in made["prizes"]] == [
        ("coupon", 10, 0),
        ("points", 10, 0),
        ("gift", 1, 0),
    ]
    assert made["prizes"][0]["coupon_template"] == "five-off"
    assert (await shop.call("POST", "/draws", json=PAID)).status_code == 409
    assert [d["name"] for d in await shop.ok("GET", "/draws")] == ["积分抽奖"]
    off = await shop.ok("PATCH", f"/draws/{made['id']}", json={"active": False, "name": "积分抽奖（停）"})
    assert (off["active"], off["name"]) == (False, "积分抽奖（停）")
    cashier = await shop.kit.staff(shop.tenant, "cashier")
    assert (await shop.call("POST", "/draws", cashier, json=PAID | {"name": "x"})).status_code == 403
    other = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    assert (await other.call("GET", f"/draws/{made['id']}")).status_code == 404
    assert (await other.call("PATCH", f"/draws/{made['id']}", json={"active": True})).status_code == 404
    assert await other.ok("GET", "/draws") == []


async def test_a_member_draws_with_points_exactly_once_per_key(shop: Shop) -> None:
    made = await shop.ok("POST", "/draws", json=PAID, status=201)
    me = await shop.member()
    m = me.subject_id
    assert m is not None
    await shop.give_points(m, 250)
    url = f"/portal/merchants/{shop.slug}/draws/{made['id']}"
    view = await shop.ok("GET", url, me)
    assert (view["can_draw"], view["points_available"]) == (True, 250)
    first = await shop.ok("POST", f"{url}/draw", me, status=201, key="draw-1")
    assert first["cost_points"] == 100 and first["free"] is False
    replay = await shop.call("POST", f"{url}/draw", me, key="draw-1")
    assert (replay.status_code, replay.json()) == (200, first)
    assert await shop.points(m) == first["points_balance"]
    assert await shop.scalar("SELECT count(*) FROM lucky_draw_entries") == 1
    # the use case with the first prize forced: the coupon is issued in the same transaction
    won, replayed = await draws.draw(shop.db, shop.tenant, uuid.UUID(made["id"]), m, "draw-2", randbelow=ALWAYS_FIRST)
    assert not replayed and won.won and won.prize is not None and won.prize.kind == "coupon"
    assert won.prize.coupon_code in [
        c["code"] for c in await shop.ok("GET", f"/portal/merchants/{shop.slug}/coupons", me)
    ]
    assert await shop.points(m) == 250 - 200 + (50 if first["prize"] and first["prize"]["kind"] == "points" else 0)
    # 50 points left at most 100: not enough for a draw — refused, nothing changed
    if await shop.points(m) < 100:
        before = await counts(shop), await shop.points(m)
        r = await shop.call("POST", f"{url}/draw", me, idempotent=True)
        assert r.status_code == 422 and r.json()["type"].endswith("insufficient-points"), r.text
        assert (await counts(shop), await shop.points(m)) == before
    seen = await shop.ok("GET", f"/draws/{made['id']}")
    assert seen["draws"] == await shop.scalar("SELECT count(*) FROM lucky_draw_entries")
    assert seen["prizes"][0]["won"] >= 1 and seen["prizes"][0]["stock"] == 10 - seen["prizes"][0]["won"]
    assert seen["budget_used"] == 500 * seen["prizes"][0]["won"] + 3000 * seen["prizes"][2]["won"]


async def test_insufficient_points_are_refused_and_change_nothing(shop: Shop) -> None:
    made = await shop.ok("POST", "/draws", json=PAID, status=201)
    me = await shop.member()
    assert me.subject_id is not None
    await shop.give_points(me.subject_id, 99)
    before = await counts(shop)
    r = await shop.call("POST", f"/portal/merchants/{shop.slug}/draws/{made['id']}/draw", me, idempotent=True)
    assert r.status_code == 422 and r.json()["type"].endswith("insufficient-points"), r.text
    assert (await counts(shop), await shop.points(me.subject_id)) == (before, 99)
    view = await shop.ok("GET", f"/portal/merchants/{shop.slug}/draws/{made['id']}", me)
    assert (view["can_draw"], view["reason"]) == (False, "not_enough_points")


async def test_the_free_draw_is_once_per_local_day(shop: Shop, member_factory) -> None:
    free = window(
        name="每日免费", prizes=[{"name": "10 积分", "kind": "points", "chance_bp": 5000, "stock": 100, "points": 10}]
    )
    made = await shop.ok("POST", "/draws", json=free, status=201)
    assert made["free_daily"] is True
    draw_id, m = uuid.UUID(made["id"]), await member_factory(shop.tenant)
    tz = str(await shop.scalar("SELECT timezone FROM merchants WHERE id = :t", t=shop.tenant))
    from zoneinfo import ZoneInfo

    local_noon = datetime.now(ZoneInfo(tz)).replace(hour=12, minute=0, second=0, microsecond=0)
    out, _ = await draws.draw(shop.db, shop.tenant, draw_id, m, "free-1", now=local_noon, randbelow=ALWAYS_FIRST)
    assert (out.free, out.cost_points, out.won, out.points_balance) == (True, 0, True, 10)
    with pytest.raises(AlreadyDrawnToday):  # 23:59 local is still the same day
        await draws.draw(shop.db, shop.tenant, draw_id, m, "free-2", now=local_noon.replace(hour=23, minute=59))
    again, _ = await draws.draw(shop.db, shop.tenant, draw_id, m, "free-3", now=local_noon + timedelta(hours=12))
    assert again.free and await shop.scalar("SELECT count(*) FROM lucky_draw_entries") == 2
    # one member's concurrent free draws on a new day: exactly one goes through
    results = await asyncio.gather(
        *[
            draws.draw(shop.db, shop.tenant, draw_id, m, f"free-x{i}", now=local_noon + timedelta(days=2))
            for i in range(5)
        ],
        return_exceptions=True,
    )
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, AlreadyDrawnToday) for r in results) == 4


async def test_fifty_concurrent_draws_win_exactly_the_stock(shop: Shop, member_factory) -> None:
    body = window(
        name="限量", prizes=[{"name": "杯子", "kind": "gift", "chance_bp": 10_000, "stock": 5, "gift": "杯子"}]
    )
    made = await shop.ok("POST", "/draws", json=body, status=201)
    draw_id = uuid.UUID(made["id"])
    people = [await member_factory(shop.tenant) for _ in range(50)]
    results = await asyncio.gather(*[draws.draw(shop.db, shop.tenant, draw_id, p, f"k-{p}") for p in people])
    assert sum(r.won for r, _ in results) == 5
    seen = await shop.ok("GET", f"/draws/{draw_id}")
    assert (seen["draws"], seen["prizes"][0]["stock"], seen["prizes"][0]["won"]) == (50, 0, 5)


async def test_the_budget_is_never_passed(shop: Shop, member_factory) -> None:
    body = window(
        name="预算",
        budget=1_000,
        prizes=[
            {
                "name": "¥5 券",
                "kind": "coupon",
                "chance_bp": 10_000,
                "stock": 50,
                "coupon_template": "five-off",
                "value": 300,
            }
        ],
    )
    made = await shop.ok("POST", "/draws", json=body, status=201)
    people = [await member_factory(shop.tenant) for _ in range(6)]
    results = await asyncio.gather(
        *[draws.draw(shop.db, shop.tenant, uuid.UUID(made["id"]), p, f"b-{p}") for p in people]
    )
    assert sum(r.won for r, _ in results) == 3  # 3 × 300 ≤ 1 000 < 4 × 300
    seen = await shop.ok("GET", f"/draws/{made['id']}")
    assert (seen["budget_used"], seen["prizes"][0]["stock"]) == (900, 47)
    assert await shop.scalar("SELECT count(*) FROM coupons") == 3


async def test_another_merchants_draw_is_not_found(shop: Shop, client, auth_kit, db, tenant_factory) -> None:
    made = await shop.ok("POST", "/draws", json=PAID, status=201)
    other = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    stranger = await other.member()
    assert stranger.subject_id is not None
    await other.give_points(stranger.subject_id, 1_000)
    r = await other.call("POST", f"/portal/merchants/{other.slug}/draws/{made['id']}/draw", stranger, idempotent=True)
    assert r.status_code == 404, r.text
    r = await other.call("POST", f"/portal/merchants/{shop.slug}/draws/{made['id']}/draw", stranger, idempotent=True)
    assert r.status_code == 404, r.text  # not a member there
    assert await shop.scalar("SELECT count(*) FROM lucky_draw_entries") == 0
    assert await other.points(stranger.subject_id) == 1_000
