"""What a restricted merchant may still do, and each plan limit (decision 0032): configuration and
marketing writes are refused with 402 problems carrying the billing page's link; the till, the
member portal, reads, exports and billing itself never stop. Two merchants in every test: the other
one, on a paid plan, is never affected."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.billing import limits
from lianka.billing.errors import PlanLimitReached, PlanRestricted
from lianka.billing.queries import MESSAGE_ACTORS
from lianka.platform.db import Database
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.testing import AuthKit
from lianka.web.billing_gate import GATED, NEVER_GATED
from tests.api.billing_kit import put_on_plan, tiny_plan
from tests.api.shop import PROBLEM, Shop, make_shop

__all__ = ["tiny_plan"]  # the fixture


@pytest.fixture
async def shops(
    client: AsyncTestClient[Litestar], auth_kit: AuthKit, db: Database, tenant_factory
) -> tuple[Shop, Shop]:
    """A restricted merchant and an active one."""
    restricted = await make_shop(client, auth_kit, db, tenant_factory, "欠费店")
    paying = await make_shop(client, auth_kit, db, tenant_factory, "正常店")
    await put_on_plan(db, restricted.tenant, "chain", "restricted")
    await put_on_plan(db, paying.tenant, "chain", "active")
    return restricted, paying


def slug(r: Any) -> str:
    return str(r.json()["type"]).rsplit("/", 1)[1]


def test_every_permission_is_gated_or_not_on_purpose() -> None:
    assert set(Permission) == GATED | NEVER_GATED and not GATED & NEVER_GATED
    assert Permission.SALES_WRITE in NEVER_GATED and Permission.MEMBERS_WRITE in NEVER_GATED
    assert Permission.SETTLEMENT_WRITE in NEVER_GATED and Permission.BILLING_MANAGE in NEVER_GATED


async def test_a_restricted_merchants_configuration_writes_are_refused_the_others_are_not(
    shops: tuple[Shop, Shop],
) -> None:
    restricted, paying = shops
    for shop, expected in ((restricted, 402), (paying, 201)):
        r = await shop.call("POST", "/branches", json={"code": "SH03", "name": "三店"})
        assert r.status_code == expected, r.text
    r = await restricted.call("POST", "/branches", json={"code": "SH04", "name": "四店"})
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert slug(r) == "plan-restricted" and body["upgrade_url"] == "/console/billing"
    assert body["status_now"] == "restricted"
    assert await restricted.scalar("SELECT count(*) FROM branches") == 2  # nothing changed
    assert await paying.scalar("SELECT count(*) FROM branches") == 3
    # a programme change and a renamed branch wait too; canceled is restricted as well
    r = await restricted.call("PATCH", f"/branches/{restricted.sh01}", json={"name": "改名"})
    assert (r.status_code, slug(r)) == (402, "plan-restricted")
    # closing doors never waits: a POS client is revoked
    leaked = await restricted.kit.pos(restricted.tenant, ("pos",))
    assert (await restricted.call("DELETE", f"/clients/{leaked.subject_id}")).status_code == 204
    await put_on_plan(restricted.db, restricted.tenant, "chain", "canceled")
    r = await restricted.call("PATCH", f"/branches/{restricted.sh01}", json={"name": "改名"})
    assert (r.status_code, slug(r)) == (402, "plan-restricted")
    # trialing and past due are not restricted
    for status in ("trialing", "past_due"):
        await put_on_plan(restricted.db, restricted.tenant, "chain", status)
        r = await restricted.call("PATCH", f"/branches/{restricted.sh01}", json={"name": f"改名{status}"})
        assert r.status_code == 200, (status, r.text)


async def test_the_till_the_portal_reads_and_billing_never_stop(shops: tuple[Shop, Shop], member_factory) -> None:
    restricted, _ = shops
    till = await restricted.kit.pos(restricted.tenant, ("pos",), branch=restricted.sh01)
    # a sale that enrols a new member, and a sale to an existing one
    r = await restricted.call(
        "POST", "/pos/sales", till, json={"amount": 12_000, "join_phone": "13800138077"}, idempotent=True
    )
    assert r.status_code in (200, 201), r.text
    member = await member_factory(restricted.tenant)
    r = await restricted.call(
        "POST", "/pos/sales", till, json={"amount": 5_000, "member_id": str(member)}, idempotent=True
    )
    assert r.status_code in (200, 201), r.text
    assert await restricted.scalar("SELECT count(*) FROM sales") == 2
    # reads
    assert (await restricted.call("GET", "/branches")).status_code == 200
    assert (await restricted.call("GET", "/billing/subscription")).json()["status"] == "restricted"
    # billing itself: not a 402 (the test app has no Stripe key: 409 billing-not-configured)
    r = await restricted.call("POST", "/billing/checkout", json={"plan": "shop"})
    assert (r.status_code, slug(r)) == (409, "billing-not-configured")
    # a member in the portal changes their consent
    me = await restricted.member()
    r = await restricted.client.put(
        f"/api/v1/portal/merchants/{restricted.slug}/consent/sms", json={"granted": True}, headers=me.headers
    )
    assert r.status_code == 200, r.text


async def test_a_wrong_role_still_gets_403_not_402(shops: tuple[Shop, Shop]) -> None:
    restricted, _ = shops
    cashier = await restricted.kit.staff(restricted.tenant, "cashier")
    r = await restricted.call("POST", "/branches", cashier, json={"code": "SH09", "name": "九店"})
    assert r.status_code == 403


async def test_the_console_shows_the_refusal_as_a_banner_with_the_upgrade_link(shops: tuple[Shop, Shop]) -> None:
    restricted, paying = shops
    for shop, refused in ((restricted, True), (paying, False)):
        session = await shop.kit.staff_session(shop.tenant, "owner")
        shop.client.cookies.clear()
        r = await shop.client.post(
            "/console/branches/",
            data={"code": "SH05", "name": "五店", "address": "", "timezone": "Asia/Shanghai"},
            headers={**session.headers, "Accept-Language": "en"},
        )
        if refused:
            assert r.status_code == 402
            assert 'href="/console/billing"' in r.text and "subscription is restricted" in r.text
        else:
            assert r.status_code in (200, 303), r.text


# --- limits -------------------------------------------------------------------------------------------


async def test_branch_and_staff_seat_limits(
    client: AsyncTestClient[Litestar], auth_kit: AuthKit, db: Database, tenant_factory, tiny_plan: str
) -> None:
    t = await tenant_factory("小店")
    other = await tenant_factory("大店")
    await put_on_plan(db, t, tiny_plan)
    await put_on_plan(db, other, "chain")
    owner, other_owner = await auth_kit.staff(t, "owner"), await auth_kit.staff(other, "owner")
    r = await client.post("/api/v1/branches", json={"code": "A1", "name": "一店"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/branches", json={"code": "A2", "name": "二店"}, headers=owner.headers)
    assert (r.status_code, slug(r)) == (402, "plan-limit-reached")
    body = r.json()
    assert (body["limit"], body["plan_value"], body["current"], body["plan"]) == ("branches", 1, 1, tiny_plan)
    assert body["upgrade_url"] == "/console/billing"
    for code in ("B1", "B2"):
        r = await client.post("/api/v1/branches", json={"code": code, "name": code}, headers=other_owner.headers)
        assert r.status_code == 201
    # staff seats: the owner is one of two; POS clients take no seat
    await auth_kit.pos(t, ("pos",))
    r = await client.post(
        "/api/v1/staff", json={"email": f"{uuid.uuid4().hex[:8]}@x.cn", "role": "cashier"}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/staff", json={"email": f"{uuid.uuid4().hex[:8]}@x.cn", "role": "cashier"}, headers=owner.headers
    )
    assert (r.status_code, r.json()["limit"], r.json()["current"]) == (402, "staff_seats", 2)


async def test_enrolment_at_the_till_goes_on_past_the_member_limit_and_the_next_config_write_is_refused(
    client: AsyncTestClient[Litestar], auth_kit: AuthKit, db: Database, tenant_factory, tiny_plan: str, member_factory
) -> None:
    shop = await make_shop(client, auth_kit, db, tenant_factory, "会员多")
    async with db.uow(shop.tenant) as uow:  # one branch only, as the tiny plan allows
        await uow.session.execute(text("DELETE FROM branches WHERE id = :b"), {"b": shop.sh02})
        await uow.commit()
    await put_on_plan(db, shop.tenant, tiny_plan)
    for _ in range(2):
        await member_factory(shop.tenant)
    till = await auth_kit.pos(shop.tenant, ("pos",), branch=shop.sh01)
    r = await shop.call(
        "POST", "/pos/sales", till, json={"amount": 12_000, "join_phone": "13800138099"}, idempotent=True
    )
    assert r.status_code in (200, 201), r.text
    assert await shop.scalar("SELECT count(*) FROM memberships") == 3  # enrolled over the limit
    r = await shop.call("PATCH", f"/branches/{shop.sh01}", json={"name": "改"})
    assert (r.status_code, r.json()["limit"], r.json()["plan_value"], r.json()["current"]) == (402, "members", 2, 3)


async def test_alliances_need_a_plan_with_alliance_membership(
    client: AsyncTestClient[Litestar], auth_kit: AuthKit, db: Database, tenant_factory, tiny_plan: str
) -> None:
    small, big = await tenant_factory("小"), await tenant_factory("大")
    await put_on_plan(db, small, tiny_plan)
    await put_on_plan(db, big, "alliance")
    body = {"code": f"al{uuid.uuid4().hex[:6]}", "name": "商圈"}
    r = await client.post("/api/v1/alliances", json=body, headers=(await auth_kit.staff(small, "owner")).headers)
    assert (r.status_code, r.json()["limit"], r.json()["plan_value"]) == (402, "alliance_membership", False)
    r = await client.post("/api/v1/alliances", json=body, headers=(await auth_kit.staff(big, "owner")).headers)
    assert r.status_code == 201, r.text
    trying = await tenant_factory("试用")  # a trial (of Chain) may try alliances too
    body = {"code": f"al{uuid.uuid4().hex[:6]}", "name": "试用商圈"}
    r = await client.post("/api/v1/alliances", json=body, headers=(await auth_kit.staff(trying, "owner")).headers)
    assert r.status_code == 201, r.text


async def test_messages_a_month_building_block(db: Database, tenant_factory, tiny_plan: str) -> None:
    t, other = await tenant_factory("发消息"), await tenant_factory("别家")
    await put_on_plan(db, t, tiny_plan)
    await put_on_plan(db, other, tiny_plan)
    async with db.uow(t) as uow:
        for _ in range(2):
            await uow.session.execute(
                text("INSERT INTO outbox (tenant_id, actor, sent_at) VALUES (:t, :a, now())"),
                {"t": t, "a": MESSAGE_ACTORS[0]},
            )
        await uow.commit()
    async with db.uow(t) as uow:
        await limits.check_messages(uow, t, 1)  # 2 + 1 = the plan's 3
        with pytest.raises(PlanLimitReached) as refused:
            await limits.check_messages(uow, t, 2)
    assert (refused.value.extra["limit"], refused.value.extra["current"]) == ("messages_per_month", 2)
    async with db.uow(other) as uow:
        await limits.check_messages(uow, other, 3)  # the other merchant's month is its own
    await put_on_plan(db, other, tiny_plan, "restricted")
    async with db.uow(other) as uow:
        with pytest.raises(PlanRestricted):
            await limits.check_messages(uow, other, 1)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/billing/plan", {"plan": "chain"}),
        ("POST", "/api/v1/billing/cancel", None),
        ("POST", "/api/v1/billing/resume", None),
        ("PUT", "/api/v1/billing/email", {"email": "a@b.cn"}),
        ("GET", "/api/v1/billing/invoices", None),
    ],
)
async def test_the_owners_billing_routes_are_guarded(
    security_matrix: Any, two_tenants: tuple[uuid.UUID, uuid.UUID], method: str, url: str, body: Any
) -> None:
    a, b = two_tenants
    await security_matrix.check(
        method,
        url,
        tenant=a,
        other=b,
        json=body,
        denied_roles=["admin", "manager", "cashier", "analyst"],
        other_tenant_status=None,
    )


async def test_usage_is_readable_by_staff_and_guarded(
    security_matrix: Any, two_tenants: tuple[uuid.UUID, uuid.UUID], client: AsyncTestClient[Litestar], auth_kit: AuthKit
) -> None:
    a, b = two_tenants
    await security_matrix.check("GET", "/api/v1/billing/usage", tenant=a, other=b, other_tenant_status=None)
    await auth_kit.branch(a, "U1")
    r = await client.get("/api/v1/billing/usage", headers=(await auth_kit.staff(a, "cashier")).headers)
    body = r.json()
    assert r.status_code == 200 and body["plan"] == "chain" and body["over"] == []
    assert {line["limit"]: (line["used"], line["allowed"]) for line in body["lines"]}["branches"] == (1, 20)
