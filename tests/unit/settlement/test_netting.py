"""The worked examples of design.md / issue 6, exactly, plus netting invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.alliance.settlement.domain import (
    LineKind,
    Obligation,
    net,
    points_expired_to_issuers,
    points_issued,
    points_redeemed,
    split_by_branch,
    sv_consumed,
    sv_top_up,
)
from lianka.tenants.domain.programme import BonusFunder

Y = 100  # fen per yuan


def chain_month(funder: BonusFunder) -> tuple[dict[str, int], int]:
    ob = [
        *sv_top_up("A", 1000 * Y),  # X: pay 1000 get 1100 at A
        *sv_consumed("B", 500 * Y, {"A": 50 * Y}, funder),  # X spends 550 at B
        *sv_consumed("C", 100 * Y, {"A": 10 * Y}, funder),  # X spends 110 at C
        *sv_top_up("B", 500 * Y),  # Y: 500, no bonus
        *sv_consumed("A", 200 * Y, {}, funder),  # Y spends 200 at A
    ]
    statements, hub = net(ob, ["A", "B", "C"])
    return {e: s.net for e, s in statements.items()}, hub


def test_chain_hq_funds_bonus() -> None:
    nets, hub = chain_month(BonusFunder.HQ)
    assert nets == {"A": -800 * Y, "B": 50 * Y, "C": 110 * Y}
    assert hub == 640 * Y  # = 700 principal float − 60 bonus expense
    assert hub + sum(nets.values()) == 0


def test_chain_redeeming_branch_funds_bonus() -> None:
    nets, _ = chain_month(BonusFunder.REDEEMING_BRANCH)
    assert nets == {"A": -800 * Y, "B": 0, "C": 100 * Y}


def test_chain_issuing_branch_funds_bonus() -> None:
    nets, hub = chain_month(BonusFunder.ISSUING_BRANCH)
    assert nets == {"A": -860 * Y, "B": 50 * Y, "C": 110 * Y}
    assert hub == 700 * Y  # exactly the principal float: the bonus cost sits with the issuer


ISSUE, REIMB = Decimal("0.010"), Decimal("0.008")


def alliance_obligations() -> list[Obligation]:
    return [
        *points_issued("P", 10_000, ISSUE),
        *points_issued("Q", 5_000, ISSUE),
        *points_redeemed("Q", 6_000, REIMB),
        *points_redeemed("R", 4_000, REIMB),
        *points_redeemed("P", 1_000, REIMB),
    ]


def test_alliance_example() -> None:
    statements, operator = net(alliance_obligations(), ["P", "Q", "R"])
    assert {e: s.net for e, s in statements.items()} == {"P": -92 * Y, "Q": -2 * Y, "R": 32 * Y}
    assert operator == 62 * Y  # 40.00 float for 4,000 outstanding points + 22.00 spread
    assert statements["P"].lines == {LineKind.POINTS_ISSUED: -100 * Y, LineKind.POINTS_REDEEMED: 8 * Y}
    assert statements["Q"].quantities[LineKind.POINTS_REDEEMED] == 6_000
    assert statements["R"].direction == "hub pays"


def test_chain_partner_splits_its_alliance_net_across_branches() -> None:
    branch_lines = [
        *points_issued("P1", 6_000, ISSUE),
        *points_redeemed("P1", 1_000, REIMB),
        *points_issued("P2", 4_000, ISSUE),
    ]
    assert split_by_branch(-92 * Y, branch_lines) == {"P1": -52 * Y, "P2": -40 * Y}
    with pytest.raises(ValueError, match="sum"):
        split_by_branch(-91 * Y, branch_lines)


def test_breakage_back_to_issuers() -> None:
    ob = [*points_issued("P", 1_000, ISSUE), *points_expired_to_issuers({"P": 400}, ISSUE)]
    statements, operator = net(ob)
    assert statements["P"].net == -6 * Y
    assert operator == 6 * Y


events = st.lists(
    st.one_of(
        st.tuples(st.just("top"), st.sampled_from("ABC"), st.integers(0, 10**7)),
        st.tuples(
            st.just("use"), st.sampled_from("ABC"), st.integers(0, 10**7), st.sampled_from("ABC"), st.integers(0, 10**6)
        ),
        st.tuples(st.just("iss"), st.sampled_from("PQR"), st.integers(0, 10**6)),
        st.tuples(st.just("red"), st.sampled_from("PQR"), st.integers(0, 10**6)),
    ),
    max_size=60,
)


@given(events, st.sampled_from(list(BonusFunder)))
def test_nets_and_hub_always_sum_to_zero(evs: list[tuple], funder: BonusFunder) -> None:  # type: ignore[type-arg]
    ob: list[Obligation] = []
    for e in evs:
        if e[0] == "top":
            ob += sv_top_up(e[1], e[2])
        elif e[0] == "use":
            ob += sv_consumed(e[1], e[2], {e[3]: e[4]}, funder)
        elif e[0] == "iss":
            ob += points_issued(e[1], e[2], ISSUE)
        else:
            ob += points_redeemed(e[1], e[2], REIMB)
    statements, hub = net(ob)
    assert sum(s.net for s in statements.values()) + hub == 0
    for s in statements.values():
        assert s.net == sum(s.lines.values())
