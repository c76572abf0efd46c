"""The unit of work rolls back unless committed."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lianka.platform.db import Database

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
