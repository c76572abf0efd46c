"""POS tables (migrations/versions/0008_pos.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, SmallInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk, uuid_pk


class Sale(Base):
    __tablename__ = "sales"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    branch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    business_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(String(3))
    gross: Mapped[int] = mapped_column(BigInteger)
    promotion_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    member_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_total: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_cash: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    due: Mapped[int] = mapped_column(BigInteger, default=0)
    qualifying_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_method: Mapped[str] = mapped_column(String(32), default="cash")
    programme_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), default="completed")
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    entries: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    coupons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    promotions: Mapped[list[str]] = mapped_column(JSONB, default=list)
    #: each price promotion applied (decision 0043): code, name, kind, discount, lines [[line_no, amount]]
    applied_promotions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    #: the alliance voucher redeemed in the sale (decision 0044): code, alliance_id, offer_id, discount, fee, entry_id
    alliance_voucher: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def net(self) -> int:
        return self.gross - self.promotion_discount - self.member_discount - self.coupon_total


class SaleLine(Base):
    __tablename__ = "sale_lines"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    sale_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    line_no: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64), default="")
    qty: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)


class TopUp(Base):
    __tablename__ = "top_ups"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    branch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_code: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    payment_method: Mapped[str] = mapped_column(String(32))
    business_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    __tablename__ = "refunds"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    sale_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    branch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, int]]] = mapped_column(JSONB, default=list)
    points_clawed_back: Mapped[int] = mapped_column(BigInteger, default=0)
    points_restored: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_principal_restored: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_bonus_restored: Mapped[int] = mapped_column(BigInteger, default=0)
    points_debt: Mapped[int] = mapped_column(BigInteger, default=0)
    business_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entries: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
