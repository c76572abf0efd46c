"""Bonus-funding simulator: replay a chain's past month under each stored-value bonus policy.

Headquarters sees each branch's net side by side before changing who funds the bonus. The month's
real clearing lines are read as the close reads them (``movements``); the bonus lines are dropped and
rebuilt from the bonus the month consumed, per redeeming and issuing branch, with the one clearing
rule (:func:`~lianka.alliance.settlement.domain.consumed`) the till applies when it posts — so the
figure for the programme's current policy is the real statement's net (tested), and a change of the
rule changes the simulator with it (decision 0040).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import domain, scopes, simulator_queries
from lianka.alliance.settlement.clearing import BONUS_KINDS
from lianka.alliance.settlement.domain import LineKind
from lianka.alliance.settlement.movements import movements
from lianka.alliance.settlement.statements import Lines
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder
from lianka.tenants.services.programme import programme_at

BONUS_LINES = (LineKind.SV_BONUS_FUNDED.value, LineKind.SV_BONUS_CHARGED.value)
POLICIES = (BonusFunder.HQ, BonusFunder.ISSUING_BRANCH, BonusFunder.REDEEMING_BRANCH)


@dataclass(frozen=True)
class BranchRow:
    branch_id: uuid.UUID
    code: str
    name: str
    actual: int  # the month's real net (what the statement says)
    nets: dict[BonusFunder, int]  # the net the branch would have had under each policy


@dataclass(frozen=True)
class Simulation:
    period: str
    currency: str
    current: BonusFunder
    branches: tuple[BranchRow, ...]
    hub: dict[BonusFunder, int]  # HQ's own line under each policy (minus the branches' nets)
    bonus_consumed: int


def replay(
    lines: Mapping[str, Lines], bonus: Mapping[str, Mapping[str, int]], funder: BonusFunder
) -> tuple[dict[str, int], int]:
    """Pure: each spoke's net under ``funder`` and the hub's line. ``lines``: the real lines per spoke;
    ``bonus``: redeeming spoke -> issuing spoke ('' none) -> net bonus consumed."""
    base = [
        domain.Obligation(spoke, LineKind(line), amount)
        for spoke, ls in lines.items()
        for line, amount in ls.amounts.items()
        if line not in BONUS_LINES
    ]
    rebuilt = [o for redeeming, issuers in bonus.items() for o in domain.consumed(redeeming, 0, dict(issuers), funder)]
    statements, hub = domain.net(base + rebuilt, lines)
    return {e: s.net for e, s in statements.items()}, hub


async def simulate(db: Database, tenant: uuid.UUID, period: str) -> Simulation:
    """The month ``period`` of the chain ``tenant`` under every bonus policy (read-only)."""
    check_period(period)
    scope = await scopes.chain_scope(db, tenant)
    async with db.uow(tenant) as uow:
        moved = await movements(uow, tenant, period, scope.timezone)
        consumed = await simulator_queries.bonus_by_branch(uow, period, BONUS_KINDS)
        _, programme = await programme_at(uow)
    lines = {str(s.id): moved.get(s.id, Lines()) for s in scope.spokes}
    bonus = {str(b): v for b, v in consumed.items()}
    nets: dict[BonusFunder, dict[str, int]] = {}
    hub: dict[BonusFunder, int] = {}
    for policy in POLICIES:
        nets[policy], hub[policy] = replay(lines, bonus, policy)
    rows = tuple(
        BranchRow(s.id, s.code, s.name, lines[str(s.id)].net, {p: nets[p].get(str(s.id), 0) for p in POLICIES})
        for s in sorted(scope.spokes, key=lambda s: s.code)
    )
    total = sum(v for issuers in bonus.values() for v in issuers.values())
    return Simulation(period, scope.currency, programme.stored_value.bonus_funder, rows, hub, total)
