from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.platform.money import MAX_MINOR, Money, RoundingMode, points_value, round_minor


def test_parse_and_format() -> None:
    assert Money.of("12.34").minor == 1234
    assert Money.of("12.34").format() == "¥12.34"
    assert Money(-500).format() == "-¥5.00"
    assert Money(123456789).format() == "¥1,234,567.89"
    assert Money.of("100", "JPY").format() == "¥100"


@pytest.mark.parametrize("bad", [1.5, "12", True, None])
def test_minor_must_be_int(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(bad)  # type: ignore[arg-type]


def test_rejects_too_many_decimals_and_overflow_and_unknown_currency() -> None:
    with pytest.raises(ValueError, match="decimals"):
        Money.of("1.234")
    with pytest.raises(ValueError, match="range"):
        Money(MAX_MINOR + 1)
    with pytest.raises(ValueError, match="currency"):
        Money(1, "XXX")


def test_currency_mismatch() -> None:
    with pytest.raises(ValueError, match="mismatch"):
        Money(1, "CNY") + Money(1, "USD")


def test_rounding_modes_are_named() -> None:
    assert round_minor(Decimal("2.5")) == 2  # half even
    assert round_minor(Decimal("3.5")) == 4
    assert round_minor(Decimal("2.5"), RoundingMode.HALF_UP) == 3
    assert round_minor(Decimal("2.9"), RoundingMode.DOWN) == 2
    assert round_minor(Decimal("-2.1"), RoundingMode.DOWN) == -3
    with pytest.raises(TypeError):
        round_minor(2.5)  # type: ignore[arg-type]


def test_points_value_matches_the_alliance_example() -> None:
    # 10,000 points at ¥0.010 → ¥100.00; 6,000 at ¥0.008 → ¥48.00
    assert points_value(10_000, Decimal("0.010")) == Money(10_000)
    assert points_value(6_000, Decimal("0.008")) == Money(4_800)
    assert points_value(1, Decimal("0.005")) == Money(0)  # 0.5 fen → half-even → 0
    assert points_value(3, Decimal("0.005")) == Money(2)  # 1.5 fen → 2


@given(st.integers(-MAX_MINOR // 2, MAX_MINOR // 2), st.integers(-MAX_MINOR // 2, MAX_MINOR // 2))
def test_addition_is_exact(a: int, b: int) -> None:
    assert (Money(a) + Money(b)).minor == a + b
    assert (Money(a) - Money(b) + Money(b)) == Money(a)
