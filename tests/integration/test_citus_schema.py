"""Citus readiness, proven on the migrated schema (issue 18; ``lianka.platform.citus``, decision 0048):
every tenant table's primary key, unique constraints and indexes and foreign keys include
``tenant_id`` (or the table is a named exception with its fix), every table without ``tenant_id`` is a
reference or local table with a reason, and ``infra/citus/distribute.sql`` places every table once and
is what the schema generates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from lianka.platform import citus
from lianka.platform.db import asyncpg_params
from lianka.platform.settings import Settings

pytestmark = pytest.mark.integration


async def _schema(settings: Settings, *ddl: str) -> dict[str, citus.Table]:
    """The migrated schema, with ``ddl`` applied in a transaction that is rolled back."""
    conn: Any = await asyncpg.connect(**asyncpg_params(settings.database_url))
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            for statement in ddl:
                await conn.execute(statement)
            return await citus.read_schema(conn)
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def test_every_table_is_placed_and_keeps_citus_rule(settings: Settings) -> None:
    tables = await _schema(settings)
    assert len(tables) > 80 and "ledger_postings" in tables
    assert citus.violations(tables) == {}
    where = citus.placement(tables)

    tenant = {n for n, t in tables.items() if t.tenant}
    distributed = {n for n, w in where.items() if w == "distributed"}
    # every tenant table is distributed and keeps the rule, except the named exceptions — each of which
    # really breaks it (an exception fixed in the schema must leave the list)
    assert distributed == tenant - set(citus.EXCEPTIONS) - set(citus.LOCAL_WITH_EXCEPTIONS)
    for name in distributed:
        assert citus.rule_breaks(tables[name]) == [], name
    for name, (what, fix) in citus.EXCEPTIONS.items():
        assert tables[name].tenant and citus.rule_breaks(tables[name]), f"{name} no longer breaks the rule"
        assert what and fix
    # the ledger and settlement are distributed: the books shard by tenant_id (a merchant's or an alliance's id)
    for name in (
        "ledger_entries",
        "ledger_postings",
        "ledger_accounts",
        "ledger_balances",
        "ledger_lots",
        "settlement_runs",
        "settlement_statements",
        "sales",
        "memberships",
        "member_profiles",
    ):
        assert where[name] == "distributed", name

    # every table without tenant_id is a reference or local table, with a reason; no list names a ghost
    for name, t in tables.items():
        if not t.tenant:
            reason = citus.REFERENCE.get(name) or citus.LOCAL.get(name)
            assert reason, f"{name} has no tenant_id and no placement"
    named = [*citus.REFERENCE, *citus.LOCAL, *citus.EXCEPTIONS, *citus.LOCAL_WITH_EXCEPTIONS]
    assert len(named) == len(set(named))
    assert set(named) <= set(tables)


async def test_distribute_sql_is_current_and_places_every_table_once(settings: Settings, project_root: Path) -> None:
    tables = await _schema(settings)
    committed = (project_root / "infra" / "citus" / "distribute.sql").read_text()
    assert committed == citus.distribute_sql(tables), (
        "infra/citus/distribute.sql is stale: regenerate it with "
        "`DATABASE_URL=… .venv/bin/python -m lianka.platform.citus > infra/citus/distribute.sql`"
    )
    placed = re.findall(
        r"SELECT (create_reference_table|citus_add_local_table_to_metadata|create_distributed_table)\('(\w+)'",
        committed,
    )
    names = [n for _, n in placed]
    assert sorted(names) == sorted(tables)  # every table, once
    kinds = {"create_reference_table": "reference", "citus_add_local_table_to_metadata": "local"}
    where = citus.placement(tables)
    for fn, name in placed:
        assert kinds.get(fn, "distributed") == where[name]
    # a referenced distributed table is distributed before the tables that reference it
    position = {n: i for i, n in enumerate(names)}
    for name in names:
        for c in tables[name].constraints:
            if c.kind == "f" and c.references and c.references != name and where[name] == where[c.references]:
                assert position[c.references] < position[name], (name, c.references)


async def test_the_check_catches_keys_without_tenant_id(settings: Settings) -> None:
    """New tables that break the rule are found on the real catalog: a unique code, a unique index, a
    foreign key that maps tenant_id to another column, a table with no tenant_id nobody placed."""
    tables = await _schema(
        settings,
        "CREATE TABLE citus_probe (tenant_id uuid NOT NULL, id uuid NOT NULL, code text, other uuid, "
        "PRIMARY KEY (tenant_id, id), UNIQUE (code))",
        "CREATE UNIQUE INDEX citus_probe_other ON citus_probe (other) WHERE other IS NOT NULL",
        "CREATE TABLE citus_probe_child (tenant_id uuid NOT NULL, parent uuid NOT NULL, PRIMARY KEY (tenant_id, parent), "
        "FOREIGN KEY (parent, tenant_id) REFERENCES citus_probe (tenant_id, id))",
        "CREATE TABLE citus_probe_global (id int PRIMARY KEY)",
    )
    found = citus.violations(tables)
    assert set(found) == {"citus_probe", "citus_probe_child", "citus_probe_global"}
    assert any("citus_probe_code_key" in v for v in found["citus_probe"])
    assert any("citus_probe_other" in v for v in found["citus_probe"])
    assert any("does not map tenant_id" in v for v in found["citus_probe_child"])
    assert found["citus_probe_global"] == ["no tenant_id and in no reference or local list"]
