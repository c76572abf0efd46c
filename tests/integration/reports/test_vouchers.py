"""Accounting vouchers from a closed month: every voucher balances, the clearing lines tie to the
month's settlement statements, the merchant's mapping is its own (another merchant keeps the
defaults) and bad mapping input changes nothing."""

from __future__ import annotations

import pytest

from lianka.alliance.settlement import close, scopes
from lianka.platform.db import Database
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import BonusFunder, Consumption
from lianka.tenants.reports import vouchers
from lianka.tenants.reports.finance_queries import VoucherMove
from tests.integration.reports.test_liability import PLAN
from tests.integration.settlement.test_close import PERIOD, _month

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("funder", [BonusFunder.HQ, BonusFunder.ISSUING_BRANCH])
async def test_vouchers_balance_and_tie_to_the_statements(
    db: Database, tenant_factory, member_factory, funder: BonusFunder
) -> None:
    tenant, _, _ = await _month(db, tenant_factory, member_factory, funder, Consumption.PROPORTIONAL, PLAN)
    other, _, _ = await _month(db, tenant_factory, member_factory, funder, Consumption.PROPORTIONAL, PLAN[:1])
    result = await close.close(db, await scopes.chain_scope(db, tenant), PERIOD)
    v = await vouchers.vouchers(db, tenant, PERIOD)
    assert v.vouchers and all(x.debit == x.credit > 0 for x in v.vouchers)
    kinds = {x.entry_kind for x in v.vouchers}
    assert {"stored_value_top_up", "stored_value_spent", "clearing_sv_consumed"} <= kinds
    assert "9999" not in {line.code for x in v.vouchers for line in x.lines}  # every ledger kind has a default

    def signed(pred: object) -> int:
        return sum(
            line.credit - line.debit
            for x in v.vouchers
            for line in x.lines
            if all(callable(pred) and pred(k) for k in line.kinds)
        )

    branches = sum(s.net for s in result.statements if s.entity_kind == "branch")
    hub = next(s.net for s in result.statements if s.entity_kind == "hub")
    assert signed(lambda k: k.startswith("clr_") and k != "clr_hub") == branches
    assert signed(lambda k: k == "clr_hub") == hub
    assert branches != 0

    # the merchant maps stored value principal to its own code; the other merchant keeps the default
    await vouchers.set_mapping(db, tenant, "sv_principal", "2203", "预收账款")
    mine = await vouchers.vouchers(db, tenant, PERIOD)
    codes = {line.code for x in mine.vouchers for line in x.lines}
    assert "2203" in codes and "2203.01" not in codes
    theirs = await vouchers.vouchers(db, other, PERIOD)
    assert "2203.01" in {line.code for x in theirs.vouchers for line in x.lines}
    assert theirs.mapping == {}
    with pytest.raises(ValidationFailed):
        await vouchers.set_mapping(db, tenant, "sv_principal", "22 03; drop", "x")
    assert (await vouchers.vouchers(db, tenant, PERIOD)).mapping == {"sv_principal": ("2203", "预收账款")}
    await vouchers.set_mapping(db, tenant, "sv_principal", "", "")  # back to the default
    assert (await vouchers.vouchers(db, tenant, PERIOD)).mapping == {}


def test_an_unbalanced_journal_is_refused_and_unknown_kinds_are_visible() -> None:
    moves = [VoucherMove("x", "sales", 100), VoucherMove("x", "mystery", -100)]
    (v,) = vouchers.build(moves, {})
    assert [(line.code, line.debit, line.credit) for line in v.lines] == [("6001", 0, 100), ("9999", 100, 0)]
    assert vouchers.account_for("clr_fee", {}) == vouchers.DEFAULTS["clr_*"]
    with pytest.raises(ValueError, match="does not balance"):
        vouchers.build([VoucherMove("x", "sales", 100)], {})
