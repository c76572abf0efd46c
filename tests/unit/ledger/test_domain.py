"""Pure ledger rules, with thousands of Hypothesis examples (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from lianka.alliance.ledger import domain
from lianka.platform.errors import ValidationFailed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_units() -> None:
    assert domain.check_unit("CNY") == "CNY"
    assert domain.is_points(domain.check_unit("PTS:alliance:1234"))
    for bad in ("cny", "PTS:", "PTS:a b", "RMB1"):
        with pytest.raises(ValidationFailed):
            domain.check_unit(bad)


@given(st.lists(st.integers(-(10**12), 10**12).filter(bool), min_size=1, max_size=8), st.sampled_from(["CNY", "PTS:x"]))
@settings(max_examples=2000)
def test_balanced_iff_sum_zero(amounts: list[int], unit: str) -> None:
    postings = [domain.Posting(A, unit, a) for a in amounts] + [domain.Posting(B, unit, -sum(amounts))]
    if sum(amounts) == 0:
        with pytest.raises(ValidationFailed):
            domain.check_balanced(postings)  # a zero posting
        return
    domain.check_balanced(postings)
    with pytest.raises(ValidationFailed):
        domain.check_balanced([*postings, domain.Posting(C, unit, 1)])


def test_mixed_units_do_not_balance_each_other() -> None:
    with pytest.raises(ValidationFailed, match="balance"):
        domain.check_balanced([domain.Posting(A, "CNY", 5), domain.Posting(B, "PTS:x", -5)])
    with pytest.raises(ValidationFailed):
        domain.check_balanced([domain.Posting(A, "CNY", 5)])
    with pytest.raises(ValidationFailed):
        domain.check_balanced([domain.Posting(A, "CNY", True), domain.Posting(B, "CNY", -1)])


lots_strategy = st.lists(
    st.tuples(st.integers(0, 1000), st.sampled_from([None, 1, 5, 30]), st.integers(-3, 3)), max_size=12
)


@given(lots_strategy, st.integers(1, 6000))
@settings(max_examples=3000)
def test_consume_takes_first_expiring_usable_lots(spec: list[tuple[int, int | None, int]], amount: int) -> None:
    lots = [
        domain.LotState(
            uuid.UUID(int=i + 1),
            rem,
            T0 + timedelta(days=life) if life else None,
            T0 + timedelta(days=pend),
            T0 - timedelta(days=i),
        )
        for i, (rem, life, pend) in enumerate(spec)
    ]
    usable = domain.available(lots, T0)
    if amount > usable:
        with pytest.raises(ValueError, match="short"):
            domain.consume(lots, amount, T0)
        return
    taken = domain.consume(lots, amount, T0)
    assert sum(t for _, t in taken) == amount
    by_id = {lot.id: lot for lot in lots}
    for lot_id, t in taken:
        lot = by_id[lot_id]
        assert 0 < t <= lot.remaining
        assert lot.available_at <= T0
    # first-expiring first: every lot not fully used expires no earlier than every lot used
    used = {lot_id for lot_id, _ in taken}
    partial = [by_id[i] for i, t in taken if t < by_id[i].remaining]
    assert len(partial) <= 1
    key = lambda lot: (lot.expires_at is None, lot.expires_at or T0)  # noqa: E731
    untouched = [lot for lot in lots if lot.id not in used and domain.available([lot], T0)]
    if untouched and taken:
        assert max(key(by_id[i]) for i in used) <= min(key(lot) for lot in untouched)


class LotMachine(RuleBasedStateMachine):
    """Credits make lots, debits consume them; the lot total always equals the model balance."""

    def __init__(self) -> None:
        super().__init__()
        self.lots: dict[uuid.UUID, domain.LotState] = {}
        self.balance = 0
        self.now = T0

    @rule(n=st.integers(1, 1000), life=st.sampled_from([None, 2, 10]))
    def credit(self, n: int, life: int | None) -> None:
        lot_id = uuid.uuid4()
        self.lots[lot_id] = domain.LotState(
            lot_id, n, self.now + timedelta(days=life) if life else None, self.now, self.now
        )
        self.balance += n

    @precondition(lambda self: self.balance > 0)
    @rule(data=st.data())
    def debit(self, data: st.DataObject) -> None:
        usable = domain.available(self.lots.values(), self.now)
        if usable == 0:
            return
        n = data.draw(st.integers(1, usable))
        for lot_id, t in domain.consume(self.lots.values(), n, self.now):
            lot = self.lots[lot_id]
            self.lots[lot_id] = domain.LotState(
                lot.id, lot.remaining - t, lot.expires_at, lot.available_at, lot.earned_at
            )
        self.balance -= n

    @rule(days=st.integers(1, 5))
    def expire(self, days: int) -> None:
        self.now += timedelta(days=days)
        for lot_id, lot in list(self.lots.items()):
            if lot.expires_at and lot.expires_at <= self.now and lot.remaining:
                self.balance -= lot.remaining
                self.lots[lot_id] = domain.LotState(lot.id, 0, lot.expires_at, lot.available_at, lot.earned_at)

    @invariant()
    def lots_match_balance(self) -> None:
        assert sum(lot.remaining for lot in self.lots.values()) == self.balance
        assert all(lot.remaining >= 0 for lot in self.lots.values())


def test_lot_machine() -> None:
    run_state_machine_as_test(LotMachine, settings=settings(max_examples=1000, stateful_step_count=30, deadline=None))


def test_expiry_rules() -> None:
    earned = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai, 31 Jan
    assert domain.expiry_for(earned, "rolling_months", months=1) == datetime(
        2026, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai")
    )  # valid through 28 Feb (month end clamps)
    assert domain.expiry_for(earned, "end_of_year") == datetime(2027, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    two_years = domain.expiry_for(earned, "end_of_year", extra_years=1)
    assert two_years is not None and two_years.year == 2028
    assert domain.expiry_for(earned, "never") is None
    with pytest.raises(ValidationFailed):
        domain.expiry_for(earned, "sometimes")
    assert domain.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


def test_periods() -> None:
    assert domain.period_of(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "Asia/Shanghai") == "2026-12"
    assert domain.period_of(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "UTC") == "2026-11"
    assert domain.next_period("2026-12") == "2027-01"
    assert domain.landing_period("2026-11", {"2026-11", "2026-12"}) == ("2027-01", True)
    assert domain.landing_period("2026-11", {"2026-10"}) == ("2026-11", False)
    with pytest.raises(ValidationFailed):
        domain.period_of(datetime(2026, 1, 1), "UTC")
