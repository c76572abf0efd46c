"""The alliance's liability report (month end): the alliance's points and stored value (principal and
bonus apart) that members hold — opening, issued, used, expired, refunded, closing — in total and
**per issuing partner**, read from the alliance's book (decision 0057).

A partner's row is what is left of the points (or stored value) *it* gave out: the lots made by an
entry at one of its branches, less what redemptions anywhere, expiries and clawbacks took from them,
plus what reversals gave back. The scheme's total is the members' accounts themselves, so it equals
their balances; what the lots do not carry — a member's overdrawn debt (a clawback past the balance),
or a lot made by an entry that names no partner's branch — is the row ``''`` ("no issuer"), the
difference, so the rows always add up to the total. Points are also shown in money at the
reimbursement price in force (what the operator pays a partner that accepts a point: the operator's
cost of the points still held).

The operator sees every partner; a partner sees its own rows only (no totals, no other partner).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from lianka.alliance.alliances import queries as alliance_queries
from lianka.alliance.alliances.access import membership
from lianka.alliance.alliances.terms import terms_at
from lianka.alliance.ledger.domain import check_period
from lianka.alliance.reports import liability_queries as q
from lianka.alliance.reports import queries as report_queries
from lianka.platform.db import Database
from lianka.tenants.reports.domain import points_liability
from lianka.tenants.reports.liability import COLUMNS, Row, add

SCHEMES = q.MEMBER_KINDS
POINTS = "alliance_points"
#: the row of what no partner's lots carry
NO_ISSUER = ""


@dataclass(frozen=True)
class Report:
    alliance_id: uuid.UUID
    name: str
    period: str
    currency: str
    timezone: str
    role: str
    #: money per point (the reimbursement price in force at the report's reading)
    value_per_point: Decimal
    rows: tuple[Row, ...]
    #: merchant id (text) -> name, every partner of the alliance
    partners: dict[str, str]

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def total(self, scheme: str) -> Row | None:
        """The scheme's total (the operator's view only)."""
        return next((r for r in self.rows if r.scheme == scheme and r.branch == "*"), None)

    def row(self, scheme: str, issuer: str) -> Row | None:
        return next((r for r in self.rows if r.scheme == scheme and r.branch == issuer), None)


def build(totals: list[q.Movement], by_issuer: list[q.Movement], partners: list[str]) -> list[Row]:
    """Per scheme: the total ('*'), a row per partner (every partner, in ``partners``' order, zeros
    included) and the no-issuer row when it is not all zeros — which is total minus the partners'."""
    rows: list[Row] = []
    for scheme in SCHEMES:
        total = Row(scheme, "*")
        for m in totals:
            if m.account_kind == scheme:
                add(total, m.entry_kind, m.amount)
        per = {p: Row(scheme, p) for p in partners}
        for m in by_issuer:
            if m.account_kind == scheme and m.issuer in per:
                add(per[m.issuer], m.entry_kind, m.amount)
        rest = Row(scheme, NO_ISSUER)
        for col in ("opening", "issued", "used", "expired", "refunded"):
            setattr(rest, col, getattr(total, col) - sum(getattr(r, col) for r in per.values()))
        rows += [total, *per.values()]
        if any(rest.figures().values()):
            rows.append(rest)
    return rows


async def report(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, period: str, now: datetime | None = None
) -> Report:
    """The month ``period`` of the alliance's book (its months, in its time zone), as ``merchant`` may
    see it (an alliance it is not in answers 404)."""
    check_period(period)
    async with db.uow(merchant) as uow:
        role, _ = await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        book = await alliance_queries.alliance(uow)
        names = await report_queries.partner_names(uow, alliance_id)
        totals = await q.totals(uow, period)
        by_issuer = await q.by_issuer(uow, period)
        _, terms = await terms_at(uow, alliance_id, now or datetime.now(UTC))
    partners = {str(p.merchant_id): p.name for p in names}
    rows = build(totals, by_issuer, list(partners))
    if role != "operator":
        rows = [r for r in rows if r.branch == str(merchant)]
    value = terms.reimbursement_price
    for r in rows:
        if r.scheme == POINTS:
            r.value = {c: points_liability(v, value) for c, v in r.figures().items()}
    return Report(alliance_id, book.name, period, book.currency, book.timezone, role, value, tuple(rows), partners)


__all__ = ["COLUMNS", "NO_ISSUER", "POINTS", "SCHEMES", "Report", "build", "report"]
