"""Test data for marketing: members with profiles, sales, points, stored value and coupons, written
through the real building blocks where one exists (ledger postings, coupon issues) and as rows
otherwise (a sale's row is all a segment reads of it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import ExpiryKind, ExpiryPolicy, PointsConfig, Programme
from lianka.tenants.services import accounts, coupons

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
NO_EXPIRY = Programme(points=PointsConfig(expiry=ExpiryPolicy(kind=ExpiryKind.NEVER)))
ONE_MONTH = Programme(points=PointsConfig(expiry=ExpiryPolicy(kind=ExpiryKind.ROLLING_MONTHS, months=1)))

_PROFILE_FIELDS = frozenset({"tier_code", "tags", "birthday", "last_purchase_at", "consent", "erased_at", "name"})


async def branch(db: Database, tenant: uuid.UUID, code: str) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        b = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
            {"t": tenant, "c": code},
        )
        await uow.commit()
    assert isinstance(b, uuid.UUID)
    return b


async def profile(
    db: Database, tenant: uuid.UUID, member: uuid.UUID, *, joined: datetime, branch: uuid.UUID | None, **fields: Any
) -> None:
    """The membership's join time and branch, and the profile's fields (a profile row always)."""
    import json

    assert set(fields) <= _PROFILE_FIELDS
    async with db.uow(tenant) as uow:
        await uow.session.execute(
            text("UPDATE memberships SET joined_at = :j, branch_id = :b WHERE member_id = :m"),
            {"j": joined, "b": branch, "m": member},
        )
        await uow.session.execute(
            text(
                "INSERT INTO member_profiles (tenant_id, member_id, name, tier_code, tags, birthday, last_purchase_at, "
                "consent, erased_at) VALUES (:t, :m, :name, :tier_code, :tags, :birthday, :last_purchase_at, "
                "CAST(:consent AS jsonb), :erased_at)"
            ),
            {
                "t": tenant,
                "m": member,
                "name": fields.get("name", ""),
                "tier_code": fields.get("tier_code"),
                "tags": fields.get("tags", []),
                "birthday": fields.get("birthday"),
                "last_purchase_at": fields.get("last_purchase_at"),
                "consent": json.dumps(fields.get("consent", {})),
                "erased_at": fields.get("erased_at"),
            },
        )
        await uow.commit()


async def sale(
    db: Database,
    tenant: uuid.UUID,
    member: uuid.UUID,
    branch: uuid.UUID,
    at: datetime,
    amount: int,
    *,
    status: str = "completed",
) -> None:
    async with db.uow(tenant) as uow:
        await uow.session.execute(
            text(
                "INSERT INTO sales (tenant_id, member_id, branch_id, business_time, currency, gross, due, "
                "qualifying_spend, programme_version, status, refunded) VALUES (:t, :m, :b, :at, 'CNY', :a, :a, :a, 1, "
                ":s, :r)"
            ),
            {
                "t": tenant,
                "m": member,
                "b": branch,
                "at": at,
                "a": amount,
                "s": status,
                "r": amount if status == "refunded" else 0,
            },
        )
        await uow.commit()


async def points(db: Database, tenant: uuid.UUID, member: uuid.UUID, n: int, *, expiring: bool = False) -> None:
    """Award ``n`` points: never expiring, or (``expiring``) earned ten days ago under a one-month
    expiry, so they expire about three weeks after NOW."""
    async with db.uow(tenant) as uow:
        await accounts.award_points(
            uow,
            member,
            n,
            programme=ONE_MONTH if expiring else NO_EXPIRY,
            reason="test",
            key=f"pts-{uuid.uuid4()}",
            business_time=NOW - timedelta(days=10),
        )
        await uow.commit()


async def stored_value(db: Database, tenant: uuid.UUID, member: uuid.UUID, amount: int) -> None:
    async with db.uow(tenant) as uow:
        mine = await accounts.member_accounts(uow, member, "CNY")
        merchant = await accounts.merchant_accounts(uow, "CNY")
        await ledger.post(
            uow,
            kind="topup",
            legs=[ledger.Leg(mine.sv_principal, amount), ledger.Leg(merchant.sv_float, -amount)],
            business_time=NOW - timedelta(days=1),
            key=f"sv-{uuid.uuid4()}",
        )
        await uow.commit()


async def coupon_template(db: Database, tenant: uuid.UUID, code: str) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        t = await coupons.create_template(
            uow, coupons.TemplateSpec(code=code, name=code, kind=CouponKind.FIXED, amount_off=500, valid_days=30)
        )
        await uow.commit()
        return t.id


async def give_coupon(db: Database, tenant: uuid.UUID, template: uuid.UUID, member: uuid.UUID) -> None:
    async with db.uow(tenant) as uow:
        await coupons.issue(uow, template, member, now=NOW - timedelta(days=1))
        await uow.commit()
