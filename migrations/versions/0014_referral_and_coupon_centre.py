"""Referral codes, the prospect's referrer, and coupon templates members may claim (issue 14, the
portal's referral and coupon centre — decision 0028).

- ``member_profiles.referral_code``: the member's code at this merchant for their invitation link
  (``/join/<merchant>?ref=<code>``): random, short, unique per merchant; made when first asked for.
- ``self_joins.referrer_member_id``: who invited a prospect; it becomes the member's referrer when
  the till's qualifying sale enrols them.
- ``coupon_templates.claimable``: the merchant offers the template in the portal's coupon centre
  (领券中心); a claim is an ordinary issue (stock, per-member limit).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("member_profiles", sa.Column("referral_code", sa.String(12), nullable=True))
    op.create_index("uq_member_profiles_referral_code", "member_profiles", ["tenant_id", "referral_code"], unique=True)
    op.add_column("self_joins", sa.Column("referrer_member_id", UUID(as_uuid=True), nullable=True))
    op.add_column("coupon_templates", sa.Column("claimable", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("coupon_templates", "claimable")
    op.drop_column("self_joins", "referrer_member_id")
    op.drop_index("uq_member_profiles_referral_code", table_name="member_profiles")
    op.drop_column("member_profiles", "referral_code")
