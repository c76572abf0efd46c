"""Marketing's tables (migration 0022). Segment rules are the JSON form of ``domain.Rules``."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base, tenant_id_pk, uuid_pk


class Segment(Base):
    __tablename__ = "segments"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    rules: Mapped[dict[str, object]] = mapped_column(JSONB)
    rules_version: Mapped[int] = mapped_column(Integer)
    last_count: Mapped[int | None] = mapped_column(Integer)
    counted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AudienceSnapshot(Base):
    """An audience frozen at send time; its members are ``audience_snapshot_members`` rows."""

    __tablename__ = "audience_snapshots"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    segment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    rules: Mapped[dict[str, object]] = mapped_column(JSONB)
    holdout_pct: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    members: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AudienceSnapshotMember(Base):
    __tablename__ = "audience_snapshot_members"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    snapshot_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    holdout: Mapped[bool] = mapped_column(Boolean)


class MemberRfm(Base):
    __tablename__ = "member_rfm"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    recency: Mapped[int] = mapped_column(SmallInteger)
    frequency: Mapped[int] = mapped_column(SmallInteger)
    monetary: Mapped[int] = mapped_column(SmallInteger)
    last_purchase_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purchases: Mapped[int] = mapped_column(Integer)
    spend: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MessagingProvider(Base):
    """A merchant's provider for one channel; ``secret_sealed`` is ``platform.secrets.seal`` output."""

    __tablename__ = "messaging_providers"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict)
    secret_sealed: Mapped[str] = mapped_column(Text, default="")
    secret_hint: Mapped[str] = mapped_column(String(16), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeliveryReceipt(Base):
    __tablename__ = "delivery_receipts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    provider: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64), default="")
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Campaign(Base):
    """A message to a segment (migration 0024); its recipients are ``campaign_messages`` rows."""

    __tablename__ = "campaigns"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    #: NULL for an automation's campaign (status ``automation``, migration 0025)
    segment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200), default="")
    template_a: Mapped[str] = mapped_column(Text)
    template_b: Mapped[str | None] = mapped_column(Text)
    split_a_pct: Mapped[int] = mapped_column(Integer, default=100)
    holdout_pct: Mapped[int] = mapped_column(Integer, default=0)
    coupon_template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    link: Mapped[str] = mapped_column(String(500), default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    snapshot_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    attribution_days: Mapped[int] = mapped_column(Integer, default=7)
    message_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the alliance offer this campaign delivers (migration 0029x): its coupon code is the voucher code
    alliance_offer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignMessage(Base):
    __tablename__ = "campaign_messages"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    campaign_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    #: '' for a campaign; an automation's occasion (the birthday's year, the lot's date…), migration 0025
    occasion: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    channel: Mapped[str] = mapped_column(String(16))
    variant: Mapped[str] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str] = mapped_column(String(16), default="")
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(String(300), default="")
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    body: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Automation(Base):
    """A trigger, an optional wait and actions (migration 0025); its message is its campaign's."""

    __tablename__ = "automations"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(24))
    days: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    wait_days: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    coupon_template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    points: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AutomationFiring(Base):
    """One automation, member and occasion: fired at most once (the primary key)."""

    __tablename__ = "automation_firings"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    automation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    occasion: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    points: Mapped[int] = mapped_column(Integer, default=0)
    messaged: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LuckyDraw(Base):
    """A lucky draw (抽奖, migration 0028): its window, cost, budget; prizes are ``LuckyDrawPrize`` rows."""

    __tablename__ = "lucky_draws"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: points one draw costs; 0 = free, once per member per local day (``free_daily``)
    cost_points: Mapped[int] = mapped_column(Integer, default=0)
    free_daily: Mapped[bool] = mapped_column(Boolean, default=False)
    #: fen; None = no budget
    budget: Mapped[int | None] = mapped_column(BigInteger)
    budget_used: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LuckyDrawPrize(Base):
    __tablename__ = "lucky_draw_prizes"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    draw_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer, default=0)
    coupon_template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    gift: Mapped[str] = mapped_column(String(200), default="")
    #: basis points of 10 000; what the prizes leave is "no prize"
    chance_bp: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    stock_total: Mapped[int] = mapped_column(Integer)
    #: fen, counted against the draw's budget when won
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class LuckyDrawEntry(Base):
    """One draw by one member (append-only)."""

    __tablename__ = "lucky_draw_entries"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    draw_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    prize_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cost_points: Mapped[int] = mapped_column(Integer)
    free: Mapped[bool] = mapped_column(Boolean)
    local_day: Mapped[date] = mapped_column(Date)
    spend_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    award_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WechatOpenid(Base):
    """A member's openid at the merchant's WeChat app (migration 0029w)."""

    __tablename__ = "wechat_openids"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    openid: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WechatGrant(Base):
    """One accepted one-time subscription to a template; a subscribe message spends it."""

    __tablename__ = "wechat_grants"

    tenant_id: Mapped[uuid.UUID] = tenant_id_pk()
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    template_id: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    spent_for: Mapped[str | None] = mapped_column(String(200))
