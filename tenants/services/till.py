"""Read use cases of the web till (the console's 收银台): what a cashier sees besides the POS use
cases' own answers.

- :func:`member_wallet` — once a member is found: balances, tier, the coupons they can use now and
  the stored-value plans on sale, so the cashier can choose what to pay with before the quote;
- :func:`recent_sales` — the latest sales at the cashier's branches (or one member's), to reprint a
  receipt or refund one.

Writes go through the POS use cases (:mod:`lianka.tenants.pos`) exactly as the API's do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from lianka.platform.db import Database
from lianka.tenants.domain.programme import StoredValuePlan
from lianka.tenants.pos.models import Sale
from lianka.tenants.queries import Balances
from lianka.tenants.services import accounts, coupons, rules
from lianka.tenants.services.programme import programme_at


@dataclass(frozen=True)
class WalletCoupon:
    code: str
    name: str
    kind: str
    amount_off: int
    percent_off: int
    cap: int | None
    min_spend: int
    valid_until: datetime | None


@dataclass(frozen=True)
class Wallet:
    member_id: uuid.UUID
    balances: Balances
    #: the member's tier code and its name in the programme in force (None: the programme has no tiers)
    tier: str | None
    tier_name: str | None
    points_name: str
    #: coupons the member holds that are valid now (the quote still checks branch and minimum spend)
    coupons: list[WalletCoupon]
    #: the active stored-value plans of the programme in force
    plans: list[StoredValuePlan]


async def member_wallet(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> Wallet:
    """A member's wallet at the till; another merchant's member is not found, like an unknown one."""
    now = datetime.now(UTC)
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        bal = await accounts.balances(uow, member_id, now)
        _, programme = await programme_at(uow, now)
        tier = await rules.member_tier(uow, programme, member_id)
        held = await coupons.member_coupons(uow, member_id, status="issued")
    usable = [
        WalletCoupon(c.code, t.name, t.kind, t.amount_off, t.percent_off, t.cap, t.min_spend, c.valid_until)
        for c, t in held
        if c.valid_from <= now and (c.valid_until is None or c.valid_until > now)
    ]
    found = programme.tier(tier)
    return Wallet(
        member_id,
        bal,
        tier,
        found.name if found else None,
        programme.points.name,
        usable,
        [p for p in programme.stored_value.plans if p.active],
    )


@dataclass(frozen=True)
class SaleSummary:
    id: uuid.UUID
    branch_id: uuid.UUID
    member_id: uuid.UUID | None
    business_time: datetime
    gross: int
    due: int
    net: int
    refunded: int
    points_earned: int
    status: str


async def recent_sales(
    db: Database,
    tenant: uuid.UUID,
    branches: frozenset[uuid.UUID] | None,
    *,
    member_id: uuid.UUID | None = None,
    limit: int = 10,
) -> list[SaleSummary]:
    """The newest sales first: at ``branches`` only for a branch-limited cashier (None: every branch),
    and only ``member_id``'s when given."""
    q = select(Sale).order_by(Sale.business_time.desc(), Sale.id).limit(max(1, min(limit, 100)))
    if branches is not None:
        q = q.where(Sale.branch_id.in_(branches))
    if member_id is not None:
        q = q.where(Sale.member_id == member_id)
    async with db.uow(tenant) as uow:
        rows = list(await uow.session.scalars(q))
    return [
        SaleSummary(
            s.id,
            s.branch_id,
            s.member_id,
            s.business_time,
            s.gross,
            s.due,
            s.net,
            s.refunded,
            s.points_earned,
            s.status,
        )
        for s in rows
    ]
