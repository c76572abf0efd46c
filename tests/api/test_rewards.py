"""The rewards catalogue (积分兑换), as a tea shop runs it: a tumbler to pick up at SH01 for 500
points, a ¥10 coupon for 300, ¥5 of stored value for 200, a gold-only gift. Members redeem in the
portal, cashiers at the counter; stock is never oversold, points never overdrawn, and a refused
redemption changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import Programme, Tier
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration
TIERS = Programme(
    tiers=[Tier(code="regular", name="普通", rank=0), Tier(code="gold", name="金卡", rank=1, threshold=100_000)]
)


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory)
    await s.programme(TIERS)
    await s.ok(
        "POST",
        "/coupon-templates",
        status=201,
        json={"code": "ten-off", "name": "¥10 off", "kind": "fixed", "amount_off": 1_000, "valid_days": 30},
    )
    return s


async def catalogue(shop: Shop) -> dict[str, dict[str, Any]]:
    made: dict[str, dict[str, Any]] = {}
    bodies: list[dict[str, Any]] = [
        {
            "code": "tumbler",
            "name": "随行杯",
            "kind": "gift",
            "points_cost": 500,
            "stock_total": 2,
            "pickup_branch_id": str(shop.sh01),
            "per_member_limit": 1,
        },
        {"code": "coupon10", "name": "¥10 券", "kind": "coupon", "points_cost": 300, "coupon_template": "ten-off"},
        {"code": "sv5", "name": "¥5 储值", "kind": "stored_value", "points_cost": 200, "sv_amount": 500},
        {
            "code": "gold-pot",
            "name": "金卡茶壶",
            "kind": "gift",
            "points_cost": 100,
            "tiers": ["gold"],
            "pickup_branch_id": str(shop.sh02),
        },
    ]
    for body in bodies:
        made[body["code"]] = await shop.ok("POST", "/rewards", json=body, status=201)
    return made


async def state(shop: Shop, member: uuid.UUID) -> tuple[int, int, int, int]:
    """(points, stored-value bonus, units redeemed over all rewards, redemptions) — for "nothing changed"."""
    b = await shop.balances(member)
    return (
        b.points,
        b.sv_bonus,
        int(await shop.scalar("SELECT coalesce(sum(redeemed_count), 0) FROM rewards")),
        int(await shop.scalar("SELECT count(*) FROM reward_redemptions")),
    )


def slug(r: Any) -> str:
    return str(r.json()["type"].split("/")[-1])


async def test_staff_build_the_catalogue(shop: Shop) -> None:
    made = await catalogue(shop)
    assert made["coupon10"]["coupon_template"] == "ten-off"
    assert (made["tumbler"]["remaining"], made["sv5"]["remaining"]) == (2, None)
    listed = await shop.ok("GET", "/rewards")
    assert [r["code"] for r in listed] == ["gold-pot", "sv5", "coupon10", "tumbler"]  # cheapest first
    changed = await shop.ok(
        "PATCH", f"/rewards/{made['tumbler']['id']}", json={"points_cost": 450, "stock_total": None, "name": "保温杯"}
    )
    assert (changed["points_cost"], changed["stock_total"], changed["name"]) == (450, None, "保温杯")
    off = await shop.ok("PATCH", f"/rewards/{made['sv5']['id']}", json={"active": False})
    assert off["active"] is False
    assert [r["code"] for r in await shop.ok("GET", "/rewards?active=false")] == ["sv5"]
    assert (await shop.ok("GET", f"/rewards/{made['coupon10']['id']}"))["points_cost"] == 300


BAD_REWARDS: list[tuple[dict[str, Any], int]] = [
    ({"code": "x", "name": "x", "kind": "coupon", "points_cost": 1}, 400),  # no template
    ({"code": "x", "name": "x", "kind": "coupon", "points_cost": 1, "coupon_template": "nope"}, 404),
    ({"code": "x", "name": "x", "kind": "stored_value", "points_cost": 1}, 400),  # no amount
    ({"code": "x", "name": "x", "kind": "gift", "points_cost": 1, "sv_amount": 5}, 400),
    ({"code": "x", "name": "x", "kind": "gift", "points_cost": 0}, 400),
    ({"code": "x", "name": "x", "kind": "gift", "points_cost": 1.5}, 400),
    ({"code": "x", "name": "x", "kind": "gift", "points_cost": 1, "tiers": ["diamond"]}, 400),
    ({"code": "x", "name": "x", "kind": "gift", "points_cost": 1, "pickup_branch_id": str(uuid.uuid4())}, 404),
    ({"code": "x", "name": "x", "kind": "lottery", "points_cost": 1}, 400),
    ({"code": "x y", "name": "x", "kind": "gift", "points_cost": 1}, 400),
]


async def test_bad_rewards_are_problems_and_create_nothing(shop: Shop) -> None:
    for body, status in BAD_REWARDS:
        r = await shop.call("POST", "/rewards", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await shop.scalar("SELECT count(*) FROM rewards") == 0


async def test_a_member_redeems_gift_coupon_and_stored_value_in_the_portal(shop: Shop) -> None:
    made = await catalogue(shop)
    me = await shop.member()
    m = me.subject_id
    assert m is not None
    await shop.give_points(m, 1_000)
    view = await shop.ok("GET", f"/portal/merchants/{shop.slug}/rewards", me)
    assert view["points_available"] == 1_000
    flags = {i["reward"]["code"]: (i["can_redeem"], i["reason"]) for i in view["items"]}
    assert flags == {
        "gold-pot": (False, "not for this tier"),
        "sv5": (True, ""),
        "coupon10": (True, ""),
        "tumbler": (True, ""),
    }
    base = f"/portal/merchants/{shop.slug}/rewards"
    gift = await shop.ok("POST", f"{base}/{made['tumbler']['id']}/redeem", me, status=201, key="portal-1")
    assert (gift["status"], gift["pickup_branch_id"], gift["points"], gift["points_balance"]) == (
        "awaiting_pickup",
        str(shop.sh01),
        500,
        500,
    )
    replay = await shop.call("POST", f"{base}/{made['tumbler']['id']}/redeem", me, key="portal-1")
    assert (replay.status_code, replay.json()) == (200, gift)
    coupon = await shop.ok("POST", f"{base}/{made['coupon10']['id']}/redeem", me, status=201, idempotent=True)
    assert coupon["status"] == "delivered"
    assert coupon["coupon_code"] in [
        c["code"] for c in await shop.ok("GET", f"/portal/merchants/{shop.slug}/coupons", me)
    ]
    sv = await shop.ok("POST", f"{base}/{made['sv5']['id']}/redeem", me, status=201, idempotent=True)
    assert (sv["sv_amount"], sv["points_balance"]) == (500, 0)
    b = await shop.balances(m)
    assert (b.points, b.sv_principal, b.sv_bonus) == (0, 0, 500)  # bonus, never refundable principal
    funded = await shop.scalar(
        "SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
        "AND a.tenant_id = p.tenant_id WHERE a.kind = 'bonus_expense' AND a.owner_kind = 'merchant'"
    )
    assert funded == -500  # the merchant funds it
    pos = await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh02)
    paid = await shop.ok(
        "POST",
        "/pos/sales",
        pos,
        {"amount": 800, "member_id": str(m), "stored_value": 500},
        status=201,
        idempotent=True,
    )
    assert (paid["quote"]["sv_bonus"], paid["quote"]["due"], paid["balances"]["sv_bonus"]) == (500, 300, 0)
    mine = await shop.ok("GET", f"/portal/merchants/{shop.slug}/redemptions", me)
    assert [r["reward_code"] for r in mine] == ["sv5", "coupon10", "tumbler"]
    assert (await shop.ok("GET", f"/rewards/{made['tumbler']['id']}"))["remaining"] == 1
    affordable = await shop.ok("GET", f"/portal/merchants/{shop.slug}/rewards?redeemable=true", me)
    assert affordable["items"] == []


async def test_refusals_change_nothing(
    shop: Shop, member_factory, client, auth_kit, db: Database, tenant_factory
) -> None:
    made = await catalogue(shop)
    m, poor = await member_factory(shop.tenant), await member_factory(shop.tenant)
    await shop.give_points(m, 2_000)
    await shop.give_points(poor, 100)
    other = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    stranger = await member_factory(other.tenant)
    await other.give_points(stranger, 5_000)
    theirs = await other.ok(
        "POST", "/rewards", status=201, json={"code": "t", "name": "t", "kind": "gift", "points_cost": 1}
    )
    cashier = await shop.kit.staff(shop.tenant, "cashier")

    async def redeem(reward: str, member: uuid.UUID) -> Any:
        return await shop.call(
            "POST", f"/rewards/{reward}/redemptions", cashier, {"member_id": str(member)}, idempotent=True
        )

    assert (await redeem(made["tumbler"]["id"], m)).status_code == 201
    before = await state(shop, m), await state(shop, poor)
    await shop.ok("PATCH", f"/rewards/{made['sv5']['id']}", json={"active": False})
    for reward, member, status, problem in [
        (made["tumbler"]["id"], m, 422, "reward-limit-reached"),  # one per member
        (made["gold-pot"]["id"], m, 422, "reward-tier-not-allowed"),
        (made["sv5"]["id"], m, 422, "reward-inactive"),
        (made["coupon10"]["id"], poor, 422, "insufficient-points"),
        (theirs["id"], m, 404, "not-found"),  # another merchant's reward
        (str(uuid.uuid4()), m, 404, "not-found"),
        (made["coupon10"]["id"], stranger, 404, "not-found"),  # another merchant's member
        (made["coupon10"]["id"], uuid.uuid4(), 404, "not-found"),
    ]:
        r = await redeem(reward, member)
        assert (r.status_code, slug(r)) == (status, problem), (reward, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert (await state(shop, m), await state(shop, poor)) == before
    await shop.ok("PATCH", f"/rewards/{made['tumbler']['id']}", json={"per_member_limit": None})
    assert (await redeem(made["tumbler"]["id"], m)).status_code == 201  # the last one
    before_sold_out = await state(shop, m)
    r = await redeem(made["tumbler"]["id"], m)
    assert (r.status_code, slug(r)) == (422, "reward-sold-out")
    assert await state(shop, m) == before_sold_out
    assert await other.points(stranger) == 5_000


async def test_stock_and_points_hold_under_concurrency(shop: Shop, member_factory) -> None:
    made = await catalogue(shop)
    people = [await member_factory(shop.tenant) for _ in range(6)]
    for p in people:
        await shop.give_points(p, 500)
    results = await asyncio.gather(
        *[
            shop.call(
                "POST", f"/rewards/{made['tumbler']['id']}/redemptions", json={"member_id": str(p)}, idempotent=True
            )
            for p in people
        ]
    )
    assert sorted(r.status_code for r in results) == [201, 201, 422, 422, 422, 422]
    assert {slug(r) for r in results if r.status_code == 422} == {"reward-sold-out"}
    assert sorted([await shop.points(p) for p in people]) == [0, 0, 500, 500, 500, 500]
    rich = people[0] if await shop.points(people[0]) == 500 else people[-1]
    results = await asyncio.gather(
        *[
            shop.call(
                "POST", f"/rewards/{made['sv5']['id']}/redemptions", json={"member_id": str(rich)}, idempotent=True
            )
            for _ in range(4)
        ]
    )  # 4 × 200 points wanted, 500 held
    assert sorted(r.status_code for r in results) == [201, 201, 422, 422]
    assert (await shop.points(rich), (await shop.balances(rich)).sv_bonus) == (100, 1_000)
    assert await shop.scalar("SELECT redeemed_count FROM rewards WHERE code = 'tumbler'") == 2


async def test_gifts_are_handed_out_or_called_off_with_the_points_back(shop: Shop, member_factory) -> None:
    made = await catalogue(shop)
    m = await member_factory(shop.tenant)
    await shop.give_points(m, 1_000)
    await shop.ok("PATCH", f"/rewards/{made['tumbler']['id']}", json={"per_member_limit": 5})
    redeem = f"/rewards/{made['tumbler']['id']}/redemptions"
    first = await shop.ok("POST", redeem, json={"member_id": str(m)}, status=201, idempotent=True)
    second = await shop.ok("POST", redeem, json={"member_id": str(m)}, status=201, idempotent=True)
    assert await shop.points(m) == 0
    sh01_manager = await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh01])
    sh02_manager = await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh02])
    assert len(await shop.ok("GET", "/rewards/redemptions?status=awaiting_pickup", sh01_manager)) == 2
    assert await shop.ok("GET", "/rewards/redemptions", sh02_manager) == []  # not its branch's gifts
    r = await shop.call("POST", f"/rewards/redemptions/{first['id']}/deliver", sh02_manager)
    assert r.status_code == 403
    done = await shop.ok("POST", f"/rewards/redemptions/{first['id']}/deliver", sh01_manager)
    assert done["status"] == "delivered"
    assert done["picked_up_at"] is not None
    assert (await shop.ok("POST", f"/rewards/redemptions/{first['id']}/deliver", sh01_manager))[
        "status"
    ] == "delivered"  # twice is harmless
    r = await shop.call("POST", f"/rewards/redemptions/{first['id']}/cancel")
    assert (r.status_code, slug(r)) == (409, "redemption-closed")

    entries_before = await shop.scalar("SELECT count(*) FROM ledger_entries")
    cancelled = await shop.ok("POST", f"/rewards/redemptions/{second['id']}/cancel")
    assert (cancelled["status"], cancelled["points_balance"]) == ("cancelled", 500)
    again = await shop.ok("POST", f"/rewards/redemptions/{second['id']}/cancel")
    assert again["status"] == "cancelled"
    assert await shop.points(m) == 500
    assert await shop.scalar("SELECT count(*) FROM ledger_entries") == entries_before + 1  # one reversal, once
    async with shop.db.uow(shop.tenant) as uow:
        reversal = (
            await uow.session.execute(
                text(
                    "SELECT e.reverses_id, r.entry_id FROM reward_redemptions r JOIN ledger_entries e "
                    "ON e.id = r.cancel_entry_id AND e.tenant_id = r.tenant_id WHERE r.id = :r"
                ),
                {"r": uuid.UUID(second["id"])},
            )
        ).one()
    assert reversal.reverses_id == reversal.entry_id  # the spend was reversed, never edited
    assert (await shop.ok("GET", f"/rewards/{made['tumbler']['id']}"))["redeemed_count"] == 1
    r = await shop.call("POST", f"/rewards/redemptions/{second['id']}/deliver")
    assert (r.status_code, slug(r)) == (409, "redemption-closed")
    r = await shop.call("POST", f"/rewards/redemptions/{uuid.uuid4()}/cancel")
    assert r.status_code == 404


async def test_reward_routes_are_guarded(security_matrix, shop: Shop, member_factory, tenant_factory) -> None:
    made = await catalogue(shop)
    other = await tenant_factory()
    m = await member_factory(shop.tenant)

    async def snapshot() -> tuple[int, int]:
        return (
            int(await shop.scalar("SELECT count(*) FROM rewards")),
            int(await shop.scalar("SELECT count(*) FROM reward_redemptions")),
        )

    await security_matrix.check(
        "POST",
        "/api/v1/rewards",
        tenant=shop.tenant,
        other=other,
        snapshot=snapshot,
        json={"code": "z", "name": "z", "kind": "gift", "points_cost": 1},
        denied_roles=["cashier", "manager", "analyst"],
        denied_scopes=[["pos"]],
        other_tenant_status=None,
    )
    await security_matrix.check(
        "PATCH",
        f"/api/v1/rewards/{made['sv5']['id']}",
        tenant=shop.tenant,
        other=other,
        json={"active": False},
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        missing_url=f"/api/v1/rewards/{uuid.uuid4()}",
        snapshot=snapshot,
    )
    await security_matrix.check(
        "POST",
        f"/api/v1/rewards/{made['sv5']['id']}/redemptions",
        tenant=shop.tenant,
        other=other,
        json={"member_id": str(m)},
        denied_roles=["analyst"],
        denied_scopes=[["members:read"]],
        allowed_scopes=["pos"],
        other_tenant_status=None,
        snapshot=snapshot,
    )
