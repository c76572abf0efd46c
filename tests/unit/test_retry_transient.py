"""``retry_transient``: a use case whose transaction PostgreSQL aborted for a deadlock or a serialization
failure runs again (found by the soak: concurrent sales and refunds of one merchant deadlocked in
``ledger_post`` and answered 500); any other error is raised at once."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc

from lianka.platform.db import TRANSIENT_ATTEMPTS, is_transient, retry_transient


def _wrapped(error: Exception) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError("SELECT ledger_post($1)", None, error)


async def test_a_deadlock_or_serialization_failure_runs_the_use_case_again() -> None:
    calls: list[int] = []
    errors = [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        _wrapped(asyncpg.exceptions.SerializationError("x")),
    ]

    @retry_transient
    async def use_case(n: int) -> int:
        calls.append(n)
        if errors:
            raise errors.pop(0)
        return n * 2

    assert await use_case(21) == 42
    assert calls == [21, 21, 21]


async def test_other_errors_and_the_last_attempt_are_raised() -> None:
    calls = 0

    @retry_transient
    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.exceptions.UniqueViolationError("duplicate key")

    with pytest.raises(asyncpg.exceptions.UniqueViolationError):
        await refused()
    assert calls == 1

    calls = 0

    @retry_transient
    async def always_deadlocks() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
        await always_deadlocks()
    assert calls == TRANSIENT_ATTEMPTS


def test_transient_is_recognised_through_wrapping() -> None:
    assert is_transient(_wrapped(asyncpg.exceptions.DeadlockDetectedError("d")))
    assert not is_transient(_wrapped(asyncpg.exceptions.CheckViolationError("c")))
    assert not is_transient(RuntimeError("40P01"))
