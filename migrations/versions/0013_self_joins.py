"""Self-joins from a merchant's join link (issue 14): one row per person and merchant, kept as the
record of the privacy notice accepted and of the join's choices.

``status`` is ``member`` when the join enrolled the person at once (the programme's join rule is
free), ``prospect`` when the join rule asks for a qualifying purchase first — the person is then not
yet a member: name, birthday and marketing consents wait here until the till's first qualifying
sale enrols them (``confirmed``). Tenant table (RLS); the member may read their own rows (portal).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MEMBER = "member_id = NULLIF(current_setting('app.member_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "self_joins",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("member_id", UUID(as_uuid=True), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("birthday", sa.Date, nullable=True),
        sa.Column("consents", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("privacy_accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('member', 'prospect', 'confirmed')", name="ck_self_joins_status"),
    )
    for statement in rls.tenant_table("self_joins"):
        op.execute(statement)
    op.execute(f"CREATE POLICY member_self ON self_joins FOR SELECT USING ({MEMBER})")


def downgrade() -> None:
    op.drop_table("self_joins")
