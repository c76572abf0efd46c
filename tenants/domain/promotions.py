"""Price promotions at the till: which apply to a sale, and what each takes off which line.

Pure, called only by :func:`lianka.tenants.domain.pricing.quote` — so the quote, the sale, the web
till and the programme preview all price promotions with this one function (decision 0043).

Order (documented to merchants, README "Promotions at the till"):

1. **item promotions**, in the programme's order: percent off matching lines, buy-N-get-one over
   the matching units (the cheapest units are the free ones). A line takes at most one item
   promotion: a line a promotion discounted (or, for buy-N-get-one, counted towards a free unit) is
   not matched by a later one;
2. **满减** (spend and save) on the amount left after step 1: the highest step reached applies;
   several 满减 promotions each take their step from what is left, their thresholds all measured on
   the amount after step 1;
3. **member day** percent off on what is left after step 2;
4. then (in ``pricing``) the tier discount, coupons, points as cash, stored value.

Every discount is integer minor units rounded down (``FLOOR``) where a percentage is taken, and
never more than what is left of its line or of the order, so a sale never goes below zero.
Order-level discounts (steps 2–3) are spread over the lines in proportion to what is left of each
(largest remainder), so every applied promotion says what it took off each line and a refund of a
line gives back what the member paid for it.

**Exclusive promotions.** A promotion with ``stackable = false`` never combines with another: the
sale gets either every applicable stackable promotion together, or one non-stackable promotion
alone — whichever takes more off (ties: the stackable set, then the programme's order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Protocol

from lianka.platform.money import RoundingMode, largest_remainder, round_minor
from lianka.tenants.domain.programme import Programme, Promotion, PromotionKind, Tier


class LineLike(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def unit_price(self) -> int: ...
    @property
    def total(self) -> int: ...


@dataclass(frozen=True)
class Applied:
    """One promotion applied to a sale: its ``discount`` (minor units, 0 for a member day that only
    multiplies points) and what it took off each line, as (line index, amount) pairs."""

    code: str
    name: str
    kind: PromotionKind
    discount: int
    lines: tuple[tuple[int, int], ...] = ()
    multiplier: Decimal = Decimal(1)


@dataclass(frozen=True)
class When:
    """Where and when a sale happens, in the merchant's zone (``at`` None: time of day unknown, so a
    promotion limited to hours does not apply)."""

    day: date
    branch_code: str
    at: time | None = None


def eligible(
    p: Promotion,
    programme: Programme,
    *,
    member: bool,
    tier: Tier | None,
    when: When,
    uses: Mapping[str, int] | None = None,
) -> bool:
    """Whether ``p`` is open to this customer at this place and time (its terms decide the amount).
    ``uses``: how many of the member's sales already got each limited promotion."""
    if not p.active:
        return False
    members_only = p.members_only or p.min_tier or p.limit_per_member or p.kind == PromotionKind.MEMBER_DAY
    if members_only and not member:
        return False
    if p.limit_per_member is not None and (uses or {}).get(p.code, 0) >= p.limit_per_member:
        return False
    if p.min_tier:
        floor = programme.tier(p.min_tier)
        if floor is None or tier is None or tier.rank < floor.rank:
            return False
    if p.weekdays and when.day.weekday() not in p.weekdays:
        return False
    if p.branches and when.branch_code not in p.branches:
        return False
    if (p.starts and when.day < p.starts) or (p.ends and when.day > p.ends):
        return False
    if p.from_time or p.until_time:
        if when.at is None:
            return False
        if (p.from_time and when.at < p.from_time) or (p.until_time and when.at >= p.until_time):
            return False
    return True


def _matches(p: Promotion, line: LineLike) -> bool:
    if not (p.skus or p.categories):
        return True
    return line.sku in p.skus or bool(line.category and line.category in p.categories)


def _percent(amount: int, percent: int) -> int:
    return round_minor(Decimal(amount) * Decimal(percent) / 100, RoundingMode.FLOOR)


@dataclass
class _Basket:
    lines: Sequence[LineLike]
    left: list[int]
    taken: list[bool]
    remaining: int

    def spread(self, off: int) -> tuple[tuple[int, int], ...]:
        """Take ``off`` from the order, spread over the lines by what is left of each."""
        self.remaining -= off
        if not self.lines or not off:
            return ()
        shares = largest_remainder(off, self.left)
        for i, s in enumerate(shares):
            self.left[i] -= s
        return tuple((i, s) for i, s in enumerate(shares) if s)

    def take(self, offs: list[tuple[int, int]]) -> None:
        for i, off in offs:
            self.left[i] -= off
            self.remaining -= off


def _item(p: Promotion, b: _Basket) -> tuple[list[tuple[int, int]], list[int]]:
    """What an item promotion takes off which line, and the lines it used."""
    idx = [i for i, ln in enumerate(b.lines) if not b.taken[i] and _matches(p, ln)]
    offs: list[tuple[int, int]] = []
    if p.kind == PromotionKind.PERCENT_OFF:
        offs = [(i, off) for i in idx if (off := min(_percent(b.left[i], p.percent_off), b.left[i]))]
        return offs, [i for i, _ in offs]
    free = sum(b.lines[i].qty for i in idx) // (p.buy + 1)
    if not free:
        return [], []
    for i in sorted(idx, key=lambda i: (b.lines[i].unit_price, i)):
        n = min(free, b.lines[i].qty)
        free -= n
        if off := min(n * b.lines[i].unit_price, b.left[i]):
            offs.append((i, off))
    return sorted(offs), idx


def _apply(promos: Sequence[Promotion], lines: Sequence[LineLike], amount: int) -> list[Applied]:
    b = _Basket(lines, [ln.total for ln in lines], [False] * len(lines), amount)
    applied: list[Applied] = []
    for p in promos:
        if p.kind in (PromotionKind.PERCENT_OFF, PromotionKind.BUY_N_GET_ONE):
            offs, used = _item(p, b)
            if offs:
                b.take(offs)
                for i in used:
                    b.taken[i] = True
                applied.append(Applied(p.code, p.name, p.kind, sum(o for _, o in offs), tuple(offs)))
    base = b.remaining
    for p in promos:
        if p.kind == PromotionKind.SPEND_SAVE:
            reached = [s for s in p.steps if s.spend <= base]
            if reached:
                off = min(max(reached, key=lambda s: s.spend).off, b.remaining)
                applied.append(Applied(p.code, p.name, p.kind, off, b.spread(off)))
    for p in promos:
        if p.kind == PromotionKind.MEMBER_DAY:
            off = min(_percent(b.remaining, p.percent_off), b.remaining)
            if off or p.multiplier != 1:
                applied.append(Applied(p.code, p.name, p.kind, off, b.spread(off), p.multiplier))
    return applied


def apply(promos: Sequence[Promotion], lines: Sequence[LineLike], amount: int) -> tuple[Applied, ...]:
    """The promotions of ``promos`` (already eligible, in the programme's order) that apply to a
    basket of ``amount`` with ``lines`` (empty: an amount only, when item promotions cannot apply)."""
    options = [[p for p in promos if p.stackable]] + [[p] for p in promos if not p.stackable]
    best: list[Applied] = []
    best_key = (-1, False)
    for option in options:
        found = _apply(option, lines, amount)
        key = (sum(a.discount for a in found), bool(found))
        if key > best_key:
            best, best_key = found, key
    return tuple(best)


def line_discounts(applied: Sequence[Applied], n_lines: int) -> list[int]:
    """What all the promotions took off each of ``n_lines`` lines."""
    out = [0] * n_lines
    for a in applied:
        for i, off in a.lines:
            out[i] += off
    return out
