"""Month-end close over random months of chain activity (Hypothesis, real PostgreSQL): the nets and
the hub's line sum to zero, the float equals the principal members still hold, each branch's net is
what the sales at it say, a second close gives the same checksum, and a crash at any step of the
close resumes to the same statements. Plus a real SIGKILL of the command-line close."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lianka.alliance.settlement import close, scopes
from lianka.alliance.settlement.errors import PeriodBeforeBook
from lianka.alliance.settlement.statements import CloseResult
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder, Consumption, Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.pos import refunds, schemas, stored_value
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
PLANS = [
    StoredValuePlan(code="p300", name="300送30", pay=30_000, get=33_000),
    StoredValuePlan(code="p100", name="100", pay=10_000, get=10_000),
    StoredValuePlan(code="p500", name="500送80", pay=50_000, get=58_000),
]
AT = datetime(2026, 8, 10, 4, tzinfo=UTC)
PERIOD = "2026-08"

ops = st.lists(
    st.one_of(
        st.tuples(st.just("top_up"), st.integers(0, 2), st.sampled_from([p.code for p in PLANS]), st.integers(0, 2)),
        st.tuples(st.just("spend"), st.integers(0, 2), st.integers(1, 40_000), st.integers(0, 2)),
        st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 100), st.integers(0, 2)),
    ),
    min_size=1,
    max_size=14,
)


async def _month(
    db: Database,
    tenant_factory,
    member_factory,
    funder: BonusFunder,
    consumption: Consumption,
    plan: list[tuple[Any, ...]],
) -> tuple[uuid.UUID, dict[str, dict[str, int]], list[uuid.UUID]]:
    tenant = await tenant_factory("随机连锁")
    branches = []
    async with db.uow(tenant) as uow:
        for code in ("A", "B", "C"):
            branches.append(
                await uow.session.scalar(
                    text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                    {"t": tenant, "c": code},
                )
            )
        programme = Programme(stored_value=StoredValueConfig(plans=PLANS, bonus_funder=funder, consumption=consumption))
        await set_programme(uow, programme, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    members = [await member_factory(tenant) for _ in range(3)]
    expect: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # branch code -> line -> amount
    sales: list[tuple[uuid.UUID, str, int]] = []
    for op, a, b, c in plan:
        code, branch = "ABC"[c], branches[c]
        if op == "top_up":
            topped, _ = await stored_value.top_up(
                db, tenant, schemas.TopUpIn(member_id=members[a], plan=b, business_time=AT), uuid.uuid4().hex, branch
            )
            expect[code]["collected"] -= topped.principal
        elif op == "spend":
            async with db.uow(tenant) as uow:
                bal = await accounts.balances(uow, members[a], AT)
            amount = min(b, bal.stored_value)
            if amount <= 0:
                continue
            sold, _ = await pos_sales.sale(
                db,
                tenant,
                schemas.Basket(amount=amount, member_id=members[a], stored_value=amount, business_time=AT),
                uuid.uuid4().hex,
                branch,
            )
            expect[code]["principal"] += sold.quote.sv_principal
            expect[code]["bonus"] += sold.quote.sv_bonus
            sales.append((sold.sale_id, code, amount))
        elif sales:
            sale_id, at_code, amount = sales[a % len(sales)]
            async with db.uow(tenant) as uow:
                left = await uow.session.scalar(
                    text("SELECT gross - member_discount - coupon_total - refunded FROM sales WHERE id = :s"),
                    {"s": sale_id},
                )
            part = max(1, left * b // 100) if left else 0
            if part <= 0:
                continue
            r, _ = await refunds.refund(
                db, tenant, sale_id, schemas.RefundIn(amount=part, business_time=AT), uuid.uuid4().hex, None
            )
            expect[at_code]["principal"] -= r.sv_principal_restored
            expect[at_code]["bonus"] -= r.sv_bonus_restored
    return tenant, expect, members


def _check(result: CloseResult, expect: dict[str, dict[str, int]], funder: BonusFunder, outstanding: int) -> None:
    by_code = {s.code: s for s in result.statements if s.entity_kind == "branch"}
    hub = next(s for s in result.statements if s.entity_kind == "hub")
    assert sum(s.net for s in by_code.values()) + hub.net == 0
    assert result.summary["sum_with_hub"] == 0
    assert result.summary["float_change"] == outstanding  # float = principal members still hold
    for code, s in by_code.items():
        e = expect.get(code, {})
        amount = {k: v["amount"] for k, v in s.lines.items()}
        assert amount.get("stored_value_collected", 0) == e.get("collected", 0)
        assert amount.get("stored_value_consumed_principal", 0) == e.get("principal", 0)
        funded = e.get("bonus", 0) if funder != BonusFunder.REDEEMING_BRANCH else 0
        assert amount.get("stored_value_bonus_funded", 0) == funded
        if funder == BonusFunder.HQ:
            assert s.net == e.get("collected", 0) + e.get("principal", 0) + e.get("bonus", 0)
    charged = sum(
        v["amount"] for s in by_code.values() for k, v in s.lines.items() if k == "stored_value_bonus_charged"
    )
    if funder == BonusFunder.ISSUING_BRANCH:
        assert charged == -sum(e.get("bonus", 0) for e in expect.values())
    else:
        assert charged == 0


async def _outstanding(db: Database, tenant: uuid.UUID, members: list[uuid.UUID]) -> int:
    total = 0
    async with db.uow(tenant) as uow:
        for m in members:
            total += (await accounts.balances(uow, m, AT)).sv_principal
    return total


@settings(
    max_examples=int(os.environ.get("LIANKA_SETTLEMENT_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=ops,
    funder=st.sampled_from(list(BonusFunder)),
    consumption=st.sampled_from(list(Consumption)),
    crash_at=st.sampled_from(
        [
            None,
            "settlement.close.after_closing",
            "settlement.close.computed",
            "settlement.close.before_statements_commit",
            "settlement.close.after_statements",
        ]
    ),
)
async def test_random_months_close_exactly(
    db: Database, tenant_factory, member_factory, plan, funder, consumption, crash_at
) -> None:
    tenant, expect, members = await _month(db, tenant_factory, member_factory, funder, consumption, plan)
    scope = await scopes.chain_scope(db, tenant)
    async with db.uow(tenant) as uow:
        booked = await uow.session.scalar(text("SELECT count(*) FROM ledger_entries"))
    if not booked:  # nothing happened in August at a merchant created now: August is before its book
        with pytest.raises(PeriodBeforeBook):
            await close.close(db, scope, PERIOD)
        return
    if crash_at is not None:

        def crash(name: str) -> None:
            if name == crash_at:
                raise SystemExit(f"crash at {name}")

        with mock.patch.object(close, "fault_point", crash), pytest.raises(SystemExit):
            await close.close(db, scope, PERIOD)
        async with db.uow(tenant) as uow:  # the period already turns entries away
            status = await uow.session.scalar(
                text("SELECT status FROM ledger_periods WHERE period = :p"), {"p": PERIOD}
            )
        assert status in ("closing", "closed")
    first = await close.close(db, scope, PERIOD)
    _check(first, expect, funder, await _outstanding(db, tenant, members))
    second = await close.close(db, scope, PERIOD)
    assert second.checksum == first.checksum
    assert [s.checksum for s in second.statements] == [s.checksum for s in first.statements]


async def test_close_killed_by_sigkill_resumes(db: Database, tenant_factory, member_factory, project_root) -> None:
    plan = [("top_up", 0, "p300", 0), ("spend", 0, 12_000, 1), ("top_up", 1, "p500", 2), ("spend", 1, 9_999, 0)]
    tenant, expect, members = await _month(
        db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, plan
    )
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": tenant})
    argv = [sys.executable, "-m", "lianka.cli", "settlement", "close", "--scope", f"chain:{slug}", "--period", PERIOD]
    for point in ("settlement.close.before_statements_commit", "settlement.close.after_statements"):
        env = {**os.environ, "LIANKA_FAULTS": f"{point}=1"}
        proc = await asyncio.to_thread(
            subprocess.run, argv, env=env, cwd=project_root, capture_output=True, timeout=120
        )
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    proc = await asyncio.to_thread(subprocess.run, argv, cwd=project_root, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    done = await close.result(db, await scopes.chain_scope(db, tenant), PERIOD)
    _check(done, expect, BonusFunder.HQ, await _outstanding(db, tenant, members))
    assert done.checksum in proc.stdout.decode().replace("\n", "")


@settings(
    max_examples=int(os.environ.get("LIANKA_SETTLEMENT_EXAMPLES", "25")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    moves=st.lists(
        st.tuples(st.sampled_from(["earn", "redeem"]), st.integers(0, 2), st.integers(0, 1), st.integers(100, 90_000)),
        min_size=1,
        max_size=12,
    ),
    prices=st.sampled_from([("0.010", "0.008"), ("0.013", "0.0075"), ("0.0101", "0.0099")]),
    fee=st.sampled_from([0, 7]),
)
async def test_random_alliance_months_net_to_zero(
    db: Database, tenant_factory, member_factory, moves, prices, fee
) -> None:
    """Random earns and redemptions across three partners: each partner's net is exactly what its own
    events cost or earned (each rounded once, half-even), the operator's line balances them, and a
    second close changes nothing."""
    from decimal import Decimal

    from lianka.alliance.alliances import membership as alliances
    from lianka.alliance.alliances import till
    from lianka.alliance.alliances.domain import Terms
    from lianka.alliance.ledger.errors import InsufficientFunds
    from lianka.alliance.settlement.domain import money

    issue, reimb = Decimal(prices[0]), Decimal(prices[1])
    operator = await tenant_factory("运营方")
    partners = [await tenant_factory(f"伙伴{i}") for i in range(3)]
    branches = []
    for p in partners:
        async with db.uow(p) as uow:
            branches.append(
                await uow.session.scalar(
                    text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'M1', 'M1') RETURNING id"), {"t": p}
                )
            )
            await uow.commit()
    a = await alliances.create(
        db,
        operator,
        code=f"h-{uuid.uuid4().hex[:10]}",
        name="随机联盟",
        terms=Terms(issue_price=issue, reimbursement_price=reimb, fee_per_transaction=fee),
    )
    for p in partners:
        code, _ = await alliances.invite(db, operator, a.id)
        await alliances.accept(db, p, code)
    members = [await member_factory(p) for p in partners]
    expect = [0, 0, 0]
    for kind, who, whose, n in moves:
        key = uuid.uuid4().hex
        if kind == "earn":
            out, _ = await till.earn(
                db,
                partners[who],
                a.id,
                member_id=members[whose],
                amount=n,
                branch_id=branches[who],
                key=key,
                business_time=AT,
            )
            expect[who] -= money(out["points"], issue) + fee
        else:
            points = n // 100 + 1
            try:
                await till.redeem(
                    db,
                    partners[who],
                    a.id,
                    member_id=members[whose],
                    points=points,
                    branch_id=branches[who],
                    key=key,
                    business_time=AT,
                )
            except InsufficientFunds:
                continue
            expect[who] += money(points, reimb) - fee
    scope = await scopes.alliance_scope(db, a.id)
    if not any(kind == "earn" for kind, *_ in moves):  # nothing booked: the alliance (created now) has no August
        with pytest.raises(PeriodBeforeBook):
            await close.close(db, scope, PERIOD)
        return
    first = await close.close(db, scope, PERIOD)
    nets = {s.entity_id: s.net for s in first.statements if s.entity_kind == "partner"}
    assert [nets[p] for p in partners] == expect
    assert operator not in nets  # the operator is the hub, not a partner
    assert first.summary["sum_with_hub"] == 0
    hub = next(s for s in first.statements if s.entity_kind == "hub")
    assert hub.net == -sum(expect)
    assert (await close.close(db, scope, PERIOD)).checksum == first.checksum
