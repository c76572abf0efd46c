from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

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
    assert round_minor(Decimal("2.9"), RoundingMode.FLOOR) == 2
    assert round_minor(Decimal("-2.1"), RoundingMode.FLOOR) == -3
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


#: value → what each mode makes of it; refunds and reversals give negative amounts, so every mode is
#: pinned on both sides of zero, on ties and off them
ROUNDED = {
    "2.5": {"half_even": 2, "half_up": 3, "floor": 2, "ceiling": 3, "toward_zero": 2},
    "3.5": {"half_even": 4, "half_up": 4, "floor": 3, "ceiling": 4, "toward_zero": 3},
    "2.1": {"half_even": 2, "half_up": 2, "floor": 2, "ceiling": 3, "toward_zero": 2},
    "2.9": {"half_even": 3, "half_up": 3, "floor": 2, "ceiling": 3, "toward_zero": 2},
    "-2.5": {"half_even": -2, "half_up": -3, "floor": -3, "ceiling": -2, "toward_zero": -2},
    "-3.5": {"half_even": -4, "half_up": -4, "floor": -4, "ceiling": -3, "toward_zero": -3},
    "-2.1": {"half_even": -2, "half_up": -2, "floor": -3, "ceiling": -2, "toward_zero": -2},
    "-2.9": {"half_even": -3, "half_up": -3, "floor": -3, "ceiling": -2, "toward_zero": -2},
    "-0.5": {"half_even": 0, "half_up": -1, "floor": -1, "ceiling": 0, "toward_zero": 0},
    "-7": {"half_even": -7, "half_up": -7, "floor": -7, "ceiling": -7, "toward_zero": -7},
}


@pytest.mark.parametrize("mode", list(RoundingMode))
@pytest.mark.parametrize("value", list(ROUNDED))
def test_every_mode_on_positive_and_negative_amounts(value: str, mode: RoundingMode) -> None:
    want = ROUNDED[value][mode.value]
    assert round_minor(Decimal(value), mode) == want
    assert round_minor(Fraction(value), mode) == want  # the exact-ratio form agrees


def test_every_mode_is_pinned() -> None:
    assert {m.value for m in RoundingMode} == set(ROUNDED["2.5"])


def test_down_is_the_legacy_name_of_floor() -> None:
    """Stored programme versions and API clients say ``"down"``: it reads as FLOOR (towards −∞)."""
    import msgspec

    from lianka.tenants.domain.programme import PointsConfig

    assert RoundingMode("down") is RoundingMode.FLOOR
    assert msgspec.convert({"rounding": "down"}, PointsConfig, strict=False).rounding is RoundingMode.FLOOR
    assert msgspec.json.decode(b'{"rounding": "down"}', type=PointsConfig).rounding is RoundingMode.FLOOR
    assert PointsConfig().rounding is RoundingMode.FLOOR
    assert msgspec.to_builtins(PointsConfig())["rounding"] == "floor"
    with pytest.raises(ValueError, match="not a valid RoundingMode"):
        RoundingMode("up")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rounding": "up"}, PointsConfig, strict=False)


def test_fractions_round_exactly_where_a_decimal_division_would_not() -> None:
    """A 31-digit ratio just below an integer: Decimal's 28-digit division rounds it up to the integer
    first; the Fraction form floors it as ``//`` does."""
    n, d = 10**30 - 1, 10**15
    assert round_minor(Fraction(n, d), RoundingMode.FLOOR) == n // d
    assert round_minor(Decimal(n) / Decimal(d), RoundingMode.FLOOR) == n // d + 1  # why Fractions exist here


@given(st.integers(-(10**24), 10**24), st.integers(1, 10**12), st.sampled_from(list(RoundingMode)))
def test_fraction_and_decimal_agree_given_enough_precision(n: int, d: int, mode: RoundingMode) -> None:
    with localcontext() as ctx:
        ctx.prec = 80  # enough digits for this range: the Decimal quotient is exact or far from a boundary
        exact = Decimal(n) / Decimal(d)
        assert round_minor(Fraction(n, d), mode) == round_minor(exact, mode)
    if mode is RoundingMode.FLOOR:
        assert round_minor(Fraction(n, d), mode) == n // d
