"""Daily check-in (签到) from the member portal: one per member per local day (the merchant's time
zone), a streak of consecutive days, the CHECKIN rule's points plus its streak bonus.

Retry-safe without an Idempotency-Key: the day *is* the key. Concurrent check-ins of one member
queue on their profile row; the first writes the ``member_checkins`` row (primary key member + day)
and the award, the others find it and answer with it (``already``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import RuleViolation
from lianka.tenants import queries
from lianka.tenants.catalogue import schemas
from lianka.tenants.domain import rules as domain
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind
from lianka.tenants.models import MemberCheckin, MemberProfile
from lianka.tenants.services import accounts, rules
from lianka.tenants.services.programme import programme_at


class CheckinNotOffered(RuleViolation):
    type_slug = "checkin-not-offered"
    title = "Check-in earns nothing here today"


def _rule(programme: Programme) -> EarningRule | None:
    return next((r for r in programme.rules if r.kind == RuleKind.CHECKIN and r.active), None)


async def _last(uow: UnitOfWork, member_id: uuid.UUID) -> MemberCheckin | None:
    return (
        await uow.session.scalars(
            select(MemberCheckin)
            .where(MemberCheckin.member_id == member_id)
            .order_by(MemberCheckin.day.desc())
            .limit(1)
        )
    ).first()


async def _programme_and_day(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> tuple[Programme, date]:
    """NotFound unless a member here; the programme in force and the merchant's local day at ``now``."""
    await rules.require_member(uow, member_id)
    _, programme = await programme_at(uow, now)
    _, tz = await accounts.merchant_info(uow)
    return programme, now.astimezone(ZoneInfo(tz)).date()


def _out(c: MemberCheckin, rule: EarningRule | None, *, already: bool, balance: int) -> schemas.CheckinOut:
    base, bonus = domain.checkin_points(rule, c.streak) if rule else (c.points, 0)
    return schemas.CheckinOut(
        day=c.day,
        streak=c.streak,
        points=c.points,
        base_points=min(base, c.points),
        streak_bonus=max(0, min(bonus, c.points - base)),
        already=already,
        points_balance=balance,
    )


async def check_in(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, *, now: datetime | None = None
) -> schemas.CheckinOut:
    """Today's check-in (made now, or the one already made today)."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        programme, today = await _programme_and_day(uow, member_id, now)
        await queries.ensure_profile(uow, member_id)
        profile = (
            await uow.session.scalars(
                select(MemberProfile).where(MemberProfile.member_id == member_id).with_for_update()
            )
        ).one()
        rule = _rule(programme)
        last = await _last(uow, member_id)
        if last is not None and last.day == today:
            return _out(last, rule, already=True, balance=(await accounts.balances(uow, member_id, now)).points)
        tier = profile.tier_code or domain.base_tier(programme)
        reason = "no check-in rule" if rule is None else domain.ineligible(rule, day=today, branch_code=None, tier=tier)
        if rule is None or reason:
            raise CheckinNotOffered(f"check-in earns nothing today: {reason}", reason=reason)
        streak = domain.streak_after(last.day if last else None, last.streak if last else 0, today)
        base, bonus = domain.checkin_points(rule, streak)
        award = await rules.award(
            uow,
            programme,
            rule,
            member_id,
            key=f"checkin:{member_id}:{today.isoformat()}",
            at=now,
            tier=tier,
            points=base + bonus,
            refs={"day": today.isoformat(), "streak": streak},
        )
        done = MemberCheckin(
            tenant_id=tenant,
            member_id=member_id,
            day=today,
            streak=streak,
            points=award.points if award.status != "skipped" else 0,
            entry_id=award.entry_id,
        )
        uow.session.add(done)
        profile.checkin_streak, profile.last_checkin = streak, today
        await uow.session.flush()
        out = _out(done, rule, already=False, balance=(await accounts.balances(uow, member_id, now)).points)
        await uow.commit()
        return out


async def status(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, *, now: datetime | None = None
) -> schemas.CheckinStatus:
    """Checked in today? The current streak, and what the next check-ins bring."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        programme, today = await _programme_and_day(uow, member_id, now)
        last = await _last(uow, member_id)
        tier = await rules.member_tier(uow, programme, member_id)
    done_today = last is not None and last.day == today
    alive = last is not None and last.day >= today - timedelta(days=1)
    streak = last.streak if last is not None and alive else 0
    rule = _rule(programme)
    reason = "no check-in rule" if rule is None else domain.ineligible(rule, day=today, branch_code=None, tier=tier)
    if rule is None or reason:
        return schemas.CheckinStatus(
            offered=False,
            today=today,
            checked_in_today=done_today,
            streak=streak,
            points_today=last.points if done_today and last else 0,
            next_points=0,
            next_bonus=None,
            reason=reason or "",
        )
    upcoming = streak + 1
    base, bonus = domain.checkin_points(rule, upcoming)
    milestones = sorted(int(k) for k in rule.streak_bonus if int(k) >= upcoming)
    nxt = schemas.NextBonus(milestones[0], rule.streak_bonus[str(milestones[0])]) if milestones else None
    return schemas.CheckinStatus(
        offered=True,
        today=today,
        checked_in_today=done_today,
        streak=streak,
        points_today=last.points if done_today and last else 0,
        next_points=base + bonus,
        next_bonus=nxt,
    )
