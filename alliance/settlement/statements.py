"""What a month-end close produces, pure: the scope it settles, each entity's lines, the statements
with their checksums, and the summary that proves they add up.

No I/O here: ``movements.py`` reads the clearing accounts into :class:`Lines`, :func:`build` turns
them into statements, and ``close.py`` stores them (``settlement_statements``: one row per
:class:`Statement`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from lianka.alliance.settlement.domain import LineKind
from lianka.platform.errors import ValidationFailed

# --- what a book settles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spoke:
    """A branch that settles with the hub (a chain's branch, or a partner's branch in an alliance)."""

    id: uuid.UUID
    code: str
    name: str
    merchant_id: uuid.UUID


@dataclass(frozen=True)
class Party:
    """A merchant of an alliance, named on statements by its slug and name (never by its id alone)."""

    id: uuid.UUID
    slug: str
    name: str


@dataclass(frozen=True)
class Scope:
    """What a book settles: its hub, its spokes, and (alliances) which merchant each spoke belongs to.

    ``hub_code``/``hub_name`` name the book (the merchant of a chain, the alliance); the hub's own
    statement of an alliance names its ``operator``, who is the hub and no partner.
    """

    kind: str  # "chain" | "alliance"
    book: uuid.UUID
    hub_code: str
    hub_name: str
    currency: str
    timezone: str  # months of the book are months in this zone
    created_at: datetime
    spokes: tuple[Spoke, ...]
    #: every merchant of an alliance, operator included (merchant id -> party); empty for a chain
    partners: dict[uuid.UUID, Party] = field(default_factory=dict)
    operator: Party | None = None

    @property
    def hub_merchants(self) -> set[uuid.UUID]:
        """The merchant that is the hub of an alliance (its operator): its branches' lines are its own."""
        return {self.operator.id} if self.kind == "alliance" and self.operator is not None else set()


# --- lines and statements ---------------------------------------------------------------------------


@dataclass
class Lines:
    """One entity's movements over a period: money and points per line, and what of it came late."""

    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    late: int = 0
    #: one per (late entry, spoke, line): what ``late`` is the sum of
    late_items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Lines, sign: int = 1) -> None:
        for k, v in other.amounts.items():
            self.amounts[k] += sign * v
        for k, v in other.points.items():
            self.points[k] += sign * v
        self.late += sign * other.late
        self.late_items += [{**i, "amount": sign * i["amount"], "points": sign * i["points"]} for i in other.late_items]

    @property
    def net(self) -> int:
        return sum(self.amounts.values())

    def as_json(self) -> dict[str, dict[str, int]]:
        kinds = sorted(set(self.amounts) | set(self.points))
        return {k: {"amount": self.amounts.get(k, 0), "points": self.points.get(k, 0)} for k in kinds}


@dataclass(frozen=True)
class Statement:
    """One entity's statement for a period (a row of ``settlement_statements``)."""

    entity_kind: str  # hub | branch | partner
    entity_id: uuid.UUID
    merchant_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    code: str
    name: str
    currency: str
    opening: int
    lines: dict[str, dict[str, int]]
    late: int
    net: int
    checksum: str
    #: the late items ``late`` sums: entry, business time, the month it belonged to, line, amount
    late_items: tuple[dict[str, Any], ...] = ()

    @property
    def closing(self) -> int:
        return self.opening + self.net

    @property
    def direction(self) -> str:
        if self.entity_kind == "hub":
            return "hub"
        return "receives" if self.net > 0 else "pays" if self.net < 0 else "nil"


@dataclass(frozen=True)
class CloseResult:
    scope: str
    book: uuid.UUID
    period: str
    checksum: str
    statements: list[Statement]
    summary: dict[str, Any]


@dataclass(frozen=True)
class PeriodStatus:
    """Where a period of a book stands (a close's row of ``settlement_runs``), with the statements
    the asker may see; ``step``, ``checksum`` and ``summary`` are None until a close has them."""

    period: str
    status: str  # open | closing | closed (a close's own: running | closed)
    step: str | None
    checksum: str | None
    summary: dict[str, Any] | None
    statements: list[Statement]

    @classmethod
    def closed(cls, result: CloseResult) -> PeriodStatus:
        return cls(result.period, "closed", "closed", result.checksum, result.summary, result.statements)


def canonical(value: object) -> bytes:
    """JSON with sorted keys: what checksums hash and what the statements' JSON columns store."""
    return msgspec.json.encode(value, order="sorted")


def statement_checksum(
    period: str,
    entity_id: uuid.UUID,
    opening: int,
    lines: dict[str, Any],
    late: int,
    net: int,
    late_items: tuple[dict[str, Any], ...] = (),
) -> str:
    payload: dict[str, Any] = {
        "period": period,
        "entity": str(entity_id),
        "opening": opening,
        "lines": lines,
        "late": late,
        "net": net,
    }
    if late_items:  # a statement without late items keeps the checksum it always had
        payload["late_items"] = list(late_items)
    return hashlib.sha256(canonical(payload)).hexdigest()


def run_checksum(statements: list[Statement]) -> str:
    h = hashlib.sha256()
    for s in sorted(statements, key=lambda s: (s.entity_kind, str(s.entity_id))):
        h.update(f"{s.entity_kind}:{s.entity_id}:{s.checksum}\n".encode())
    return h.hexdigest()


def _statement(
    period: str,
    kind: str,
    entity: uuid.UUID,
    merchant: uuid.UUID | None,
    parent: uuid.UUID | None,
    code: str,
    name: str,
    currency: str,
    opening: int,
    lines: Lines,
) -> Statement:
    body = lines.as_json()
    items = tuple(lines.late_items)
    return Statement(
        kind,
        entity,
        merchant,
        parent,
        code,
        name,
        currency,
        opening,
        body,
        lines.late,
        lines.net,
        statement_checksum(period, entity, opening, body, lines.late, lines.net, items),
        items,
    )


def build(scope: Scope, period: str, moved: dict[uuid.UUID, Lines], opening: dict[uuid.UUID, int]) -> list[Statement]:
    """The period's statements from each owner's movements and each entity's opening position: one
    per spoke, one per partner of an alliance (the operator excepted: it is the hub), and the hub's."""
    known = {s.id for s in scope.spokes} | set(scope.partners)
    unknown = set(moved) - known
    if unknown:  # a clearing account whose owner is not a spoke of this book: refuse rather than drop money
        raise ValidationFailed(f"clearing postings for unknown spokes {sorted(map(str, unknown))}")
    out: list[Statement] = []
    by_partner: dict[uuid.UUID, Lines] = defaultdict(Lines)
    for s in scope.spokes:
        lines = moved.get(s.id, Lines())
        for item in lines.late_items:
            item["branch"] = s.code
        by_partner[s.merchant_id].add(lines)
        out.append(
            _statement(
                period,
                "branch",
                s.id,
                s.merchant_id,
                s.merchant_id if scope.kind == "alliance" else None,
                s.code,
                s.name,
                scope.currency,
                opening.get(s.id, 0),
                lines,
            )
        )
    hub_lines = Lines()
    if scope.kind == "alliance":
        for merchant, party in sorted(scope.partners.items(), key=lambda kv: (kv[1].slug, str(kv[0]))):
            if merchant in moved:  # the partner's own lines (its monthly fee), not any branch's
                by_partner[merchant].add(moved[merchant])
            if merchant in scope.hub_merchants:
                continue  # the operator is the hub: its own branches settle with itself
            lines = by_partner.get(merchant, Lines())
            hub_lines.add(lines, -1)
            out.append(
                _statement(
                    period,
                    "partner",
                    merchant,
                    merchant,
                    None,
                    party.slug,
                    party.name,
                    scope.currency,
                    opening.get(merchant, 0),
                    lines,
                )
            )
        hub = scope.operator or Party(scope.book, scope.hub_code, scope.hub_name)
        out.append(
            _statement(
                period,
                "hub",
                scope.book,
                hub.id if scope.operator else None,
                None,
                hub.slug,
                hub.name,
                scope.currency,
                opening.get(scope.book, 0),
                hub_lines,
            )
        )
    else:
        for lines in by_partner.values():
            hub_lines.add(lines, -1)
        out.append(
            _statement(
                period,
                "hub",
                scope.book,
                scope.book,
                None,
                scope.hub_code,
                scope.hub_name,
                scope.currency,
                opening.get(scope.book, 0),
                hub_lines,
            )
        )
    return out


def summary(scope: Scope, statements: list[Statement]) -> dict[str, Any]:
    """The scope's proof: every spoke's net plus the hub's own line is exactly zero.

    The totals (lines, float, bonus expense) cover every participant: the spokes that settle with the
    hub and, in an alliance, the operator's own branches (which settle with the operator itself)."""
    top = [s for s in statements if s.entity_kind == ("partner" if scope.kind == "alliance" else "branch")]
    hub = next(s for s in statements if s.entity_kind == "hub")
    own = [
        s
        for s in statements
        if scope.kind == "alliance"
        and s.entity_kind == "branch"
        and hub.merchant_id is not None
        and s.parent_id == hub.merchant_id
    ]
    totals: dict[str, int] = defaultdict(int)
    for s in top + own:
        for k, v in s.lines.items():
            totals[k] += v["amount"]
    collected = -totals.get(LineKind.SV_COLLECTED.value, 0)
    consumed = totals.get(LineKind.SV_CONSUMED.value, 0)
    refunded = totals.get(LineKind.SV_REFUNDED.value, 0)
    return {
        "spokes": len(top),
        "spokes_net": sum(s.net for s in top),
        "hub_net": hub.net,
        "sum_with_hub": sum(s.net for s in top) + hub.net,
        "receive": sum(s.net for s in top if s.net > 0),
        "pay": -sum(s.net for s in top if s.net < 0),
        "float_change": collected - consumed - refunded,
        "bonus_expense": totals.get(LineKind.SV_BONUS_FUNDED.value, 0) + totals.get(LineKind.SV_BONUS_CHARGED.value, 0),
        "late": sum(s.late for s in top + own),
        "late_items": sum(len(s.late_items) for s in top + own),
        "lines": dict(sorted(totals.items())),
    }
