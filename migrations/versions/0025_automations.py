"""Marketing, third part (issue 16): automations (journeys) on the campaigns' delivery path.

* ``automations`` — per merchant: name, trigger and its parameters (``days``, ``amount``), the wait
  in days, on/off, and the actions: a message (through a backing ``campaigns`` row of status
  ``automation`` that carries channel, subject and template), a coupon template, points.
  ``code`` names a merchant's default automation (``birthday``, ``points_expiry``) once.
* ``automation_firings`` — one row per automation, member and occasion (the PK is "fires at most
  once per occasion"): waiting until ``due_at`` (the wait), then done with the coupon and points given.
* ``campaigns.segment_id`` becomes optional (an automation's campaign has no segment) and a campaign
  may be of status ``automation``; ``campaign_messages`` gains ``occasion`` in its primary key, so
  an automation's campaign can message the same member again on the next occasion.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TRIGGERS = (
    "joined",
    "first_purchase",
    "birthday",
    "points_expiring",
    "coupon_expiring",
    "win_back",
    "tier_up",
    "stored_value_below",
    "membership_expiring",
    "tier_at_risk",
)


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def upgrade() -> None:
    op.alter_column("campaigns", "segment_id", nullable=True)
    op.execute("ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS status, DROP CONSTRAINT IF EXISTS ck_campaigns_status")
    op.execute(
        "ALTER TABLE campaigns ADD CONSTRAINT status "
        "CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'automation'))"
    )
    op.add_column("campaign_messages", sa.Column("occasion", sa.String(64), nullable=False, server_default=""))
    op.execute("ALTER TABLE campaign_messages DROP CONSTRAINT pk_campaign_messages")
    op.execute(
        "ALTER TABLE campaign_messages ADD CONSTRAINT pk_campaign_messages "
        "PRIMARY KEY (tenant_id, campaign_id, member_id, occasion)"
    )
    op.create_table(
        "automations",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("trigger", sa.String(24), nullable=False),
        sa.Column("days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("wait_days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("campaign_id", UUID(as_uuid=True), nullable=True),
        sa.Column("coupon_template_id", UUID(as_uuid=True), nullable=True),
        sa.Column("points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_automations"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_automations_name"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_automations_code"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"], name="fk_automations_campaign"
        ),
        sa.CheckConstraint("trigger IN (" + ", ".join(f"'{t}'" for t in TRIGGERS) + ")", name="trigger"),
        sa.CheckConstraint(
            "days BETWEEN 0 AND 366 AND wait_days BETWEEN 0 AND 90 AND amount >= 0 AND points >= 0", name="numbers"
        ),
    )
    op.create_table(
        "automation_firings",
        _tenant(),
        sa.Column("automation_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("occasion", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="waiting"),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("coupon_id", UUID(as_uuid=True), nullable=True),
        sa.Column("points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("messaged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "automation_id", "member_id", "occasion", name="pk_automation_firings"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "automation_id"],
            ["automations.tenant_id", "automations.id"],
            name="fk_automation_firings_automation",
        ),
        sa.CheckConstraint("status IN ('waiting', 'done')", name="status"),
    )
    op.execute(
        "CREATE INDEX ix_automation_firings_due ON automation_firings (tenant_id, due_at) WHERE status = 'waiting'"
    )
    for table in ("automations", "automation_firings"):
        for statement in rls.tenant_table(table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("automation_firings")
    op.drop_table("automations")
    op.execute("DELETE FROM campaign_messages WHERE occasion <> ''")
    op.execute("ALTER TABLE campaign_messages DROP CONSTRAINT pk_campaign_messages")
    op.execute(
        "ALTER TABLE campaign_messages ADD CONSTRAINT pk_campaign_messages PRIMARY KEY (tenant_id, campaign_id, member_id)"
    )
    op.drop_column("campaign_messages", "occasion")
    op.execute("DELETE FROM campaigns WHERE status = 'automation'")
    op.execute("ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS status, DROP CONSTRAINT IF EXISTS ck_campaigns_status")
    op.execute(
        "ALTER TABLE campaigns ADD CONSTRAINT status CHECK (status IN ('draft', 'scheduled', 'sending', 'sent'))"
    )
    op.alter_column("campaigns", "segment_id", nullable=False)
