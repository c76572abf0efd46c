"""Reports at scale (issue 17, decision 0047): what members hold, from the daily rollups.

* ``report_daily.sv_principal_change`` / ``sv_bonus_change`` — per (merchant, local day, branch) the
  net of every posting on members' stored-value accounts (principal, bonus) in the merchant's currency
  that day: top-ups, spends, refunds, restorations, cash refunds, bonus expiry — whatever moved it. Summed
  over all days they are the float members hold, so the dashboard reads O(days × branches) rollup rows
  instead of every member's balance row. (Points held need no column: issued − redeemed − expired
  already nets every members' points posting.)
* ``ix_sales_business_time`` on ``sales (tenant_id, business_time) INCLUDE (member_id, branch_id)`` —
  the dashboard's distinct buyers of a period (all branches) become an index-only range scan.
* ``ix_member_profiles_tier`` on ``member_profiles (tenant_id, tier_code)`` — the tier distribution
  becomes an index-only scan instead of reading every (wide) profile row.

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_CHANGES = ("sv_principal_change", "sv_bonus_change")


def upgrade() -> None:
    for name in _CHANGES:
        op.add_column("report_daily", sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))
    op.create_index(
        "ix_sales_business_time", "sales", ["tenant_id", "business_time"], postgresql_include=["member_id", "branch_id"]
    )
    op.create_index("ix_member_profiles_tier", "member_profiles", ["tenant_id", "tier_code"])
    # the rows already there lack the new figures: the next tick must roll every day up again
    op.execute("DELETE FROM report_marks")


def downgrade() -> None:
    op.drop_index("ix_member_profiles_tier", table_name="member_profiles")
    op.drop_index("ix_sales_business_time", table_name="sales")
    for name in reversed(_CHANGES):
        op.drop_column("report_daily", name)
