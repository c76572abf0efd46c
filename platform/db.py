"""Database engine, declarative base and the unit of work.

A :class:`UnitOfWork` is one transaction. It rolls back unless :meth:`UnitOfWork.commit` is called,
and every transaction it begins first runs ``set_config('app.tenant_id', …, true)`` (the
``SET LOCAL`` form), so PostgreSQL row-level security scopes every statement to the tenant. With no
tenant the setting is empty and tenant-scoped tables show no rows at all.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

import asyncpg
from sqlalchemy import ForeignKey, MetaData, event, exc, make_url, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from lianka.platform.log import bind_context, get_logger
from lianka.platform.settings import Settings
from lianka.platform.tracing import instrument_engine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: how to forget each process cache that remembers rows once their transaction committed (the
#: ledger's accounts). A dry run (``lianka.platform.periodic``) lets units of work "commit" into a
#: transaction it then rolls back, so it calls these afterwards; a new such cache registers here.
COMMITTED_ROW_CACHES: list[Callable[[], None]] = []


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def tenant_id_pk() -> Mapped[uuid.UUID]:
    """``tenant_id`` as the first primary-key column (Citus distribution key), referencing the tenant."""
    return mapped_column(UUID(as_uuid=True), ForeignKey("merchants.id"), primary_key=True)


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


#: a connection that sat in the pool longer than this is pinged before use (see ``make_engine``)
IDLE_PING_SECONDS = 0.5
#: how long to wait for PostgreSQL to accept a new connection (asyncpg waits 60 s by default)
CONNECT_TIMEOUT_SECONDS = 5.0
#: asyncpg's errors for a server that is gone, going, starting or full
SERVER_GONE = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


class ScopedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped here
    """The app's asyncpg connection: a unit of work's tenant and scope travel with its ``BEGIN``.

    A :class:`ScopedSession` transaction leaves its ``set_config`` statement here (``prelude``)
    instead of sending it alone; SQLAlchemy's asyncpg adapter begins the transaction lazily, just
    before the first statement, and the ``BEGIN`` then goes out as ``BEGIN; SELECT set_config(…)`` —
    one simple-protocol round trip instead of two (decision 0053). The prelude is used once and
    dropped at check-in, so a connection never carries one tenant's scope to another checkout.
    """

    prelude: str | None = None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 (asyncpg's own signature)
        prelude = self.prelude
        if prelude is not None and not args and query.startswith("BEGIN"):
            self.prelude = None
            query = f"{query.rstrip().rstrip(';')}; {prelude}"
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


def scope_sql(tenant: str, scope: str) -> str:
    """The ``set_config`` statement that scopes a transaction, with its two values as literals (a
    simple-protocol query has no parameters): ``tenant`` is empty or a UUID, ``scope`` empty or
    ``system`` — anything else is refused rather than quoted."""
    if tenant:
        tenant = str(uuid.UUID(tenant))
    if scope not in ("", "system"):
        raise ValueError(f"unknown transaction scope {scope!r}")
    return f"SELECT set_config('app.tenant_id', '{tenant}', true), set_config('app.scope', '{scope}', true)"


class DatabaseUnavailable(ConnectionError):
    """PostgreSQL did not accept a connection (refused, gone, starting up, shutting down, full, too
    slow): the request cannot be served now, and may be retried (``web/problems.py`` answers 503)."""


def make_engine(url: str, settings: Settings | None = None, **kw: Any) -> AsyncEngine:
    """The application's engine. Two things make a database restart harmless to requests:

    * at checkout, a pooled connection the server has hung up on (asyncpg saw it close), or one idle
      for more than ``IDLE_PING_SECONDS`` that fails a ping, is replaced together with every older
      one. A busy pool (connections reused within milliseconds, the POS hot path) pays nothing; a
      quiet one pays a round trip it does not notice. ``pool_pre_ping`` would add that round trip to
      every request.
    * a new connection that cannot be made fails fast with :class:`DatabaseUnavailable`.

    With tracing on, every statement is a span (:func:`lianka.platform.tracing.instrument_engine`).
    """
    pool = {}
    if settings is not None:
        pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
    connect_args = {"connection_class": ScopedConnection, **kw.pop("connect_args", {})}
    engine = create_async_engine(url, pool_pre_ping=False, connect_args=connect_args, **pool, **kw)
    sync = engine.sync_engine

    @event.listens_for(sync, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        cparams.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, *SERVER_GONE) as error:  # OSError: refused, no socket, timed out
            raise DatabaseUnavailable(f"PostgreSQL is not reachable ({type(error).__name__})") from error

    @event.listens_for(sync, "checkin")
    def _idle_from(dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()
        driver = getattr(dbapi, "driver_connection", None)
        if isinstance(driver, ScopedConnection):  # a transaction that sent nothing: its scope goes too
            driver.prelude = None

    @event.listens_for(sync, "checkout")
    def _ping_if_idle(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if dbapi.driver_connection.is_closed():  # the server hung up while it sat in the pool
            raise exc.InvalidatePoolError("pooled connection closed by the server")
        if since is not None and time.monotonic() - since > IDLE_PING_SECONDS:
            try:
                sync.dialect.do_ping(dbapi)
            except Exception as error:  # the pool reconnects, or raises DatabaseUnavailable
                raise exc.InvalidatePoolError(f"stale pooled connection: {type(error).__name__}") from error

    instrument_engine(engine)  # a span per statement when tracing is on (platform/tracing.py)
    return engine


class Database:
    """The application's engine (connected as the RLS-bound app role) and its session factory."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: run units of work's after-commit callbacks (metrics); off for a dry run's savepoints
        self.after_commit = True
        self.sessionmaker = async_sessionmaker(
            engine, expire_on_commit=False, autoflush=False, sync_session_class=ScopedSession
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(make_engine(settings.resolved_app_database_url(), settings))

    def uow(self, tenant_id: uuid.UUID | None = None, *, system: bool = False) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker, tenant_id, system=system, after_commit=self.after_commit)

    async def dispose(self) -> None:
        await self.engine.dispose()


class ScopedSession(Session):
    """A session whose every transaction starts by setting the tenant and scope (``SET LOCAL``).

    The scope lives in ``session.info`` and the hook is registered once on the class: per-session
    event registration is costly and this runs on every POS request.
    """


@event.listens_for(ScopedSession, "after_begin")
def _scope_transaction(session: Session, _tx: Any, connection: Any) -> None:
    tenant, scope = session.info.get("tenant", ""), session.info.get("scope", "")
    adapted = connection.connection.dbapi_connection
    driver = getattr(adapted, "driver_connection", None)
    if isinstance(driver, ScopedConnection) and getattr(adapted, "_transaction", True) is None:
        driver.prelude = scope_sql(tenant, scope)  # sent with the BEGIN (ScopedConnection)
        return
    connection.exec_driver_sql(
        "SELECT set_config('app.tenant_id', $1, true), set_config('app.scope', $2, true)", (tenant, scope)
    )


class UnitOfWork:
    """One database transaction scoped to one tenant (or to none).

    ``system=True`` marks platform-level work that crosses tenants (the outbox relay); only tables
    whose policy explicitly admits ``app.scope = 'system'`` honour it — tenant data never does.
    """

    session: AsyncSession

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        tenant_id: uuid.UUID | None,
        *,
        system: bool = False,
        after_commit: bool = True,
    ) -> None:
        self._factory = factory
        self.tenant_id = tenant_id
        self.system = system
        self._committed = False
        self._driver: tuple[Any, Any] | None = None
        self._run_after_commit = after_commit
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the next :meth:`commit` has succeeded — never for a transaction
        that rolls back (business metrics count only what was committed, ``platform/metrics.py``).
        Callbacks must be cheap and must not raise; a dry run (``platform/periodic.py``) skips them."""
        self._after_commit.append(callback)

    async def __aenter__(self) -> Self:
        self.session = self._factory()
        self._set_scope()
        if self.tenant_id:
            bind_context(tenant_id=str(self.tenant_id))
        return self

    async def set_tenant(self, tenant_id: uuid.UUID) -> None:
        """Switch this transaction to ``tenant_id`` (and out of system scope) from here on.

        For the few writes that create a tenant and its first rows atomically (sign-up, demo).
        """
        self.tenant_id, self.system = tenant_id, False
        self._set_scope()
        await self.session.execute(
            text("SELECT set_config('app.tenant_id', :t, true), set_config('app.scope', '', true)"),
            {"t": str(tenant_id)},
        )
        bind_context(tenant_id=str(tenant_id))

    async def set_system(self) -> None:
        """Enter system scope inside this transaction (a sale that enrols a new person at the till
        writes the global person row, then returns to its tenant with :meth:`set_tenant`)."""
        self.system = True
        self._set_scope()
        await self.session.execute(text("SELECT set_config('app.scope', 'system', true)"))

    def _set_scope(self) -> None:
        self.session.info["tenant"] = str(self.tenant_id) if self.tenant_id else ""
        self.session.info["scope"] = "system" if self.system else ""

    async def driver(self) -> Any:
        """This transaction's asyncpg connection (begun, tenant set), for the hot paths where
        SQLAlchemy's per-statement cost shows (the POS sale, the ledger). ``$1, $2, …`` parameters;
        valid until the transaction ends."""
        transaction = self.session.sync_session.get_transaction()
        if transaction is not None and self._driver is not None and self._driver[0] is transaction:
            return self._driver[1]  # the same transaction: the same connection
        connection = await self.session.connection()
        adapted: Any = (await connection.get_raw_connection()).dbapi_connection  # SQLAlchemy's asyncpg adapter
        if getattr(adapted, "_transaction", True) is None:  # not begun yet: BEGIN and the scope, one trip
            await adapted._start_transaction()
        driver = adapted.driver_connection
        self._driver = (self.session.sync_session.get_transaction(), driver)
        return driver

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True
        self.run_after_commit()

    def run_after_commit(self) -> None:
        """Run (and forget) the after-commit callbacks: :meth:`commit` does, and so does work that
        committed on its own without this unit's session (``ledger.post_alone``)."""
        callbacks, self._after_commit = self._after_commit, []
        if self._run_after_commit:
            for callback in callbacks:
                callback()

    async def rollback(self) -> None:
        self._after_commit.clear()
        await self.session.rollback()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back whatever was not committed (an exception, a forgotten commit, writes
        # after the last commit) and, unlike rollback(), leaves loaded objects readable.
        await self.session.close()


def asyncpg_params(url: str) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect`` from a SQLAlchemy URL (unix-socket hosts included)."""
    u = make_url(url)
    host = u.query.get("host")
    return {
        "user": u.username,
        "password": u.password,
        "database": u.database,
        "host": host if isinstance(host, str) else u.host,
        "port": u.port,
    }


@asynccontextmanager
async def owner_connection(url: str) -> AsyncIterator[Any]:
    """A short-lived connection as the owner role (migrations, test set-up, demo checks)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


#: SQLSTATEs of a transaction PostgreSQL aborted only because of another one running at the same time:
#: deadlock_detected and serialization_failure. Running the whole transaction again is the remedy.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
#: attempts of a transaction that keeps losing to others (the last one's error is raised)
TRANSIENT_ATTEMPTS = 4


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (raised by asyncpg directly or wrapped by SQLAlchemy) is a deadlock or a
    serialization failure."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if getattr(error, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        pending += [error.__cause__, error.__context__, getattr(error, "orig", None)]
    return False


log = get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def retry_transient(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run ``fn`` — a use case that owns its one transaction (``async with db.uow(...)``) — again when
    PostgreSQL aborted that transaction for a deadlock or a serialization failure with concurrent ones
    (nothing of it was committed), up to ``TRANSIENT_ATTEMPTS`` times with a short random pause. Only
    for use cases whose whole effect is that transaction (exactly-once by their idempotency key)."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                if attempt == TRANSIENT_ATTEMPTS or not is_transient(exc):
                    raise
                log.info("transaction retried", use_case=fn.__qualname__, attempt=attempt, error=type(exc).__name__)
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    return run
