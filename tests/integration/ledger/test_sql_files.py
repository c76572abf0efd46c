"""The ledger's functions in a migrated database are exactly its SQL files (alliance/ledger/sql/).

"Exactly" is checked by the database itself: running a file's ``CREATE OR REPLACE FUNCTION`` in a
transaction that is rolled back must leave ``pg_get_functiondef`` (body, arguments, result,
language, volatility, security, settings) and the function's identity unchanged. A file that differs
in any of these, or declares another signature (a new overload), fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lianka.alliance.ledger import sql
from lianka.platform.db import asyncpg_params, owner_connection
from lianka.platform.settings import Settings
from tests.conftest import _recreate_database

pytestmark = pytest.mark.integration

_DEFS = text(
    "SELECT p.oid::regprocedure::text AS sig, pg_get_functiondef(p.oid) AS def FROM pg_proc p "
    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proname = :name "
    "ORDER BY 1"
)


async def _definitions(conn: AsyncConnection, name: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in (await conn.execute(_DEFS, {"name": name})).all()]


async def unchanged_by(conn: AsyncConnection, name: str, statement: str) -> bool:
    """Whether running ``statement`` leaves the database's one function ``name`` exactly as it is
    (the statement is rolled back either way)."""
    before = await _definitions(conn, name)
    savepoint = await conn.begin_nested()
    try:
        await conn.execute(text(statement))
        after = await _definitions(conn, name)
    finally:
        await savepoint.rollback()
    return len(before) == 1 and before == after


async def runs_file(conn: AsyncConnection, name: str, version: int) -> bool:
    """Whether the database's ``name`` is exactly ``<name>/v<version>.sql``."""
    return await unchanged_by(conn, name, sql.load(name, version))


async def test_every_ledger_function_is_its_newest_file(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        in_db = set(
            (
                await conn.execute(
                    text(
                        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = 'public' AND p.proname LIKE 'ledger\\_%'"
                    )
                )
            ).scalars()
        )
        assert in_db == set(sql.names()), "a ledger function without a file, or a file without a function"
        for name in sql.names():
            assert await runs_file(conn, name, sql.newest(name)), f"{name} is not {name}/v{sql.newest(name)}.sql"
        await conn.rollback()


async def test_a_function_that_differs_from_its_file_is_noticed(owner_engine: AsyncEngine) -> None:
    """The check above can fail: one more blank in a body, another security mode, or another
    signature is another function."""
    check = sql.load("ledger_check_balanced", sql.newest("ledger_check_balanced"))
    post = sql.load("ledger_post", sql.newest("ledger_post"))
    variants = [
        ("ledger_check_balanced", check.replace("BEGIN\n", "BEGIN\n \n", 1)),
        ("ledger_check_balanced", check.replace("SECURITY DEFINER ", "", 1)),
        ("ledger_post", post.replace("ledger_post(p jsonb)", "ledger_post(p json)", 1)),
    ]
    async with owner_engine.connect() as conn:
        for name, variant in variants:
            assert variant != sql.load(name, sql.newest(name))
            assert not await unchanged_by(conn, name, variant)
        assert await unchanged_by(conn, "ledger_check_balanced", check)
        assert await unchanged_by(conn, "ledger_post", post)
        await conn.rollback()


@pytest.fixture
def scratch_url(settings: Settings) -> Iterator[str]:
    """An empty database of its own (made by the suite's own helper), dropped afterwards."""
    url = make_url(settings.database_url)
    name = f"lianka_sqlfiles_{uuid.uuid4().hex[:8]}"
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_recreate_database(admin, name))
    yield url.set(database=name).render_as_string(hide_password=False)

    async def drop() -> None:
        conn = await asyncpg.connect(**asyncpg_params(admin))
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


def test_old_migrations_keep_loading_the_version_they_introduced(scratch_url: str) -> None:
    """0003 introduced v1 of ledger_post and ledger_check_balanced, 0009 their v2: a database at
    0008 runs v1 (not v2), and upgrading it to head gives v2."""
    from lianka.platform.migrate import upgrade

    async def versions_run() -> dict[str, list[int]]:
        async with owner_connection(scratch_url) as conn:
            return {
                name: [v for v in sql.versions(name) if await runs_file(conn, name, v)]
                for name in ("ledger_post", "ledger_check_balanced")
            }

    upgrade(scratch_url, "0008")
    assert asyncio.run(versions_run()) == {"ledger_post": [1], "ledger_check_balanced": [1]}
    upgrade(scratch_url)
    assert asyncio.run(versions_run()) == {"ledger_post": [2], "ledger_check_balanced": [2]}
