"""Tenant tables: merchants (the tenant registry), branches, the programme and its catalogue, CRM."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, DateTime, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk, uuid_pk


class Merchant(Base):
    """A tenant. Global registry row (no member data): its ``id`` is every tenant row's ``tenant_id``."""

    __tablename__ = "merchants"

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
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
    #: offered in the member portal's coupon centre (领券中心; migration 0014)
    claimable: Mapped[bool] = mapped_column(Boolean, default=False)
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


class MemberProfile(Base):
    """What a merchant knows about one of its members (CRM), beside identity's membership row."""

    __tablename__ = "member_profiles"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    gender: Mapped[str] = mapped_column(String(8), default="unknown")
    birthday: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str] = mapped_column(String(320), default="")
    address: Mapped[str] = mapped_column(String(400), default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    preferences: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    referrer_member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    #: the member's invitation code at this merchant (``/join/<merchant>?ref=``; migration 0014)
    referral_code: Mapped[str | None] = mapped_column(String(12))
    join_branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    source: Mapped[str] = mapped_column(String(16), default="till")
    consent: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    tier_code: Mapped[str | None] = mapped_column(String(32))
    tier_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tier_floor: Mapped[str | None] = mapped_column(String(32))
    tier_floor_until: Mapped[date | None] = mapped_column(Date)
    tier_reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cumulative_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    first_purchase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_purchase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checkin_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_checkin: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: this merchant's personal data about the member was erased (PIPL; migration 0015)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TierChangeRecord(Base):
    __tablename__ = "tier_changes"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    old_tier: Mapped[str | None] = mapped_column(String(32))
    new_tier: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExportLog(Base):
    """Every export of member data: who, what, how many rows, when (privacy first)."""

    __tablename__ = "export_log"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    filters: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    row_count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reward(Base):
    """A catalogue item members buy with points (积分兑换): a gift to pick up, a coupon, or stored value."""

    __tablename__ = "rewards"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock_total: Mapped[int | None] = mapped_column(Integer)
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    pickup_branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    coupon_template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sv_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RewardRedemption(Base):
    __tablename__ = "reward_redemptions"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    reward_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sv_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    pickup_branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    picked_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the ledger reversal that gave the points back
    cancel_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    #: stored value credited (kind stored_value), as it was when redeemed
    sv_amount: Mapped[int] = mapped_column(BigInteger, default=0)


class MemberCheckin(Base):
    """One check-in (签到) per member per local day; the primary key makes a retry a no-op."""

    __tablename__ = "member_checkins"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    streak: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RuleAward(Base):
    """One award an earning rule made (points and/or a coupon); append-only. ``(rule_code,
    award_key)`` is unique, so an award is exactly-once; caps per member and per day sum it."""

    __tablename__ = "rule_awards"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    rule_code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    award_key: Mapped[str] = mapped_column(String(240))
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    #: the merchant's local day of the award's business time
    day: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    refs: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RuleCounter(Base):
    """The running total of an earning rule with a total cap (migration 0010): one row per such rule,
    read ``FOR UPDATE`` before an award so concurrent awards cannot pass the cap; rows are never deleted
    (decision 0009). Rules without a total cap have no row. Written by ``tenants/queries.py``."""

    __tablename__ = "rule_counters"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    rule_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: points awarded under the rule so far
    points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    #: awards made under the rule so far
    awards: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (CheckConstraint("points >= 0 AND awards >= 0", name="values"),)


class MemberImport(Base):
    """A CSV import job: the file, its validation errors and a ``processed`` pointer (resumable)."""

    __tablename__ = "member_imports"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created_members: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, object]]] = mapped_column(JSONB, default=list)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SelfJoin(Base):
    """A person's join from the merchant's join link (the portal): the privacy notice accepted and the
    choices made. ``prospect`` while the programme's join rule waits for a qualifying purchase at the
    till, then ``confirmed``; ``member`` when the join enrolled at once (migration 0013)."""

    __tablename__ = "self_joins"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    birthday: Mapped[date | None] = mapped_column(Date)
    consents: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    privacy_accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: who invited the person (their referral link); the member's referrer once the till confirms
    referrer_member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class ErasureRequest(Base):
    """A member's request to erase their personal data here (``scope`` ``merchant``) or everywhere
    (one row per merchant): ``requested`` → ``done`` (``completed_at``), or ``refused`` with a
    ``reason`` (stored value left). Migration 0015; decision 0029."""

    __tablename__ = "erasure_requests"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    scope: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40), default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
