"""Marketing (issue 16): the lucky draw (抽奖), decision 0042.

* ``lucky_draws`` — name, active window (``starts_at`` … ``ends_at``), the cost of one draw in points
  (0 = free, then ``free_daily`` allows one free draw per member per local day of the merchant), the
  budget in fen (NULL = none) and what prizes have used of it (``budget_used``, raised by a conditional
  ``UPDATE`` that never passes the budget), active flag.
* ``lucky_draw_prizes`` — a draw's prizes: points, a coupon template or a gift (text); the chance in
  basis points (the rest of 10 000 is "no prize"), the stock left (``stock``, taken by a conditional
  ``UPDATE … WHERE stock > 0``), the stock at creation, its value in fen (counted against the budget).
* ``lucky_draw_entries`` — every draw: member, the prize won (NULL = none), the points spent and their
  ledger entry, the coupon issued or points awarded, the local day. A partial unique index keeps one
  free draw per member, draw and local day even under concurrency.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()"))


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "lucky_draws",
        _tenant(),
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cost_points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("free_daily", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("budget", sa.BigInteger, nullable=True),
        sa.Column("budget_used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_lucky_draws"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_lucky_draws_name"),
        sa.CheckConstraint("ends_at > starts_at", name="window"),
        sa.CheckConstraint("cost_points >= 0 AND (cost_points = 0) = free_daily", name="cost"),
        sa.CheckConstraint("budget IS NULL OR (budget >= 0 AND budget_used <= budget)", name="budget"),
        sa.CheckConstraint("budget_used >= 0", name="budget_used"),
    )
    op.create_table(
        "lucky_draw_prizes",
        _tenant(),
        _id(),
        sa.Column("draw_id", UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("coupon_template_id", UUID(as_uuid=True), nullable=True),
        sa.Column("gift", sa.String(200), nullable=False, server_default=""),
        sa.Column("chance_bp", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("stock_total", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_lucky_draw_prizes"),
        sa.UniqueConstraint("tenant_id", "draw_id", "position", name="uq_lucky_draw_prizes_position"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "draw_id"], ["lucky_draws.tenant_id", "lucky_draws.id"], name="fk_lucky_draw_prizes_draw"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "coupon_template_id"],
            ["coupon_templates.tenant_id", "coupon_templates.id"],
            name="fk_lucky_draw_prizes_template",
        ),
        sa.CheckConstraint("kind IN ('points', 'coupon', 'gift')", name="kind"),
        sa.CheckConstraint("chance_bp BETWEEN 1 AND 10000", name="chance"),
        sa.CheckConstraint("stock >= 0 AND stock <= stock_total", name="stock"),
        sa.CheckConstraint("value >= 0 AND points >= 0", name="value"),
    )
    op.create_table(
        "lucky_draw_entries",
        _tenant(),
        _id(),
        sa.Column("draw_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("prize_id", UUID(as_uuid=True), nullable=True),
        sa.Column("cost_points", sa.Integer, nullable=False),
        sa.Column("free", sa.Boolean, nullable=False),
        sa.Column("local_day", sa.Date, nullable=False),
        sa.Column("spend_entry_id", UUID(as_uuid=True), nullable=True),
        sa.Column("award_entry_id", UUID(as_uuid=True), nullable=True),
        sa.Column("coupon_id", UUID(as_uuid=True), nullable=True),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_lucky_draw_entries"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "draw_id"], ["lucky_draws.tenant_id", "lucky_draws.id"], name="fk_lucky_draw_entries_draw"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "prize_id"],
            ["lucky_draw_prizes.tenant_id", "lucky_draw_prizes.id"],
            name="fk_lucky_draw_entries_prize",
        ),
    )
    op.create_index(
        "uq_lucky_draw_entries_free_day",
        "lucky_draw_entries",
        ["tenant_id", "draw_id", "member_id", "local_day"],
        unique=True,
        postgresql_where=sa.text("free"),
    )
    op.create_index("ix_lucky_draw_entries_draw", "lucky_draw_entries", ["tenant_id", "draw_id", "created_at"])
    for table in ("lucky_draws", "lucky_draw_prizes"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    # every draw is recorded and never changed
    for statement in rls.tenant_table("lucky_draw_entries", append_only=True):
        op.execute(statement)


def downgrade() -> None:
    for table in ("lucky_draw_entries", "lucky_draw_prizes", "lucky_draws"):
        op.drop_table(table)
