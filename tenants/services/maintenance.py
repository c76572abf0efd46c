"""Daily programme maintenance, per merchant: tier retention review, birthday rewards, points-expiry
reminders, coupon expiry. Each function is idempotent (safe to run twice, or after a crash half-way)
and works in batches, one transaction per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from lianka.platform import idempotency, outbox
from lianka.platform.db import Database
from lianka.platform.webhooks import services as webhooks
from lianka.tenants import queries
from lianka.tenants.domain import tiers
from lianka.tenants.domain.programme import RuleKind
from lianka.tenants.models import MemberProfile, TierChangeRecord
from lianka.tenants.services import accounts, rules
from lianka.tenants.services.programme import programme_at

BATCH = 200


async def merchants(db: Database) -> AsyncIterator[tuple[uuid.UUID, str]]:
    """Every merchant (id, time zone): platform-level listing in system scope."""
    async with db.uow(system=True) as uow:
        rows = await queries.merchants_and_zones(uow)
    for row in rows:
        yield row


async def merchant_by_slug(db: Database, slug: str) -> uuid.UUID | None:
    """The merchant an operator's command names by slug (platform-level look-up in system scope)."""
    async with db.uow(system=True) as uow:
        return await queries.merchant_id_by_slug(uow, slug)


async def review_tiers(db: Database, tenant: uuid.UUID, now: datetime) -> int:
    """保级: members due for review (never reviewed, or last reviewed a review interval ago) keep, lose
    one step or are re-evaluated, never below a manual floor; every change is recorded with its reason."""
    changed = 0
    while True:
        async with db.uow(tenant) as uow:
            _, programme = await programme_at(uow, now)
            if not programme.tiers:
                return changed
            _, tz = await accounts.merchant_info(uow)
            due_before = now - timedelta(days=31 * programme.tier_policy.review_every_months)
            batch = list(
                await uow.session.scalars(
                    select(MemberProfile)
                    .where(
                        MemberProfile.tier_code.is_not(None),
                        (MemberProfile.tier_reviewed_at.is_(None) & (MemberProfile.tier_since <= due_before))
                        | (MemberProfile.tier_reviewed_at <= due_before),
                    )
                    .order_by(MemberProfile.member_id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not batch:
                return changed
            since = now - timedelta(days=31 * programme.tier_policy.window_months)
            today = now.astimezone(ZoneInfo(tz)).date()
            for prof in batch:
                standing = await queries.standing_for_review(uow, prof.member_id, since)
                decision = tiers.review(
                    programme,
                    prof.tier_code,
                    standing,
                    floor=prof.tier_floor,
                    floor_until=prof.tier_floor_until,
                    today=today,
                )
                if decision.changed:
                    uow.session.add(
                        TierChangeRecord(
                            tenant_id=tenant,
                            member_id=prof.member_id,
                            old_tier=decision.old,
                            new_tier=decision.new,
                            reason=decision.reason,
                            actor="review",
                        )
                    )
                    prof.tier_code, prof.tier_since = decision.new, now
                    await rules.on_tier_change(uow, programme, prof.member_id, decision.old, decision.new, at=now)
                    await webhooks.tier_changed(uow, prof.member_id, decision.old, decision.new, "review")
                    changed += 1
                prof.tier_reviewed_at = now
            await uow.commit()


async def birthday_rewards(db: Database, tenant: uuid.UUID, now: datetime) -> int:
    """Members whose birthday is today (merchant's time zone) get the BIRTHDAY rules' points and
    coupons through the rules engine, once a year (the award key is rule, member and year)."""
    awarded = 0
    async with db.uow(tenant) as uow:
        _, programme = await programme_at(uow, now)
        _, tz = await accounts.merchant_info(uow)
        birthday_rules = rules.rules_of(programme, RuleKind.BIRTHDAY)
        if not birthday_rules:
            return 0
        today = now.astimezone(ZoneInfo(tz)).date()
        members = await queries.members_born_on(uow, today.month, today.day)
    # the business time is the birthday itself, so a re-run the same day is the same award
    at = datetime.combine(today, time(0), ZoneInfo(tz))
    for member in members:
        async with db.uow(tenant) as uow:
            tier = await rules.member_tier(uow, programme, member)
            for rule in birthday_rules:
                done = await rules.award(
                    uow, programme, rule, member, key=f"birthday:{member}:{today.year}", at=at, tier=tier
                )
                awarded += done.gave_something
            await uow.commit()
    return awarded


async def expiry_reminders(db: Database, tenant: uuid.UUID, now: datetime) -> int:
    """Queue one reminder per member and expiry day for points expiring within the programme's notice
    period (an outbox event the messaging consumers deliver; never twice for the same day)."""
    sent = 0
    async with db.uow(tenant) as uow:
        _, programme = await programme_at(uow, now)
        days = programme.points.expiry.remind_days_before
        if not days:
            return 0
        for r in await queries.points_expiring(uow, now, now + timedelta(days=days)):
            key = f"{r.member_id}:{r.day.date().isoformat()}"
            if await idempotency.claim(uow, "reminder.points_expiry", key, key) is not None:
                continue
            await outbox.enqueue(
                uow,
                "points_expiry_reminder",
                queue="messages",
                member_id=str(r.member_id),
                points=r.points,
                expires_on=r.day.date().isoformat(),
            )
            await idempotency.store(uow, "reminder.points_expiry", key, 202, {"points": r.points})
            sent += 1
        await uow.commit()
    return sent


async def expire_coupons(db: Database, tenant: uuid.UUID, now: datetime) -> int:
    """Issued coupons past their validity become ``expired``; how many."""
    async with db.uow(tenant) as uow:
        expired = await queries.expire_coupons(uow, now)
        await uow.commit()
        return expired
