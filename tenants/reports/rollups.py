"""The daily rollups' use cases: keep them up to date (the periodic job's step) and rebuild a
merchant's from scratch (``lianka reports rebuild``).

The contract (decision 0037): the mark says "every row written before it is rolled up". A tick reads
the days that rows written after ``mark - OVERLAP`` belong to, deletes those days' rows, rolls them up
again from the source tables and advances the mark to the transaction's start — all in one
transaction. A crash anywhere rolls everything back: the mark stays behind and the next tick redoes
those days from scratch, so nothing is ever counted twice. ``OVERLAP`` covers transactions that began
before the tick (their rows carry that earlier time) but committed after the tick's snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lianka.platform.db import Database, UnitOfWork
from lianka.tenants.reports import queries as q
from lianka.tenants.services.accounts import merchant_info

#: how far behind the mark a tick looks again: longer than any writing transaction lasts
OVERLAP = timedelta(minutes=10)
#: consecutive days per transaction when rebuilding (a quarter: few passes over the journal, bounded
#: transactions — decision 0047)
REBUILD_CHUNK = 92


@dataclass(frozen=True)
class RefreshResult:
    days: int
    rows: int
    mark: datetime


def _bounds(days: list[date], tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    lo = datetime.combine(min(days), time(), tzinfo=zone) - timedelta(days=1)
    hi = datetime.combine(max(days), time(), tzinfo=zone) + timedelta(days=2)
    return lo, hi


async def _rewrite(uow: UnitOfWork, tenant: uuid.UUID, days: list[date]) -> int:
    if not days:
        return 0
    currency, tz = await merchant_info(uow)
    lo, hi = _bounds(days, tz)
    return await q.rewrite_days(uow, q.DaysToRoll(tenant, tz, currency, days, lo, hi))


async def refresh_in(uow: UnitOfWork, tenant: uuid.UUID) -> RefreshResult:
    """Building block: roll up what was written since the mark and advance it (never commits)."""
    await q.lock(uow, tenant)
    started = await q.now(uow)
    _, tz = await merchant_info(uow)
    mark = await q.mark(uow, tenant)
    days = await q.days_written_since(uow, tenant, tz, None if mark is None else mark - OVERLAP)
    rows = await _rewrite(uow, tenant, days)
    await q.set_mark(uow, tenant, started)
    return RefreshResult(len(days), rows, started)


async def refresh(db: Database, tenant: uuid.UUID) -> RefreshResult:
    """Use case: one tick of the rollup for one merchant, in one transaction — or, for a merchant
    never rolled up (no mark: its whole history is new), a :func:`rebuild` in chunks."""
    async with db.uow(tenant) as uow:
        first = await q.mark(uow, tenant) is None
    if first:
        return await rebuild(db, tenant)
    async with db.uow(tenant) as uow:
        result = await refresh_in(uow, tenant)
        await uow.commit()
    return result


async def rebuild(db: Database, tenant: uuid.UUID, progress: Callable[[int, int], None] | None = None) -> RefreshResult:
    """Use case: every day of the merchant's history rolled up again from scratch — from its first
    movement's local day to its last, ``REBUILD_CHUNK`` consecutive days per transaction, each one
    set-based statement over exactly those days' business times (``progress(done, total)`` after
    each). Every row is dropped first; a tick running meanwhile recomputes the same days from the same
    rows under the same lock, so the two agree. The mark ends at the rebuild's start (or later, if a
    tick moved it on)."""
    async with db.uow(tenant) as uow:
        await q.lock(uow, tenant)
        started = await q.now(uow)
        currency, tz = await merchant_info(uow)
        found = await q.span(uow, tenant, tz)
        await q.delete_all(uow, tenant)
        await uow.commit()
    zone = ZoneInfo(tz)
    total = 0 if found is None else (found[1] - found[0]).days + 1
    rows = 0
    if progress is not None:
        progress(0, total)
    for i in range(0, total, REBUILD_CHUNK):
        assert found is not None
        first = found[0] + timedelta(days=i)
        days = [first + timedelta(days=k) for k in range(min(REBUILD_CHUNK, total - i))]
        lo = datetime.combine(days[0], time(), tzinfo=zone)
        hi = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=zone)
        async with db.uow(tenant) as uow:
            await q.lock(uow, tenant)
            await q.delete_days(uow, tenant, days)  # a tick may have rolled some up meanwhile
            rows += await q.rewrite_range(uow, q.DaysToRoll(tenant, tz, currency, days, lo, hi))
            await uow.commit()
        if progress is not None:
            progress(min(i + REBUILD_CHUNK, total), total)
    async with db.uow(tenant) as uow:
        await q.set_mark(uow, tenant, started)
        await uow.commit()
    return RefreshResult(total, rows, started)
