"""Settlement drill-down (issue 17): each line of a branch's statement is the sum of the entries the
drill-down lists for it (every page), those entries are the ones the till wrote (checked from the POS
tables, not from the clearing accounts), another merchant's statement is a 404, and the float trend
ends at what the members hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest
from sqlalchemy import text

from lianka.alliance.settlement import close, drilldown, scopes
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.tenants.domain.programme import BonusFunder, Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.pos import schemas, stored_value
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
PLANS = [StoredValuePlan(code="p300", name="300送30", pay=30_000, get=33_000)]
JULY = datetime(2026, 7, 20, 4, tzinfo=UTC)
AUG = datetime(2026, 8, 10, 4, tzinfo=UTC)


async def _chain(
    db: Database, tenant_factory, member_factory
) -> tuple[uuid.UUID, dict[str, uuid.UUID], list[uuid.UUID]]:
    tenant = await tenant_factory("下钻连锁")
    branches: dict[str, uuid.UUID] = {}
    async with db.uow(tenant) as uow:
        for code in ("A", "B"):
            branches[code] = await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
        sv = StoredValueConfig(plans=PLANS, bonus_funder=BonusFunder.HQ)
        await set_programme(uow, Programme(stored_value=sv), effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    members = [await member_factory(tenant) for _ in range(2)]
    # July: one top-up at A; August: three top-ups at A, one at B, spends at both
    for at, member, code in ((JULY, 0, "A"), (AUG, 0, "A"), (AUG, 1, "A"), (AUG, 1, "A"), (AUG, 0, "B")):
        await stored_value.top_up(
            db,
            tenant,
            schemas.TopUpIn(member_id=members[member], plan="p300", business_time=at),
            uuid.uuid4().hex,
            branches[code],
        )
    for member, code, amount in ((0, "B", 12_345), (1, "B", 500), (1, "A", 40_000)):
        await pos_sales.sale(
            db,
            tenant,
            schemas.Basket(amount=amount, member_id=members[member], stored_value=amount, business_time=AUG),
            uuid.uuid4().hex,
            branches[code],
        )
    return tenant, branches, members


async def test_lines_drill_down_to_their_entries(db: Database, tenant_factory, member_factory) -> None:
    tenant, branches, members = await _chain(db, tenant_factory, member_factory)
    other, other_branches, _ = await _chain(db, tenant_factory, member_factory)
    result = await close.close(db, await scopes.chain_scope(db, tenant), "2026-08")
    by_code = {s.code: s for s in result.statements if s.entity_kind == "branch"}

    with mock.patch.object(drilldown, "PAGE_SIZE", 2):
        for code, statement in by_code.items():
            for line, figures in statement.lines.items():
                first = await drilldown.line_entries(db, tenant, "2026-08", statement.entity_id, line)
                listed = list(first.entries)
                for page in range(2, first.pages + 1):
                    listed += (
                        await drilldown.line_entries(db, tenant, "2026-08", statement.entity_id, line, page)
                    ).entries
                assert len(listed) == first.totals.entries == len({e.id for e in listed})
                assert sum(e.amount for e in listed) == first.totals.amount == figures["amount"], (code, line)
                assert sum(e.points for e in listed) == figures["points"]
                assert [e.business_time for e in listed] == sorted(e.business_time for e in listed)

    # the collected line's entries are the August top-ups at the branch, from the POS table
    async with db.uow(tenant) as uow:
        for code in ("A", "B"):
            top_ups = set(
                await uow.session.scalars(
                    text("SELECT entry_id FROM top_ups WHERE branch_id = :b AND business_time >= :lo"),
                    {"b": branches[code], "lo": datetime(2026, 8, 1, tzinfo=UTC)},
                )
            )
            found = await drilldown.line_entries(db, tenant, "2026-08", branches[code], "stored_value_collected")
            assert {e.id for e in found.entries} == top_ups
            assert len(top_ups) == (3 if code == "A" else 1)
            assert all(e.amount == -30_000 for e in found.entries)  # the branch owes HQ what it took in

    # another merchant's statement, a page beyond the end, a line that does not exist
    with pytest.raises(NotFound):
        await drilldown.line_entries(db, tenant, "2026-08", other_branches["A"], "stored_value_collected")
    with pytest.raises(NotFound):
        await drilldown.line_entries(db, other, "2026-08", branches["A"], "stored_value_collected")
    with pytest.raises(NotFound):
        await drilldown.line_entries(db, tenant, "2026-08", branches["A"], "stored_value_collected", 9)
    with pytest.raises(ValidationFailed):
        await drilldown.line_entries(db, tenant, "2026-08", branches["A"], "nonsense")

    # the float: a month per month that moved it, ending at what the members hold now
    trend = await drilldown.float_trend(db, tenant)
    assert [m.period for m in trend] == ["2026-07", "2026-08"]
    assert trend[0].principal == 30_000 and trend[0].bonus == 3_000
    held_p = held_b = 0
    async with db.uow(tenant) as uow:
        for m in members:
            b = await accounts.balances(uow, m, datetime.now(UTC))
            held_p, held_b = held_p + b.sv_principal, held_b + b.sv_bonus
    assert (trend[-1].principal, trend[-1].bonus) == (held_p, held_b)
    assert held_p + held_b == 5 * 33_000 - 12_345 - 500 - 40_000
