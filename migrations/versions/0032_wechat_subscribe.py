"""Marketing (issue 16): WeChat subscribe messages and SMS replies (decision 0045).

* ``wechat_openids`` — a member's openid at the merchant's mini-program / official account (one per
  member and merchant), reported by the portal.
* ``wechat_grants`` — one row per one-time subscription a member accepted
  (``wx.requestSubscribeMessage`` answered ``accept`` for a template); a subscribe message spends one
  (``spent_at``, the campaign message it went to). Never deleted.
* ``sms_replies`` — replies members sent to marketing SMS (Aliyun SmsUp pushes, Tencent reply
  callbacks), once per (provider, reply id); ``action`` says whether it withdrew the SMS consent
  (``unsubscribe``) or was only stored. Platform rows until mapped to a merchant, like receipts.
* ``messaging_providers`` admits the channel and provider ``wechat``; ``campaign_messages`` the
  status ``skipped`` (not sendable: no openid, no subscription grant — the reason is in ``error``).

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def _tenant(nullable: bool = False) -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=nullable)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _checks(table: str, name: str, check: str) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}, DROP CONSTRAINT IF EXISTS ck_{table}_{name}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check})")


def upgrade() -> None:
    _checks("messaging_providers", "channel", "channel IN ('sms', 'email', 'wechat')")
    _checks("messaging_providers", "provider", "provider IN ('console', 'aliyun', 'tencent', 'smtp', 'wechat')")
    _checks(
        "campaign_messages",
        "status",
        "status IN ('pending', 'queued', 'retry', 'sent', 'delivered', 'failed', 'dead', 'skipped')",
    )
    op.create_table(
        "wechat_openids",
        _tenant(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("openid", sa.String(128), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name="pk_wechat_openids"),
        sa.UniqueConstraint("tenant_id", "openid", name="uq_wechat_openids_openid"),
    )
    op.create_table(
        "wechat_grants",
        _tenant(),
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=False),
        _now("granted_at"),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spent_for", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_wechat_grants"),
    )
    op.execute(
        "CREATE INDEX ix_wechat_grants_open ON wechat_grants (tenant_id, member_id, template_id, granted_at) "
        "WHERE spent_at IS NULL"
    )
    op.create_table(
        "sms_replies",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _tenant(nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("reply_id", sa.String(128), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sign", sa.String(64), nullable=False, server_default=""),
        sa.Column("extension", sa.String(32), nullable=False, server_default=""),
        sa.Column("content", sa.String(500), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", JSONB, nullable=False),
        _now("received_at"),
        sa.CheckConstraint("action IN ('unsubscribe', 'stored', 'unmatched')", name="action"),
    )
    # one row per merchant the reply reaches (NULL: none), so a provider's re-push is a no-op
    op.execute(
        "ALTER TABLE sms_replies ADD CONSTRAINT uq_sms_replies_reply UNIQUE NULLS NOT DISTINCT "
        "(provider, reply_id, tenant_id)"
    )
    op.execute("CREATE INDEX ix_sms_replies_tenant ON sms_replies (tenant_id, received_at)")
    for table in ("wechat_openids", "wechat_grants"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    for statement in rls.tenant_or_system_table("sms_replies", privileges="SELECT, INSERT"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("sms_replies", "wechat_grants", "wechat_openids"):
        op.drop_table(table)
    op.execute("UPDATE campaign_messages SET status = 'failed' WHERE status = 'skipped'")
    _checks(
        "campaign_messages", "status", "status IN ('pending', 'queued', 'retry', 'sent', 'delivered', 'failed', 'dead')"
    )
    op.execute("DELETE FROM messaging_providers WHERE channel = 'wechat' OR provider = 'wechat'")
    _checks("messaging_providers", "provider", "provider IN ('console', 'aliyun', 'tencent', 'smtp')")
    _checks("messaging_providers", "channel", "channel IN ('sms', 'email')")
