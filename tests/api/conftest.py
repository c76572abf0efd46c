from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from lianka.platform.identity.testing import AuthKit, Creds, SecurityMatrix
from lianka.platform.settings import Settings
from lianka.web.app import create_app


@pytest.fixture(scope="session")
def shared_app(settings: Settings) -> Litestar:
    """One app for the session: building one registers every route (~1 s), and its lifespan (run by
    each test's client) makes the database, Redis and identity state afresh, so tests stay apart."""
    return create_app(settings)


@pytest.fixture
def app(shared_app: Litestar) -> Litestar:
    return shared_app


@pytest.fixture
def fresh_app(settings: Settings) -> Litestar:
    """An app of the test's own, for a test that registers extra routes on it."""
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        yield c


# --- identity: credentials for every kind of caller (see lianka.platform.identity.testing) -------


@pytest.fixture
async def auth_kit(db, settings: Settings) -> AsyncIterator[AuthKit]:
    """Makes real staff users, API clients, members and signed tokens in the test database."""
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    yield AuthKit(db, settings, redis)
    await redis.aclose()


@pytest.fixture
def staff_token(auth_kit: AuthKit) -> Callable[..., Awaitable[Creds]]:
    """``await staff_token(tenant, "cashier", branches=[b])`` → Creds; send ``creds.headers``."""

    async def make(tenant: uuid.UUID, role: str = "owner", *, branches: Sequence[uuid.UUID] = ()) -> Creds:
        return await auth_kit.staff(tenant, role, branches=branches)

    return make


@pytest.fixture
def pos_token(auth_kit: AuthKit) -> Callable[..., Awaitable[Creds]]:
    """``await pos_token(tenant, ["pos"], branch=b)`` → Creds of a new API client and its token."""

    async def make(tenant: uuid.UUID, scopes: Sequence[str] = ("pos",), branch: uuid.UUID | None = None) -> Creds:
        return await auth_kit.pos(tenant, scopes, branch=branch)

    return make


@pytest.fixture
def member_session(auth_kit: AuthKit) -> Callable[..., Awaitable[Creds]]:
    """``await member_session(tenant)`` → a member enrolled at ``tenant``, signed in to the portal."""

    async def make(tenant: uuid.UUID | None = None, phone: str | None = None) -> Creds:
        return await auth_kit.member(tenant, phone)

    return make


@pytest.fixture
def security_matrix(client: AsyncTestClient[Litestar], auth_kit: AuthKit) -> SecurityMatrix:
    """``await security_matrix.check("POST", url, tenant=a, other=b, denied_roles=[...], ...)``."""
    return SecurityMatrix(client, auth_kit)
