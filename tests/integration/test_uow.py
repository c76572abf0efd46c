"""The unit of work rolls back unless committed."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from lianka.platform.db import Database, scope_sql

pytestmark = pytest.mark.integration


async def _count(db: Database, tenant, code: str) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM branches WHERE code = :c"), {"c": code}) or 0)


async def test_no_commit_means_rollback(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    async with db.uow(t) as uow:
        await uow.session.execute(text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'R1', 'r')"), {"t": t})
    assert await _count(db, t, "R1") == 0


async def test_exception_rolls_back(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    with pytest.raises(RuntimeError):
        async with db.uow(t) as uow:
            await uow.session.execute(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'R2', 'r')"), {"t": t}
            )
            raise RuntimeError("boom")
    assert await _count(db, t, "R2") == 0


async def test_commit_persists_and_later_writes_do_not(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    async with db.uow(t) as uow:
        await uow.session.execute(text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'C1', 'c')"), {"t": t})
        await uow.commit()
        # the next transaction of the same unit is tenant-scoped too, and is rolled back on exit
        await uow.session.execute(text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'C2', 'c')"), {"t": t})
    assert await _count(db, t, "C1") == 1
    assert await _count(db, t, "C2") == 0


class _Sent:
    """Every simple-protocol query the app's connections send (``ScopedConnection.execute``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queries: list[str] = []
        original = asyncpg.Connection.execute

        async def execute(conn: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
            self.queries.append(query)
            result: str = await original(conn, query, *args, **kw)
            return result

        monkeypatch.setattr(asyncpg.Connection, "execute", execute)


async def test_the_scope_travels_with_begin(db: Database, tenant_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN and the tenant setting are one round trip, for the ORM's first statement and for the
    driver's (``uow.driver()``), and the tenant is in effect for both."""
    t = await tenant_factory()
    sent = _Sent(monkeypatch)
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT current_setting('app.tenant_id')")) == str(t)
    async with db.uow(t) as uow:
        conn = await uow.driver()
        assert await conn.fetchval("SELECT current_setting('app.tenant_id')") == str(t)
        assert await conn.fetchval("SELECT current_setting('app.scope')") == ""
    begins = [q for q in sent.queries if q.startswith("BEGIN")]
    assert len(begins) == 2
    assert all(f"set_config('app.tenant_id', '{t}', true)" in q for q in begins)
    assert not [q for q in sent.queries if q.startswith("SELECT set_config")]  # never a trip of its own


async def test_an_unused_scope_does_not_outlive_its_checkout(db: Database, tenant_factory) -> None:
    """A unit of work that sent nothing leaves no tenant on the pooled connection for the next user."""
    t = await tenant_factory()
    async with db.uow(t) as uow:
        await uow.session.connection()  # begun (the scope is pending) but no statement sent
    async with db.engine.connect() as conn:  # the same pooled connection, outside any unit of work
        assert await conn.scalar(text("SELECT current_setting('app.tenant_id', true)")) in (None, "")
        assert await conn.scalar(text("SELECT count(*) FROM branches")) == 0  # RLS: no tenant, no rows


async def test_system_scope_and_tenant_switch_still_apply(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    async with db.uow(system=True) as uow:
        assert await uow.session.scalar(text("SELECT current_setting('app.scope')")) == "system"
        await uow.set_tenant(t)
        assert await uow.session.scalar(text("SELECT current_setting('app.tenant_id')")) == str(t)
        assert await uow.session.scalar(text("SELECT current_setting('app.scope')")) == ""


def test_scope_sql_refuses_what_is_not_a_uuid() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        scope_sql("x'; DROP TABLE branches; --", "")
    with pytest.raises(ValueError, match="unknown transaction scope"):
        scope_sql("", "everything")
