"""Money and points value types.

Money is an integer number of minor units (fen for CNY) with its ISO 4217 currency; points are plain
integers. ``Decimal`` appears only for prices and rates, and every conversion from a rate or a ratio
to an amount goes through :func:`round_minor` with a *named* rounding mode, exactly once per posting
(an integer ``//`` on money would round too, silently and towards −∞).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Self

#: amounts are stored in BIGINT columns; keep a wide margin below 2**63.
MAX_MINOR = 10**15

_MINOR_DIGITS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0, "KRW": 0, "TWD": 2, "SGD": 2, "GBP": 2}


class RoundingMode(StrEnum):
    """How an exact quantity becomes a whole number of minor units (or points).

    Refunds and reversals produce negative amounts, so each mode says what it does to them:

    * ``HALF_EVEN`` — to the nearest; a tie goes to the even neighbour, whatever the sign:
      2.5 → 2, 3.5 → 4, −2.5 → −2, −3.5 → −4. Banker's rounding: the default for postings.
    * ``HALF_UP`` — to the nearest; a tie goes *away from zero* (the sign is kept, as by hand):
      2.5 → 3, −2.5 → −3.
    * ``FLOOR`` — towards −∞: 2.9 → 2, −2.1 → −3. Never gives a fraction away on a positive amount
      (points earned, a percentage off), but takes one more on a negative amount.
    * ``CEILING`` — towards +∞: 2.1 → 3, −2.9 → −2.
    * ``TOWARD_ZERO`` — drops the fraction (truncation): 2.9 → 2, −2.9 → −2. The same as ``FLOOR``
      for amounts ≥ 0; the magnitude never grows.

    ``"down"``, the name ``FLOOR`` had before, is still read as ``FLOOR`` (:meth:`_missing_`): stored
    programme versions and API clients carry it (decision 0019).
    """

    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    FLOOR = "floor"
    CEILING = "ceiling"
    TOWARD_ZERO = "toward_zero"

    @classmethod
    def _missing_(cls, value: object) -> RoundingMode | None:
        """The legacy spelling ``"down"`` (it always meant towards −∞) is ``FLOOR``; msgspec honours this
        when it decodes a programme document."""
        return cls.FLOOR if value == "down" else None

    @property
    def decimal_mode(self) -> str:
        return _DECIMAL_MODES[self]


_DECIMAL_MODES = {
    RoundingMode.HALF_EVEN: ROUND_HALF_EVEN,
    RoundingMode.HALF_UP: ROUND_HALF_UP,  # decimal's HALF_UP: ties away from zero
    RoundingMode.FLOOR: ROUND_FLOOR,
    RoundingMode.CEILING: ROUND_CEILING,
    RoundingMode.TOWARD_ZERO: ROUND_DOWN,  # decimal's "DOWN" is towards zero
}


def minor_digits(currency: str) -> int:
    try:
        return _MINOR_DIGITS[currency]
    except KeyError:
        raise ValueError(f"unsupported currency: {currency!r}") from None


def round_minor(value: Decimal | Fraction, mode: RoundingMode = RoundingMode.HALF_EVEN) -> int:
    """The one rounding function: a quantity of minor units (or points) to an integer, by ``mode``.

    ``value`` is a ``Decimal`` (prices and rates) or an exact ``Fraction`` — a ratio of integers such as
    ``Fraction(amount * bonus, principal)``, which a ``Decimal`` division would first round to 28
    digits. Floats are refused.
    """
    if isinstance(value, Fraction):
        return _round_fraction(value, mode)
    if not isinstance(value, Decimal):
        raise TypeError("round_minor takes a Decimal or a Fraction; floats are never used for money")
    return int(value.quantize(Decimal(1), rounding=mode.decimal_mode))


def _round_fraction(value: Fraction, mode: RoundingMode) -> int:
    """Exact integer rounding of ``numerator / denominator`` (the denominator is always positive)."""
    n, d = value.numerator, value.denominator
    floor, rest = divmod(n, d)  # 0 <= rest < d
    if rest == 0 or mode is RoundingMode.FLOOR:
        return floor
    if mode is RoundingMode.CEILING:
        return floor + 1
    if mode is RoundingMode.TOWARD_ZERO:
        return floor if n >= 0 else floor + 1
    if 2 * rest != d:  # nearest, no tie
        return floor + (2 * rest > d)
    if mode is RoundingMode.HALF_EVEN:
        return floor + (floor % 2)
    return floor + 1 if n > 0 else floor  # HALF_UP: a tie goes away from zero


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError("Money.minor must be an int of minor units")
        if abs(self.minor) > MAX_MINOR:
            raise ValueError("amount out of range")
        minor_digits(self.currency)

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str = "CNY") -> Self:
        """Parse a major-unit amount such as ``"12.34"`` exactly (no rounding allowed)."""
        d = Decimal(amount) * (Decimal(10) ** minor_digits(currency))
        if d != d.to_integral_value():
            raise ValueError(f"{amount} has more decimals than {currency} allows")
        return cls(int(d), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def times(self, rate: Decimal, mode: RoundingMode = RoundingMode.HALF_EVEN) -> Money:
        return Money(round_minor(Decimal(self.minor) * rate, mode), self.currency)

    @property
    def major(self) -> Decimal:
        return Decimal(self.minor).scaleb(-minor_digits(self.currency))

    def format(self) -> str:
        """``¥12.34`` for CNY; ``-¥5.00`` for negatives."""
        symbol = {"CNY": "¥", "USD": "$", "EUR": "€", "JPY": "¥", "HKD": "HK$", "GBP": "£"}.get(
            self.currency, self.currency + " "
        )
        digits = minor_digits(self.currency)
        sign = "-" if self.minor < 0 else ""
        q = f"{abs(self.major):,.{digits}f}"
        return f"{sign}{symbol}{q}"

    def __str__(self) -> str:
        return self.format()


def points_value(
    points: int, price_per_point: Decimal, currency: str = "CNY", mode: RoundingMode = RoundingMode.HALF_EVEN
) -> Money:
    """The money value of ``points`` at a major-unit price per point (e.g. ¥0.010), rounded once."""
    scale = Decimal(10) ** minor_digits(currency)
    return Money(round_minor(Decimal(points) * price_per_point * scale, mode), currency)


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split the integer ``total`` in proportion to non-negative ``weights``: each share is rounded
    down, and the units left go to the largest remainders (ties to the earlier weight), so the
    shares always sum to ``total`` exactly."""
    if total < 0:
        raise ValueError("total must not be negative")
    whole = sum(weights)
    if not weights or whole <= 0:
        if total:
            raise ValueError("cannot split a non-zero total over zero weights")
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:left]:
        shares[i] += 1
    return shares
