"""The alliance dashboard's daily rollups: keep them up to date (the periodic job's step) and rebuild
an alliance's from scratch (``lianka reports rebuild-alliance``).

The contract is decision 0037's, over the alliance's book (decision 0046): the mark says "every
entry posted before it is rolled up". A tick reads the local days of the entries posted after
``mark - OVERLAP``, deletes those days' rows, rolls them up again from the journal and advances the
mark to the transaction's start — one transaction, so a crash leaves the mark behind and the next tick
redoes the same days from scratch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lianka.alliance.alliances import queries as alliance_queries
from lianka.alliance.reports import queries as q
from lianka.platform.db import Database, UnitOfWork
from lianka.tenants.reports.rollups import OVERLAP, REBUILD_CHUNK, RefreshResult


def _bounds(days: list[date], tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    lo = datetime.combine(min(days), time(), tzinfo=zone) - timedelta(days=1)
    hi = datetime.combine(max(days), time(), tzinfo=zone) + timedelta(days=2)
    return lo, hi


async def _rewrite(uow: UnitOfWork, alliance: uuid.UUID, tz: str, days: list[date]) -> int:
    if not days:
        return 0
    lo, hi = _bounds(days, tz)
    return await q.rewrite_days(uow, q.DaysToRoll(alliance, tz, days, lo, hi))


async def refresh_in(uow: UnitOfWork, alliance: uuid.UUID) -> RefreshResult:
    """Building block (in the alliance's book): roll up what was posted since the mark and advance it."""
    await q.lock(uow, alliance)
    started = await q.now(uow)
    tz = (await alliance_queries.alliance(uow)).timezone
    mark = await q.mark(uow, alliance)
    days = await q.days_written_since(uow, alliance, tz, None if mark is None else mark - OVERLAP)
    rows = await _rewrite(uow, alliance, tz, days)
    await q.set_mark(uow, alliance, started)
    return RefreshResult(len(days), rows, started)


async def refresh(db: Database, alliance: uuid.UUID) -> RefreshResult:
    """Use case: one tick for one alliance, in one transaction — or, for one never rolled up, a
    :func:`rebuild` in chunks."""
    async with db.uow(alliance) as uow:
        first = await q.mark(uow, alliance) is None
    if first:
        return await rebuild(db, alliance)
    async with db.uow(alliance) as uow:
        result = await refresh_in(uow, alliance)
        await uow.commit()
    return result


async def rebuild(
    db: Database, alliance: uuid.UUID, progress: Callable[[int, int], None] | None = None
) -> RefreshResult:
    """Use case: every day of the alliance's book rolled up again, a month of days per transaction; the
    mark ends at the rebuild's start (or later, if a tick moved it on)."""
    async with db.uow(alliance) as uow:
        await q.lock(uow, alliance)
        started = await q.now(uow)
        tz = (await alliance_queries.alliance(uow)).timezone
        days = await q.days_written_since(uow, alliance, tz, None)
        await q.delete_all(uow, alliance)
        await uow.commit()
    rows = 0
    if progress is not None:
        progress(0, len(days))
    for i in range(0, len(days), REBUILD_CHUNK):
        chunk = days[i : i + REBUILD_CHUNK]
        async with db.uow(alliance) as uow:
            await q.lock(uow, alliance)
            rows += await _rewrite(uow, alliance, tz, chunk)
            await uow.commit()
        if progress is not None:
            progress(min(i + REBUILD_CHUNK, len(days)), len(days))
    async with db.uow(alliance) as uow:
        await q.set_mark(uow, alliance, started)
        await uow.commit()
    return RefreshResult(len(days), rows, started)
