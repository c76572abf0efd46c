"""Tenant isolation is enforced by PostgreSQL row-level security, not by WHERE clauses."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from lianka.platform.db import Database

pytestmark = pytest.mark.integration


async def _add_branches(db: Database, tenant: uuid.UUID, codes: list[str]) -> None:
    async with db.uow(tenant) as uow:
        for code in codes:
            await uow.session.execute(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c)"), {"t": tenant, "c": code}
            )
        await uow.commit()


async def test_unscoped_select_sees_only_the_current_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    await _add_branches(db, a, ["A1", "A2"])
    await _add_branches(db, b, ["B1"])
    async with db.uow(a) as uow:
        rows = (await uow.session.execute(text("SELECT code, tenant_id FROM branches ORDER BY code"))).all()
    assert [r.code for r in rows] == ["A1", "A2"]
    assert {r.tenant_id for r in rows} == {a}
    async with db.uow(b) as uow:
        assert (await uow.session.execute(text("SELECT code FROM branches"))).scalars().all() == ["B1"]


async def test_no_tenant_sees_no_rows(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    await _add_branches(db, a, ["X1"])
    async with db.uow() as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM branches")) == 0
    # and a plain connection of the app role, with nothing set at all:
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM branches")) == 0


async def test_the_setting_is_transaction_local(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    await _add_branches(db, a, ["L1"])
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(a)})
        assert await conn.scalar(text("SELECT count(*) FROM branches")) == 1
        await conn.commit()
        # after the transaction the setting is '' and the policy sees nothing
        assert await conn.scalar(text("SELECT count(*) FROM branches")) == 0


async def test_cannot_write_rows_for_another_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    async with db.uow(a) as uow:
        with pytest.raises(DBAPIError, match="row-level security"):
            await uow.session.execute(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'EVIL', 'x')"), {"t": b}
            )
    await _add_branches(db, a, ["M1"])
    async with db.uow(a) as uow:
        with pytest.raises(DBAPIError, match="row-level security"):
            await uow.session.execute(text("UPDATE branches SET tenant_id = :b WHERE code = 'M1'"), {"b": b})
    async with db.uow(b) as uow:  # b cannot touch a's rows: they are invisible, so nothing changes
        res = cast("CursorResult[Any]", await uow.session.execute(text("DELETE FROM branches WHERE code = 'M1'")))
        assert res.rowcount == 0
        await uow.commit()
    async with db.uow(a) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM branches WHERE code = 'M1'")) == 1


async def test_app_role_is_neither_owner_nor_superuser(db: Database) -> None:
    async with db.engine.connect() as conn:
        role = (
            await conn.execute(
                text("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert role.rolname == "lianka_app"
        assert not role.rolsuper and not role.rolbypassrls
        owners = set(
            (await conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"))).scalars()
        )
        assert "lianka_app" not in owners
        with pytest.raises(ProgrammingError):
            await conn.execute(text("ALTER TABLE branches DISABLE ROW LEVEL SECURITY"))


async def test_every_tenant_table_forces_rls(owner_engine) -> None:
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'tenant_id'
                 AND NOT a.attisdropped"""
                )
            )
        ).all()
    assert rows, "no tenant tables found"
    unprotected = [r.relname for r in rows if not (r.relrowsecurity and r.relforcerowsecurity)]
    assert unprotected == []
