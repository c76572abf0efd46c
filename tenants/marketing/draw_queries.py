"""The lucky draw's SQL: reading draws and prizes, the two conditional decrements that keep stock
and budget exact under concurrency (a row is only changed while something is left, and the
``RETURNING`` says whether it was), the free-draw check and the per-prize counts of the console.

RLS scopes every statement to the merchant of the unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update

from lianka.platform.db import UnitOfWork
from lianka.tenants.marketing.models import LuckyDraw, LuckyDrawEntry, LuckyDrawPrize


async def draw(uow: UnitOfWork, draw_id: uuid.UUID) -> LuckyDraw | None:
    q = select(LuckyDraw).where(LuckyDraw.id == draw_id).execution_options(populate_existing=True)
    return (await uow.session.scalars(q)).first()


async def name_taken(uow: UnitOfWork, name: str) -> bool:
    return bool(await uow.session.scalar(select(func.count()).select_from(LuckyDraw).where(LuckyDraw.name == name)))


async def open_draws(uow: UnitOfWork, now: datetime) -> list[LuckyDraw]:
    """Active draws whose window contains ``now``, ending soonest first."""
    q = (
        select(LuckyDraw)
        .where(LuckyDraw.active.is_(True), LuckyDraw.starts_at <= now, LuckyDraw.ends_at > now)
        .order_by(LuckyDraw.ends_at, LuckyDraw.name)
    )
    return list(await uow.session.scalars(q))


async def draws(uow: UnitOfWork) -> list[LuckyDraw]:
    return list(await uow.session.scalars(select(LuckyDraw).order_by(LuckyDraw.created_at.desc(), LuckyDraw.name)))


async def prizes(uow: UnitOfWork, draw_ids: list[uuid.UUID]) -> list[LuckyDrawPrize]:
    q = (
        select(LuckyDrawPrize)
        .where(LuckyDrawPrize.draw_id.in_(draw_ids))
        .order_by(LuckyDrawPrize.draw_id, LuckyDrawPrize.position)
        .execution_options(populate_existing=True)
    )
    return list(await uow.session.scalars(q))


async def take_prize(uow: UnitOfWork, prize_id: uuid.UUID) -> bool:
    """One unit of the prize, if any is left (never below zero, whatever runs at the same time)."""
    taken = await uow.session.execute(
        update(LuckyDrawPrize)
        .where(LuckyDrawPrize.id == prize_id, LuckyDrawPrize.stock > 0)
        .values(stock=LuckyDrawPrize.stock - 1)
        .returning(LuckyDrawPrize.stock)
        .execution_options(synchronize_session=False)
    )
    return taken.first() is not None


async def spend_budget(uow: UnitOfWork, draw_id: uuid.UUID, fen: int) -> bool:
    """Count ``fen`` against the draw's budget, if it fits (a draw without a budget always fits)."""
    if fen == 0:
        return True
    taken = await uow.session.execute(
        update(LuckyDraw)
        .where(
            LuckyDraw.id == draw_id,
            LuckyDraw.budget.is_(None) | (LuckyDraw.budget_used + fen <= LuckyDraw.budget),
        )
        .values(budget_used=LuckyDraw.budget_used + fen)
        .returning(LuckyDraw.budget_used)
        .execution_options(synchronize_session=False)
    )
    return taken.first() is not None


async def drew_free(uow: UnitOfWork, draw_id: uuid.UUID, member_id: uuid.UUID, day: date) -> bool:
    q = (
        select(func.count())
        .select_from(LuckyDrawEntry)
        .where(
            LuckyDrawEntry.draw_id == draw_id,
            LuckyDrawEntry.member_id == member_id,
            LuckyDrawEntry.local_day == day,
            LuckyDrawEntry.free.is_(True),
        )
    )
    return bool(await uow.session.scalar(q))


@dataclass(frozen=True)
class Counts:
    draws: int
    won: dict[uuid.UUID, int]


async def counts(uow: UnitOfWork, draw_id: uuid.UUID) -> Counts:
    """How often the draw was drawn, and how often each prize was won."""
    rows = (
        await uow.session.execute(
            select(LuckyDrawEntry.prize_id, func.count())
            .where(LuckyDrawEntry.draw_id == draw_id)
            .group_by(LuckyDrawEntry.prize_id)
        )
    ).all()
    won = {r[0]: int(r[1]) for r in rows if r[0] is not None}
    return Counts(sum(int(r[1]) for r in rows), won)


async def draw_counts(uow: UnitOfWork) -> dict[uuid.UUID, int]:
    rows = await uow.session.execute(select(LuckyDrawEntry.draw_id, func.count()).group_by(LuckyDrawEntry.draw_id))
    return {r[0]: int(r[1]) for r in rows}


async def member_entries(
    uow: UnitOfWork, draw_id: uuid.UUID, member_id: uuid.UUID, limit: int = 20
) -> list[LuckyDrawEntry]:
    q = (
        select(LuckyDrawEntry)
        .where(LuckyDrawEntry.draw_id == draw_id, LuckyDrawEntry.member_id == member_id)
        .order_by(LuckyDrawEntry.created_at.desc())
        .limit(limit)
    )
    return list(await uow.session.scalars(q))
