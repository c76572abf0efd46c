"""The daily rollups against an independent computation straight from the POS tables (several local
days, a refund on a later day, a top-up, a sale past local midnight, two merchants — no leak), the
periodic job's incremental tick, and a crash between rewriting the days and advancing the mark."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.pos import refunds, schemas, stored_value
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.reports import queries as q
from lianka.tenants.reports import rollups
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
PLANS = [StoredValuePlan(code="p300", name="300送30", pay=30_000, get=33_000)]
D1 = datetime(2026, 11, 3, 2, tzinfo=UTC)  # 11-03 10:00 local
D1_LATE = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)  # 11-04 00:30 local: the next local day
D2 = datetime(2026, 11, 5, 3, tzinfo=UTC)


async def _chain(db: Database, tenant_factory: Any, member_factory: Any) -> tuple[uuid.UUID, list[uuid.UUID]]:
    tenant = await tenant_factory("报表连锁", timezone="Asia/Shanghai")
    async with db.uow(tenant) as uow:
        branches = [
            await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
            for code in ("A", "B")
        ]
        await set_programme(
            uow, Programme(stored_value=StoredValueConfig(plans=PLANS)), effective_from=datetime(2026, 1, 1, tzinfo=UTC)
        )
        await uow.commit()
    return tenant, branches


async def activity(db: Database, tenant_factory: Any, member_factory: Any) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A few days of a two-branch chain: member and walk-in sales, a top-up and a stored-value
    spend, a sale just past local midnight, and a partial refund two days later."""
    tenant, (a, b) = await _chain(db, tenant_factory, member_factory)
    m1, m2 = await member_factory(tenant), await member_factory(tenant)

    async def sell(branch: uuid.UUID, amount: int, at: datetime, **extra: Any) -> uuid.UUID:
        out, _ = await pos_sales.sale(
            db, tenant, schemas.Basket(amount=amount, business_time=at, **extra), uuid.uuid4().hex, branch
        )
        return out.sale_id

    first = await sell(a, 12_000, D1, member_id=m1)
    await sell(a, 5_000, D1)
    await sell(a, 3_300, D1, member_id=m1)
    await stored_value.top_up(
        db, tenant, schemas.TopUpIn(member_id=m2, plan="p300", business_time=D1), uuid.uuid4().hex, b
    )
    await sell(b, 8_800, D1_LATE, member_id=m2, stored_value=8_800)
    await sell(b, 2_000, D1_LATE)
    await refunds.refund(db, tenant, first, schemas.RefundIn(amount=4_000, business_time=D2), uuid.uuid4().hex, None)
    return tenant, [a, b]


async def expected(db: Database, tenant: uuid.UUID) -> dict[tuple[date, uuid.UUID], dict[str, int]]:
    """The figures recomputed in Python from the raw rows (no SQL aggregation)."""
    out: dict[tuple[date, uuid.UUID], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    buyers: dict[tuple[date, uuid.UUID], set[uuid.UUID]] = defaultdict(set)
    async with db.uow(tenant) as uow:
        sales = (await uow.session.execute(text("SELECT * FROM sales"))).mappings().all()
        refs = (await uow.session.execute(text("SELECT * FROM refunds"))).mappings().all()
        tops = (await uow.session.execute(text("SELECT * FROM top_ups"))).mappings().all()
        joins = (await uow.session.execute(text("SELECT * FROM memberships"))).mappings().all()
    by_id = {s["id"]: s for s in sales}
    for s in sales:
        key = (s["business_time"].astimezone(TZ).date(), s["branch_id"])
        who = "member" if s["member_id"] else "nonmember"
        out[key][f"sales_count_{who}"] += 1
        out[key][f"sales_{who}"] += s["gross"] - s["member_discount"] - s["coupon_total"]
        out[key]["sv_consumed_principal"] += s["sv_principal"]
        out[key]["sv_consumed_bonus"] += s["sv_bonus"]
        out[key]["points_issued"] += s["points_earned"]
        out[key]["points_redeemed"] += s["points_redeemed"]
        if s["member_id"]:
            buyers[key].add(s["member_id"])
    for r in refs:
        key = (r["business_time"].astimezone(TZ).date(), r["branch_id"])
        who = "member" if by_id[r["sale_id"]]["member_id"] else "nonmember"
        out[key][f"sales_{who}"] -= r["amount"]
        out[key]["refunds"] += r["amount"]
        out[key]["sv_consumed_principal"] -= r["sv_principal_restored"]
        out[key]["sv_consumed_bonus"] -= r["sv_bonus_restored"]
        out[key]["points_issued"] -= r["points_clawed_back"]
        out[key]["points_redeemed"] -= r["points_restored"]
    for t in tops:
        key = (t["business_time"].astimezone(TZ).date(), t["branch_id"])
        out[key]["topup_principal"] += t["principal"]
        out[key]["topup_bonus"] += t["bonus"]
    for j in joins:
        out[(j["joined_at"].astimezone(TZ).date(), j["branch_id"] or q.NO_BRANCH)]["new_members"] += 1
    for key, bought in buyers.items():
        out[key]["buying_members"] = len(bought)
    return {k: {f: v for f, v in figures.items() if v} for k, figures in out.items()}


async def rolled_up(db: Database, tenant: uuid.UUID) -> dict[tuple[date, uuid.UUID], dict[str, int]]:
    async with db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT * FROM report_daily"))).mappings().all()
    return {(r["day"], r["branch_id"]): {f: int(r[f]) for f in q.FIGURES if r[f]} for r in rows}


async def test_rollups_equal_an_independent_computation_per_day_and_branch(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, b) = await activity(db, tenant_factory, member_factory)
    other, _ = await activity(db, tenant_factory, member_factory)
    await rollups.refresh(db, tenant)
    got = await rolled_up(db, tenant)
    assert got == await expected(db, tenant)
    # the figures are real: the midnight sale is on 11-04, the refund on 11-05, both at their branches
    assert got[(date(2026, 11, 4), b)]["sales_member"] == 8_800
    assert got[(date(2026, 11, 4), b)]["sales_nonmember"] == 2_000
    assert got[(date(2026, 11, 3), b)]["topup_principal"] == 30_000
    assert got[(date(2026, 11, 3), b)]["topup_bonus"] == 3_000
    assert got[(date(2026, 11, 5), a)] == {"sales_member": -4_000, "refunds": 4_000, "points_issued": -40}
    assert got[(date(2026, 11, 3), a)]["points_issued"] == 153
    # the other merchant's rows are its own: nothing of them here, nothing of ours there
    assert await rolled_up(db, other) == {}
    await rollups.refresh(db, other)
    assert await rolled_up(db, other) == await expected(db, other)
    async with db.uow(tenant) as uow:
        assert (
            await uow.session.scalar(text("SELECT count(*) FROM report_daily WHERE tenant_id <> :t"), {"t": tenant})
            == 0
        )


async def test_a_tick_rolls_up_only_new_days_and_a_rerun_changes_nothing(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, _b) = await activity(db, tenant_factory, member_factory)
    await rollups.refresh(db, tenant)
    before = await rolled_up(db, tenant)
    again = await rollups.refresh(db, tenant)
    assert await rolled_up(db, tenant) == before
    assert again.days == len({day for day, _ in before})  # within the overlap: the same days, from scratch
    late = datetime(2026, 11, 20, 4, tzinfo=UTC)
    await pos_sales.sale(db, tenant, schemas.Basket(amount=1_500, business_time=late), uuid.uuid4().hex, a)
    await rollups.refresh(db, tenant)
    now = await rolled_up(db, tenant)
    assert now == await expected(db, tenant)
    assert now[(date(2026, 11, 20), a)] == {"sales_count_nonmember": 1, "sales_nonmember": 1_500}


async def test_a_crash_between_the_days_and_the_mark_reruns_to_the_same_figures(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, (a, _b) = await activity(db, tenant_factory, member_factory)
    await rollups.refresh(db, tenant)
    async with db.uow(tenant) as uow:
        mark_before = await q.mark(uow, tenant)
    await pos_sales.sale(db, tenant, schemas.Basket(amount=7_000, business_time=D2), uuid.uuid4().hex, a)

    # killed after the days were rewritten, before the mark moved: the whole transaction is gone
    with mock.patch.object(q, "set_mark", side_effect=RuntimeError("killed")), pytest.raises(RuntimeError):
        await rollups.refresh(db, tenant)
    async with db.uow(tenant) as uow:
        assert await q.mark(uow, tenant) == mark_before
    assert "sales_nonmember" not in (await rolled_up(db, tenant))[(date(2026, 11, 5), a)]

    # worse: the days' rows committed but the mark not advanced (as if in separate transactions)
    async with db.uow(tenant) as uow:
        days = await q.days_written_since(uow, tenant, "Asia/Shanghai", None)
        await rollups._rewrite(uow, tenant, days)
        await uow.commit()
    await rollups.refresh(db, tenant)
    await rollups.refresh(db, tenant)
    want = await expected(db, tenant)
    assert await rolled_up(db, tenant) == want
    assert want[(date(2026, 11, 5), a)]["sales_nonmember"] == 7_000

    # and a rebuild from scratch agrees, reporting its progress
    seen: list[tuple[int, int]] = []
    done = await rollups.rebuild(db, tenant, progress=lambda n, total: seen.append((n, total)))
    assert await rolled_up(db, tenant) == want
    assert seen[0] == (0, done.days) and seen[-1] == (done.days, done.days)


async def test_the_job_is_listed_and_the_rebuild_command_draws_its_bar(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    import asyncio

    from typer.testing import CliRunner

    import lianka.actors  # noqa: F401 - registers every periodic job
    from lianka.cli import app

    tenant, _ = await activity(db, tenant_factory, member_factory)
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, app, ["jobs", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "report-rollups" in listed.output and "* * * * *" in listed.output
    built = await asyncio.to_thread(runner.invoke, app, ["reports", "rebuild", "--merchant", str(slug)])
    assert built.exit_code == 0, built.output + repr(built.exception)
    assert "days rolled up" in built.output
    assert await rolled_up(db, tenant) == await expected(db, tenant)
    unknown = await asyncio.to_thread(runner.invoke, app, ["reports", "rebuild", "--merchant", "no-such-shop"])
    assert unknown.exit_code == 2


async def test_coupons_and_expired_points_are_rolled_up(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    """A coupon issued from the console (no branch) and redeemed at A's till, and points that expire
    (the expiry job: no branch) — each on its own local day."""
    from datetime import timedelta

    from lianka.alliance.ledger.jobs import expire_book
    from lianka.tenants.domain.pricing import CouponKind
    from lianka.tenants.domain.programme import ExpiryPolicy, PointsConfig
    from lianka.tenants.services import accounts
    from lianka.tenants.services import coupons as coupon_svc

    tenant = await tenant_factory("券与过期", timezone="Asia/Shanghai")
    member = await member_factory(tenant)
    programme = Programme(points=PointsConfig(expiry=ExpiryPolicy(months=1)))
    async with db.uow(tenant) as uow:
        a = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'A', 'A') RETURNING id"), {"t": tenant}
        )
        await set_programme(uow, programme, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await accounts.award_points(
            uow, member, 30, programme=programme, reason="x", key="old", business_time=D1 - timedelta(days=70)
        )
        template = await coupon_svc.create_template(
            uow, coupon_svc.TemplateSpec(code="c1", name="1 yuan", kind=CouponKind.FIXED, amount_off=100, valid_days=30)
        )
        coupon = await coupon_svc.issue(uow, template.id, member, now=D1 - timedelta(days=1))
        await uow.commit()
    sold, _ = await pos_sales.sale(
        db,
        tenant,
        schemas.Basket(amount=5_000, member_id=member, coupons=[coupon.code], business_time=D1),
        uuid.uuid4().hex,
        a,
    )
    expired = await expire_book(db, tenant, D1)
    assert expired >= 1
    await rollups.refresh(db, tenant)
    got = await rolled_up(db, tenant)
    async with db.uow(tenant) as uow:
        issued_at = await uow.session.scalar(text("SELECT issued_at FROM coupons"))
    issued_day = issued_at.astimezone(TZ).date()  # stamped when written
    assert got[(issued_day, q.NO_BRANCH)]["coupons_issued"] == 1
    assert got[(date(2026, 11, 3), a)]["coupons_redeemed"] == 1
    assert got[(date(2026, 11, 3), a)]["sales_member"] == 4_900  # net of the coupon
    assert got[(date(2026, 9, 26), q.NO_BRANCH)]["points_expired"] == 30  # the lot's expiry, local day
    assert all(f.get("points_expired", 0) == 0 for (_, branch), f in got.items() if branch != q.NO_BRANCH)
    assert sold.sale_id is not None
    # the points members hold, from the days (expiry and coupon sale included), are their balance
    from lianka.tenants.reports import dashboard_queries as dq

    async with db.uow(tenant) as uow:
        held = await dq.held(uow)
        balances = {k: int(v) for k, v in await uow.session.execute(_BALANCES)}
    assert held["points"] == balances["points"]


_BALANCES = text("""
SELECT a.kind, sum(b.balance) FROM ledger_balances b JOIN ledger_accounts a ON a.id = b.account_id
 WHERE a.owner_kind = 'member' AND a.kind IN ('points', 'sv_principal', 'sv_bonus') GROUP BY a.kind
""")


async def test_what_members_hold_is_the_days_summed_and_equals_their_balances(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    """Decision 0047: the dashboard's points and stored value held come from the day rows (each day's
    net of members' postings), not from a row per member — and equal the members' balance rows."""
    from lianka.tenants.reports import dashboard_queries as dq

    tenant, (_a, b) = await activity(db, tenant_factory, member_factory)
    other, _ = await activity(db, tenant_factory, member_factory)
    await rollups.refresh(db, tenant)
    want = await expected(db, tenant)
    async with db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT * FROM report_daily"))).mappings().all()
        held = await dq.held(uow)
        balances = {k: int(v) for k, v in await uow.session.execute(_BALANCES)}
    # per day and branch: what the till rows say moved (top-ups in, spends out, refunds back)
    for r in rows:
        figures = want.get((r["day"], r["branch_id"]), {})
        assert r["sv_principal_change"] == figures.get("topup_principal", 0) - figures.get("sv_consumed_principal", 0)
        assert r["sv_bonus_change"] == figures.get("topup_bonus", 0) - figures.get("sv_consumed_bonus", 0)
    by_day = {(r["day"], r["branch_id"]): r for r in rows}
    assert by_day[(date(2026, 11, 3), b)]["sv_principal_change"] == 30_000
    assert (
        by_day[(date(2026, 11, 4), b)]["sv_principal_change"] + by_day[(date(2026, 11, 4), b)]["sv_bonus_change"]
        == -8_800
    )
    # in total: exactly the members' balance rows
    assert held == {"points": balances["points"], "sv_principal": balances["sv_principal"], "sv_bonus": 3_000 - 800}
    assert held["points"] > 0 and held["sv_principal"] == 30_000 - 8_000 and balances["sv_bonus"] == 2_200
    # the other merchant's days are not summed here, and it holds nothing until its rollup runs
    async with db.uow(other) as uow:
        assert await dq.held(uow) == {"points": 0, "sv_principal": 0, "sv_bonus": 0}
