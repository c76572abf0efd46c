"""Row-level security DDL used by the migrations.

Every tenant-scoped table gets ``ENABLE`` + ``FORCE ROW LEVEL SECURITY`` and one policy comparing
``tenant_id`` with the transaction-local ``app.tenant_id``. ``current_setting(..., true)`` returns
``''`` (not NULL) after a ``SET LOCAL`` has gone out of scope, hence the ``NULLIF``: an unset tenant
compares with NULL and sees **no** rows. The application role gets only the privileges named here;
append-only tables (the ledger) never get UPDATE or DELETE.
"""

from __future__ import annotations

from lianka.platform.settings import APP_ROLE

TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
SYSTEM_PREDICATE = "current_setting('app.scope', true) = 'system'"


def grant(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> list[str]:
    return [f"GRANT {privileges} ON {table} TO {APP_ROLE}"]


def tenant_table(table: str, *, append_only: bool = False, column: str = "tenant_id") -> list[str]:
    predicate = TENANT_PREDICATE.replace("tenant_id", column, 1)
    privileges = "SELECT, INSERT" if append_only else "SELECT, INSERT, UPDATE, DELETE"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})",
        *grant(table, privileges),
    ]


def tenant_or_system_table(
    table: str, *, column: str = "tenant_id", privileges: str = "SELECT, INSERT, UPDATE, DELETE"
) -> list[str]:
    """Tenant rows for tenants; every row for platform-level system work (e.g. the outbox relay)."""
    predicate = f"({TENANT_PREDICATE.replace('tenant_id', column, 1)}) OR {SYSTEM_PREDICATE}"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_or_system ON {table} USING ({predicate}) WITH CHECK ({predicate})",
        *grant(table, privileges),
    ]


def create_app_role(password: str | None) -> list[str]:
    """The login role the application uses: not the owner, not a superuser, no BYPASSRLS."""
    pw = " PASSWORD '{}'".format(password.replace("'", "''")) if password else ""
    return [
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE{pw};
          END IF;
        END $$
        """,
        f"ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS{pw}",
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}",
    ]
