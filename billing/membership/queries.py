"""Every statement of paid membership, each behind a typed function (tenant scope: RLS adds the
merchant to every one)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update

from lianka.billing.membership.domain import LIVE
from lianka.billing.membership.models import MembershipProduct, MembershipSettings, MembershipTerm
from lianka.platform.db import UnitOfWork

_LIVE = [str(s) for s in LIVE]


async def products(uow: UnitOfWork, *, active: bool | None = None) -> Sequence[MembershipProduct]:
    q = select(MembershipProduct).order_by(
        MembershipProduct.active.desc(), MembershipProduct.price, MembershipProduct.code
    )
    if active is not None:
        q = q.where(MembershipProduct.active.is_(active))
    return (await uow.session.scalars(q)).all()


async def product(uow: UnitOfWork, product_id: uuid.UUID) -> MembershipProduct | None:
    return await uow.session.scalar(select(MembershipProduct).where(MembershipProduct.id == product_id))


async def product_by_code(uow: UnitOfWork, code: str) -> MembershipProduct | None:
    return await uow.session.scalar(select(MembershipProduct).where(MembershipProduct.code == code))


async def settings(uow: UnitOfWork) -> MembershipSettings | None:
    return await uow.session.scalar(select(MembershipSettings))


async def term(uow: UnitOfWork, term_id: uuid.UUID, *, lock: bool = False) -> MembershipTerm | None:
    q = select(MembershipTerm).where(MembershipTerm.id == term_id)
    return await uow.session.scalar(q.with_for_update() if lock else q)


async def term_by_payment(uow: UnitOfWork, source: str, ref: str) -> MembershipTerm | None:
    return await uow.session.scalar(
        select(MembershipTerm).where(MembershipTerm.source == source, MembershipTerm.payment_ref == ref)
    )


async def member_terms(uow: UnitOfWork, member_id: uuid.UUID) -> Sequence[MembershipTerm]:
    """The member's terms, newest first."""
    q = select(MembershipTerm).where(MembershipTerm.member_id == member_id).order_by(MembershipTerm.starts_at.desc())
    return (await uow.session.scalars(q)).all()


async def live_terms(
    uow: UnitOfWork, member_id: uuid.UUID, after: datetime, *, lock: bool = False
) -> Sequence[MembershipTerm]:
    """The member's live terms (active or canceled) that end after ``after``, in start order."""
    q = (
        select(MembershipTerm)
        .where(MembershipTerm.member_id == member_id, MembershipTerm.status.in_(_LIVE), MembershipTerm.ends_at > after)
        .order_by(MembershipTerm.starts_at)
    )
    return (await uow.session.scalars(q.with_for_update() if lock else q)).all()


async def lock_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Serialise one member's membership purchases and refunds (a renewal starts where the last ends)."""
    await uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"membership:{uow.tenant_id}:{member_id}"}
    )


# --- what the jobs work through ----------------------------------------------------------------------


async def terms_to_recognise(uow: UnitOfWork, as_of: datetime) -> Sequence[MembershipTerm]:
    """Terms with months not yet recognised nor refunded, begun by ``as_of`` (locked: one job run at a
    time books a month)."""
    q = (
        select(MembershipTerm)
        .where(
            MembershipTerm.recognised_months + MembershipTerm.refunded_months < MembershipTerm.months,
            MembershipTerm.starts_at <= as_of,
        )
        .order_by(MembershipTerm.starts_at)
        .with_for_update(skip_locked=False)
    )
    return (await uow.session.scalars(q)).all()


async def terms_with_packs_due(uow: UnitOfWork, as_of: datetime) -> Sequence[MembershipTerm]:
    q = (
        select(MembershipTerm)
        .where(
            MembershipTerm.status.in_(_LIVE),
            MembershipTerm.packs_issued < MembershipTerm.months,
            MembershipTerm.starts_at <= as_of,
            MembershipTerm.ends_at > as_of,
            func.jsonb_array_length(MembershipTerm.perks["coupon_pack"]) > 0,
        )
        .order_by(MembershipTerm.starts_at)
        .with_for_update()
    )
    return (await uow.session.scalars(q)).all()


async def terms_ending(uow: UnitOfWork, before: datetime) -> Sequence[MembershipTerm]:
    """Live terms that end before ``before`` (reminders, renewals and expiry), locked."""
    q = (
        select(MembershipTerm)
        .where(MembershipTerm.status.in_(_LIVE), MembershipTerm.ends_at <= before)
        .order_by(MembershipTerm.ends_at)
        .with_for_update()
    )
    return (await uow.session.scalars(q)).all()


async def has_successor(uow: UnitOfWork, term: MembershipTerm) -> bool:
    """Whether the member already holds a live term that starts when (or after) this one ends."""
    found = await uow.session.scalar(
        select(func.count())
        .select_from(MembershipTerm)
        .where(
            MembershipTerm.member_id == term.member_id,
            MembershipTerm.status.in_(_LIVE),
            MembershipTerm.starts_at >= term.ends_at,
        )
    )
    return bool(found)


async def mark_expired(uow: UnitOfWork, as_of: datetime) -> int:
    result = await uow.session.execute(
        update(MembershipTerm)
        .where(MembershipTerm.status.in_(_LIVE), MembershipTerm.ends_at <= as_of)
        .values(status="expired")
        .returning(MembershipTerm.id)
    )
    return len(result.all())


# --- the value-back meter -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SavingsTotal:
    discount: int
    points_value: int
    coupons: int
    extra_points: int


async def savings_since(uow: UnitOfWork, member_id: uuid.UUID, since: datetime) -> SavingsTotal:
    row = (
        await uow.session.execute(
            text(
                "SELECT coalesce(sum(discount), 0) AS d, coalesce(sum(points_value), 0) AS v, "
                "coalesce(sum(coupons), 0) AS c, coalesce(sum(extra_points), 0) AS p "
                "FROM membership_savings WHERE member_id = :m AND business_time >= :since"
            ),
            {"m": member_id, "since": since},
        )
    ).one()
    return SavingsTotal(int(row.d), int(row.v), int(row.c), int(row.p))


async def fees_since(uow: UnitOfWork, member_id: uuid.UUID, since: datetime) -> int:
    """What the member paid for terms bought since ``since``, net of refunds."""
    found = await uow.session.scalar(
        select(func.coalesce(func.sum(MembershipTerm.price - MembershipTerm.refunded_amount), 0)).where(
            MembershipTerm.member_id == member_id, MembershipTerm.created_at >= since
        )
    )
    return int(found or 0)
