"""Test session set-up: real PostgreSQL and real Redis, a fresh migrated test database.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset the embedded services are started (or reused, if
``make run`` already holds them). The suite runs against its own database, ``<name>_test``, dropped
and rebuilt with ``alembic upgrade head`` at the start of every session, so the migrations are
tested too; Redis uses its own logical database (15), flushed at the start. Tests isolate
themselves by creating their own tenants (see ``tenant_factory``) rather than sharing rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import make_url

from lianka.platform import devservices
from lianka.platform.settings import Settings, get_settings

if TYPE_CHECKING:
    from tests.sqlcheck import Recorder

_lease: devservices.Lease | None = None
TEST_REDIS_DB = 15


def _worker_index(config: pytest.Config) -> int | None:
    """The pytest-xdist worker's number (``gw1`` → 1), or None outside a worker."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    return None if worker is None else int(worker.removeprefix("gw"))


def _test_urls(database_url: str, redis_url: str, worker: int | None = None) -> tuple[str, str, str]:
    """(admin URL, the suite's database, its Redis database). Each pytest-xdist worker gets a database
    of its own (``<name>_test_gw1``, a copy of the controller's freshly migrated ``<name>_test``) and
    its own pair of Redis databases (15 and 14 for the first, 13 and 12 for the next …: the second
    of each pair is the browser tests'), so workers share no rows, queues or counters."""
    url = make_url(database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    suffix = "" if worker is None else f"_gw{worker}"
    test = url.set(database=f"{url.database}_test{suffix}").render_as_string(hide_password=False)
    number = TEST_REDIS_DB - 2 * (worker or 0)
    if "db=" in redis_url:
        base, _, _ = redis_url.partition("db=")
        test_redis = f"{base}db={number}"
    else:
        sep = "&" if "?" in redis_url else "?"
        test_redis = redis_url.rstrip("/") + (f"/{number}" if redis_url.startswith("redis") else f"{sep}db={number}")
    return admin, test, test_redis


async def _recreate_database(admin_url: str, name: str, template: str | None = None) -> None:
    import asyncpg

    from lianka.platform.db import asyncpg_params

    conn = await asyncpg.connect(**asyncpg_params(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-sql",
        default=os.environ.get("LIANKA_RECORD_SQL", ""),
        help="record the SQL the app runs to this file, and check it for Citus (tests/sqlcheck.py)",
    )


_recorder: Recorder | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _lease, _recorder
    if config.getoption("--record-sql", ""):  # installed after the migrations below: the app's SQL only
        from tests.sqlcheck import Recorder

        _recorder = Recorder()
    worker = _worker_index(config)
    if worker is None:  # the only process, or pytest-xdist's controller: it holds the services
        base = Settings.from_env()
        _lease = devservices.acquire(base.data_dir, base.database_url or None, base.redis_url or None)
        database_url, redis_url = _lease.database_url, _lease.redis_url
    else:  # a pytest-xdist worker: the controller's services, a database of its own
        database_url, redis_url = os.environ["LIANKA_TEST_SERVICES"].split(" ")
    admin, test_db, test_redis = _test_urls(database_url, redis_url, worker)
    if worker is None:  # built by the migrations from scratch (they are tested too)
        asyncio.run(_recreate_database(admin, make_url(test_db).database or "lianka_test"))
    else:  # a copy of the controller's freshly migrated one (migrating twice at once would race on roles)
        template = make_url(_test_urls(database_url, redis_url)[1]).database
        asyncio.run(_recreate_database(admin, make_url(test_db).database or "lianka_test", template))
    os.environ["DATABASE_URL"] = test_db
    os.environ["REDIS_URL"] = test_redis
    os.environ.pop("APP_DATABASE_URL", None)
    os.environ.setdefault("LIANKA_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()

    from redis import Redis

    from lianka.platform.migrate import upgrade

    if worker is None:
        upgrade(test_db)
        if getattr(config.option, "numprocesses", None):  # the workers copy it and run the tests
            os.environ["LIANKA_TEST_SERVICES"] = f"{database_url} {redis_url}"
            return
    Redis.from_url(test_redis).flushdb()
    if _recorder is not None:
        _recorder.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _recorder is not None:
        from tests.sqlcheck import write

        worker = _worker_index(config)
        path = str(config.getoption("--record-sql")) + ("" if worker is None else f".gw{worker}")
        write(path, _recorder, os.environ["DATABASE_URL"])
    if _lease is not None:
        devservices.release(_lease)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[object]:
    """The application's Database: connected as the RLS-bound ``lianka_app`` role."""
    from lianka.platform.db import Database

    database = Database.from_settings(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def owner_engine(settings: Settings) -> AsyncIterator[object]:
    """The migration owner (a superuser with the embedded server, so RLS does not apply to it): for
    checks that must see every tenant's rows, never for the code under test."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(settings.database_url)
    yield engine
    await engine.dispose()


TenantFactory = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def tenant_factory(db: object) -> TenantFactory:
    """Create a merchant (a tenant) with a unique slug; returns its id."""
    from lianka.tenants.models import Merchant

    async def make(name: str = "Test merchant", **fields: object) -> uuid.UUID:
        slug = f"t-{uuid.uuid4().hex[:12]}"
        async with db.uow(system=True) as uow:  # type: ignore[attr-defined]
            m = Merchant(slug=slug, name=name, **fields)
            uow.session.add(m)
            await uow.commit()
            return m.id

    return make


@pytest.fixture
async def two_tenants(tenant_factory: TenantFactory) -> tuple[uuid.UUID, uuid.UUID]:
    return await tenant_factory("Merchant A"), await tenant_factory("Merchant B")


MemberFactory = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def member_factory(db: object) -> MemberFactory:
    """Enrol a person (a fresh phone number unless given) at a merchant; returns the member id."""
    import random

    from sqlalchemy import text

    from lianka.platform.identity.members import _find_or_create_person

    async def make(tenant: uuid.UUID, phone: str | None = None) -> uuid.UUID:
        phone = phone or f"+86139{random.randrange(10**8):08d}"
        async with db.uow(system=True) as uow:  # type: ignore[attr-defined]
            member_id = await _find_or_create_person(uow, phone)
            await uow.set_tenant(tenant)
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m) ON CONFLICT DO NOTHING"),
                {"t": tenant, "m": member_id},
            )
            await uow.commit()
        return member_id

    return make


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Every test starts with no lockout or rate-limit counters: they are per client address, and
    every test client has the same one, so failures of earlier tests would otherwise add up."""
    from redis import Redis

    from lianka.platform.identity.ratelimit import PREFIX

    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        keys = list(redis.scan_iter(match=PREFIX + "*", count=1000))
        if keys:
            redis.delete(*keys)
    finally:
        redis.close()
