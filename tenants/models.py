"""Tenant tables: merchants (the tenant registry) and their branches."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk, uuid_pk


class Merchant(Base):
    """A tenant. Global registry row (no member data): its ``id`` is every tenant row's ``tenant_id``."""

    __tablename__ = "merchants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          server_default=text("gen_random_uuid()"))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    trade: Mapped[str] = mapped_column(String(100), default="retail")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),)


class Branch(Base):
    __tablename__ = "branches"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProgrammeVersion(Base):
    """One immutable version of a merchant's programme document (see tenants/domain/programme.py)."""

    __tablename__ = "programme_versions"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    version: Mapped[int] = mapped_column(primary_key=True)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict[str, object]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(String(400), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    amount_off: Mapped[int] = mapped_column(BigInteger, default=0)
    percent_off: Mapped[int] = mapped_column(Integer, default=0)
    cap: Mapped[int | None] = mapped_column(BigInteger)
    gift_sku: Mapped[str] = mapped_column(String(64), default="")
    min_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_days: Mapped[int | None] = mapped_column(Integer)
    branch_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    stock_total: Mapped[int | None] = mapped_column(Integer)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Coupon(Base):
    __tablename__ = "coupons"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    template_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="issued")
    source: Mapped[str] = mapped_column(String(32), default="api")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_sale_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
