"""Row counts of every table, for tests that assert "nothing was written"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


async def row_counts(owner_engine: Any) -> dict[str, int]:
    """``{table: rows}`` over the whole schema, read as the owner (row-level security does not hide rows)."""
    async with owner_engine.connect() as conn:
        tables = (
            (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")))
            .scalars()
            .all()
        )
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return {str(table): int(count) for table, count in (await conn.execute(text(sql))).all()}
