"""The alliance operator dashboard's use case: one period's figures against the previous period's,
per day and per partner, the cross-partner flows (who redeems whose points), breakage, each partner's
credit used against its limit and the members the partners share — read from the alliance's daily
rollups (decision 0046) in one read-only unit of work.

Who sees what is decided here, on the server: the operator sees every partner; a partner sees its own
view only — its own figures, the flows into and out of it, its own credit and shared members; the
other partners' rows never leave this function (a flow's other end is named, nothing else of it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lianka.alliance.alliances import queries as alliance_queries
from lianka.alliance.alliances.access import membership
from lianka.alliance.alliances.domain import BreakagePolicy
from lianka.alliance.alliances.terms import terms_at
from lianka.alliance.reports import queries as q
from lianka.alliance.reports.queries import FIGURES
from lianka.platform.db import Database
from lianka.platform.errors import ValidationFailed
from lianka.tenants.reports import domain
from lianka.tenants.reports.domain import Period, PeriodKind


@dataclass(frozen=True)
class Request:
    kind: PeriodKind = PeriodKind.THIS_MONTH
    first: date | None = None
    last: date | None = None


@dataclass(frozen=True)
class Day:
    day: date
    figures: dict[str, int]


@dataclass(frozen=True)
class PartnerRow:
    merchant_id: uuid.UUID
    name: str
    role: str
    figures: dict[str, int]
    #: what it owes the operator now (its clearing position's negative, never below 0), and its limit
    #: (0: none)
    credit_used: int
    credit_limit: int
    #: its members who hold a card at another partner too
    shared: int


@dataclass(frozen=True)
class Flow:
    issuer_id: uuid.UUID
    issuer: str
    redeemer_id: uuid.UUID
    redeemer: str
    points: int
    amount: int


@dataclass(frozen=True)
class AllianceDashboard:
    alliance_id: uuid.UUID
    name: str
    currency: str
    timezone: str
    role: str
    me: uuid.UUID
    kind: PeriodKind
    period: Period
    previous: Period
    totals: dict[str, int]
    previous_totals: dict[str, int]
    #: points redeemed at a partner other than their issuer (in the view)
    cross_points: int
    previous_cross_points: int
    daily: list[Day]
    partners: list[PartnerRow]
    flows: list[Flow]
    breakage_policy: BreakagePolicy
    #: members holding cards at two partners or more: the alliance's (operator) or this partner's
    shared: int

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def change(d: AllianceDashboard, name: str) -> Decimal | None:
    """A figure's change against the previous period, in percent."""
    if name == "cross_points":
        return domain.change_pct(d.cross_points, d.previous_cross_points)
    return domain.change_pct(d.totals.get(name, 0), d.previous_totals.get(name, 0))


def _sum(rows: dict[uuid.UUID, dict[str, int]]) -> dict[str, int]:
    return {name: sum(r[name] for r in rows.values()) for name in FIGURES}


def _cross(flows: list[q.Flow]) -> int:
    return sum(f.points for f in flows if f.issuer_id != f.redeemer_id)


async def dashboard(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, ask: Request, now: datetime | None = None
) -> AllianceDashboard:
    """``merchant``: the asking partner (an alliance it is not in answers 404)."""
    at = now or datetime.now(UTC)
    async with db.uow(merchant) as uow:
        role, _ = await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        book = await alliance_queries.alliance(uow)
        today = at.astimezone(ZoneInfo(book.timezone)).date()
        try:
            period = domain.period_of(ask.kind, today, ask.first, ask.last)
        except domain.BadPeriod as exc:
            raise ValidationFailed(str(exc), field="period") from exc
        previous = domain.previous_of(ask.kind, period)
        only = None if role == "operator" else merchant
        window = q.Window(alliance_id, period.first, period.last, only)
        before = q.Window(alliance_id, previous.first, previous.last, only)
        per_partner = await q.totals(uow, window)
        per_partner_before = await q.totals(uow, before)
        per_day = await q.daily(uow, window)
        flows = await q.flows(uow, window)
        flows_before = await q.flows(uow, before)
        positions = await q.positions(uow, q.Window(alliance_id, period.first, date.max, only))  # now
        names = await q.partner_names(uow, alliance_id)
        shared = await q.shared_members(uow, alliance_id)
        _, terms = await terms_at(uow, alliance_id, at)
    name_of = {p.merchant_id: p.name for p in names}
    shared_of = {s.merchant_id: s.shared for s in shared}
    zero = dict.fromkeys(FIGURES, 0)
    partners = [
        PartnerRow(
            p.merchant_id,
            p.name,
            p.role,
            per_partner.get(p.merchant_id, zero),
            max(0, -positions.get(p.merchant_id, 0)),
            terms.limit_for(str(p.merchant_id)),
            shared_of.get(p.merchant_id, 0),
        )
        for p in names
        if only is None or p.merchant_id == only
    ]
    return AllianceDashboard(
        alliance_id=alliance_id,
        name=book.name,
        currency=book.currency,
        timezone=book.timezone,
        role=role,
        me=merchant,
        kind=ask.kind,
        period=period,
        previous=previous,
        totals=_sum(per_partner),
        previous_totals=_sum(per_partner_before),
        cross_points=_cross(flows),
        previous_cross_points=_cross(flows_before),
        daily=[Day(d, per_day.get(d, zero)) for d in period.each_day()],
        partners=partners,
        flows=[
            Flow(
                f.issuer_id,
                name_of.get(f.issuer_id, "?"),
                f.redeemer_id,
                name_of.get(f.redeemer_id, "?"),
                f.points,
                f.amount,
            )
            for f in flows
        ],
        breakage_policy=terms.breakage,
        shared=(shared[0].total if shared else 0) if only is None else shared_of.get(merchant, 0),
    )
