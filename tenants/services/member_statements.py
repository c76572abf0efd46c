"""The member's monthly value statement (月度权益账单) at one merchant.

Made once per member, merchant and month by the ``member-statements-monthly`` job (declared in
``lianka.tenants.statement_jobs``) after the month has ended in the merchant's time zone, for every
member whose points or stored value moved in it: points earned, spent, expired and adjusted by
refunds, each with its yuan value at the programme's points-as-cash value; stored value topped up and
spent (paid in and bonus apart) and other movements; the points expiring next month; and what the
member can claim now (rewards their points afford, coupons valid). A month is the movements
*posted* in it (an offline till's late sale is on the next statement): each movement is on exactly
one statement and an ended month's figures never change. The expiry and the claimable part are as
of when the statement was made.

Idempotent: a member's month that has a statement is skipped, so a rerun writes and sends nothing.
A member who consented to text messages (``sms`` in the CRM's consents) gets a short text with the
statement's link, queued through the outbox in the statement's own transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement.domain import next_period, period_end, period_of, period_start, previous_period
from lianka.platform import outbox
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity.services import member_merchant
from lianka.platform.money import RoundingMode, round_minor
from lianka.tenants import statement_queries as q
from lianka.tenants.services import accounts, coupon_admin, rewards
from lianka.tenants.services.programme import programme_at

#: at most this many rewards and coupons are listed as claimable (their counts are kept whole)
CLAIMABLE_SHOWN = 10
SMS_ACTOR = "send_member_statement"


def points_value(points: int, cash_value_per_point: Decimal) -> int:
    """What ``points`` are worth in fen at the programme's points-as-cash value (rounded down, as the
    till rounds a points payment)."""
    return round_minor(Decimal(points) * cash_value_per_point * 100, RoundingMode.FLOOR)


def sum_movements(moves: list[q.Movement]) -> dict[str, dict[str, int]]:
    """The statement's counts from the member's summed postings: ``points`` (earned, spent, expired,
    reversed: taken back after a refund, restored: given back after a refund) and ``stored_value``
    (topped up and spent, each paid in / bonus, and the other movements in and out)."""
    points = dict.fromkeys(("earned", "spent", "expired", "reversed", "restored"), 0)
    sv = dict.fromkeys(
        ("top_up_principal", "top_up_bonus", "spent_principal", "spent_bonus", "other_in", "other_out"), 0
    )
    for m in moves:
        if m.account == "points":
            if m.entry_kind == "expiry" and m.amount < 0:
                points["expired"] += -m.amount
            elif m.reversal or m.entry_kind == "points_clawed_back":
                points["restored" if m.amount > 0 else "reversed"] += abs(m.amount)
            elif m.amount > 0:
                points["earned"] += m.amount
            else:
                points["spent"] += -m.amount
        else:
            part = "principal" if m.account == "sv_principal" else "bonus"
            if m.entry_kind == "stored_value_top_up" and m.amount > 0 and not m.reversal:
                sv[f"top_up_{part}"] += m.amount
            elif m.entry_kind == "stored_value_spent" and m.amount < 0 and not m.reversal:
                sv[f"spent_{part}"] += -m.amount
            elif m.amount > 0:
                sv["other_in"] += m.amount
            else:
                sv["other_out"] += -m.amount
    return {"points": points, "stored_value": sv}


def month_of(as_of: datetime, tz: str) -> str:
    """The month a run at ``as_of`` makes statements for: the latest that has ended in ``tz``."""
    return previous_period(period_of(as_of, tz))


def check_month(month: str) -> str:
    try:
        year, mon = map(int, month.split("-"))
    except ValueError:
        raise NotFound("no statement for this month") from None
    if not (2000 <= year <= 9999 and 1 <= mon <= 12) or month != f"{year:04d}-{mon:02d}":
        raise NotFound("no statement for this month")
    return month


async def _figures(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, month: str, moves: list[q.Movement], now: datetime
) -> tuple[str, dict[str, Any]]:
    """(currency, figures) of one member's statement."""
    async with db.uow(tenant) as uow:
        currency, tz = await accounts.merchant_info(uow)
        _, programme = await programme_at(uow, period_end(month, tz))
        mine = await accounts.member_accounts(uow, member_id, currency)
        balances = await accounts.balances(uow, member_id, now)
        nxt = next_period(month)
        start, end = period_start(nxt, tz), period_end(nxt, tz)
        expiring = [
            lot
            for lot in await ledger.lots(uow, mine.points)
            if lot.expires_at is not None and start <= lot.expires_at < end and lot.remaining > 0
        ]
        await uow.commit()  # accounts opened for a member who had none yet
    sums = sum_movements(moves)
    value = programme.points.cash_value_per_point
    catalogue = await rewards.catalogue(db, tenant, member_id, redeemable_only=True, now=now)
    coupons = [
        c
        for c in await coupon_admin.member_coupons(db, tenant, member_id, status="issued")
        if c.valid_until is None or c.valid_until > now
    ]
    coupons.sort(key=lambda c: (c.valid_until is None, c.valid_until or now))
    expiring_points = sum(lot.remaining for lot in expiring)
    figures: dict[str, Any] = {
        "month": month,
        "points_name": programme.points.name,
        "cash_value_per_point": str(value),
        "points": sums["points"],
        "points_value": {k: points_value(v, value) for k, v in sums["points"].items()},
        "stored_value": sums["stored_value"],
        "balances": {
            "points_available": balances.points_available,
            "sv_principal": balances.sv_principal,
            "sv_bonus": balances.sv_bonus,
        },
        "expiring_next_month": {
            "month": nxt,
            "points": expiring_points,
            "value": points_value(expiring_points, value),
            "first": min(dates).isoformat() if (dates := [x.expires_at for x in expiring if x.expires_at]) else None,
        },
        "claimable": {
            "rewards": [
                {"name": i.reward.name, "points_cost": i.reward.points_cost} for i in catalogue.items[:CLAIMABLE_SHOWN]
            ],
            "rewards_count": len(catalogue.items),
            "coupons": [
                {"name": c.name, "valid_until": c.valid_until.isoformat() if c.valid_until else None}
                for c in coupons[:CLAIMABLE_SHOWN]
            ],
            "coupons_count": len(coupons),
        },
        "made_at": now.isoformat(),
    }
    return currency, figures


async def make_for_month(db: Database, tenant: uuid.UUID, month: str, now: datetime | None = None) -> int:
    """The statements of ``month`` at the merchant for every member with movements posted in it that
    has none yet; how many were made. One transaction per statement (with its text, when consented)."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        _, tz = await accounts.merchant_info(uow)
        if period_end(month, tz) > now:
            raise ValidationFailed("the month has not ended yet", field="month")
        moves = await q.movements(uow, tenant, period_start(month, tz), period_end(month, tz))
    by_member: dict[uuid.UUID, list[q.Movement]] = defaultdict(list)
    for m in moves:
        by_member[m.member_id].append(m)
    made = 0
    for member_id, member_moves in by_member.items():
        async with db.uow(tenant) as uow:
            if await q.has_statement(uow, member_id, month):
                continue
        currency, figures = await _figures(db, tenant, member_id, month, member_moves, now)
        async with db.uow(tenant) as uow:
            consent = await q.consent(uow, member_id)
            sms = bool((consent.get("sms") or {}).get("granted"))
            if await q.insert(uow, tenant, member_id, month, currency, figures, "sms" if sms else None):
                if sms:
                    await outbox.enqueue(uow, SMS_ACTOR, queue="messages", member_id=str(member_id), month=month)
                made += 1
            await uow.commit()
    return made


async def monthly(db: Database, tenant: uuid.UUID, as_of: datetime) -> int:
    """The job's step: the statements of the month that has ended by ``as_of`` (merchant's zone)."""
    async with db.uow(tenant) as uow:
        _, tz = await accounts.merchant_info(uow)
    return await make_for_month(db, tenant, month_of(as_of, tz), now=as_of)


def statement_text(merchant: str, month: str, link: str) -> str:
    """The text message announcing a statement (Chinese first, as the sign-in code's)."""
    return f"【联卡 Lianka】{merchant} {month} 月度权益账单已生成：{link} Your {month} statement: {link}"


# --- the member's reading (portal) --------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    merchant_slug: str
    merchant_name: str
    month: str
    currency: str
    figures: dict[str, Any]
    created_at: datetime
    sent_channel: str | None


@dataclass(frozen=True)
class MerchantFacts:
    slug: str
    name: str


async def merchant_facts(db: Database, merchant_ref: str, member_id: uuid.UUID) -> MerchantFacts:
    """The merchant's slug and name for the statements' pages (404 unless the member belongs there)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        slug, name = await q.slug_and_name(uow, tenant)
    return MerchantFacts(slug, name)


async def my_statements(db: Database, merchant_ref: str, member_id: uuid.UUID) -> list[Statement]:
    """The member's statements at a merchant they belong to, newest first (404 for another merchant)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        slug, name = await q.slug_and_name(uow, tenant)
        rows = await q.mine(uow, member_id)
    return [Statement(slug, name, r.month, r.currency, r.figures, r.created_at, r.sent_channel) for r in rows]


async def my_statement(db: Database, merchant_ref: str, member_id: uuid.UUID, month: str) -> Statement:
    """One month's statement of the member's (404 when there is none, or for another merchant)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    check_month(month)
    async with db.uow(tenant) as uow:
        slug, name = await q.slug_and_name(uow, tenant)
        row = await q.one(uow, member_id, month)
    if row is None:
        raise NotFound("no statement for this month")
    return Statement(slug, name, row.month, row.currency, row.figures, row.created_at, row.sent_channel)
