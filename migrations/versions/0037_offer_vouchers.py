"""Alliance offer vouchers inside the POS sale (issue 16, decision 0044's 2026-12-02 paragraph).

* ``sales.alliance_voucher`` — the alliance voucher the sale redeemed, as the sale recorded it
  (code, alliance, offer, discount, fee, the clearing entry); NULL for a sale without one. The
  discount itself is part of ``coupon_total`` (it is applied in the coupon step), so the
  conservation and refund-cap checks are unchanged.
* ``xmkt_vouchers.sale_id`` — the sale a voucher was redeemed in (NULL for the separate redeem
  endpoint); a full refund of that sale gives the voucher back by it.

Revision ID: 0037
Revises: 0036
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sales", sa.Column("alliance_voucher", JSONB, nullable=True))
    op.add_column("xmkt_vouchers", sa.Column("sale_id", UUID(as_uuid=True), nullable=True))


def downgrade() -> None:
    op.drop_column("xmkt_vouchers", "sale_id")
    op.drop_column("sales", "alliance_voucher")
