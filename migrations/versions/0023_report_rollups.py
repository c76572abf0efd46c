"""Reports (issue 17, part 1): daily rollups per merchant, branch and local day, and their mark.

* ``report_daily`` — one row per (merchant, local day in the merchant's time zone, branch): sales
  (count and amount, member and non-member apart, net of discounts, coupons and refunds), distinct
  buying members, new members, points issued / redeemed / expired, stored value topped up (principal,
  bonus) and consumed, coupons issued / redeemed. Movements that belong to no branch (a points
  expiry, a coupon sent from the console) are on the nil branch ``00000000-…``. Derived data: the
  rollup job deletes and rewrites whole days, so a row is never edited in place by anyone else.
* ``report_marks`` — per merchant, the high-water mark over the journal and the POS tables: rows
  written (``created_at`` / ``posted_at``) after it have not been rolled up yet. Advanced in the
  same transaction that rewrites the days those rows touch (decision 0037).
* Indexes on the source tables' write times, so finding what changed since the mark is a range scan.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_COUNTS = (
    "sales_count_member",
    "sales_count_nonmember",
    "sales_member",
    "sales_nonmember",
    "refunds",
    "buying_members",
    "new_members",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "topup_principal",
    "topup_bonus",
    "sv_consumed_principal",
    "sv_consumed_bonus",
    "coupons_issued",
    "coupons_redeemed",
)
#: (index name, table, columns) for "what was written since the mark"
_INDEXES = (
    ("ix_sales_created", "sales", ["tenant_id", "created_at"]),
    ("ix_refunds_created", "refunds", ["tenant_id", "created_at"]),
    ("ix_top_ups_created", "top_ups", ["tenant_id", "created_at"]),
    ("ix_ledger_entries_posted", "ledger_entries", ["tenant_id", "posted_at"]),
    ("ix_memberships_joined", "memberships", ["tenant_id", "joined_at"]),
    ("ix_coupons_issued", "coupons", ["tenant_id", "issued_at"]),
    ("ix_coupons_redeemed", "coupons", ["tenant_id", "redeemed_at"]),
)


def upgrade() -> None:
    op.create_table(
        "report_daily",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("branch_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in _COUNTS),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for statement in rls.tenant_table("report_daily"):
        op.execute(statement)
    op.create_table(
        "report_marks",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for statement in rls.tenant_table("report_marks"):
        op.execute(statement)
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("report_marks")
    op.drop_table("report_daily")
