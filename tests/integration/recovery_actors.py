"""An actor for ``test_job_recovery``, imported by the dramatiq worker processes the test starts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.platform.jobs import consumer


@consumer(queue="recovery_test", max_retries=0)
async def recovery_test_job(uow: UnitOfWork, code: str, marker: str, **_: Any) -> None:
    """Book a branch (a second booking would break its unique code), write this process's pid to
    ``marker`` (the job is in flight), then hold the transaction open until ``marker.go`` exists."""
    await uow.session.execute(
        text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, 'recovery')"),
        {"t": uow.tenant_id, "c": code},
    )
    _note_pid(marker)
    for _attempt in range(6000):
        if _released(marker):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("never released")


def _note_pid(marker: str) -> None:
    with Path(marker).open("a") as fh:
        fh.write(f"{os.getpid()}\n")


def _released(marker: str) -> bool:
    return Path(f"{marker}.go").exists()
