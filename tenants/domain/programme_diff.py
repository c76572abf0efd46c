"""What changed between two programme versions, field by field.

Pure: takes two :class:`Programme` documents, returns a list of :class:`Change` — a tier, rule or
stored-value plan added or removed, or one field of a section or of an item changed — each with the
*unit* of its value (an amount in minor units, points, a percentage, a multiplier…), so that a page
can say "Gold · threshold ¥3,000.00 → ¥5,000.00" in the reader's language without knowing the
document's shape. Items of a list are matched by their code, so reordering them is no change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

import msgspec

from lianka.tenants.domain.programme import Programme, Tier, TierQualification


class Unit(StrEnum):
    """How a value reads."""

    MONEY = "money"  # an int of minor units of the merchant's currency
    PRICE = "price"  # a Decimal of major units (the money value of one point)
    POINTS = "points"
    PERCENT = "percent"
    MULTIPLIER = "multiplier"
    NUMBER = "number"  # a count: months, days, a rank, an earn rate
    FLAG = "flag"
    CHOICE = "choice"  # one value of an enumeration
    TEXT = "text"
    LIST = "list"
    DATE = "date"
    ITEM = "item"  # a whole tier, rule or plan (added or removed)


#: (section, field) -> unit, where the type alone does not say it
_UNITS: dict[tuple[str, str], Unit] = {
    ("points", "cash_value_per_point"): Unit.PRICE,
    ("points", "cash_max_share_percent"): Unit.PERCENT,
    ("points", "cash_min_points"): Unit.POINTS,
    ("tiers", "discount_percent"): Unit.PERCENT,
    ("tiers", "points_multiplier"): Unit.MULTIPLIER,
    ("tiers", "birthday_multiplier"): Unit.MULTIPLIER,
    ("rules", "points"): Unit.POINTS,
    ("rules", "multiplier"): Unit.MULTIPLIER,
    ("rules", "cap_per_day"): Unit.POINTS,
    ("rules", "cap_per_member"): Unit.POINTS,
    ("rules", "cap_total"): Unit.POINTS,
    ("rules", "min_spend"): Unit.MONEY,
    ("join", "single_purchase_min"): Unit.MONEY,
    ("join", "cumulative_min"): Unit.MONEY,
    ("plans", "pay"): Unit.MONEY,
    ("plans", "get"): Unit.MONEY,
    ("promotions", "percent_off"): Unit.PERCENT,
    ("promotions", "multiplier"): Unit.MULTIPLIER,
}


@dataclass(frozen=True)
class Change:
    """One difference. ``item`` is the code of the tier, rule or plan it is about (None for a field
    of a section) and ``item_name`` how people call it (a tier's or plan's name, a rule's code);
    ``field`` is the field's path inside the section or item (``expiry.months``), empty when the
    whole item was added or removed. ``old`` is None for an added item, ``new`` for a removed one."""

    section: str
    item: str | None
    item_name: str | None
    field: str
    old: object
    new: object
    unit: Unit

    @property
    def kind(self) -> str:
        if self.unit is Unit.ITEM:
            return "added" if self.old is None else "removed"
        return "changed"


def _unit(section: str, name: str, value: object) -> Unit:
    known = _UNITS.get((section, name))
    if known is not None:
        return known
    if isinstance(value, bool):
        return Unit.FLAG
    if isinstance(value, StrEnum):
        return Unit.CHOICE
    if isinstance(value, int | Decimal):
        return Unit.NUMBER
    if isinstance(value, date):
        return Unit.DATE
    if isinstance(value, list | dict):
        return Unit.LIST
    return Unit.TEXT


def _threshold_unit(old: msgspec.Struct, new: msgspec.Struct) -> Unit:
    """A spend threshold is money, a points threshold points (the tier's qualification says)."""
    quals = {getattr(old, "qualification", None), getattr(new, "qualification", None)}
    if quals == {TierQualification.SPEND}:
        return Unit.MONEY
    if quals == {TierQualification.POINTS}:
        return Unit.POINTS
    return Unit.NUMBER


def _fields(
    section: str, old: msgspec.Struct, new: msgspec.Struct, prefix: str = ""
) -> Iterator[tuple[str, object, object, Unit]]:
    """(path, old, new, unit) of each differing field of two structs of one type (nested ones flattened)."""
    for name in new.__struct_fields__:
        a, b = getattr(old, name), getattr(new, name)
        if isinstance(b, msgspec.Struct) and isinstance(a, msgspec.Struct):
            yield from _fields(section, a, b, f"{prefix}{name}.")
        elif a != b:
            yield f"{prefix}{name}", a, b, _unit(section, name, b if b is not None else a)


def _code(item: msgspec.Struct) -> str:
    return str(getattr(item, "code", ""))


def _section(section: str, old: msgspec.Struct, new: msgspec.Struct) -> list[Change]:
    return [Change(section, None, None, path, a, b, unit) for path, a, b, unit in _fields(section, old, new)]


def _items(section: str, old: Sequence[msgspec.Struct], new: Sequence[msgspec.Struct], name_of: str) -> list[Change]:
    """Items (tiers, rules, plans: each has a ``code``) matched by code: removed ones first, then added
    and changed ones in the new document's order."""
    before = {_code(x): x for x in old}
    after = {_code(x): x for x in new}
    out = [
        Change(section, code, str(getattr(x, name_of)), "", x, None, Unit.ITEM)
        for code, x in before.items()
        if code not in after
    ]
    for code, x in after.items():
        label = str(getattr(x, name_of))
        was = before.get(code)
        if was is None:
            out.append(Change(section, code, label, "", None, x, Unit.ITEM))
            continue
        for path, a, b, unit in _fields(section, was, x):
            is_threshold = path == "threshold" and isinstance(x, Tier)
            out.append(Change(section, code, label, path, a, b, _threshold_unit(was, x) if is_threshold else unit))
    return out


def diff(old: Programme, new: Programme) -> list[Change]:
    """Every difference from ``old`` to ``new``, in the document's order of sections."""
    return [
        *_section("points", old.points, new.points),
        *_items("tiers", old.tiers, new.tiers, "name"),
        *_section("tier_policy", old.tier_policy, new.tier_policy),
        *_items("rules", old.rules, new.rules, "code"),
        *_section("join", old.join, new.join),
        *_section("stored_value", _without_plans(old), _without_plans(new)),
        *_items("plans", old.stored_value.plans, new.stored_value.plans, "name"),
        *_section("refunds", old.refunds, new.refunds),
        *_items("promotions", old.promotions, new.promotions, "name"),
    ]


def _without_plans(p: Programme) -> msgspec.Struct:
    return msgspec.structs.replace(p.stored_value, plans=[])
