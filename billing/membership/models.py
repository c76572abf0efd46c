"""Paid-membership tables (migration 0020). ``membership_savings`` is written by the POS
(``tenants/pos/queries.py``, row type ``SavingRow``) and read here by plain SQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Numeric, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk, uuid_pk


class MembershipProduct(Base):
    __tablename__ = "membership_products"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(8))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    tier_code: Mapped[str | None] = mapped_column(String(32))
    extra_discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    points_multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal(1))
    coupon_pack: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    gifts: Mapped[list[str]] = mapped_column(JSONB, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MembershipTerm(Base):
    __tablename__ = "membership_terms"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    product_code: Mapped[str] = mapped_column(String(32))
    product_name: Mapped[str] = mapped_column(String(100))
    perks: Mapped[dict[str, Any]] = mapped_column(JSONB)
    months: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16))
    payment_ref: Mapped[str] = mapped_column(String(255))
    payment_method: Mapped[str] = mapped_column(String(32), default="cash")
    branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="active")
    recognised_months: Mapped[int] = mapped_column(Integer, default=0)
    packs_issued: Mapped[int] = mapped_column(Integer, default=0)
    refunded_months: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MembershipSettings(Base):
    __tablename__ = "membership_settings"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    refund_policy: Mapped[str] = mapped_column(String(24), default="unused_months")
    reminder_days: Mapped[int] = mapped_column(Integer, default=7)
