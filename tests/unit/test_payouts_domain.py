"""Payout rules without a database: which lines a month's statements make and for how much (closing
less what earlier lines cover, so a position carried into the next month is not paid twice), the
method, the forward-only status moves, and the masked account number."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from lianka.alliance.settlement.statements import Statement
from lianka.billing.payouts import domain
from lianka.billing.payouts.domain import Direction, Method, Status


def statement(kind: str, code: str, opening: int, net: int, entity: uuid.UUID | None = None) -> Statement:
    return Statement(kind, entity or uuid.uuid4(), None, None, code, code, "CNY", opening, {}, 0, net, "c" * 64)


def test_one_line_per_owed_or_owing_branch_and_none_for_the_hub_or_a_zero() -> None:
    a, b, c, hub = (
        statement("branch", "A", 0, -50_000),
        statement("branch", "B", 0, 20_000),
        statement("branch", "C", 5_000, -5_000),
        statement("hub", "HQ", 0, 30_000),
    )
    planned = domain.plan("chain", [a, b, c, hub], {})
    assert [(p.code, p.direction, p.amount_minor) for p in planned] == [
        ("A", Direction.COLLECTION, 50_000),
        ("B", Direction.PAYOUT, 20_000),
    ]
    assert domain.plan("alliance", [a, b], {}) == []  # an alliance settles with its partners


def test_what_an_earlier_line_covers_is_not_paid_again() -> None:
    b = uuid.uuid4()
    # October paid B ¥200; November's statement opens with that ¥200 and adds ¥50
    november = statement("branch", "B", 20_000, 5_000, b)
    assert [(p.direction, p.amount_minor) for p in domain.plan("chain", [november], {b: 20_000})] == [
        (Direction.PAYOUT, 5_000)
    ]
    assert domain.plan("chain", [statement("branch", "B", 20_000, 0, b)], {b: 20_000}) == []


@given(st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9))
def test_covered_plus_the_new_line_is_the_closing_position(opening: int, net: int, covered: int) -> None:
    entity = uuid.uuid4()
    lines = domain.plan("chain", [statement("branch", "X", opening, net, entity)], {entity: covered})
    signed = sum(p.amount_minor if p.direction == Direction.PAYOUT else -p.amount_minor for p in lines)
    assert covered + signed == opening + net
    assert all(p.amount_minor > 0 for p in lines)


def test_only_a_payout_to_a_connected_payee_goes_by_stripe() -> None:
    assert domain.method_for(Direction.PAYOUT, True) is Method.STRIPE
    assert domain.method_for(Direction.PAYOUT, False) is Method.BANK
    assert domain.method_for(Direction.COLLECTION, True) is Method.BANK


@given(st.lists(st.sampled_from([domain.SENDING, *(s.value for s in Status)]), max_size=12))
def test_status_only_moves_forward_and_ends_in_failed_or_returned(moves: list[str]) -> None:
    order = {domain.SENDING: 0, "pending": 1, "paid": 2, "failed": 3, "returned": 3}
    current = domain.SENDING
    for to in moves:
        if domain.may_move(current, to):
            assert order[to] > order[current]
            current = to
    assert not domain.may_move(Status.FAILED, Status.PAID) and not domain.may_move(Status.RETURNED, Status.PAID)
    assert {Status.FAILED, Status.RETURNED} == domain.RETRYABLE


def test_account_numbers_show_only_their_last_four_digits() -> None:
    assert domain.mask("6222021234567890") == "************7890"
    assert domain.mask("1234") == "1234"
    assert domain.mask(None) == ""
