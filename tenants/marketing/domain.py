"""The segment rule document: what a saved audience is, as data (pure; no SQL here).

A segment is ``{"version": 1, "root": {"kind": "group", "op": "and", "conditions": [...]}}``: AND/OR
groups (optionally negated) of typed conditions, each a msgspec struct tagged by ``kind``. The
document is decoded strictly (unknown fields, wrong types and out-of-range values are refused with
the path of the field) and then checked by :func:`check` for what types cannot say (a range whose
minimum exceeds its maximum, nesting too deep). ``queries.audience`` compiles it to one SQL query.

Versioning: ``version`` names the document's shape. A future shape gets a new number and an
``upgrade`` step here; stored documents keep the version they were saved with.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from lianka.tenants.domain.lifecycle import Stage

VERSION: Literal[1] = 1
MAX_DEPTH = 4
MAX_CONDITIONS = 40

Score = Annotated[int, msgspec.Meta(ge=1, le=5)]
Days = Annotated[int, msgspec.Meta(ge=1, le=3660)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10**9)]
Month = Annotated[int, msgspec.Meta(ge=1, le=12)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    PORTAL = "portal"
    WECHAT = "wechat"
    #: consent to offers funded by the merchant's alliance partners (decision 0044); not a sending channel
    ALLIANCE = "alliance"


class _Rule(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="kind"):
    pass


class TierIs(_Rule, tag="tier", frozen=True):
    """The member's current tier is one of ``tiers`` (tier codes of the programme)."""

    tiers: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=20)]


class HasTags(_Rule, tag="tags", frozen=True):
    """The member carries any (or all) of ``tags``."""

    tags: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=20)]
    match: Literal["any", "all"] = "any"


class InStage(_Rule, tag="stage", frozen=True):
    """The lifecycle stage (``tenants/domain/lifecycle.py``) is one of ``stages``."""

    stages: Annotated[list[Stage], msgspec.Meta(min_length=1)]


class RfmScore(_Rule, tag="rfm", frozen=True):
    """The member's R, F or M score (1–5, nightly) is within [min, max]; unscored members never match."""

    score: Literal["recency", "frequency", "monetary"]
    min: Score = 1
    max: Score = 5


class BirthdayMonth(_Rule, tag="birthday_month", frozen=True):
    months: Annotated[list[Month], msgspec.Meta(min_length=1, max_length=12)]


class Joined(_Rule, tag="joined", frozen=True):
    """Joined on or after ``on_or_after`` and before ``before`` (dates; either may be omitted)."""

    on_or_after: date | None = None
    before: date | None = None


class LastPurchase(_Rule, tag="last_purchase", frozen=True):
    """The last purchase was on or after / before the dates; members who never bought never match."""

    on_or_after: date | None = None
    before: date | None = None


class SpendInWindow(_Rule, tag="spend", frozen=True):
    """Qualifying spend (fen) over the last ``days`` days, sales not wholly refunded, within [min, max]."""

    days: Days
    min: Amount | None = None
    max: Amount | None = None


class VisitsInWindow(_Rule, tag="visits", frozen=True):
    """Number of purchases over the last ``days`` days, within [min, max]."""

    days: Days
    min: Count | None = None
    max: Count | None = None


class AtBranch(_Rule, tag="branch", frozen=True):
    """Joined at one of ``branches`` (``how="joined"``), or bought there (within ``days`` when given)."""

    branches: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=50)]
    how: Literal["joined", "visited"] = "joined"
    days: Days | None = None


class PointsBalance(_Rule, tag="points", frozen=True):
    min: Amount | None = None
    max: Amount | None = None


class StoredValueBalance(_Rule, tag="stored_value", frozen=True):
    """Stored value (paid-in plus bonus, fen) within [min, max]."""

    min: Amount | None = None
    max: Amount | None = None


class PointsExpiring(_Rule, tag="points_expiring", frozen=True):
    """At least ``min`` available points expire within the next ``days`` days, or — ``this_month`` —
    by the end of the current month in the merchant's time zone (one of the two)."""

    days: Days | None = None
    min: Annotated[int, msgspec.Meta(ge=1, le=10**15)] = 1
    this_month: bool = False


class HoldsCoupon(_Rule, tag="coupon", frozen=True):
    """Holds an unused, unexpired coupon of one of ``templates``."""

    templates: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=50)]


class Consent(_Rule, tag="consent", frozen=True):
    """Has (``granted``) or has not granted marketing consent on ``channel``."""

    channel: Channel
    granted: bool = True


class Group(_Rule, tag="group", frozen=True):
    """``op`` over ``conditions``; ``negate`` inverts the group (NOT)."""

    op: Literal["and", "or"] = "and"
    conditions: Annotated[list[Node], msgspec.Meta(max_length=MAX_CONDITIONS)] = msgspec.field(default_factory=list)
    negate: bool = False


Condition = (
    TierIs
    | HasTags
    | InStage
    | RfmScore
    | BirthdayMonth
    | Joined
    | LastPurchase
    | SpendInWindow
    | VisitsInWindow
    | AtBranch
    | PointsBalance
    | StoredValueBalance
    | PointsExpiring
    | HoldsCoupon
    | Consent
)
Node = Condition | Group


class Rules(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    version: Literal[1]
    root: Group


#: the condition kinds, in the order the console's rule builder lists them
KINDS: tuple[str, ...] = tuple(
    str(t.__struct_config__.tag)
    for t in (
        TierIs,
        HasTags,
        InStage,
        RfmScore,
        BirthdayMonth,
        Joined,
        LastPurchase,
        SpendInWindow,
        VisitsInWindow,
        AtBranch,
        PointsBalance,
        StoredValueBalance,
        PointsExpiring,
        HoldsCoupon,
        Consent,
    )
)


class RuleError(ValueError):
    """A rule document that cannot be a segment; ``field`` is the JSON path of the offending part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def decode(raw: Any) -> Rules:
    """The document from parsed JSON (strict: ``"3"`` is not a number), then :func:`check`-ed."""
    try:
        rules = msgspec.convert(raw, Rules, strict=True)
    except msgspec.ValidationError as e:
        message = str(e)
        field = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise RuleError(message.split(" - at `", maxsplit=1)[0], field) from None
    check(rules)
    return rules


def encode(rules: Rules) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(rules)
    return out


def _range(lo: int | None, hi: int | None, path: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise RuleError("min is greater than max", f"{path}.min")


def _dates(lo: date | None, hi: date | None, path: str) -> None:
    if lo is not None and hi is not None and lo >= hi:
        raise RuleError("on_or_after must be before before", f"{path}.on_or_after")
    if lo is None and hi is None:
        raise RuleError("give on_or_after, before, or both", path)


def check(rules: Rules) -> None:
    """What the types cannot say. Raises :class:`RuleError` naming the field."""
    count = 0

    def walk(node: Node, path: str, depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_CONDITIONS:
            raise RuleError(f"at most {MAX_CONDITIONS} conditions and groups", path)
        match node:
            case Group():
                if depth > MAX_DEPTH:
                    raise RuleError(f"groups nest at most {MAX_DEPTH} deep", path)
                if not node.conditions and depth > 1:
                    raise RuleError("a group needs at least one condition", f"{path}.conditions")
                for i, child in enumerate(node.conditions):
                    walk(child, f"{path}.conditions[{i}]", depth + 1)
            case RfmScore() | SpendInWindow() | VisitsInWindow() | PointsBalance() | StoredValueBalance():
                _range(node.min, node.max, path)
                if node.min is None and node.max is None:
                    raise RuleError("give min, max, or both", path)
            case Joined() | LastPurchase():
                _dates(node.on_or_after, node.before, path)
            case PointsExpiring():
                if (node.days is None) == (not node.this_month):
                    raise RuleError("give days or this_month, not both", f"{path}.days")
            case AtBranch():
                if node.how == "joined" and node.days is not None:
                    raise RuleError("days applies to visits only", f"{path}.days")
            case _:
                pass

    walk(rules.root, "$.root", 1)


def referenced_ids(rules: Rules) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """(branch ids, coupon template ids) the document names, for the existence check."""
    branches: set[uuid.UUID] = set()
    templates: set[uuid.UUID] = set()

    def walk(node: Node) -> None:
        if isinstance(node, Group):
            for child in node.conditions:
                walk(child)
        elif isinstance(node, AtBranch):
            branches.update(node.branches)
        elif isinstance(node, HoldsCoupon):
            templates.update(node.templates)

    walk(rules.root)
    return branches, templates


def everyone() -> Rules:
    return Rules(version=VERSION, root=Group())
