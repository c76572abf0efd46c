"""The dashboard's member panels against independent figures, two merchants: the nightly snapshot's
lifecycle stages equal ``lifecycle.stage`` applied member by member in Python and its RFM grid equals
the scores' rows counted by hand; the period's tier movements, top rewards and campaigns are the
period's rows only (the day before and after left out); another merchant's members, movements and redemptions never show; a branch manager gets none of these
merchant-wide panels."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain import lifecycle
from lianka.tenants.marketing.services import rfm_scores
from lianka.tenants.reports import dashboard, rollups
from lianka.tenants.reports.domain import PeriodKind
from tests.integration.reports.test_buyer_rollups import sell

pytestmark = pytest.mark.integration
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 4, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = date(2026, 11, 20)
NOVEMBER = dashboard.Request(PeriodKind.CUSTOM, date(2026, 11, 1), date(2026, 11, 30))
#: (days since joining, days since the last purchase or None): every stage and its edges
SHAPES = [
    (5, None),
    (10, 3),
    (30, None),
    (31, None),
    (200, 10),
    (200, 90),
    (200, 91),
    (200, 180),
    (200, 181),
    (400, None),
]


async def _members(db: Database, tenant: uuid.UUID, member_factory: Any) -> list[uuid.UUID]:
    """A member per shape; the first six buy 1–3 times at the till first (so the RFM scores differ),
    then each member's join and last purchase are set to its shape."""
    made = [await member_factory(tenant) for _ in SHAPES]
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'HQ', 'HQ') RETURNING id"), {"t": tenant}
        )
        await uow.commit()
    for i, m in enumerate(made[:6]):
        for k in range(i % 3 + 1):
            await sell(db, tenant, branch, NOW - timedelta(days=10 * i + k + 1), m)
    for i, (m, (joined_ago, bought_ago)) in enumerate(zip(made, SHAPES, strict=True)):
        async with db.uow(tenant) as uow:
            await uow.session.execute(
                text("UPDATE memberships SET joined_at = :j WHERE member_id = :m"),
                {"j": NOW - timedelta(days=joined_ago), "m": m},
            )
            await uow.session.execute(
                text(
                    "INSERT INTO member_profiles (tenant_id, member_id, name, last_purchase_at) VALUES (:t, :m, :n, :l)"
                    " ON CONFLICT (tenant_id, member_id) DO UPDATE SET last_purchase_at = excluded.last_purchase_at"
                ),
                {
                    "t": tenant,
                    "m": m,
                    "n": f"m{i}",
                    "l": None if bought_ago is None else NOW - timedelta(days=bought_ago),
                },
            )
            await uow.commit()
    return made


async def _expected_stages(db: Database, tenant: uuid.UUID) -> Counter[str]:
    async with db.uow(tenant) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT ms.joined_at, p.last_purchase_at FROM memberships ms"
                    " LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id"
                )
            )
        ).all()
    return Counter(
        lifecycle.stage(r.joined_at.date(), r.last_purchase_at.date() if r.last_purchase_at else None, TODAY).value
        for r in rows
    )


async def _rewards(db: Database, tenant: uuid.UUID, members: list[uuid.UUID]) -> None:
    """Two rewards; redemptions inside November, one the day before it and one cancelled."""
    async with db.uow(tenant) as uow:
        ids = {}
        for code, name in (("CUP", "马克杯"), ("BAG", "帆布袋")):
            ids[code] = await uow.session.scalar(
                text(
                    "INSERT INTO rewards (tenant_id, code, name, kind, points_cost) VALUES (:t, :c, :n, 'gift', 100)"
                    " RETURNING id"
                ),
                {"t": tenant, "c": code, "n": name},
            )
        plan = [("CUP", "2026-11-02T02:00:00+00:00", "delivered")] * 3
        plan += [("BAG", "2026-11-10T02:00:00+00:00", "awaiting_pickup")]
        plan += [("BAG", "2026-10-31T15:00:00+00:00", "delivered")]  # 10-31 23:00 in Shanghai: October
        plan += [("BAG", "2026-11-11T02:00:00+00:00", "cancelled")]
        for i, (code, at, status) in enumerate(plan):
            await uow.session.execute(
                text(
                    "INSERT INTO reward_redemptions (tenant_id, reward_id, member_id, points, entry_id, status,"
                    " channel, created_at) VALUES (:t, :r, :m, 100, gen_random_uuid(), :s, 'portal', :at)"
                ),
                {
                    "t": tenant,
                    "r": ids[code],
                    "m": members[i % len(members)],
                    "s": status,
                    "at": datetime.fromisoformat(at),
                },
            )
        await uow.commit()


async def _tier_changes(db: Database, tenant: uuid.UUID, members: list[uuid.UUID]) -> None:
    plan = [(None, "silver", "2026-11-03"), (None, "silver", "2026-11-04"), ("silver", "gold", "2026-11-05"),
            ("gold", "silver", "2026-11-29"), ("silver", "gold", "2026-10-30"), ("gold", "gold", "2026-11-06")]  # fmt: skip
    async with db.uow(tenant) as uow:
        for i, (old, new, day) in enumerate(plan):
            await uow.session.execute(
                text(
                    "INSERT INTO tier_changes (tenant_id, member_id, old_tier, new_tier, reason, at)"
                    " VALUES (:t, :m, :o, :n, 'test', :at)"
                ),
                {
                    "t": tenant,
                    "m": members[i],
                    "o": old,
                    "n": new,
                    "at": datetime.fromisoformat(f"{day}T04:00:00+00:00"),
                },
            )
        await uow.commit()


async def test_member_panels_equal_independent_counts_and_do_not_leak(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    shop = await tenant_factory("面板", timezone="Asia/Shanghai")
    other = await tenant_factory("别家", timezone="Asia/Shanghai")
    mine = await _members(db, shop, member_factory)
    theirs = await _members(db, other, member_factory)
    await _rewards(db, shop, mine)
    await _tier_changes(db, shop, mine)
    await _tier_changes(db, other, theirs)
    async with db.uow(shop) as uow:  # campaigns: one started in November, one in October, an automation's
        for name, status, started in (
            ("双十一", "sent", "2026-11-11"),
            ("国庆", "sent", "2026-10-01"),
            ("生日", "automation", "2026-11-12"),
        ):
            await uow.session.execute(
                text(
                    "INSERT INTO campaigns (tenant_id, name, channel, template_a, status, started_at, recipients)"
                    " VALUES (:t, :n, 'sms', 'hi', :s, :at, 42)"
                ),
                {"t": shop, "n": name, "s": status, "at": datetime.fromisoformat(f"{started}T04:00:00+00:00")},
            )
        await uow.commit()

    await rollups.refresh(db, shop)
    before = await dashboard.dashboard(db, shop, None, NOVEMBER, now=NOW)
    # growth: the members who joined in November (local days), day by day, from the rollups
    joined = Counter((NOW - timedelta(days=j)).astimezone(SHANGHAI).date() for j, _ in SHAPES)
    assert {x.day: x.new_members for x in before.daily if x.new_members} == {
        day: n for day, n in joined.items() if day >= date(2026, 11, 1)
    }
    assert sum(x.new_members for x in before.daily) == before.kpis.new_members == 2
    assert before.members is None  # not counted yet: the panel says it comes tonight
    await rfm_scores(db, shop, NOW)
    d = await dashboard.dashboard(db, shop, None, NOVEMBER, now=NOW)
    assert d.members is not None and d.members.computed_at == NOW
    expected = await _expected_stages(db, shop)
    assert d.members.total == len(SHAPES) == sum(expected.values())
    assert d.members.lifecycle == {s.value: expected.get(s.value, 0) for s in lifecycle.Stage}
    assert all(d.members.lifecycle[s.value] > 0 for s in lifecycle.Stage)  # the shapes reach every stage
    async with db.uow(shop) as uow:
        scores = Counter(
            (r.recency, r.frequency)
            for r in await uow.session.execute(text("SELECT recency, frequency FROM member_rfm"))
        )
    assert {(r, f): n for r, f, n in d.members.rfm} == dict(scores)
    assert sum(scores.values()) == 6 and len(scores) > 1  # six buyers, not all in one cell

    # the period's rows only: October's redemption and tier change, the cancelled one and a no-change left out
    assert d.tier_moves == [("", "silver", 2), ("gold", "silver", 1), ("silver", "gold", 1)]
    assert [(r.code, r.redemptions, r.points) for r in d.top_rewards or []] == [("CUP", 3, 300), ("BAG", 1, 100)]
    assert [(c.name, c.recipients, c.status) for c in d.campaigns or []] == [("双十一", 42, "sent")]

    # the other merchant: its own tier movements, no snapshot, no rewards
    theirs_d = await dashboard.dashboard(db, other, None, NOVEMBER, now=NOW)
    assert theirs_d.members is None and theirs_d.top_rewards == []
    assert theirs_d.tier_moves == d.tier_moves  # the same plan, its own rows (not twice as many)

    # a branch manager sees none of the merchant-wide panels
    async with db.uow(shop) as uow:
        branch = await uow.session.scalar(text("SELECT id FROM branches WHERE code = 'HQ'"))
    limited = await dashboard.dashboard(db, shop, frozenset({branch}), NOVEMBER, now=NOW)
    assert (limited.members, limited.tier_moves, limited.top_rewards, limited.campaigns) == (None, None, None, None)
