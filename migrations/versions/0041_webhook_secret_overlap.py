"""A rotated webhook secret keeps signing beside the new one for a while (decision 0052, 2026-12).

* ``previous_secret_sealed`` — the secret a rotation replaced (sealed like ``secret_sealed``);
* ``previous_secret_until`` — until when it still signs (NULL or past: it does not).

Revision ID: 0041
Revises: 0040
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("previous_secret_sealed", sa.Text, nullable=True))
    op.add_column(
        "webhook_subscriptions", sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("webhook_subscriptions", "previous_secret_until")
    op.drop_column("webhook_subscriptions", "previous_secret_sealed")
