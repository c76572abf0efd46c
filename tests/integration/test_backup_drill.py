"""Backup and restore drill (issue 18): activity with a closed month in a chain and in an alliance,
``lianka backup``, ``lianka restore`` into a fresh database, then on the restored database
``lianka ledger verify`` passes, every table holds the same rows, every closed period keeps its
checksums — and recomputing the closed months' statements from the restored ledger, as the
application role under row-level security, gives the very same checksums."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lianka.alliance.alliances import membership as alliances
from lianka.alliance.alliances import till
from lianka.alliance.alliances.domain import Terms
from lianka.alliance.settlement import close, scopes
from lianka.alliance.settlement.movements import movements, openings
from lianka.alliance.settlement.statements import CloseResult, Scope, build, run_checksum
from lianka.platform import backup
from lianka.platform.db import Database, asyncpg_params
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import PointsConfig, Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.pos import schemas, stored_value
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
AT = datetime(2026, 8, 10, 4, tzinfo=UTC)
PERIOD = "2026-08"
PLAN = StoredValuePlan(code="p300", name="300送30", pay=30_000, get=33_000)


def lianka(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lianka.cli", *args],
        cwd=root,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


async def _chain_month(db: Database, tenant_factory: Any, member_factory: Any) -> CloseResult:
    tenant = await tenant_factory("备份连锁")
    async with db.uow(tenant) as uow:
        branches = [
            await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
            for code in ("A", "B")
        ]
        programme = Programme(points=PointsConfig(), stored_value=StoredValueConfig(plans=[PLAN]))
        await set_programme(uow, programme, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    members = [await member_factory(tenant) for _ in range(2)]
    for i, member in enumerate(members):
        await stored_value.top_up(
            db, tenant, schemas.TopUpIn(member_id=member, plan="p300", business_time=AT), uuid.uuid4().hex, branches[i]
        )
        await pos_sales.sale(
            db,
            tenant,
            schemas.Basket(amount=12_345 + i, member_id=member, stored_value=12_345 + i, business_time=AT),
            uuid.uuid4().hex,
            branches[1 - i],  # spent at the other branch: the branches owe each other
        )
    done = await close.close(db, await scopes.chain_scope(db, tenant), PERIOD)
    # and activity in the month still open
    await pos_sales.sale(
        db, tenant, schemas.Basket(amount=999, member_id=members[0], stored_value=999), uuid.uuid4().hex, branches[0]
    )
    return done


async def _alliance_month(db: Database, tenant_factory: Any, member_factory: Any) -> CloseResult:
    operator = await tenant_factory("备份联盟运营方")
    partners = [await tenant_factory(f"备份伙伴{i}") for i in range(2)]
    branches = []
    for p in partners:
        async with db.uow(p) as uow:
            branches.append(
                await uow.session.scalar(
                    text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, 'M1', 'M1') RETURNING id"), {"t": p}
                )
            )
            await uow.commit()
    a = await alliances.create(
        db,
        operator,
        code=f"bk-{uuid.uuid4().hex[:10]}",
        name="备份联盟",
        terms=Terms(issue_price=Decimal("0.010"), reimbursement_price=Decimal("0.008"), fee_per_transaction=5),
    )
    for p in partners:
        code, _ = await alliances.invite(db, operator, a.id)
        await alliances.accept(db, p, code)
    member = await member_factory(partners[0])
    await till.earn(
        db, partners[0], a.id, member_id=member, amount=50_000, branch_id=branches[0], key="e1", business_time=AT
    )
    await till.redeem(
        db, partners[1], a.id, member_id=member, points=20, branch_id=branches[1], key="r1", business_time=AT
    )
    return await close.close(db, await scopes.alliance_scope(db, a.id), PERIOD)


_RUNS = "SELECT tenant_id, period, checksum FROM settlement_runs WHERE status = 'closed' ORDER BY 1, 2"
_STATEMENTS = (
    "SELECT tenant_id, period, entity_kind, entity_id, checksum FROM settlement_statements ORDER BY 1, 2, 3, 4"
)
_TABLES = "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind IN ('r', 'p') ORDER BY 1"


async def _picture(engine: AsyncEngine) -> dict[str, Any]:
    """What must survive: every closed period's checksums and every table's row count."""
    async with engine.connect() as conn:
        runs = [tuple(r) for r in await conn.execute(text(_RUNS))]
        statements = [tuple(r) for r in await conn.execute(text(_STATEMENTS))]
        counts = {t: await conn.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in await conn.scalars(text(_TABLES))}
    return {"runs": runs, "statements": statements, "counts": counts}


async def _recomputed(db: Database, scope: Scope) -> list[Any]:
    """The closed month's statements computed again from the ledger, as the close's step 2 does."""
    async with db.uow(scope.book) as uow:
        moved = await movements(uow, scope.book, PERIOD, scope.timezone)
        return build(scope, PERIOD, moved, await openings(uow, scope, PERIOD))


async def _drop(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_backup_restore_drill(
    db: Database,
    owner_engine: AsyncEngine,
    settings: Settings,
    tenant_factory: Any,
    member_factory: Any,
    project_root: Path,
    tmp_path: Path,
) -> None:
    chain = await _chain_month(db, tenant_factory, member_factory)
    alliance = await _alliance_month(db, tenant_factory, member_factory)
    before = await _picture(owner_engine)
    assert (chain.book, PERIOD, chain.checksum) in before["runs"]
    assert (alliance.book, PERIOD, alliance.checksum) in before["runs"]

    dump = tmp_path / "drill.dump"
    made = await asyncio.to_thread(lianka, project_root, "backup", str(dump))
    assert made.returncode == 0, made.stderr[-3000:]
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    assert backup.checksum_path(dump).read_text() == f"{digest}  drill.dump\n"
    assert digest in made.stdout
    around = await _picture(owner_engine)  # the dump's snapshot lies between ``before`` and this
    assert {"lianka_app", make_url(settings.database_url).username} <= backup.roles_named(backup.pg_bin(), dump)

    url = make_url(settings.database_url)
    name = f"{url.database}_drill_{uuid.uuid4().hex[:8]}"
    target = url.set(database=name).render_as_string(hide_password=False)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    restored_engine = create_async_engine(target)
    restored_db = Database.from_settings(replace(settings, database_url=target, app_database_url=""))
    try:
        absent = await asyncio.to_thread(lianka, project_root, "restore", str(dump), "--database-url", target)
        assert absent.returncode == 2 and "does not exist" in absent.stderr, absent.stderr
        put = await asyncio.to_thread(lianka, project_root, "restore", str(dump), "--database-url", target, "--create")
        assert put.returncode == 0, put.stderr[-3000:]
        again = await asyncio.to_thread(lianka, project_root, "restore", str(dump), "--database-url", target)
        assert again.returncode == 2 and "not empty" in again.stderr, again.stderr

        verified = await asyncio.to_thread(lianka, project_root, "ledger", "verify", DATABASE_URL=target)
        assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]
        assert "FAIL" not in verified.stdout and verified.stdout.count(" ok ") >= 8

        after = await _picture(restored_engine)
        assert after["runs"] == before["runs"] == around["runs"]  # every closed period's checksums
        assert after["statements"] == before["statements"]
        assert set(after["counts"]) == set(before["counts"])
        # every table's rows: as many as before the dump, or as after it if something else wrote meanwhile
        for table, n in after["counts"].items():
            low, high = sorted((before["counts"][table], around["counts"][table]))
            assert low <= n <= high, (table, n, low, high)

        # the restored ledger yields the same statements, read as the app role through RLS
        for done, scope in (
            (chain, await scopes.chain_scope(restored_db, chain.book)),
            (alliance, await scopes.alliance_scope(restored_db, alliance.book)),
        ):
            again_statements = await _recomputed(restored_db, scope)
            assert run_checksum(again_statements) == done.checksum
            assert sorted(s.checksum for s in again_statements) == sorted(s.checksum for s in done.statements)
            assert (await close.result(restored_db, scope, PERIOD)).checksum == done.checksum

        # --force restores over a database that has the schema: the same books again
        forced = await asyncio.to_thread(
            lianka, project_root, "restore", str(dump), "--database-url", target, "--force"
        )
        assert forced.returncode == 0, forced.stderr[-3000:]
        assert (await _picture(restored_engine)) == after
    finally:
        await restored_db.dispose()
        await restored_engine.dispose()
        await _drop(admin, name)


async def test_restore_refuses_a_changed_dump_and_a_missing_role(
    settings: Settings, project_root: Path, tmp_path: Path
) -> None:
    """A dump whose bytes changed is refused before anything is written; so is one naming a role the
    target server lacks (roles are not in a dump), and the refusal names it."""
    url = make_url(settings.database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    source, target = (f"{url.database}_bk_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("src", "dst"))
    role = f"lianka_drill_{uuid.uuid4().hex[:6]}"
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(admin))
    try:
        await conn.execute(f'CREATE DATABASE "{source}"')
        await conn.execute(f'CREATE DATABASE "{target}"')
        await conn.execute(f"CREATE ROLE {role}")
        src = await asyncpg.connect(**{**asyncpg_params(admin), "database": source})
        try:
            await src.execute(
                f"CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); GRANT SELECT ON t TO {role}"
            )
        finally:
            await src.close()
        dump = tmp_path / "small.dump"
        source_url = url.set(database=source).render_as_string(hide_password=False)
        target_url = url.set(database=target).render_as_string(hide_password=False)
        made = await asyncio.to_thread(lianka, project_root, "backup", str(dump), "--database-url", source_url)
        assert made.returncode == 0, made.stderr[-2000:]

        await conn.execute(f'DROP DATABASE "{source}"')
        await conn.execute(f"DROP ROLE {role}")
        refused = await asyncio.to_thread(lianka, project_root, "restore", str(dump), "--database-url", target_url)
        assert refused.returncode == 2 and role in refused.stderr.replace("\n", ""), refused.stderr

        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        changed = await asyncio.to_thread(lianka, project_root, "restore", str(dump), "--database-url", target_url)
        assert changed.returncode == 2 and "does not match" in changed.stderr.replace("\n", " "), changed.stderr

        dst = await asyncpg.connect(**{**asyncpg_params(admin), "database": target})
        try:
            assert await dst.fetchval("SELECT count(*) FROM pg_class WHERE relname = 't'") == 0  # nothing written
        finally:
            await dst.close()
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
        await conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()


def test_backup_and_restore_on_the_embedded_postgres(project_root: Path, tmp_path: Path) -> None:
    """With no DATABASE_URL the commands take a lease on the embedded PostgreSQL alone (no Redis),
    use its bundled pg_dump/pg_restore, and hand the lease back."""
    from lianka.platform import devservices

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL")}
    env |= {"LIANKA_DATA_DIR": str(data), "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lianka.cli", *args],
            cwd=project_root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    try:
        pg = devservices.EmbeddedPostgres(data)
        pg.start()  # an empty lianka database, as a fresh `make run` has before migrating
        devservices.pin(data)  # kept running between the commands, as `lianka services up` does
        made = run("backup", str(tmp_path / "empty.dump"))
        assert made.returncode == 0, made.stderr[-2000:]
        assert not devservices.EmbeddedRedis(data).is_running()  # the database alone was needed
        copy = pg.url("lianka_copy")
        put = run("restore", str(tmp_path / "empty.dump"), "--database-url", copy, "--create")
        assert put.returncode == 0, put.stderr[-2000:]
        assert "into 'lianka_copy'" in put.stdout
        assert not devservices.EmbeddedRedis(data).is_running()
    finally:
        devservices.pin(data, pinned=False)
        devservices.EmbeddedPostgres(data).stop()
