"""Every rounding of the alliance area goes through ``platform.money.round_minor`` with a named mode
(issue 12), and gives exactly what the code it replaced gave: the earn's points (``Decimal``'s
``to_integral_value(ROUND_DOWN)``) and a refund's share of a clearing line (Python's ``//``)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from lianka.alliance.alliances.domain import points_earned
from lianka.alliance.settlement.domain import pro_rata

#: earn rates as terms accept them: 0 to 1000 points per major unit, a few decimals
rates = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)


def earned_before(amount: int, rate: Decimal) -> int:
    """What ``alliances.services.earn`` computed before the rounding went through ``round_minor``."""
    return int((Decimal(amount) / 100 * rate).to_integral_value(ROUND_DOWN))


@given(amount=st.integers(min_value=1, max_value=10**11), rate=rates)
@example(amount=99, rate=Decimal("1"))  # ¥0.99 earns nothing at 1 point per yuan
@example(amount=10**11, rate=Decimal("1000"))  # the largest purchase at the largest rate
@example(amount=12_345, rate=Decimal("0.333"))
def test_points_earned_are_what_they_were(amount: int, rate: Decimal) -> None:
    assert points_earned(amount, rate) == earned_before(amount, rate)


def test_points_earned_never_round_up() -> None:
    assert points_earned(199, Decimal("1")) == 1
    assert points_earned(26_800, Decimal("1")) == 268
    assert points_earned(100, Decimal("0.999")) == 0


@given(
    amount=st.integers(min_value=0, max_value=10**15), whole=st.integers(min_value=1, max_value=10**15), data=st.data()
)
@example(amount=10**15, whole=10**15 - 1, data=None)
def test_a_refunds_share_is_what_floor_division_gave(amount: int, whole: int, data: st.DataObject | None) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole)) if data is not None else whole - 1
    assert pro_rata(amount, part, whole) == amount * part // whole


def test_a_share_just_below_a_whole_number_is_not_rounded_up() -> None:
    """Quotients a hair under an integer, with more digits than the default decimal context (28)
    keeps: computed there, they would round up to the integer and the floor would be one too high."""
    whole = 10**15 - 1
    for amount, part in [(whole - 1, whole), (10**15, whole - 1), (3 * whole - 1, 1), (whole * 7 - 1, whole)]:
        assert pro_rata(amount, part, whole) == amount * part // whole
    assert pro_rata(10**30 - 1, 1, 10**15) == 10**15 - 1
