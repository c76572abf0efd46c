"""The buyer rollups and the kept tier counts (decision 0055) against independent computations from
the raw rows: a member's first purchase of the month arriving late (an offline sale dated earlier, so
the later days of the month change), a member buying at two branches (once merchant-wide, once at
each), a sale whose month differs between Asia/Shanghai and UTC, two merchants (no leak); the
dashboard's active members / repeat rate for month-aligned periods (summed) equal to the sales read
and to Python; and the tier distribution after tier changes, before and after a tick and a rebuild."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.pos import schemas
from lianka.tenants.reports import dashboard as dash
from lianka.tenants.reports import dashboard_queries as dq
from lianka.tenants.reports import queries as q
from lianka.tenants.reports import rollups
from lianka.tenants.reports.domain import Period, PeriodKind

pytestmark = pytest.mark.integration
#: 2026-10-31 17:00 UTC: November 1st 01:00 in Shanghai, still October in UTC
EDGE = datetime(2026, 10, 31, 17, tzinfo=UTC)


async def _chain(db: Database, tenant_factory: Any, tz: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    tenant = await tenant_factory("买家连锁", timezone=tz)
    async with db.uow(tenant) as uow:
        a, b = [
            await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
            for code in ("A", "B")
        ]
        await uow.commit()
    return tenant, a, b


async def sell(db: Database, tenant: uuid.UUID, branch: uuid.UUID, at: datetime, member: uuid.UUID | None) -> None:
    basket = schemas.Basket(amount=1_000, business_time=at, member_id=member)
    await pos_sales.sale(db, tenant, basket, uuid.uuid4().hex, branch)


async def shop(
    db: Database, tenant_factory: Any, member_factory: Any, tz: str
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """m1 buys at A then at B; m2 twice at A on one day; m3 once at the month edge; m4 late in November
    and once in October; a walk-in."""
    tenant, a, b = await _chain(db, tenant_factory, tz)
    m1, m2, m3, m4 = [await member_factory(tenant) for _ in range(4)]
    await sell(db, tenant, a, datetime(2026, 11, 3, 2, tzinfo=UTC), m1)
    await sell(db, tenant, b, datetime(2026, 11, 10, 2, tzinfo=UTC), m1)
    await sell(db, tenant, a, datetime(2026, 11, 5, 2, tzinfo=UTC), m2)
    await sell(db, tenant, a, datetime(2026, 11, 5, 6, tzinfo=UTC), m2)
    await sell(db, tenant, b, EDGE, m3)
    await sell(db, tenant, b, datetime(2026, 11, 20, 2, tzinfo=UTC), m4)
    await sell(db, tenant, a, datetime(2026, 10, 12, 2, tzinfo=UTC), m4)
    await sell(db, tenant, a, datetime(2026, 11, 3, 3, tzinfo=UTC), None)
    return tenant, a, b


async def member_sales(db: Database, tenant: uuid.UUID) -> list[Any]:
    async with db.uow(tenant) as uow:
        return list(
            (await uow.session.execute(text("SELECT * FROM sales WHERE member_id IS NOT NULL"))).mappings().all()
        )


async def expected_rows(db: Database, tenant: uuid.UUID, tz: str) -> dict[tuple[date, uuid.UUID], tuple[int, int]]:
    """Per (day, branch | nil), firsts and seconds of the month, ranked in Python."""
    zone = ZoneInfo(tz)
    ranks: dict[tuple[Any, ...], int] = defaultdict(int)
    out: dict[tuple[date, uuid.UUID], list[int]] = defaultdict(lambda: [0, 0])
    for s in sorted(await member_sales(db, tenant), key=lambda s: (s["business_time"], s["id"])):
        day = s["business_time"].astimezone(zone).date()
        month = (day.year, day.month)
        for where, key in (
            (s["branch_id"], (s["member_id"], s["branch_id"], month)),
            (q.NO_BRANCH, (s["member_id"], month)),
        ):
            ranks[key] += 1
            if ranks[key] <= 2:
                out[(day, where)][ranks[key] - 1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


async def stored_rows(db: Database, tenant: uuid.UUID) -> dict[tuple[date, uuid.UUID], tuple[int, int]]:
    async with db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT * FROM report_buyers"))).mappings().all()
    assert all(r["tenant_id"] == tenant for r in rows)
    return {
        (r["day"], r["branch_id"]): (int(r["firsts"]), int(r["seconds"])) for r in rows if r["firsts"] or r["seconds"]
    }


async def independent(
    db: Database, tenant: uuid.UUID, tz: str, period: Period, branch: uuid.UUID | None
) -> tuple[int, int, dict[uuid.UUID, int]]:
    """Active members, those who bought twice, and buyers per branch, in Python from the sales."""
    zone = ZoneInfo(tz)
    per_member: dict[uuid.UUID, int] = defaultdict(int)
    per_branch: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for s in await member_sales(db, tenant):
        if period.first <= s["business_time"].astimezone(zone).date() <= period.last:
            per_branch[s["branch_id"]].add(s["member_id"])
            if branch is None or s["branch_id"] == branch:
                per_member[s["member_id"]] += 1
    mine = {b: len(m) for b, m in per_branch.items() if branch is None or b == branch}
    return len(per_member), sum(1 for n in per_member.values() if n >= 2), mine


async def check(
    db: Database, tenant: uuid.UUID, tz: str, ask: dash.Request, now: datetime, summed: bool = True
) -> dash.Dashboard:
    """The dashboard's buyers (summed from the rollups when ``summed``) equal the Python count — and the
    sums of the rollups equal the sales read."""
    board = await dash.dashboard(db, tenant, None, ask, now=now)
    branches = None if ask.branch is None else frozenset({ask.branch})
    assert dash.summable(board.period, board.previous, branches) is summed
    for period, kpis in ((board.period, board.kpis), (board.previous, board.previous_kpis)):
        active, repeat, per_branch = await independent(db, tenant, tz, period, ask.branch)
        assert kpis.active_members == active, (period, ask.branch)
        assert kpis.repeat_rate == (None if active == 0 else Decimal(repeat) / active)
        if period == board.period:
            assert {r.branch_id: r.members for r in board.branches if r.members} == per_branch
    # the sales read (the path for periods not month-aligned) gives the same
    zone = ZoneInfo(tz)
    scope = dq.Scope(board.period.first, board.period.last, None if ask.branch is None else frozenset({ask.branch}))
    before = dq.Scope(board.previous.first, board.previous.last, scope.branches)
    async with db.uow(tenant) as uow:
        read = await dq.buyers(
            uow,
            scope,
            (dash._utc(board.period.first, zone), dash._utc(board.period.last + timedelta(days=1), zone)),
            (dash._utc(board.previous.first, zone), dash._utc(board.previous.last + timedelta(days=1), zone)),
        )
        if summed:
            assert await dq.summed_buyers(uow, scope, before) == read
    return board


async def test_buyer_rows_and_the_dashboard_equal_independent_counts_late_sale_two_branches_two_merchants(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tz = "Asia/Shanghai"
    tenant, a, b = await shop(db, tenant_factory, member_factory, tz)
    other, oa, _ = await shop(db, tenant_factory, member_factory, "UTC")
    for t in (tenant, other):
        await rollups.refresh(db, t)
    assert await stored_rows(db, tenant) == await expected_rows(db, tenant, tz)
    assert await stored_rows(db, other) == await expected_rows(db, other, "UTC")
    rows = await stored_rows(db, tenant)
    # the month edge: November 1st in Shanghai, October 31st for the UTC merchant
    assert rows[(date(2026, 11, 1), q.NO_BRANCH)] == (1, 0)
    assert (await stored_rows(db, other))[(date(2026, 10, 31), q.NO_BRANCH)] == (1, 0)
    # m1 at two branches: once merchant-wide (first 11-03, second 11-10), a first at each branch
    assert rows[(date(2026, 11, 10), q.NO_BRANCH)] == (0, 1) and rows[(date(2026, 11, 10), b)] == (1, 0)
    # m4's first of November is the 20th, at B
    assert rows[(date(2026, 11, 20), q.NO_BRANCH)] == (1, 0)

    # an offline sale synced now, dated 11-02 at A: m4's first of the month moves from the 20th to the
    # 2nd, the 20th becomes its second — a later day rewritten by the tick
    m4 = next(s["member_id"] for s in await member_sales(db, tenant) if s["business_time"].day == 20)
    await sell(db, tenant, a, datetime(2026, 11, 2, 2, tzinfo=UTC), m4)
    await rollups.refresh(db, tenant)
    rows = await stored_rows(db, tenant)
    assert rows == await expected_rows(db, tenant, tz)
    assert rows[(date(2026, 11, 20), q.NO_BRANCH)] == (0, 1) and rows[(date(2026, 11, 2), q.NO_BRANCH)] == (1, 0)
    assert rows[(date(2026, 11, 20), b)] == (1, 0)  # still its first at B
    # the other merchant's rows did not move and never show here
    assert await stored_rows(db, other) == await expected_rows(db, other, "UTC")

    mid_november = datetime(2026, 11, 15, 4, tzinfo=UTC)
    after = datetime(2026, 12, 2, 4, tzinfo=UTC)
    for branch in (None, a, b):
        board = await check(db, tenant, tz, dash.Request(PeriodKind.THIS_MONTH, branch=branch), mid_november)
        await check(db, tenant, tz, dash.Request(PeriodKind.LAST_MONTH, branch=branch), after)
        custom = dash.Request(PeriodKind.CUSTOM, date(2026, 11, 1), date(2026, 11, 30), branch)
        await check(db, tenant, tz, custom, after, summed=False)  # compared with 10-02..10-31: not aligned
        await check(db, other, "UTC", dash.Request(PeriodKind.LAST_MONTH, branch=None if branch is None else oa), after)
    whole = await dash.dashboard(db, tenant, None, dash.Request(PeriodKind.LAST_MONTH), now=after)
    assert whole.kpis.active_members == 4 and whole.previous_kpis.active_members == 1
    assert {r.code: r.members for r in whole.branches} == {"A": 3, "B": 3}
    assert board.kpis.active_members == 2  # at B from 11-01 to 11-15: m1 and m3

    # a period not month-aligned is read from the sales, and agrees with Python
    last30 = await dash.dashboard(db, tenant, None, dash.Request(PeriodKind.LAST_30), now=mid_november)
    assert not dash.summable(last30.period, last30.previous, None)
    assert last30.kpis.active_members == (await independent(db, tenant, tz, last30.period, None))[0] == 4


async def test_the_tier_distribution_equals_the_profiles_after_changes_ticks_and_a_rebuild(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenants = [await tenant_factory("等级", timezone="Asia/Shanghai") for _ in range(2)]
    for n, tenant in enumerate(tenants):
        members = [await member_factory(tenant) for _ in range(5 + n)]
        async with db.uow(tenant) as uow:
            for i, m in enumerate(members):
                await uow.session.execute(
                    text(
                        "INSERT INTO member_profiles (tenant_id, member_id, tier_code) VALUES (:t, :m, :c)"
                        " ON CONFLICT (tenant_id, member_id) DO UPDATE SET tier_code = EXCLUDED.tier_code"
                    ),
                    {"t": tenant, "m": m, "c": None if i == 0 else "silver"},
                )
            await uow.commit()

    async def distribution(tenant: uuid.UUID) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        async with db.uow(tenant) as uow:
            kept = await dq.tiers(uow)
            rows = await uow.session.execute(
                text("SELECT COALESCE(tier_code, '') AS tier, count(*) AS n FROM member_profiles GROUP BY 1")
            )
            counted = sorted(((r.tier, int(r.n)) for r in rows), key=lambda x: (-x[1], x[0]))
        return kept, counted

    tenant, other = tenants
    kept, counted = await distribution(tenant)
    assert kept == counted == [("silver", 4), ("", 1)]
    # promotions, a demotion to none and a member who leaves the profiles, then a tick folds them
    async with db.uow(tenant) as uow:
        await uow.session.execute(
            text(
                "UPDATE member_profiles SET tier_code = 'gold' WHERE member_id IN (SELECT member_id FROM member_profiles"
                " WHERE tier_code = 'silver' ORDER BY member_id LIMIT 2)"
            )
        )
        await uow.session.execute(text("UPDATE member_profiles SET purchase_count = 3"))  # no tier change
        victim = await uow.session.scalar(
            text("SELECT member_id FROM member_profiles WHERE tier_code = 'silver' LIMIT 1")
        )
        await uow.session.execute(text("DELETE FROM member_profiles WHERE member_id = :m"), {"m": victim})
        await uow.commit()
    kept, counted = await distribution(tenant)
    assert kept == counted == [("gold", 2), ("", 1), ("silver", 1)]
    await rollups.refresh(db, tenant)
    await rollups.refresh(db, tenant)  # the second tick folds (the first one rebuilds: no mark yet)
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM report_tier_counts")) == 3
    assert await distribution(tenant) == (counted, counted)
    await rollups.rebuild(db, tenant)
    assert await distribution(tenant) == (counted, counted)
    # the other merchant's counts are its own
    assert await distribution(other) == ([("silver", 5), ("", 1)], [("silver", 5), ("", 1)])
