"""Campaigns on real PostgreSQL and Redis: only consenting members get a row, the weekly cap, quiet
hours defer to 09:00, never twice, the holdout receives nothing, coupon stock runs out while the
messages still go, the A/B split, a throttled provider (the Aliyun stand-in) retried to a dead
letter and re-sent, receipts linked to messages, the portal inbox, the plan's monthly messages,
attribution against the control group (recomputed here from the raw rows), and two tenants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from lianka.billing import services as billing
from lianka.billing.errors import PlanLimitReached
from lianka.platform.db import Database
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import campaign_queries as cq
from lianka.tenants.marketing import campaigns as svc
from lianka.tenants.marketing import providers, receipts
from lianka.tenants.marketing import queries as segment_queries
from lianka.tenants.marketing import services as segments
from lianka.tenants.marketing.channels.standins import AliyunStandin
from lianka.tenants.marketing.errors import CampaignAlreadyStarted, CampaignNotFound, NotDeadLetter
from lianka.tenants.services import coupons

from . import kit

pytestmark = pytest.mark.integration
#: 10:00 in Shanghai: outside quiet hours
DAY_TIME = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}
SMS_OK = {"sms": {"granted": True}, "email": {"granted": True}}


async def put_on_tiny_plan(db: Database, owner_engine: Any, tenant: uuid.UUID) -> None:
    """A plan of 3 messages a month, for this merchant only (the plan row is this test's own)."""
    code = f"camp-{uuid.uuid4().hex[:8]}"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO billing_plans (code, name, price_minor, currency, max_branches, max_members, "
                "max_staff_seats, messages_per_month, alliance_membership, sort) "
                "VALUES (:c, 'Tiny', 100, 'CNY', 5, 100, 5, 3, false, 99)"
            ),
            {"c": code},
        )
    async with db.uow(tenant) as uow:
        await billing.ensure_account(uow, tenant)
        await uow.session.execute(text("UPDATE billing_accounts SET plan = :p, status = 'active'"), {"p": code})
        await uow.commit()


@dataclass
class Shop:
    tenant: uuid.UUID
    segment: uuid.UUID
    consenting: list[uuid.UUID]
    refusing: list[uuid.UUID]


async def _shop(db: Database, tenant_factory: Any, member_factory: Any, n: int = 4, refusing: int = 2) -> Shop:
    t = await tenant_factory("活动店")
    ok = [await member_factory(t) for _ in range(n)]
    no = [await member_factory(t) for _ in range(refusing)]
    for i, m in enumerate(ok):
        await kit.profile(db, t, m, joined=DAY_TIME - timedelta(days=30), branch=None, name=f"会员{i}",
                          tier_code="gold", consent=SMS_OK)  # fmt: skip
        async with db.uow(t) as uow:
            await uow.session.execute(text("UPDATE member_profiles SET email = :e WHERE member_id = :m"),
                                      {"e": f"m{i}@example.com", "m": m})  # fmt: skip
            await uow.commit()
    for m in no:
        await kit.profile(db, t, m, joined=DAY_TIME - timedelta(days=30), branch=None,
                          consent={"sms": {"granted": False}})  # fmt: skip
    seg = await segments.create_segment(db, t, "所有人", EVERYONE)
    return Shop(t, seg.id, ok, no)


@pytest.fixture
async def shop(db: Database, tenant_factory: Any, member_factory: Any) -> Shop:
    return await _shop(db, tenant_factory, member_factory)


async def _campaign(db: Database, shop: Shop, name: str = "双十二", **fields: Any) -> uuid.UUID:
    data = svc.CampaignIn(name=name, segment_id=shop.segment, channel=fields.pop("channel", "sms"),
                          template_a=fields.pop("template_a", "{name}，您有{points}积分"), **fields)  # fmt: skip
    return (await svc.create_campaign(db, shop.tenant, data)).id


async def _rows(db: Database, tenant: uuid.UUID, campaign: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT member_id, status, variant, due_at, coupon_id, body, attempts, provider_message_id "
                 "FROM campaign_messages WHERE campaign_id = :c"), {"c": campaign})  # fmt: skip
        return {r.member_id: dict(r._mapping) for r in rows}


async def _outbox(db: Database, tenant: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT payload FROM outbox WHERE actor = :a ORDER BY id"), {"a": cq.SEND_ACTOR}
        )
        return [r.payload for r in rows]


async def test_only_consenting_members_get_one_message_and_never_twice(db: Database, shop: Shop) -> None:
    c = await _campaign(db, shop)
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    rows = await _rows(db, shop.tenant, c)
    assert set(rows) == set(shop.consenting)  # the two who refused SMS get nothing
    assert {r["status"] for r in rows.values()} == {"queued"}
    assert sorted(p["member_id"] for p in await _outbox(db, shop.tenant)) == sorted(map(str, shop.consenting))
    with pytest.raises(CampaignAlreadyStarted):
        await svc.send(db, shop.tenant, c, now=DAY_TIME)
    async with db.uow(shop.tenant) as uow:  # the same snapshot again: the unique (campaign, member) holds
        camp = await cq.campaign(uow, c)
        assert camp is not None and camp.snapshot_id is not None
        a = cq.Audience(c, camp.snapshot_id, "sms", 99, DAY_TIME - timedelta(days=7))
        again = await cq.insert_messages(uow, a, has_b=False, split_a=100, seed=1, due=DAY_TIME, now=DAY_TIME)
    assert again == 0
    for m in shop.consenting:
        assert await svc.deliver_one(db, shop.tenant, c, m, now=DAY_TIME) == "sent"
        assert await svc.deliver_one(db, shop.tenant, c, m, now=DAY_TIME) == "sent"  # a redelivery: no-op
    rows = await _rows(db, shop.tenant, c)
    assert all(r["attempts"] == 1 and r["body"].startswith("会员") for r in rows.values())


async def test_weekly_frequency_cap_per_channel(db: Database, shop: Shop) -> None:
    await svc.set_frequency_cap(db, shop.tenant, 1)
    first = await _campaign(db, shop, "第一条")
    await svc.send(db, shop.tenant, first, now=DAY_TIME)
    second = await _campaign(db, shop, "第二条")
    await svc.send(db, shop.tenant, second, now=DAY_TIME + timedelta(days=1))
    assert await _rows(db, shop.tenant, second) == {}  # capped: one SMS a week each
    mail = await _campaign(db, shop, "邮件", channel="email")
    await svc.send(db, shop.tenant, mail, now=DAY_TIME + timedelta(days=1))
    assert set(await _rows(db, shop.tenant, mail)) == set(shop.consenting)  # another channel's cap
    later = await _campaign(db, shop, "下周")
    await svc.send(db, shop.tenant, later, now=DAY_TIME + timedelta(days=8))
    assert set(await _rows(db, shop.tenant, later)) == set(shop.consenting)  # a week later


async def test_quiet_hours_defer_to_nine_in_the_merchants_zone(db: Database, shop: Shop) -> None:
    c = await _campaign(db, shop)
    evening = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    await svc.send(db, shop.tenant, c, now=evening)
    nine = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 the next day in Shanghai
    rows = await _rows(db, shop.tenant, c)
    assert {r["due_at"] for r in rows.values()} == {nine} and {r["status"] for r in rows.values()} == {"pending"}
    assert await _outbox(db, shop.tenant) == []
    assert await svc.tick(db, shop.tenant, nine - timedelta(minutes=1)) == 0
    assert await svc.tick(db, shop.tenant, nine) == len(shop.consenting)
    assert len(await _outbox(db, shop.tenant)) == len(shop.consenting)


async def test_scheduled_campaign_starts_at_its_time(db: Database, shop: Shop) -> None:
    at = DAY_TIME + timedelta(hours=3)
    c = await _campaign(db, shop, scheduled_at=at)
    assert (await svc.send(db, shop.tenant, c, now=DAY_TIME)).status == "scheduled"
    async with db.uow(shop.tenant) as uow:  # audited as scheduled, by code when no one is named
        logged = (await uow.session.execute(text("SELECT action, actor_id, details FROM audit_log"))).all()
    assert [(r.action, r.actor_id, datetime.fromisoformat(r.details["scheduled_at"])) for r in logged] == [
        ("campaign.scheduled", "campaigns.send", at)
    ]
    assert await svc.tick(db, shop.tenant, at - timedelta(seconds=1)) == 0
    assert await _rows(db, shop.tenant, c) == {}
    assert await svc.tick(db, shop.tenant, at) == len(shop.consenting)
    assert (await svc.get_campaign(db, shop.tenant, c)).status == "sending"
    for m in shop.consenting:
        await svc.deliver_one(db, shop.tenant, c, m, now=at)
    await svc.tick(db, shop.tenant, at + timedelta(minutes=1))
    assert (await svc.get_campaign(db, shop.tenant, c)).status == "sent"  # nothing left to send


async def test_holdout_receives_nothing(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    big = await _shop(db, tenant_factory, member_factory, n=40, refusing=0)
    c = await _campaign(db, big, holdout_pct=30)
    await svc.send(db, big.tenant, c, now=DAY_TIME)
    camp = await svc.get_campaign(db, big.tenant, c)
    async with db.uow(big.tenant) as uow:
        assert camp.snapshot_id is not None
        held = set(await segment_queries.snapshot_member_ids(uow, camp.snapshot_id, holdout=True))
    rows = await _rows(db, big.tenant, c)
    assert held and not held & set(rows)
    assert set(rows) | held == set(big.consenting)


async def test_coupon_stock_runs_out_and_the_messages_still_go(db: Database, shop: Shop) -> None:
    async with db.uow(shop.tenant) as uow:
        t = await coupons.create_template(
            uow,
            coupons.TemplateSpec(
                code="C2", name="满减", kind=CouponKind.FIXED, amount_off=500, stock_total=2, valid_days=30
            ),
        )
        await uow.commit()
    c = await _campaign(db, shop, channel="portal", template_a="券码 {coupon_code}", coupon_template_id=t.id)
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    everyone = shop.consenting + shop.refusing  # the portal inbox needs no opt-in, only no opt-out
    for m in everyone:
        assert await svc.deliver_one(db, shop.tenant, c, m, now=DAY_TIME) == "delivered"
    rows = list((await _rows(db, shop.tenant, c)).values())
    with_coupon = [r for r in rows if r["coupon_id"] is not None]
    assert len(with_coupon) == 2 and len(rows) == len(everyone) == 6
    async with db.uow(shop.tenant) as uow:
        codes: dict[uuid.UUID, str] = dict((await uow.session.execute(text("SELECT id, code FROM coupons WHERE template_id = :t"),
                                                {"t": t.id})).all())  # fmt: skip
    assert sorted(r["body"] for r in with_coupon) == sorted(f"券码 {code}" for code in codes.values())
    assert [r["body"] for r in rows if r["coupon_id"] is None] == ["券码 "] * 4


async def test_ab_split(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    big = await _shop(db, tenant_factory, member_factory, n=60, refusing=0)
    c = await _campaign(db, big, channel="portal", template_a="A {name}", template_b="B {name}", split_a_pct=50)
    await svc.send(db, big.tenant, c, now=DAY_TIME)
    for m in big.consenting:
        await svc.deliver_one(db, big.tenant, c, m, now=DAY_TIME)
    rows = list((await _rows(db, big.tenant, c)).values())
    a = [r for r in rows if r["variant"] == "a"]
    b = [r for r in rows if r["variant"] == "b"]
    assert len(a) + len(b) == 60 and 15 <= len(a) <= 45
    assert all(r["body"].startswith("A ") for r in a) and all(r["body"].startswith("B ") for r in b)
    # the split is a pure function of (member, campaign): the preview shows both variants
    assert [p.variant for p in await svc.preview(db, big.tenant, c)] == ["a", "b"]
    # results per variant: members of A buy ¥10.00 on day 1, the first 5 of B ¥20.00
    shop_branch = await kit.branch(db, big.tenant, "AB")
    buyers_b = [r["member_id"] for r in b][:5]
    for r in a:
        await kit.sale(db, big.tenant, r["member_id"], shop_branch, DAY_TIME + timedelta(days=1), 1000)
    for m in buyers_b:
        await kit.sale(db, big.tenant, m, shop_branch, DAY_TIME + timedelta(days=1), 2000)
    v = (await svc.results(db, big.tenant, c)).variants
    assert v["a"] == cd.Group(len(a), len(a), 1000 * len(a))
    assert v["b"] == cd.Group(len(b), 5, 10_000)


async def test_a_variant_the_split_leaves_empty_is_still_reported(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    shop = await _shop(db, tenant_factory, member_factory, n=6, refusing=0)
    c = await _campaign(db, shop, channel="portal", template_a="A {name}", template_b="B {name}", split_a_pct=100)
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    assert {r["variant"] for r in (await _rows(db, shop.tenant, c)).values()} == {"a"}
    v = (await svc.results(db, shop.tenant, c)).variants
    assert v == {"a": cd.Group(6, 0, 0), "b": cd.Group(0, 0, 0)}  # B configured, no recipients: a row of 0


async def test_throttled_provider_retries_then_dead_letter_then_resend_and_receipts(
    db: Database, shop: Shop, settings: Any
) -> None:
    standin = AliyunStandin(keys={"LTAIcamp": "s3cret-key"}, throttle=cd.MAX_ATTEMPTS)
    async with standin.serve() as url:
        await providers.save_provider(db, shop.tenant, "sms", "aliyun", {"access_key_id": "LTAIcamp",
                                      "sign_name": "链卡", "template_code": "SMS_1", "endpoint": url},
                                      "s3cret-key")  # fmt: skip
        c = await _campaign(db, shop)
        await svc.send(db, shop.tenant, c, now=DAY_TIME)
        m = shop.consenting[0]
        redis = Redis.from_url(settings.redis_url)
        limiter = svc.RedisRateLimit(redis)
        now = DAY_TIME
        statuses = []
        for _ in range(cd.MAX_ATTEMPTS):
            statuses.append(await svc.deliver_one(db, shop.tenant, c, m, now=now, limiter=limiter))
            row = (await _rows(db, shop.tenant, c))[m]
            if row["status"] == "retry":
                assert row["due_at"] > now  # backed off
                now = row["due_at"]
                await svc.tick(db, shop.tenant, now)
        assert statuses == ["retry"] * (cd.MAX_ATTEMPTS - 1) + ["dead"]
        assert [d.member_id for d in await svc.dead_letters(db, shop.tenant, c)] == [m]
        with pytest.raises(NotDeadLetter):
            await svc.resend(db, shop.tenant, c, shop.consenting[1])
        await svc.resend(db, shop.tenant, c, m, now=now)
        assert (await _rows(db, shop.tenant, c))[m]["status"] == "queued"
        assert await svc.deliver_one(db, shop.tenant, c, m, now=now, limiter=limiter) == "sent"
        assert await svc.deliver_one(db, shop.tenant, c, shop.consenting[1], now=now, limiter=limiter) == "sent"
        # the provider's per-second budget: a third send in the same second waits without an attempt
        tight = svc.RedisRateLimit(redis)
        svc.RATES["aliyun"], saved = 0, svc.RATES["aliyun"]
        try:
            assert await svc.deliver_one(db, shop.tenant, c, shop.consenting[2], now=now, limiter=tight) == "retry"
        finally:
            svc.RATES["aliyun"] = saved
        assert (await _rows(db, shop.tenant, c))[shop.consenting[2]]["attempts"] == 0
        await redis.aclose()
        # receipts: the stand-in pushes them; the first delivered, the second failed
        rows = await _rows(db, shop.tenant, c)
        failed_id = rows[shop.consenting[1]]["provider_message_id"]
        body = standin.receipts(failed=frozenset({failed_id}))
        await receipts.receive(db, "aliyun", receipts.receipt_token("aliyun"), body)
    rows = await _rows(db, shop.tenant, c)
    assert (rows[m]["status"], rows[shop.consenting[1]]["status"]) == ("delivered", "failed")
    result = await svc.results(db, shop.tenant, c)
    assert (result.count("delivered"), result.count("failed"), result.count("dead")) == (1, 1, 0)


async def test_portal_inbox_unread_and_opened(db: Database, shop: Shop) -> None:
    c = await _campaign(db, shop, channel="portal", subject="会员日", template_a="{name} 会员日快乐")
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    m = shop.consenting[0]
    assert await svc.inbox(db, shop.tenant, m) == []  # queued, not delivered yet
    await svc.deliver_one(db, shop.tenant, c, m, now=DAY_TIME)
    [item] = await svc.inbox(db, shop.tenant, m)
    assert (item.subject, item.body, item.opened_at) == ("会员日", "会员0 会员日快乐", None)
    assert await svc.unread(db, shop.tenant, m) == 1
    assert await svc.open_message(db, shop.tenant, c, m)
    assert not await svc.open_message(db, shop.tenant, c, m)
    assert await svc.unread(db, shop.tenant, m) == 0
    assert (await svc.results(db, shop.tenant, c)).count("opened") == 1


async def test_plan_messages_refused_before_anything(db: Database, shop: Shop, owner_engine: Any) -> None:
    await put_on_tiny_plan(db, owner_engine, shop.tenant)  # 3 messages a month; 4 would go
    c = await _campaign(db, shop)
    with pytest.raises(PlanLimitReached):
        await svc.send(db, shop.tenant, c, now=DAY_TIME)
    camp = await svc.get_campaign(db, shop.tenant, c)
    assert (camp.status, camp.snapshot_id) == ("draft", None)
    assert await _rows(db, shop.tenant, c) == {} and await _outbox(db, shop.tenant) == []


async def test_scheduled_campaign_over_the_plan_goes_back_to_draft(db: Database, shop: Shop, owner_engine: Any) -> None:
    await put_on_tiny_plan(db, owner_engine, shop.tenant)
    at = DAY_TIME + timedelta(hours=1)
    big = await _campaign(db, shop, "太多", scheduled_at=at)
    await svc.send(db, shop.tenant, big, now=DAY_TIME)
    portal = await _campaign(db, shop, "站内", channel="portal", template_a="hi")
    assert await svc.tick(db, shop.tenant, at) == 0  # 4 SMS > 3 a month: refused, and nothing queued
    camp = await svc.get_campaign(db, shop.tenant, big)
    assert (camp.status, camp.snapshot_id) == ("draft", None)
    assert await _rows(db, shop.tenant, big) == {} and await _outbox(db, shop.tenant) == []
    assert (await svc.get_campaign(db, shop.tenant, portal)).status == "draft"  # untouched


async def test_attribution_against_the_control_group(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    big = await _shop(db, tenant_factory, member_factory, n=40, refusing=0)
    b = await kit.branch(db, big.tenant, "B1")
    c = await _campaign(db, big, channel="portal", holdout_pct=40, message_cost=5, attribution_days=7)
    await svc.send(db, big.tenant, c, now=DAY_TIME)
    for m in big.consenting:
        await svc.deliver_one(db, big.tenant, c, m, now=DAY_TIME)
    # every third member buys within the window, every fifth also after it (not counted), one refund
    for i, m in enumerate(big.consenting):
        if i % 3 == 0:
            await kit.sale(db, big.tenant, m, b, DAY_TIME + timedelta(days=2), 1000 + i * 10)
        if i % 5 == 0:
            await kit.sale(db, big.tenant, m, b, DAY_TIME + timedelta(days=9), 7777)
        if i == 1:
            await kit.sale(db, big.tenant, m, b, DAY_TIME + timedelta(days=1), 5555, status="refunded")
    camp = await svc.get_campaign(db, big.tenant, c)
    async with db.uow(big.tenant) as uow:
        assert camp.snapshot_id is not None
        held = set(await segment_queries.snapshot_member_ids(uow, camp.snapshot_id, holdout=True))
    spend = {m: 1000 + i * 10 for i, m in enumerate(big.consenting) if i % 3 == 0}
    treated = [m for m in big.consenting if m not in held]
    control = [m for m in big.consenting if m in held]
    t_sales, c_sales = sum(spend.get(m, 0) for m in treated), sum(spend.get(m, 0) for m in control)
    t_conv, c_conv = sum(m in spend for m in treated), sum(m in spend for m in control)
    from fractions import Fraction

    expected_incremental = t_sales - round(Fraction(c_sales * len(treated), len(control)))
    r = await svc.results(db, big.tenant, c)
    a = r.attribution
    assert a is not None
    assert (a.recipients.members, a.control.members) == (len(treated), len(control))
    assert (a.recipients.converted, a.control.converted) == (t_conv, c_conv)
    assert (a.recipients.sales, a.control.sales) == (t_sales, c_sales)
    assert a.uplift == Fraction(t_conv, len(treated)) - Fraction(c_conv, len(control))
    assert a.incremental_sales == expected_incremental
    assert a.message_cost == 5 * len(treated) and a.coupon_cost == 0
    assert a.roi == Fraction(expected_incremental, 5 * len(treated))


async def test_two_tenants_do_not_see_each_other(
    db: Database, shop: Shop, tenant_factory: Any, member_factory: Any
) -> None:
    other = await _shop(db, tenant_factory, member_factory, n=1, refusing=0)
    c = await _campaign(db, shop, channel="portal")
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    with pytest.raises(CampaignNotFound):
        await svc.get_campaign(db, other.tenant, c)
    with pytest.raises(CampaignNotFound):
        await svc.results(db, other.tenant, c)
    assert await _rows(db, other.tenant, c) == {}
    assert await svc.deliver_one(db, other.tenant, c, shop.consenting[0], now=DAY_TIME) == "missing"
    assert [x.id for x in await svc.list_campaigns(db, other.tenant)] == []
    assert await svc.tick(db, other.tenant, DAY_TIME) == 0
