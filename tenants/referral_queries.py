"""The SQL of referrals (the member portal's "Invite friends") and of the coupon centre: each
statement behind a typed function returning a documented row type. The rules of
``tenants/queries.py`` hold here too (bound parameters only, no commit, decision 0019)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.queries import rows_as

#: how far up a referral chain the loop check looks (chains are short; a longer one is refused)
MAX_CHAIN = 100


async def referral_code(uow: UnitOfWork, member_id: uuid.UUID) -> str | None:
    found = await uow.session.scalar(
        text("SELECT referral_code FROM member_profiles WHERE member_id = :m"), {"m": member_id}
    )
    return str(found) if found is not None else None


async def set_referral_code(uow: UnitOfWork, member_id: uuid.UUID, code: str) -> str | None:
    """Give the member ``code`` unless they have one: the code they hold afterwards (None: the row is
    missing). A code taken by another member raises the unique index's IntegrityError."""
    await uow.session.execute(
        text("UPDATE member_profiles SET referral_code = :c WHERE member_id = :m AND referral_code IS NULL"),
        {"c": code, "m": member_id},
    )
    return await referral_code(uow, member_id)


async def member_by_referral_code(uow: UnitOfWork, code: str) -> uuid.UUID | None:
    """The member of this merchant holding ``code`` (RLS: never another merchant's)."""
    found = await uow.session.scalar(
        text(
            "SELECT p.member_id FROM member_profiles p "
            "JOIN memberships ms ON ms.tenant_id = p.tenant_id AND ms.member_id = p.member_id "
            "WHERE p.referral_code = :c"
        ),
        {"c": code},
    )
    return found if isinstance(found, uuid.UUID) else None


async def referral_chain(uow: UnitOfWork, start: uuid.UUID) -> list[uuid.UUID]:
    """``start``'s referrer, that one's referrer, and so on (at most :data:`MAX_CHAIN`, stops at a
    repeat)."""
    rows = await uow.session.execute(
        text(
            "WITH RECURSIVE chain(member_id, depth, seen) AS ("
            " SELECT referrer_member_id, 1, ARRAY[member_id] FROM member_profiles"
            " WHERE member_id = :m AND referrer_member_id IS NOT NULL"
            " UNION ALL"
            " SELECT p.referrer_member_id, c.depth + 1, c.seen || p.member_id FROM member_profiles p"
            " JOIN chain c ON p.member_id = c.member_id"
            " WHERE p.referrer_member_id IS NOT NULL AND c.depth < :limit AND NOT p.member_id = ANY(c.seen))"
            " SELECT member_id FROM chain ORDER BY depth"
        ),
        {"m": start, "limit": MAX_CHAIN},
    )
    return [r.member_id for r in rows]


@dataclass(frozen=True)
class FriendRow:
    """Row type: a member who joined through ``referrer``'s link (``prospect``: waiting for the
    till's qualifying purchase, then ``joined_at`` is when they joined online)."""

    member_id: uuid.UUID
    #: None for a prospect: not a member yet, so the merchant cannot read their phone (RLS)
    phone: str | None
    joined_at: datetime
    purchase_count: int
    prospect: bool


async def friends(uow: UnitOfWork, referrer: uuid.UUID, limit: int = 200) -> list[FriendRow]:
    """The referrer's friends: members whose referrer they are, then prospects they invited; newest first."""
    return await rows_as(
        uow,
        FriendRow,
        (
            "SELECT * FROM ("
            " SELECT p.member_id, m.phone, ms.joined_at, p.purchase_count, false AS prospect"
            " FROM member_profiles p JOIN memberships ms ON ms.tenant_id = p.tenant_id AND ms.member_id = p.member_id"
            " JOIN members m ON m.id = p.member_id WHERE p.referrer_member_id = :r"
            " UNION ALL"
            " SELECT s.member_id, m.phone, s.created_at AS joined_at, 0 AS purchase_count, true AS prospect"
            " FROM self_joins s LEFT JOIN members m ON m.id = s.member_id"
            " WHERE s.referrer_member_id = :r AND s.status = 'prospect'"
            ") f ORDER BY joined_at DESC LIMIT :limit"
        ),
        {"r": referrer, "limit": limit},
    )


@dataclass(frozen=True)
class ReferralAwardRow:
    """Row type: what the referral rule gave the referrer for one friend's first purchase."""

    referee: str
    points: int
    coupon_name: str | None
    at: datetime


async def referral_awards(uow: UnitOfWork, referrer: uuid.UUID) -> list[ReferralAwardRow]:
    return await rows_as(
        uow,
        ReferralAwardRow,
        (
            "SELECT a.refs->>'referee' AS referee, a.points, t.name AS coupon_name, a.at FROM rule_awards a"
            " LEFT JOIN coupons c ON c.tenant_id = a.tenant_id AND c.id = a.coupon_id"
            " LEFT JOIN coupon_templates t ON t.tenant_id = c.tenant_id AND t.id = c.template_id"
            " WHERE a.member_id = :r AND a.kind = 'referral' ORDER BY a.at DESC"
        ),
        {"r": referrer},
    )


@dataclass(frozen=True)
class HeldRow:
    """Row type: how many coupons of a template a member holds (any status)."""

    template_id: uuid.UUID
    held: int


async def coupons_held(uow: UnitOfWork, member_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = await rows_as(
        uow,
        HeldRow,
        "SELECT template_id, count(*) AS held FROM coupons WHERE member_id = :m GROUP BY template_id",
        {"m": member_id},
    )
    return {r.template_id: r.held for r in rows}
