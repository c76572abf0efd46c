"""Settlement statements list their late items (issue 11): ``settlement_statements.late_items``.

A statement's ``late`` total now comes with the items it sums — each late entry with its business
time, the month it belonged to, the line it affects and the amount — kept on the statement row so a
closed month reads back exactly what was closed (statements are append-only). Statements closed
before this revision have none listed.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "settlement_statements", sa.Column("late_items", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb"))
    )


def downgrade() -> None:
    op.drop_column("settlement_statements", "late_items")
