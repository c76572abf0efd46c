"""Citus keys (issue 18, decision 0048): ``api_clients``' unique key includes ``tenant_id``.

Citus requires every unique constraint of a distributed table to contain the distribution column.
``api_clients`` must be distributed (it references ``branches``), and its ``client_id`` was unique on
its own: the token endpoint finds a client by ``client_id`` before it knows the tenant. The key
becomes ``(tenant_id, client_id)`` and a plain index keeps the token endpoint's look-up one index
scan (on Citus, one query over every shard, once per token issued). Client ids are ``lkc_`` + 96
random bits minted by the server, so dropping their platform-wide uniqueness risks nothing real.
No ledger table changes: every ledger key already starts with ``tenant_id``.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("api_clients_client_id_key", "api_clients", type_="unique")
    op.create_unique_constraint("uq_api_clients_client_id", "api_clients", ["tenant_id", "client_id"])
    op.create_index("ix_api_clients_client_id", "api_clients", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_api_clients_client_id", "api_clients")
    op.drop_constraint("uq_api_clients_client_id", "api_clients", type_="unique")
    op.create_unique_constraint("api_clients_client_id_key", "api_clients", ["client_id"])
