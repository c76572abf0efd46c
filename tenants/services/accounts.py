"""The ledger accounts of a merchant's programme, and the few moves every feature makes with them.

Per member (tracked, floor 0): ``points`` (lots), ``sv_principal``, ``sv_bonus``.
Per merchant (untracked, hot): ``points_issued`` (the other side of every earn), ``points_redeemed``
(points that came back as payment), ``points_breakage`` (expired), ``sv_float`` (stored value owed to
members), ``cash`` (money taken at tills), ``sales`` (revenue side of SV-paid sales), ``bonus_expense``.
Clearing between branches and HQ, and alliances, are issue 6 (alliance/settlement).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lianka.alliance.ledger import domain as ledger_domain
from lianka.alliance.ledger import services as ledger
from lianka.platform.db import UnitOfWork
from lianka.platform.errors import ValidationFailed
from lianka.tenants import queries
from lianka.tenants.domain.programme import ExpiryKind, Programme
from lianka.tenants.queries import Balances  # the row type lives with its query


def points_unit(tenant_id: uuid.UUID) -> str:
    return f"PTS:{tenant_id.hex}"


@dataclass(frozen=True)
class MemberAccounts:
    points: ledger.Account
    sv_principal: ledger.Account
    sv_bonus: ledger.Account

    @property
    def ids(self) -> queries.MemberAccountIds:
        return queries.MemberAccountIds(self.points.id, self.sv_principal.id, self.sv_bonus.id)


@dataclass(frozen=True)
class MerchantAccounts:
    points_issued: ledger.Account
    points_redeemed: ledger.Account
    sv_float: ledger.Account
    cash: ledger.Account
    sales: ledger.Account
    bonus_expense: ledger.Account


async def merchant_info(uow: UnitOfWork) -> tuple[str, str]:
    """(currency, time zone) of the unit of work's merchant (read once per transaction)."""
    cached = uow.session.info.get("merchant_info")
    if cached is None or cached[0] != uow.tenant_id:
        currency, tz = await queries.merchant_currency_and_zone(uow)
        cached = uow.session.info["merchant_info"] = (uow.tenant_id, currency, tz)
    return cached[1], cached[2]


def remember_merchant_info(uow: UnitOfWork, currency: str, tz: str) -> None:
    """For a caller that read the merchant's currency and time zone in a query of its own."""
    uow.session.info["merchant_info"] = (uow.tenant_id, currency, tz)


async def member_accounts(uow: UnitOfWork, member_id: uuid.UUID, currency: str) -> MemberAccounts:
    tenant = uow.tenant_id
    if tenant is None:
        raise ValidationFailed("member accounts need a merchant")
    points = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="points", unit=points_unit(tenant)
    )
    principal = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="sv_principal", unit=currency
    )
    # bonus is kept in lots so a spend knows which branch issued the bonus it consumed (clearing)
    bonus = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="sv_bonus", unit=currency, lots=True
    )
    return MemberAccounts(points, principal, bonus)


async def merchant_accounts(uow: UnitOfWork, currency: str) -> MerchantAccounts:
    tenant = uow.tenant_id
    if tenant is None:
        raise ValidationFailed("merchant accounts need a merchant")

    async def acc(kind: str, unit: str) -> ledger.Account:
        return await ledger.open_account(
            uow, owner_kind="merchant", owner_id=tenant, kind=kind, unit=unit, allow_negative=True, tracked=False
        )

    pts = points_unit(tenant)
    return MerchantAccounts(
        points_issued=await acc("points_issued", pts),
        points_redeemed=await acc("points_redeemed", pts),
        sv_float=await acc("sv_float", currency),
        cash=await acc("cash", currency),
        sales=await acc("sales", currency),
        bonus_expense=await acc("bonus_expense", currency),
    )


def lot_terms(programme: Programme, earned: datetime, tz: str) -> tuple[datetime | None, datetime]:
    """(expires_at, available_at) of points earned now under the programme's expiry and pending rules."""
    e = programme.points.expiry
    expires = (
        ledger_domain.expiry_for(earned, str(e.kind), months=e.months, extra_years=e.extra_years, tz=tz)
        if e.kind != ExpiryKind.NEVER
        else None
    )
    return expires, earned + timedelta(days=programme.points.pending_days)


async def award_points(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    points: int,
    *,
    programme: Programme,
    reason: str,
    key: str,
    business_time: datetime,
    pending: bool = False,
    refs: Mapping[str, object] | None = None,
) -> ledger.Entry:
    """Credit ``points`` to the member as one lot (expiry from the programme; pending for the return
    window when ``pending``), against the merchant's issued-points account."""
    entry = await award_entry(
        uow,
        member_id,
        points,
        programme=programme,
        reason=reason,
        key=key,
        business_time=business_time,
        pending=pending,
        refs=refs,
    )
    return (await ledger.post_all(uow, [entry]))[0]


async def award_entry(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    points: int,
    *,
    programme: Programme,
    reason: str,
    key: str,
    business_time: datetime,
    pending: bool = False,
    refs: Mapping[str, object] | None = None,
) -> ledger.Prepared:
    """:func:`award_points` ready to book with other entries (``ledger.post_all``)."""
    if points <= 0:
        raise ValidationFailed("points to award must be positive")
    currency, tz = await merchant_info(uow)
    mine = await member_accounts(uow, member_id, currency)
    merchant = await merchant_accounts(uow, currency)
    expires, available = lot_terms(programme, business_time, tz)
    return ledger.prepare(
        uow,
        kind=reason,
        business_time=business_time,
        key=key,
        timezone=tz,
        refs=dict(refs or {}),
        legs=[
            ledger.Leg(mine.points, points, expires_at=expires, available_at=available if pending else business_time),
            ledger.Leg(merchant.points_issued, -points),
        ],
    )


async def spend_points(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    points: int,
    *,
    reason: str,
    key: str,
    business_time: datetime,
    refs: Mapping[str, object] | None = None,
) -> ledger.Entry:
    """Debit ``points`` (first-expiring lots first); InsufficientFunds when the member lacks them."""
    if points <= 0:
        raise ValidationFailed("points to spend must be positive")
    currency, tz = await merchant_info(uow)
    mine = await member_accounts(uow, member_id, currency)
    merchant = await merchant_accounts(uow, currency)
    return await ledger.post(
        uow,
        kind=reason,
        business_time=business_time,
        key=key,
        timezone=tz,
        refs=dict(refs or {}),
        legs=[ledger.Leg(mine.points, -points), ledger.Leg(merchant.points_redeemed, points)],
    )


async def balances(uow: UnitOfWork, member_id: uuid.UUID, at: datetime) -> Balances:
    """The member's balances in one round trip (balance rows and the points lots' availability)."""
    currency, _ = await merchant_info(uow)
    mine = await member_accounts(uow, member_id, currency)
    return await queries.balances(uow, mine.ids, at)
