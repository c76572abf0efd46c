"""Automations on real PostgreSQL: every trigger fires once per member and occasion (the job run
twice), the wait is honoured, consent, the weekly cap and quiet hours as for campaigns, coupon and
points actions given once, the merchant's default reminders delivered through the development log
channel, and two tenants."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.marketing import automations as auto
from lianka.tenants.marketing import campaigns as camp
from lianka.tenants.marketing.errors import AutomationNotFound, BadAutomation
from lianka.tenants.services import accounts

from . import kit

pytestmark = pytest.mark.integration
NOW = kit.NOW  # 12:00 in Shanghai, 23 November 2026
SMS_OK = {"sms": {"granted": True}}
SMS_NO = {"sms": {"granted": False}}


async def _members(db: Database, tenant: uuid.UUID, member_factory: Any, n: int, **fields: Any) -> list[uuid.UUID]:
    out = []
    for _ in range(n):
        m = await member_factory(tenant)
        await kit.profile(db, tenant, m, joined=NOW - timedelta(days=400), branch=None, name="小王", **fields)
        out.append(m)
    return out


async def _messages(db: Database, tenant: uuid.UUID, a: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT c.member_id, c.occasion, c.status, c.due_at, c.body FROM campaign_messages c "
                 "JOIN automations a ON a.tenant_id = c.tenant_id AND a.campaign_id = c.campaign_id "
                 "WHERE a.id = :a ORDER BY c.member_id, c.occasion"), {"a": a})  # fmt: skip
        return [dict(r._mapping) for r in rows]


async def _firings(db: Database, tenant: uuid.UUID, a: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT member_id, occasion, status FROM automation_firings WHERE automation_id = :a "
                 "ORDER BY member_id, occasion"), {"a": a})  # fmt: skip
        return [(r[0], r[1], r[2]) for r in rows]


def sms(name: str, trigger: str, **fields: Any) -> auto.AutomationIn:
    return auto.AutomationIn(name=name, trigger=trigger, channel="sms", template="{name}，您好", **fields)


async def test_birthday_fires_once_a_year_to_consenting_members(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    t = await tenant_factory("生日店")
    ok = await _members(db, t, member_factory, 2, birthday=date(1990, 11, 26), consent=SMS_OK)
    no = await _members(db, t, member_factory, 1, birthday=date(1990, 11, 26), consent=SMS_NO)
    later = await _members(db, t, member_factory, 1, birthday=date(1990, 12, 20), consent=SMS_OK)
    a = await auto.create(db, t, sms("生日前三天", "birthday", days=3), now=NOW)
    first = await auto.run(db, t, NOW, auto.TIME_TRIGGERS)
    assert (await auto.run(db, t, NOW, auto.TIME_TRIGGERS)).fired == 0  # twice: once
    assert await auto.run(db, t, NOW + timedelta(days=1), auto.TIME_TRIGGERS) == auto.RunResult(0, 0, 0)
    firings = await _firings(db, t, a.id)
    assert first.fired == 3 and {f[0] for f in firings} == set(ok + no) and later[0] not in {f[0] for f in firings}
    assert {f[1] for f in firings} == {"2026"} and {f[2] for f in firings} == {"done"}
    msgs = await _messages(db, t, a.id)
    assert [m["member_id"] for m in msgs] == sorted(ok)  # consent: the member who refused SMS gets nothing
    for m in ok:  # delivered by the campaigns' actor through the development log channel
        assert await camp.deliver_one(db, t, a.campaign_id, m, now=NOW, occasion="2026") == "sent"  # type: ignore[arg-type]
    assert {m["status"] for m in await _messages(db, t, a.id)} == {"sent"}
    # next year is another occasion
    assert (await auto.run(db, t, NOW + timedelta(days=365), auto.TIME_TRIGGERS)).fired == 3
    assert {m["occasion"] for m in await _messages(db, t, a.id)} == {"2026", "2027"}
    view = await auto.get(db, t, a.id)
    assert (view.stats.fired, view.stats.sent) == (6, 2)


async def test_the_wait_is_honoured(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t = await tenant_factory()
    a = await auto.create(db, t, sms("入会两天后", "joined", wait_days=2), now=NOW)
    (m,) = await _members(db, t, member_factory, 1, consent=SMS_OK)  # joins after the automation exists
    assert (await auto.run(db, t, NOW, auto.EVENT_TRIGGERS)).fired == 1
    assert await _messages(db, t, a.id) == [] and (await _firings(db, t, a.id))[0][2] == "waiting"
    assert (await auto.run(db, t, NOW + timedelta(days=1), auto.EVENT_TRIGGERS)).acted == 0
    done = await auto.run(db, t, NOW + timedelta(days=2), auto.EVENT_TRIGGERS)
    assert (done.fired, done.acted, done.messages) == (0, 1, 1)
    assert [x["member_id"] for x in await _messages(db, t, a.id)] == [m]
    assert (await auto.run(db, t, NOW + timedelta(days=3), auto.EVENT_TRIGGERS)).acted == 0


async def test_quiet_hours_and_the_weekly_cap(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t = await tenant_factory()
    ms = await _members(db, t, member_factory, 2, birthday=date(1990, 11, 24), consent=SMS_OK)
    a = await auto.create(db, t, sms("生日", "birthday", days=0), now=NOW)
    evening = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai: the 24th is tomorrow there
    await auto.run(db, t, evening + timedelta(hours=2), auto.TIME_TRIGGERS)  # 00:30 on the 24th
    msgs = await _messages(db, t, a.id)
    assert [m["member_id"] for m in msgs] == sorted(ms)
    assert {m["due_at"] for m in msgs} == {datetime(2026, 11, 24, 1, 0, tzinfo=UTC)}  # 09:00 local
    assert {m["status"] for m in msgs} == {"pending"}
    # the weekly cap counts campaigns' and automations' messages together
    await camp.set_frequency_cap(db, t, 1)
    b = await auto.create(db, t, sms("生日二", "birthday", days=0), now=NOW)
    await auto.run(db, t, evening + timedelta(hours=3), auto.TIME_TRIGGERS)
    assert await _messages(db, t, b.id) == [] and len(await _firings(db, t, b.id)) == 2  # fired, capped


async def test_coupon_and_points_are_given_once(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t = await tenant_factory()
    template = await kit.coupon_template(db, t, "WB5")
    (m,) = await _members(db, t, member_factory, 1, last_purchase_at=NOW - timedelta(days=100), consent=SMS_NO)
    a = await auto.create(
        db, t, auto.AutomationIn(name="召回", trigger="win_back", days=90, coupon_template_id=template, points=50),
        now=NOW,
    )  # fmt: skip
    for _ in range(2):
        await auto.run(db, t, NOW, auto.TIME_TRIGGERS)
    async with db.uow(t) as uow:
        n = await uow.session.scalar(text("SELECT count(*) FROM coupons WHERE member_id = :m"), {"m": m})
        pts = (await accounts.balances(uow, m, NOW)).points
    assert n == 1 and pts == 50
    view = await auto.get(db, t, a.id)
    assert (view.stats.fired, view.stats.coupons, view.stats.points, view.stats.sent) == (1, 1, 50, 0)


async def test_other_triggers_fire_once_per_occasion(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t = await tenant_factory()
    template = await kit.coupon_template(db, t, "EXP")
    await camp.set_frequency_cap(db, t, 10)
    made = {
        trig: (await auto.create(db, t, sms(trig, trig, **kw), now=NOW - timedelta(days=1))).id
        for trig, kw in {
            "coupon_expiring": {"days": 40},
            "stored_value_below": {"amount": 10_000},
            "first_purchase": {},
            "tier_up": {},
            "points_expiring": {"days": 30},
        }.items()
    }
    m1, m2 = await _members(db, t, member_factory, 2, consent=SMS_OK)
    await kit.give_coupon(db, t, template, m1)  # valid 30 days
    await kit.stored_value(db, t, m1, 5_000)  # below ¥100
    await kit.stored_value(db, t, m2, 50_000)
    await kit.points(db, t, m2, 10, expiring=True)
    async with db.uow(t) as uow:
        await uow.session.execute(text("UPDATE member_profiles SET first_purchase_at = :at WHERE member_id = :m"),
                                  {"at": NOW, "m": m2})  # fmt: skip
        await uow.session.execute(
            text("INSERT INTO tier_changes (tenant_id, member_id, old_tier, new_tier, reason, at) VALUES "
                 "(:t, :m, NULL, 'silver', 'spend', :at), (:t, :m2, 'silver', NULL, 'review', :at)"),
            {"t": t, "m": m1, "m2": m2, "at": NOW},
        )  # fmt: skip
        await uow.commit()
    assert (await auto.run(db, t, NOW)).fired == 6  # and the default points reminder
    assert (await auto.run(db, t, NOW)).fired == 0
    expect = {"coupon_expiring": m1, "stored_value_below": m1, "first_purchase": m2, "tier_up": m1,
              "points_expiring": m2}  # fmt: skip
    for trig, a in made.items():
        assert [f[0] for f in await _firings(db, t, a)] == [expect[trig]], trig
        assert len(await _messages(db, t, a)) == 1, trig


async def test_default_reminders_are_delivered_through_the_log_channel(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    t = await tenant_factory()
    (m,) = await _members(db, t, member_factory, 1, birthday=date(1991, 11, 23), consent=SMS_OK)
    await kit.points(db, t, m, 30, expiring=True)
    assert (await auto.run(db, t, NOW - timedelta(days=60), auto.TIME_TRIGGERS)).fired == 0  # defaults made
    views = {v.automation.code: v for v in await auto.list_all(db, t)}
    assert {v.automation.name for v in views.values()} == {"生日祝福", "积分到期提醒", "付费会员到期提醒"}
    # the merchant sends the points reminder by SMS (the development log channel); the greeting stays in
    # the portal inbox
    v = views["points_expiry"]
    await auto.update(db, t, v.automation.id, auto.AutomationIn(**{**v.form().__dict__, "channel": "sms"}))
    assert (await auto.run(db, t, NOW, auto.TIME_TRIGGERS)).fired == 2
    assert (await auto.run(db, t, NOW, auto.TIME_TRIGGERS)).fired == 0
    greeting = await _messages(db, t, views["birthday"].automation.id)
    assert [(g["occasion"], g["status"]) for g in greeting] == [("2026", "queued")]
    c = views["birthday"].automation.campaign_id
    assert await camp.deliver_one(db, t, c, m, now=NOW, occasion="2026") == "delivered"  # type: ignore[arg-type]
    (item,) = await camp.inbox(db, t, m)
    assert item.subject == "生日快乐" and item.body.startswith("小王，") and item.body.endswith("祝您生日快乐！")
    assert await camp.unread(db, t, m) == 1
    (reminder,) = await _messages(db, t, v.automation.id)
    occasion = reminder["occasion"]
    c = v.automation.campaign_id
    assert await camp.deliver_one(db, t, c, m, now=NOW, occasion=occasion) == "sent"  # type: ignore[arg-type]
    (reminder,) = await _messages(db, t, v.automation.id)
    assert reminder["status"] == "sent" and "30 积分" in reminder["body"] and occasion in reminder["body"]


async def test_two_tenants_and_field_errors(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    a_t, b_t = await tenant_factory("甲"), await tenant_factory("乙")
    (ma,) = await _members(db, a_t, member_factory, 1, birthday=date(1990, 11, 23), consent=SMS_OK)
    a = await auto.create(db, a_t, sms("生日", "birthday"), now=NOW)
    b = await auto.create(db, b_t, sms("生日", "birthday"), now=NOW)
    assert (await auto.run(db, b_t, NOW, auto.TIME_TRIGGERS)).fired == 0
    assert (await auto.run(db, a_t, NOW, auto.TIME_TRIGGERS)).fired == 2  # A's own and its default greeting
    assert [f[0] for f in await _firings(db, a_t, a.id)] == [ma] and await _firings(db, b_t, b.id) == []
    with pytest.raises(AutomationNotFound):
        await auto.get(db, b_t, a.id)
    with pytest.raises(BadAutomation) as e:
        await auto.create(db, a_t, auto.AutomationIn(name="空", trigger="birthday"))
    assert e.value.extra["field"] == "channel"
    with pytest.raises(BadAutomation) as e:
        await auto.create(db, a_t, sms("坏", "no_such"))
    assert e.value.extra["field"] == "trigger"


async def test_paid_membership_reminder_goes_through_the_engine_once_per_term(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    from lianka.billing.membership import jobs as membership_jobs
    from lianka.platform.jobs import HANDLERS

    assert membership_jobs.membership_expiry_reminder is not None

    t = await tenant_factory()
    (m,) = await _members(db, t, member_factory, 1)
    term = uuid.uuid4()
    for _ in range(2):  # the outbox redelivers: one reminder
        async with db.uow(t) as uow:
            await HANDLERS["membership_expiry_reminder"](
                uow, member_id=str(m), term_id=str(term), product="vip", ends_at=NOW.isoformat()
            )
            await uow.commit()
    views = {v.automation.code: v for v in await auto.list_all(db, t)}
    a = views["membership_expiry"].automation
    assert await _firings(db, t, a.id) == [(m, f"term:{term}", "done")]
    (msg,) = await _messages(db, t, a.id)
    assert msg["status"] == "queued" and msg["member_id"] == m  # the campaigns' actor delivers it


async def test_tier_at_risk_fires_before_the_review_once(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    from lianka.tenants.domain.programme import Programme, Tier
    from lianka.tenants.services.programme import set_programme

    t = await tenant_factory()
    programme = Programme(tiers=[Tier(code="regular", name="普通", rank=0),
                                 Tier(code="gold", name="金卡", rank=1, threshold=100_000)])  # fmt: skip
    async with db.uow(t) as uow:
        await set_programme(uow, programme, effective_from=NOW - timedelta(days=800))
        await uow.commit()
    soon, later = await _members(db, t, member_factory, 2, tier_code="gold", consent=SMS_OK)
    async with db.uow(t) as uow:  # reviews every 12 months (372 days): in 12 days, and in 200 days
        await uow.session.execute(text("UPDATE member_profiles SET tier_since = :at WHERE member_id = :m"),
                                  {"at": NOW - timedelta(days=360), "m": soon})  # fmt: skip
        await uow.session.execute(text("UPDATE member_profiles SET tier_since = :at WHERE member_id = :m"),
                                  {"at": NOW - timedelta(days=172), "m": later})  # fmt: skip
        await uow.commit()
    a = await auto.create(db, t, sms("保级提醒", "tier_at_risk", days=30), now=NOW)
    assert (await auto.run(db, t, NOW, auto.TIME_TRIGGERS)).fired == 1
    assert (await auto.run(db, t, NOW + timedelta(days=1), auto.TIME_TRIGGERS)).fired == 0
    (firing,) = await _firings(db, t, a.id)
    assert firing[0] == soon and firing[1].startswith("review:2026-12-")
    assert [m["member_id"] for m in await _messages(db, t, a.id)] == [soon]
