"""Lucky-draw rules that need no database (decision 0042): the shape of a draw and its prizes, the
choice of a prize from basis-point chances, and the merchant's local day for free-once-a-day.

Chances are integer basis points out of :data:`SCALE` (10 000 = certain); what the prizes leave is
"no prize". The choice takes one uniform integer in ``[0, SCALE)`` from an injected source —
``secrets.randbelow`` in production, a seeded ``random.Random`` in tests — and walks the prizes in
their order, so each prize is won with exactly its chance (before stock and budget run out).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

SCALE = 10_000
KINDS = ("points", "coupon", "gift")
MAX_PRIZES = 20
MAX_STOCK = 10_000_000
MAX_FEN = 10**12

#: ``randbelow(n)``: a uniform integer in [0, n)
RandBelow = Callable[[int], int]


class DrawError(ValueError):
    """A rule of a draw's shape is broken; ``field`` names the part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PrizeSpec:
    name: str
    kind: str
    chance_bp: int
    stock: int
    points: int = 0
    coupon_template: str | None = None
    gift: str = ""
    value: int = 0


@dataclass(frozen=True)
class DrawSpec:
    name: str
    starts_at: datetime
    ends_at: datetime
    cost_points: int
    budget: int | None
    prizes: Sequence[PrizeSpec]


def check(spec: DrawSpec) -> None:
    """:class:`DrawError` naming the first field at fault, or nothing."""
    if not spec.name.strip() or len(spec.name) > 100:
        raise DrawError("a name of 1 to 100 characters", "name")
    if spec.starts_at.tzinfo is None or spec.ends_at.tzinfo is None:
        raise DrawError("times need a time zone", "starts_at")
    if spec.ends_at <= spec.starts_at:
        raise DrawError("ends_at must be after starts_at", "ends_at")
    if not 0 <= spec.cost_points <= 1_000_000:
        raise DrawError("cost_points is 0 (free once a day) to 1 000 000", "cost_points")
    if spec.budget is not None and not 0 <= spec.budget <= MAX_FEN:
        raise DrawError("the budget is 0 to 10^12 fen", "budget")
    if not 1 <= len(spec.prizes) <= MAX_PRIZES:
        raise DrawError(f"1 to {MAX_PRIZES} prizes", "prizes")
    total = 0
    for i, p in enumerate(spec.prizes):
        where = f"prizes[{i}]"
        if not p.name.strip() or len(p.name) > 100:
            raise DrawError("a prize name of 1 to 100 characters", f"{where}.name")
        if p.kind not in KINDS:
            raise DrawError(f"kind is one of {', '.join(KINDS)}", f"{where}.kind")
        if not 1 <= p.chance_bp <= SCALE:
            raise DrawError(f"chance_bp is 1 to {SCALE} (basis points)", f"{where}.chance_bp")
        if not 0 <= p.stock <= MAX_STOCK:
            raise DrawError(f"stock is 0 to {MAX_STOCK}", f"{where}.stock")
        if not 0 <= p.value <= MAX_FEN:
            raise DrawError("value is 0 to 10^12 fen", f"{where}.value")
        if (p.kind == "points") != (p.points > 0) or p.points > 1_000_000:
            raise DrawError("points prizes, and only they, give 1 to 1 000 000 points", f"{where}.points")
        if (p.kind == "coupon") != bool(p.coupon_template):
            raise DrawError("coupon prizes, and only they, name a coupon template", f"{where}.coupon_template")
        if (p.kind == "gift") != bool(p.gift.strip()) or len(p.gift) > 200:
            raise DrawError("gift prizes, and only they, describe the gift (up to 200 characters)", f"{where}.gift")
        total += p.chance_bp
    if total > SCALE:
        raise DrawError(f"the chances add up to {total} basis points, more than {SCALE}", "prizes")


def choose(chances: Sequence[int], randbelow: RandBelow = secrets.randbelow) -> int | None:
    """The index of the prize drawn, or None for "no prize". ``chances`` in basis points, sum ≤ SCALE."""
    roll = randbelow(SCALE)
    for i, chance in enumerate(chances):
        if roll < chance:
            return i
        roll -= chance
    return None


def local_day(at: datetime, tz: str) -> date:
    """The merchant's calendar day at ``at`` (free draws reset at local midnight)."""
    return at.astimezone(ZoneInfo(tz)).date()


def is_open(starts_at: datetime, ends_at: datetime, active: bool, at: datetime) -> bool:
    return active and starts_at <= at < ends_at
