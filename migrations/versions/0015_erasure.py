"""Erasure requests (issue 14, PIPL): a member asks a merchant — or every merchant — to erase their
personal data. One row per merchant concerned (the merchant's console lists its own rows under RLS;
the member reads theirs in the portal scope), with the time asked and the time done.

``member_profiles.erased_at``: this merchant's personal data about the member was erased (the
console shows the member as erased, without a phone). ``members.erased_at``: the person was erased
everywhere (the phone pseudonymised, the card's QR secret replaced).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MEMBER = "member_id = NULLIF(current_setting('app.member_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("member_id", UUID(as_uuid=True), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False, server_default=""),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('merchant', 'everywhere')", name="ck_erasure_requests_scope"),
        sa.CheckConstraint("status IN ('requested', 'done', 'refused')", name="ck_erasure_requests_status"),
    )
    op.create_index("ix_erasure_requests_member", "erasure_requests", ["tenant_id", "member_id"])
    for statement in rls.tenant_table("erasure_requests"):
        op.execute(statement)
    op.execute(f"CREATE POLICY member_self ON erasure_requests FOR SELECT USING ({MEMBER})")
    op.add_column("member_profiles", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("members", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("members", "erased_at")
    op.drop_column("member_profiles", "erased_at")
    op.drop_table("erasure_requests")
