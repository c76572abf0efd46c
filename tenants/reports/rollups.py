"""The daily rollups' use cases: keep them up to date (the periodic job's step) and rebuild a
merchant's from scratch (``lianka reports rebuild``).

The contract (decision 0037): the mark says "every row written before it is rolled up". A tick reads
the days that rows written after ``mark - OVERLAP`` belong to, deletes those days' rows, rolls them up
again from the source tables and advances the mark to the transaction's start — all in one
transaction. A crash anywhere rolls everything back: the mark stays behind and the next tick redoes
those days from scratch, so nothing is ever counted twice. ``OVERLAP`` covers transactions that began
before the tick (their rows carry that earlier time) but committed after the tick's snapshot.

The buyers (decision 0055) are ranked within a calendar month: a sale written since the mark on day
``d`` can move a member's first or second purchase of ``d``'s month, so the tick rewrites the buyer
rows from ``d`` to the month's end (from the earliest such day of each month touched). The same tick
folds the tier counts' changes (appended by a trigger on the profiles) into a row per tier.
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
#: calendar months per transaction when rebuilding: whole months, so a chunk's buyers need no earlier
#: sales; a year, because each chunk pays a fixed cost (the journal part hashes the merchant's postings
#: and accounts once per statement): at 2M entries a year in 4 quarters took 2× a year in one (0055)
REBUILD_MONTHS = 12
#: consecutive days per transaction for rollups rebuilt by days (the alliance's)
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


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def buyer_days(tenant: uuid.UUID, tz: str, first: date, end: date) -> q.BuyerDays:
    """The buyer rows of local days ``first`` .. ``end`` (excluded), with their UTC bounds."""
    zone = ZoneInfo(tz)

    def start(d: date) -> datetime:
        return datetime.combine(d, time(), tzinfo=zone)

    return q.BuyerDays(tenant, tz, first, end, start(_month_start(first)), start(first), start(end))


def months_to_rewrite(sale_days: list[date]) -> list[tuple[date, date]]:
    """For sales on ``sale_days``: per month touched, its earliest such day and the next month's first
    (the buyer rows from that day to the month's end may change)."""
    earliest: dict[date, date] = {}
    for d in sale_days:
        month = _month_start(d)
        earliest[month] = min(d, earliest.get(month, d))
    return [(d, _next_month(month)) for month, d in sorted(earliest.items())]


async def refresh_in(uow: UnitOfWork, tenant: uuid.UUID) -> RefreshResult:
    """Building block: roll up what was written since the mark and advance it (never commits)."""
    await q.lock(uow, tenant)
    started = await q.now(uow)
    _, tz = await merchant_info(uow)
    mark = await q.mark(uow, tenant)
    since = None if mark is None else mark - OVERLAP
    days = await q.days_written_since(uow, tenant, tz, since)
    rows = await _rewrite(uow, tenant, days)
    for first, end in months_to_rewrite(await q.sale_days_since(uow, tenant, tz, since)):
        await q.rewrite_buyers(uow, buyer_days(tenant, tz, first, end))
    await q.fold_tiers(uow, tenant)
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
    movement's local day to its last, ``REBUILD_MONTHS`` calendar months per transaction (the first
    chunk from that day), each one set-based statement over exactly those days' business times for the
    daily figures and one for the buyers (``progress(done, total)`` in days after each). Every row is
    dropped first and the tier counts recounted from the profiles; a tick running meanwhile recomputes
    the same days from the same rows under the same lock, so the two agree. The mark ends at the
    rebuild's start (or later, if a tick moved it on)."""
    async with db.uow(tenant) as uow:
        await q.lock(uow, tenant)
        started = await q.now(uow)
        currency, tz = await merchant_info(uow)
        found = await q.span(uow, tenant, tz)
        await q.delete_all(uow, tenant)
        await q.delete_all_buyers(uow, tenant)
        await q.recount_tiers(uow, tenant)
        await uow.commit()
    zone = ZoneInfo(tz)
    total = 0 if found is None else (found[1] - found[0]).days + 1
    rows = 0
    if progress is not None:
        progress(0, total)
    first = None if found is None else found[0]
    while found is not None and first is not None and first <= found[1]:
        end = _month_start(first)
        for _ in range(REBUILD_MONTHS):
            end = _next_month(end)
        end = min(end, found[1] + timedelta(days=1))
        days = [first + timedelta(days=k) for k in range((end - first).days)]
        lo = datetime.combine(first, time(), tzinfo=zone)
        hi = datetime.combine(end, time(), tzinfo=zone)
        async with db.uow(tenant) as uow:
            await q.lock(uow, tenant)
            await q.delete_days(uow, tenant, days)  # a tick may have rolled some up meanwhile
            rows += await q.rewrite_range(uow, q.DaysToRoll(tenant, tz, currency, days, lo, hi))
            await q.rewrite_buyers(uow, buyer_days(tenant, tz, first, end), everyone=True)
            await uow.commit()
        if progress is not None:
            progress((end - found[0]).days, total)
        first = end
    async with db.uow(tenant) as uow:
        await q.set_mark(uow, tenant, started)
        await uow.commit()
    return RefreshResult(total, rows, started)
