"""The earning-rules engine on real PostgreSQL: filters, caps that hold under concurrency,
exactly-once awards, coupons with the points, birthdays with coupons."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind, Tier
from lianka.tenants.services import accounts, maintenance, rules
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # Monday, 12:00 in Shanghai
TIERS = [Tier(code="regular", name="普通", rank=0), Tier(code="gold", name="金卡", rank=1, threshold=100_000)]


def custom(code: str, **kw: object) -> EarningRule:
    return EarningRule(code=code, kind=RuleKind.CUSTOM, event=code, points=10, **kw)  # type: ignore[arg-type]


async def _programme(db: Database, tenant: uuid.UUID, *rule_list: EarningRule) -> Programme:
    p = Programme(tiers=TIERS, rules=list(rule_list))
    async with db.uow(tenant) as uow:
        await set_programme(uow, p, effective_from=NOW - timedelta(days=30))
        await uow.commit()
    return p


async def _template(db: Database, tenant: uuid.UUID, code: str, **kw: Any) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        t = await coupon_svc.create_template(
            uow,
            coupon_svc.TemplateSpec(code=code, name=code, kind=CouponKind.FIXED, amount_off=1_000, valid_days=30, **kw),
        )
        await uow.commit()
        return t.id


async def _award(
    db: Database,
    tenant: uuid.UUID,
    p: Programme,
    rule: EarningRule,
    member: uuid.UUID,
    key: str,
    at: datetime = NOW,
    **kw: object,
) -> rules.Award:
    async with db.uow(tenant) as uow:
        out = await rules.award(uow, p, rule, member, key=key, at=at, **kw)  # type: ignore[arg-type]
        await uow.commit()
        return out


async def _points(db: Database, tenant: uuid.UUID, member: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        return (await accounts.balances(uow, member, NOW + timedelta(days=1))).points


async def test_filters_decide_before_anything_is_written(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    tuesdays = custom("tue", weekdays=[1])
    sh01 = custom("sh01", branches=["SH01"])
    gold = custom("gold", tiers=["gold"])
    autumn = custom("autumn", starts=date(2026, 9, 1), ends=date(2026, 11, 22))
    p = await _programme(db, t, tuesdays, sh01, gold, autumn)
    assert (await _award(db, t, p, tuesdays, m, "k1")).reason == "not on this weekday"
    assert (await _award(db, t, p, tuesdays, m, "k1", at=NOW + timedelta(days=1))).points == 10
    assert (await _award(db, t, p, sh01, m, "k2", branch_code="SH02")).status == "skipped"
    assert (await _award(db, t, p, sh01, m, "k2", branch_code="SH01")).status == "awarded"
    assert (await _award(db, t, p, gold, m, "k3")).reason == "not for this tier"  # regular by default
    assert (await _award(db, t, p, autumn, m, "k4")).reason == "ended"
    # the window is in the merchant's days: 16:30 UTC on the 22nd is already the 23rd in Shanghai
    assert (await _award(db, t, p, autumn, m, "k4", at=datetime(2026, 11, 22, 16, 30, tzinfo=UTC))).reason == "ended"
    assert (await _award(db, t, p, autumn, m, "k4", at=datetime(2026, 11, 22, 15, 30, tzinfo=UTC))).points == 10
    assert await _points(db, t, m) == 30
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM rule_awards")) == 3


async def test_an_award_is_given_once_per_key(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m, other = await member_factory(t), await member_factory(t)
    r = custom("share")
    p = await _programme(db, t, r)
    first = await _award(db, t, p, r, m, "evt-1")
    again = await _award(db, t, p, r, m, "evt-1")
    assert (first.status, again.status) == ("awarded", "replayed")
    assert again.entry_id == first.entry_id
    assert await _points(db, t, m) == 10
    with pytest.raises(Exception, match="another member"):
        await _award(db, t, p, r, other, "evt-1")


async def test_caps_per_day_and_per_member_hold_under_concurrency(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    r = custom("share", cap_per_day=35, cap_per_member=60)
    p = await _programme(db, t, r)
    results = await asyncio.gather(*[_award(db, t, p, r, m, f"day1-{i}") for i in range(12)])
    assert sorted(a.points for a in results if a.status == "awarded") == [5, 10, 10, 10]  # the last one cut to fit
    assert sum(a.reason == "cap reached" for a in results) == 8
    assert await _points(db, t, m) == 35
    next_day = await asyncio.gather(
        *[_award(db, t, p, r, m, f"day2-{i}", at=NOW + timedelta(days=1)) for i in range(6)]
    )
    assert sum(a.points for a in next_day) == 25  # 60 per member in all
    assert await _points(db, t, m) == 60


async def test_a_total_cap_holds_across_members_under_concurrency(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    people = [await member_factory(t) for _ in range(8)]
    r = custom("launch", cap_total=55)
    p = await _programme(db, t, r)
    results = await asyncio.gather(*[_award(db, t, p, r, m, f"launch-{i}") for i, m in enumerate(people * 2)])
    assert sum(a.points for a in results) == 55
    assert sum(a.status == "awarded" for a in results) == 6
    async with db.uow(t) as uow:
        row = (await uow.session.execute(text("SELECT points, awards FROM rule_counters"))).one()
        ledger_total = await uow.session.scalar(text("SELECT sum(points) FROM rule_awards WHERE rule_code = 'launch'"))
    assert (row.points, row.awards, ledger_total) == (55, 6, 55)


async def test_a_rule_can_give_a_coupon_and_reports_one_it_cannot(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    await _template(db, t, "bday-cake", stock_total=1)
    r = custom("cake", coupon_template="bday-cake")
    coupon_only = EarningRule(code="gift", kind=RuleKind.CUSTOM, event="gift", coupon_template="bday-cake")
    p = await _programme(db, t, r, coupon_only)
    a = await _award(db, t, p, r, m, "c1")
    assert a.points == 10
    assert a.coupon_code is not None
    b = await _award(db, t, p, r, m, "c2")  # stock gone: the points still come, the coupon is reported missing
    assert (b.status, b.points, b.coupon_code) == ("awarded", 10, None)
    assert "No coupons" in b.reason or "left" in b.reason
    c = await _award(db, t, p, coupon_only, m, "c3")  # nothing at all to give: skipped, nothing recorded
    assert c.status == "skipped"
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM coupons")) == 1
        assert await uow.session.scalar(text("SELECT count(*) FROM rule_awards")) == 2


async def test_birthday_rules_give_points_and_coupons_once_a_year(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    await _template(db, t, "bday")
    await _programme(
        db,
        t,
        EarningRule(code="bday", kind=RuleKind.BIRTHDAY, points=88, coupon_template="bday"),
        EarningRule(code="bday-gold", kind=RuleKind.BIRTHDAY, points=100, tiers=["gold"]),
    )
    async with db.uow(t) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, birthday) VALUES (:t, :m, '1990-11-23')"),
            {"t": t, "m": m},
        )
        await uow.commit()
    assert await maintenance.birthday_rewards(db, t, NOW) == 1
    assert await maintenance.birthday_rewards(db, t, NOW + timedelta(hours=3)) == 0
    assert await _points(db, t, m) == 88
    async with db.uow(t) as uow:
        assert len(await coupon_svc.member_coupons(uow, m)) == 1
    assert await maintenance.birthday_rewards(db, t, NOW + timedelta(days=365)) == 1  # next year again


async def test_an_upgrade_at_the_tier_review_issues_the_upgrade_coupon(
    db: Database, tenant_factory, member_factory
) -> None:
    from lianka.tenants.domain.programme import TierPolicy
    from lianka.tenants.pos import sales as pos
    from lianka.tenants.pos import schemas as pos_schemas

    t = await tenant_factory()
    m = await member_factory(t)
    async with db.uow(t) as uow:
        branch = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'SH01', 'SH01') RETURNING id"), {"t": t}
        )
        await uow.commit()
    await _template(db, t, "gold-tea")
    upgrade = EarningRule(code="gold", kind=RuleKind.TIER_UPGRADE, points=500, coupon_template="gold-tea")
    strict = Programme(
        tiers=[TIERS[0], Tier(code="gold", name="金卡", rank=1, threshold=1_000_000)],
        tier_policy=TierPolicy(review_every_months=1),
        rules=[upgrade],
    )
    async with db.uow(t) as uow:
        await set_programme(uow, strict, effective_from=NOW - timedelta(days=30))
        await set_programme(
            uow,
            Programme(tiers=TIERS, tier_policy=TierPolicy(review_every_months=1), rules=[upgrade]),
            effective_from=NOW + timedelta(days=1),
        )
        await uow.commit()
    sale, _ = await pos.sale(db, t, pos_schemas.Basket(amount=200_000, member_id=m, business_time=NOW), "s-1", branch)
    assert sale.tier == "regular"  # ¥2000 is not gold under the strict version in force then
    assert await maintenance.review_tiers(db, t, NOW + timedelta(days=40)) == 1  # gold at ¥1000 now
    assert await _points(db, t, m) == 2_000 + 500
    async with db.uow(t) as uow:
        assert [t.code for _, t in await coupon_svc.member_coupons(uow, m)] == ["gold-tea"]
        assert (
            await uow.session.scalar(text("SELECT tier_code FROM member_profiles WHERE member_id = :m"), {"m": m})
            == "gold"
        )
