"""Alliance cross-marketing (issue 16), decision 0044.

* ``xmkt_offers`` — in the alliance's book (``tenant_id`` is the alliance's id): a partner (the funder)
  offers a discount valid at its own branches to another partner's (the target's) members in a
  segment of shareable attributes only (tiers, lifecycle stages); the fee per redemption it pays the
  target; status ``proposed`` → ``accepted`` (delivered) | ``declined``. An extra read policy lets the
  funder and the target read their own offers, nobody else's.
* ``xmkt_vouchers`` — the operator's delivery records (alliance book only, no partner policy): one
  per recipient, its code, and its redemption (branch, sale amount, discount, clearing entry).
* ``campaigns.alliance_offer_id`` — the target's campaigns that deliver an offer (their coupon code
  is the recipient's voucher code).

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_BOOK = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
_MINE = (
    "funder_merchant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid "
    "OR target_merchant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)


def upgrade() -> None:
    op.create_table(
        "xmkt_offers",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("funder_merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("target_merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("message", sa.String(300), nullable=False),
        sa.Column("tiers", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("stages", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("channels", JSONB, nullable=False, server_default=sa.text("'[\"portal\"]'::jsonb")),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("min_spend", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("fee", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="proposed"),
        sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_xmkt_offers"),
        sa.CheckConstraint("funder_merchant_id <> target_merchant_id", name="ck_xmkt_offers_other_partner"),
        sa.CheckConstraint("discount > 0 AND min_spend >= 0 AND fee >= 0", name="ck_xmkt_offers_amounts"),
        sa.CheckConstraint("status IN ('proposed', 'accepted', 'declined')", name="ck_xmkt_offers_status"),
    )
    op.create_index("ix_xmkt_offers_funder", "xmkt_offers", ["funder_merchant_id"])
    op.create_index("ix_xmkt_offers_target", "xmkt_offers", ["target_merchant_id"])
    op.create_table(
        "xmkt_vouchers",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("offer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sale_amount", sa.BigInteger, nullable=True),
        sa.Column("discount", sa.BigInteger, nullable=True),
        sa.Column("entry_id", UUID(as_uuid=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "offer_id", "member_id", name="pk_xmkt_vouchers"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_xmkt_vouchers_code"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "offer_id"], ["xmkt_offers.tenant_id", "xmkt_offers.id"], name="fk_xmkt_vouchers_offer"
        ),
        sa.CheckConstraint("sale_amount IS NULL OR sale_amount > 0", name="ck_xmkt_vouchers_sale"),
    )
    for table in ("xmkt_offers", "xmkt_vouchers"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY alliance_book ON {table} USING ({_BOOK}) WITH CHECK ({_BOOK})")
        for s in rls.grant(table, "SELECT, INSERT, UPDATE"):
            op.execute(s)
    op.execute(f"CREATE POLICY own_offers ON xmkt_offers FOR SELECT USING ({_MINE})")
    op.add_column("campaigns", sa.Column("alliance_offer_id", UUID(as_uuid=True), nullable=True))


def downgrade() -> None:
    op.drop_column("campaigns", "alliance_offer_id")
    op.drop_table("xmkt_vouchers")
    op.drop_table("xmkt_offers")
