"""The bonus-funding simulator replays a month with the real clearing rule: its figure for the
programme's current policy is the real statement's net, and every policy nets to zero with the hub."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lianka.alliance.settlement import close, scopes, simulator
from lianka.alliance.settlement.errors import PeriodBeforeBook
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder, Consumption
from tests.integration.settlement.test_close import PERIOD, _month, ops

pytestmark = pytest.mark.integration


@settings(
    max_examples=int(os.environ.get("LIANKA_SETTLEMENT_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=ops, funder=st.sampled_from(list(BonusFunder)), consumption=st.sampled_from(list(Consumption)))
async def test_current_policy_equals_the_statement(
    db: Database, tenant_factory, member_factory, plan, funder, consumption
) -> None:
    tenant, expect, _ = await _month(db, tenant_factory, member_factory, funder, consumption, plan)
    other, _, _ = await _month(db, tenant_factory, member_factory, BonusFunder.HQ, consumption, plan)
    scope = await scopes.chain_scope(db, tenant)
    try:
        result = await close.close(db, scope, PERIOD)
    except PeriodBeforeBook:  # nothing booked in the month
        return
    sim = await simulator.simulate(db, tenant, PERIOD)
    assert sim.current == funder
    statement = {s.entity_id: s.net for s in result.statements if s.entity_kind == "branch"}
    assert {r.branch_id: r.nets[funder] for r in sim.branches} == statement
    assert {r.branch_id: r.actual for r in sim.branches} == statement
    hub = next(s.net for s in result.statements if s.entity_kind == "hub")
    assert sim.hub[funder] == hub
    bonus = sum(e.get("bonus", 0) for e in expect.values())
    assert sim.bonus_consumed == bonus
    for policy in simulator.POLICIES:
        assert sum(r.nets[policy] for r in sim.branches) + sim.hub[policy] == 0
    # who funds the bonus moves exactly the bonus consumed between HQ and the branches
    assert sim.hub[BonusFunder.REDEEMING_BRANCH] - sim.hub[BonusFunder.HQ] == bonus
    by_code = {r.code: r for r in sim.branches}
    for code, e in expect.items():
        r = by_code[code]
        assert r.nets[BonusFunder.HQ] - r.nets[BonusFunder.REDEEMING_BRANCH] == e.get("bonus", 0)
    # another merchant's simulation sees none of this merchant's branches (RLS)
    theirs = await simulator.simulate(db, other, PERIOD)
    assert {r.branch_id for r in theirs.branches}.isdisjoint(statement)


@pytest.mark.parametrize("funder", list(BonusFunder))
async def test_a_fixed_month_under_each_policy(
    db: Database, tenant_factory, member_factory, funder: BonusFunder
) -> None:
    """Top-ups with bonus at A, spends at B and C, a partial refund: the bonus crosses branches."""
    plan = [
        ("top_up", 0, "p300", 0),
        ("top_up", 1, "p500", 0),
        ("spend", 0, 33_000, 1),
        ("spend", 1, 20_000, 2),
        ("refund", 0, 40, 1),
        ("top_up", 2, "p100", 2),
        ("spend", 2, 5_000, 1),
    ]
    tenant, expect, _ = await _month(db, tenant_factory, member_factory, funder, Consumption.PROPORTIONAL, plan)
    result = await close.close(db, await scopes.chain_scope(db, tenant), PERIOD)
    sim = await simulator.simulate(db, tenant, PERIOD)
    statement = {s.code: s.net for s in result.statements if s.entity_kind == "branch"}
    assert {r.code: r.nets[funder] for r in sim.branches} == statement
    bonus = {code: e.get("bonus", 0) for code, e in expect.items()}
    assert bonus["B"] > 0 and bonus["C"] > 0  # bonus issued at A was consumed at B and C
    by_code = {r.code: r for r in sim.branches}
    total = bonus["B"] + bonus["C"]
    assert sim.bonus_consumed == total
    # issuing branch: A is charged every yuan of bonus it issued; B and C are paid for what they took
    assert by_code["A"].nets[BonusFunder.ISSUING_BRANCH] == by_code["A"].nets[BonusFunder.HQ] - total
    assert by_code["B"].nets[BonusFunder.ISSUING_BRANCH] == by_code["B"].nets[BonusFunder.HQ]
    assert by_code["B"].nets[BonusFunder.REDEEMING_BRANCH] == by_code["B"].nets[BonusFunder.HQ] - bonus["B"]
