"""Promotions at the till (issue 16), decision 0043: what price promotions took off a sale.

* ``sales.promotion_discount`` — the sum the promotions took off (minor units, before the tier
  discount and coupons); the conservation and refund-cap checks count it like the other discounts.
* ``sales.applied_promotions`` — each promotion applied: code, name, kind, discount and what it took
  off each line (``[[line_no, amount], …]``), so a receipt, the member's history and a refund of a
  line read what happened. ``sales.promotions`` keeps the codes of every promotion that shaped the
  sale (points promotions too).

The promotions themselves live in the versioned programme document (``promotions``), no table.

Revision ID: 0033
Revises: 0032
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


_CONSERVED = "gross = {} member_discount + coupon_total + points_cash + sv_principal + sv_bonus + due"
_REFUND_CAP = "refunded <= gross - {} member_discount - coupon_total"


def _checks(promotions: str) -> None:
    op.execute(
        "ALTER TABLE sales DROP CONSTRAINT ck_sales_conserved, DROP CONSTRAINT ck_sales_refund_cap, "
        f"ADD CONSTRAINT ck_sales_conserved CHECK ({_CONSERVED.format(promotions)}), "
        f"ADD CONSTRAINT ck_sales_refund_cap CHECK ({_REFUND_CAP.format(promotions.replace('+', '-'))})"
    )


def upgrade() -> None:
    op.add_column("sales", sa.Column("promotion_discount", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column(
        "sales", sa.Column("applied_promotions", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb"))
    )
    op.execute("ALTER TABLE sales ADD CONSTRAINT ck_sales_promotion_discount CHECK (promotion_discount >= 0)")
    _checks("promotion_discount +")


def downgrade() -> None:
    _checks("")
    op.execute("ALTER TABLE sales DROP CONSTRAINT ck_sales_promotion_discount")
    op.drop_column("sales", "applied_promotions")
    op.drop_column("sales", "promotion_discount")
