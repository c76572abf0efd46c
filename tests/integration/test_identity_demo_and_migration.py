"""The demo seed's sign-in details work; the identity migration goes down and up again."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lianka.platform.identity import passwords, secrets_box

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch_db(settings):
    """A fresh, migrated database of its own (the demo seeds only an empty one)."""
    import asyncpg

    from lianka.platform.db import asyncpg_params
    from lianka.platform.migrate import upgrade

    url = make_url(settings.database_url)
    name = f"lianka_scratch_{uuid.uuid4().hex[:8]}"
    admin = url.set(database="postgres").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(**asyncpg_params(admin))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    scratch = url.set(database=name).render_as_string(hide_password=False)
    upgrade(scratch)
    yield dataclasses.replace(settings, database_url=scratch)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_demo_seed_gives_working_sign_in_details(scratch_db) -> None:
    from lianka.demo import DEMO_PASSWORD, DEMO_POS_CLIENT_ID, banner, demo_pos_secret, seed_if_empty
    from lianka.platform.db import owner_connection

    assert "seeded" in asyncio.run(seed_if_empty(scratch_db))
    assert "already has data" in asyncio.run(seed_if_empty(scratch_db))

    async def check() -> None:
        async with owner_connection(scratch_db.database_url) as conn:
            users = (
                await conn.execute(
                    text(
                        "SELECT u.email, u.password_hash, m.slug FROM staff_users u JOIN staff_memberships s "
                        "ON s.user_id = u.id JOIN merchants m ON m.id = s.tenant_id WHERE s.role = 'owner'"
                    )
                )
            ).all()
            client = (
                await conn.execute(
                    text("SELECT secret_hash, scopes, branch_id FROM api_clients WHERE client_id = :c"),
                    {"c": DEMO_POS_CLIENT_ID},
                )
            ).one()
        assert {u.email for u in users} == {"owner@demo-tea.example", "owner@demo-bakery.example"}
        assert all([await passwords.verify_password(u.password_hash, DEMO_PASSWORD) for u in users])
        assert bytes(client.secret_hash) == secrets_box.token_hash(demo_pos_secret(scratch_db))
        assert client.scopes == ["pos"] and client.branch_id is not None

    asyncio.run(check())
    text_banner = banner(scratch_db, "http://127.0.0.1:8000")
    assert DEMO_POS_CLIENT_ID in text_banner and demo_pos_secret(scratch_db) in text_banner
    assert DEMO_PASSWORD in text_banner


def test_identity_migration_downgrades_and_upgrades(scratch_db) -> None:
    from lianka.platform.db import owner_connection
    from lianka.platform.migrate import downgrade, upgrade

    downgrade(scratch_db.database_url, "0001")

    async def tables() -> set[str]:
        async with owner_connection(scratch_db.database_url) as conn:
            return set(
                (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
            )

    assert "staff_users" not in asyncio.run(tables())
    upgrade(scratch_db.database_url)
    assert {"staff_users", "members", "api_clients", "signing_keys"} <= asyncio.run(tables())
