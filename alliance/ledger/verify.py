"""Ledger invariants, checked over the whole database by the operator (``lianka ledger verify``).

Runs as the owner role (row-level security would hide other tenants' rows from the app role). Each
check is one set-based query (``queries.CHECKS``) returning the offending rows, of which at most
``limit`` are read; an empty report means the books are sound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from lianka.alliance.ledger import queries
from lianka.alliance.ledger.queries import CHECKS


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


async def verify(conn: AsyncConnection, *, limit: int = 20, progress: Callable[[str], None] | None = None) -> Report:
    report = Report(counts=await queries.row_counts(conn))
    for name in CHECKS:
        rows = await queries.offending_rows(conn, name, limit)
        if rows:
            report.failures[name] = rows
        if progress:
            progress(name)
    return report
