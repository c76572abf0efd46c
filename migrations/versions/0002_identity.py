"""Identity and access (issue 3): staff, roles, sessions, OAuth2 clients, signing keys, members.

Global tables (staff users, OIDC links, sessions, signing keys, members) are readable by the app
role only in system scope — or, for staff users and members, by the one tenant that employs or
enrols them, and for a member by that member's own portal scope (``app.member_id``). Tenant tables
(staff memberships, API clients, revoked tokens, memberships) have the usual tenant policy.
See docs/decisions/0004-identity.md.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID

from lianka.platform import rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SYSTEM = rls.SYSTEM_PREDICATE
TENANT = rls.TENANT_PREDICATE
MEMBER = "member_id = NULLIF(current_setting('app.member_id', true), '')::uuid"


def _exec(statements: list[str]) -> None:
    for s in statements:
        op.execute(s)


def _system_only(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY system_only ON {table} USING ({SYSTEM}) WITH CHECK ({SYSTEM})",
        *rls.grant(table, privileges),
    ]


def _created() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    uuid_pk = {"primary_key": True, "server_default": sa.text("gen_random_uuid()")}

    op.create_table(
        "staff_users",
        sa.Column("id", UUID(as_uuid=True), **uuid_pk),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        _created(),
        sa.CheckConstraint("email = lower(email) AND position('@' in email) > 1", name="ck_staff_users_email_lower"),
    )

    op.create_table(
        "staff_memberships",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("branch_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
        _created(),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_staff_memberships"),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'manager', 'cashier', 'analyst')", name="ck_staff_memberships_role"
        ),
    )
    op.create_index("ix_staff_memberships_user_id", "staff_memberships", ["user_id"])
    # Sign-in lists a user's merchants before any tenant is chosen: system scope.
    _exec(rls.tenant_or_system_table("staff_memberships"))

    # A tenant reads its own staff's user rows (names, e-mails); every write is system-scope work.
    _exec(
        [
            "ALTER TABLE staff_users ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE staff_users FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY system_all ON staff_users USING ({SYSTEM}) WITH CHECK ({SYSTEM})",
            "CREATE POLICY employer_read ON staff_users FOR SELECT USING (EXISTS (SELECT 1 FROM staff_memberships m "
            f"WHERE m.user_id = staff_users.id AND m.{TENANT}))",
            *rls.grant("staff_users"),
        ]
    )

    op.create_table(
        "oidc_identities",
        sa.Column("issuer", sa.String(400), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("issuer", "subject", name="pk_oidc_identities"),
    )
    _exec(_system_only("oidc_identities"))

    op.create_table(
        "auth_sessions",
        sa.Column("id", UUID(as_uuid=True), **uuid_pk),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=True, unique=True),
        sa.Column("method", sa.String(16), nullable=False),
        _created(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(400), nullable=False, server_default=""),
        sa.Column("ip", INET, nullable=True),
        sa.CheckConstraint("kind IN ('staff', 'member')", name="ck_auth_sessions_kind"),
    )
    op.create_index("ix_auth_sessions_subject", "auth_sessions", ["kind", "subject_id"])
    _exec(_system_only("auth_sessions"))

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("public_jwk", JSONB, nullable=False),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        _created(),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    _exec(_system_only("signing_keys", "SELECT, INSERT, UPDATE"))

    op.create_table(
        "api_clients",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("scopes", ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), nullable=True),
        _created(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_clients"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"], name="fk_api_clients_branch"
        ),
        sa.CheckConstraint("cardinality(scopes) > 0", name="ck_api_clients_scopes"),
    )
    # The token endpoint finds a client by its client_id before it knows the tenant: system scope.
    _exec(rls.tenant_or_system_table("api_clients", privileges="SELECT, INSERT, UPDATE"))

    op.create_table(
        "revoked_tokens",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "jti", name="pk_revoked_tokens"),
    )
    # tenant-scoped; system scope only so the nightly prune can drop expired rows in one statement
    _exec(rls.tenant_or_system_table("revoked_tokens", privileges="SELECT, INSERT, DELETE"))

    op.create_table(
        "members",
        sa.Column("id", UUID(as_uuid=True), **uuid_pk),
        sa.Column("phone", sa.String(16), nullable=False, unique=True),
        sa.Column("card_number", sa.String(19), nullable=False, unique=True),
        sa.Column("qr_secret", sa.LargeBinary, nullable=False),
        _created(),
        sa.CheckConstraint(r"phone ~ '^\+[1-9][0-9]{6,14}$'", name="ck_members_phone_e164"),
        sa.CheckConstraint(r"card_number ~ '^[1-9][0-9]{11,18}$'", name="ck_members_card_number"),
    )

    op.create_table(
        "memberships",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name="pk_memberships"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"], name="fk_memberships_branch"
        ),
    )
    op.create_index("ix_memberships_member_id", "memberships", ["member_id"])
    _exec(
        [
            *rls.tenant_table("memberships"),
            # the member's own portal scope reads (only) their enrolments, across merchants
            f"CREATE POLICY member_self ON memberships FOR SELECT USING ({MEMBER})",
        ]
    )
    _exec(
        [
            "ALTER TABLE members ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE members FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY system_all ON members USING ({SYSTEM}) WITH CHECK ({SYSTEM})",
            "CREATE POLICY merchant_read ON members FOR SELECT USING (EXISTS (SELECT 1 FROM memberships m "
            f"WHERE m.member_id = members.id AND m.{TENANT}))",
            f"CREATE POLICY member_self ON members FOR SELECT USING ({MEMBER.replace('member_id', 'id', 1)})",
            *rls.grant("members", "SELECT, INSERT, UPDATE"),
            # a member sees the registry rows (name, slug) of the merchants they belong to
            "CREATE POLICY member_merchants ON merchants FOR SELECT USING (EXISTS (SELECT 1 FROM memberships m "
            f"WHERE m.tenant_id = merchants.id AND m.{MEMBER}))",
        ]
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS member_merchants ON merchants")
    for table in (
        "memberships",
        "members",
        "revoked_tokens",
        "api_clients",
        "signing_keys",
        "auth_sessions",
        "oidc_identities",
        "staff_users",
        "staff_memberships",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
