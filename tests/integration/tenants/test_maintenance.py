"""Daily programme jobs on real PostgreSQL: tier retention review, birthdays, expiry reminders, coupons."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import EarningRule, ExpiryPolicy, PointsConfig, Programme, RuleKind, Tier
from lianka.tenants.services import accounts, maintenance
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
PROGRAMME = Programme(
    points=PointsConfig(expiry=ExpiryPolicy(months=1, remind_days_before=10)),
    tiers=[
        Tier(code="regular", name="普通", rank=0),
        Tier(code="silver", name="银卡", rank=1, threshold=1_000),
        Tier(code="gold", name="金卡", rank=2, threshold=5_000),
    ],
    rules=[EarningRule(code="bday", kind=RuleKind.BIRTHDAY, points=88)],
)


async def _setup(db: Database, tenant: uuid.UUID) -> None:
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=NOW - timedelta(days=800))
        await uow.commit()


async def _profile(db: Database, tenant: uuid.UUID, member: uuid.UUID, **values: object) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    async with db.uow(tenant) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id) VALUES (:t, :m) ON CONFLICT DO NOTHING"),
            {"t": tenant, "m": member},
        )
        await uow.session.execute(
            text(f"UPDATE member_profiles SET {sets} WHERE member_id = :m"), {"m": member, **values}
        )
        await uow.commit()


async def test_tier_review_downgrades_one_step_once_per_interval(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    await _setup(db, t)
    lapsed, floored = await member_factory(t), await member_factory(t)
    for m in (lapsed, floored):
        await _profile(db, t, m, tier_code="gold", tier_since=NOW - timedelta(days=400))
    await _profile(db, t, floored, tier_floor="gold", tier_floor_until=date(2027, 1, 1))
    assert await maintenance.review_tiers(db, t, NOW) == 1
    assert await maintenance.review_tiers(db, t, NOW) == 0  # reviewed: not again until the next interval
    async with db.uow(t) as uow:
        rows = (await uow.session.execute(text("SELECT member_id, tier_code FROM member_profiles"))).all()
        tiers_now: dict[uuid.UUID, str] = dict(rows)
        reasons = (await uow.session.execute(text("SELECT reason FROM tier_changes"))).scalars().all()
    assert tiers_now == {lapsed: "silver", floored: "gold"}
    assert reasons == ["downgraded one step at review"]


async def test_birthday_points_once_a_year(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    await _setup(db, t)
    m, other = await member_factory(t), await member_factory(t)
    await _profile(db, t, m, birthday=date(1990, 11, 23))
    await _profile(db, t, other, birthday=date(1990, 11, 24))
    assert await maintenance.birthday_rewards(db, t, NOW) == 1
    assert await maintenance.birthday_rewards(db, t, NOW + timedelta(hours=2)) == 0
    async with db.uow(t) as uow:
        assert (await accounts.balances(uow, m, NOW)).points == 88
        assert (await accounts.balances(uow, other, NOW)).points == 0


async def test_expiry_reminders_are_queued_once(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    await _setup(db, t)
    m = await member_factory(t)
    async with db.uow(t) as uow:
        await accounts.award_points(
            uow, m, 50, programme=PROGRAMME, reason="x", key="e1", business_time=NOW - timedelta(days=25)
        )
        await accounts.award_points(uow, m, 70, programme=PROGRAMME, reason="x", key="e2", business_time=NOW)
        await uow.commit()
    assert await maintenance.expiry_reminders(db, t, NOW) == 1  # only the lot expiring within 10 days
    assert await maintenance.expiry_reminders(db, t, NOW) == 0
    async with db.uow(t) as uow:
        payloads = (
            (await uow.session.execute(text("SELECT payload FROM outbox WHERE actor = 'points_expiry_reminder'")))
            .scalars()
            .all()
        )
    assert [p["points"] for p in payloads] == [50]


async def test_coupons_expire(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    async with db.uow(t) as uow:
        tpl = await coupon_svc.create_template(
            uow, coupon_svc.TemplateSpec(code="c", name="c", kind=CouponKind.FIXED, amount_off=100, valid_days=3)
        )
        await coupon_svc.issue(uow, tpl.id, m, now=NOW)
        await uow.commit()
    assert await maintenance.expire_coupons(db, t, NOW + timedelta(days=2)) == 0
    assert await maintenance.expire_coupons(db, t, NOW + timedelta(days=4)) == 1


async def test_every_tier_change_is_announced_to_webhooks(db: Database, tenant_factory, member_factory) -> None:
    """member.tier_changed for the nightly review and a staff grant, in their transactions, with the
    previous tier and the cause (a sale's own is in tests/api/test_webhooks.py); a grant that moves
    nobody (a floor at or below the tier held) announces nothing."""
    from lianka.platform import audit
    from lianka.platform.webhooks import sender
    from lianka.platform.webhooks import services as hooks
    from lianka.tenants.services import crm

    t = await tenant_factory()
    await _setup(db, t)
    lapsed, granted, floored = await member_factory(t), await member_factory(t), await member_factory(t)
    await _profile(db, t, lapsed, tier_code="gold", tier_since=NOW - timedelta(days=400))
    await _profile(db, t, floored, tier_code="gold", tier_since=NOW, tier_reviewed_at=NOW)
    await hooks.subscribe(
        db, t, "http://127.0.0.1:9/hooks", ["member.tier_changed"], policy=sender.Policy(production=False)
    )
    assert await maintenance.review_tiers(db, t, NOW) == 1
    who = audit.system("test")
    await crm.grant_tier(db, t, granted, "silver", until=None, reason="invited", actor="staff:x", who=who)
    await crm.grant_tier(db, t, floored, "silver", until=None, reason="a floor only", actor="staff:x", who=who)
    async with db.uow(t) as uow:
        rows = (await uow.session.execute(text("SELECT type, data FROM webhook_events ORDER BY created_at"))).all()
    assert [(r.type, r.data) for r in rows] == [
        (
            "member.tier_changed",
            {"member_id": str(lapsed), "tier": "silver", "previous_tier": "gold", "cause": "review"},
        ),
        (
            "member.tier_changed",
            {"member_id": str(granted), "tier": "silver", "previous_tier": "regular", "cause": "staff"},
        ),
    ]
    other = await tenant_factory()  # another merchant's subscriptions see none of it
    async with db.uow(other) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM webhook_events")) == 0
