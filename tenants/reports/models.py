"""Report tables (migrations/versions/0023_report_rollups.py): the daily rollups and their mark."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk


class DailyRollup(Base):
    """One merchant's figures for one local day at one branch (the nil branch: no branch's)."""

    __tablename__ = "report_daily"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    sales_count_member: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_count_nonmember: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_member: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_nonmember: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(BigInteger, default=0)
    buying_members: Mapped[int] = mapped_column(BigInteger, default=0)
    new_members: Mapped[int] = mapped_column(BigInteger, default=0)
    points_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_consumed_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_consumed_bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    coupons_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    coupons_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    #: net postings on members' stored-value accounts that day (migration 0029h): summed, the float
    sv_principal_change: Mapped[int] = mapped_column(BigInteger, default=0)
    sv_bonus_change: Mapped[int] = mapped_column(BigInteger, default=0)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReportMark(Base):
    """Rows of the journal and the POS tables written after ``mark`` are not rolled up yet."""

    __tablename__ = "report_marks"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    mark: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BuyerRollup(Base):
    """Members whose first / second purchase of the calendar month (merchant time zone) was this local
    day, at this branch (ranked among their purchases at that branch) — or, on the nil branch, at the
    merchant as a whole (ranked among all their purchases). Migration 0038, decision 0055: a
    month-aligned period's active members = Σ firsts, members who bought twice = Σ seconds."""

    __tablename__ = "report_buyers"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    firsts: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class TierCount(Base):
    """A change to how many members hold a tier (``''``: none yet): written by a trigger on
    ``member_profiles`` (+1 / −1 per row change), folded into one row per tier by the rollup's tick.
    Σ ``members`` per tier is the distribution, exact at any instant (migration 0038, decision 0055)."""

    __tablename__ = "report_tier_counts"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    tier_code: Mapped[str] = mapped_column(String(64))
    members: Mapped[int] = mapped_column(BigInteger)
