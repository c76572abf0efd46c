"""Marketing, second part (issue 16): campaigns, one row per recipient, the merchant's marketing settings.

* ``campaigns`` — name, segment, channel, the message template(s) (A and optional B with the
  share of A in percent), the holdout percent, an optional coupon template issued to each
  recipient, when it goes out (``scheduled_at``, NULL = at once), its status, the frozen snapshot,
  the attribution window and the price of one message (fen, for ROI).
* ``campaign_messages`` — one row per recipient (PK (tenant, campaign, member): never twice), its
  variant, status (pending → queued → sent → delivered | failed; retry; dead), when it is due
  (quiet hours defer it), attempts, the provider's message id (receipts join on it), the coupon
  issued, when it was opened. Platform scope may read/update it (the receipt webhook names no merchant).
* ``marketing_settings`` — per merchant: the weekly frequency cap per member and channel.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _ts(name: str, *, now: bool = False) -> sa.Column[object]:
    if now:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("segment_id", UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, server_default=""),
        sa.Column("template_a", sa.Text, nullable=False),
        sa.Column("template_b", sa.Text, nullable=True),
        sa.Column("split_a_pct", sa.Integer, nullable=False, server_default="100"),
        sa.Column("holdout_pct", sa.Integer, nullable=False, server_default="0"),
        sa.Column("coupon_template_id", UUID(as_uuid=True), nullable=True),
        sa.Column("link", sa.String(500), nullable=False, server_default=""),
        _ts("scheduled_at"),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("snapshot_id", UUID(as_uuid=True), nullable=True),
        sa.Column("attribution_days", sa.Integer, nullable=False, server_default="7"),
        sa.Column("message_cost", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
        _ts("started_at"),
        _ts("created_at", now=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_campaigns"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_campaigns_name"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "segment_id"], ["segments.tenant_id", "segments.id"], name="fk_campaigns_segment"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "snapshot_id"],
            ["audience_snapshots.tenant_id", "audience_snapshots.id"],
            name="fk_campaigns_snapshot",
        ),
        sa.CheckConstraint("channel IN ('sms', 'email', 'portal', 'wechat')", name="channel"),
        sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'sent')", name="status"),
        sa.CheckConstraint("split_a_pct BETWEEN 0 AND 100 AND holdout_pct BETWEEN 0 AND 100", name="percents"),
        sa.CheckConstraint("attribution_days BETWEEN 1 AND 90 AND message_cost >= 0", name="attribution"),
    )
    op.create_table(
        "campaign_messages",
        _tenant(),
        sa.Column("campaign_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("variant", sa.String(1), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("provider", sa.String(16), nullable=False, server_default=""),
        sa.Column("provider_message_id", sa.String(128), nullable=True),
        sa.Column("error", sa.String(300), nullable=False, server_default=""),
        sa.Column("coupon_id", UUID(as_uuid=True), nullable=True),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        _ts("sent_at"),
        _ts("delivered_at"),
        _ts("opened_at"),
        _ts("created_at", now=True),
        sa.PrimaryKeyConstraint("tenant_id", "campaign_id", "member_id", name="pk_campaign_messages"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"], name="fk_campaign_messages_campaign"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'retry', 'sent', 'delivered', 'failed', 'dead')", name="status"
        ),
        sa.CheckConstraint("variant IN ('a', 'b')", name="variant"),
    )
    op.execute("CREATE INDEX ix_campaign_messages_cap ON campaign_messages (tenant_id, member_id, channel, created_at)")
    op.execute(
        "CREATE INDEX ix_campaign_messages_due ON campaign_messages (tenant_id, due_at) "
        "WHERE status IN ('pending', 'retry')"
    )
    op.execute(
        "CREATE INDEX ix_campaign_messages_provider_id ON campaign_messages (provider, provider_message_id) "
        "WHERE provider_message_id IS NOT NULL"
    )
    op.create_table(
        "marketing_settings",
        _tenant(),
        sa.Column("frequency_cap", sa.Integer, nullable=False, server_default="2"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_marketing_settings"),
        sa.CheckConstraint("frequency_cap BETWEEN 0 AND 50", name="frequency_cap"),
    )
    for table in ("campaigns", "marketing_settings"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    for statement in rls.tenant_or_system_table("campaign_messages", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)
    # receipts are linked to their merchant once a campaign message claims them
    op.execute(rls.grant("delivery_receipts", "UPDATE")[0])


def downgrade() -> None:
    for table in ("marketing_settings", "campaign_messages", "campaigns"):
        op.drop_table(table)
