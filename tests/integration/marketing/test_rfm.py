"""RFM scores on a known data set: quintiles by ntile(5) per merchant over the last 12 months of
sales, ties scored alike, old and refunded sales ignored, reruns idempotent, and the periodic job."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import periodic
from lianka.platform.db import Database
from lianka.tenants.marketing import services as svc

from . import kit
from .kit import NOW

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def scores(db: Database, tenant: uuid.UUID) -> dict[uuid.UUID, tuple[int, int, int]]:
    async with db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT member_id, recency, frequency, monetary FROM member_rfm"))).all()
    return {r.member_id: (r.recency, r.frequency, r.monetary) for r in rows}


async def test_quintiles_on_a_known_data_set(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t, other = await tenant_factory(), await tenant_factory()
    b = await kit.branch(db, t, "B1")
    ob = await kit.branch(db, other, "B1")
    ms = [await member_factory(t) for _ in range(10)]
    # member i (0..9): last bought 100-10i days ago, i+1 purchases, spend 1000*(i+1) in total
    for i, m in enumerate(ms):
        for k in range(i + 1):
            await kit.sale(db, t, m, b, NOW - (100 - 10 * i + k * 0.01) * DAY, 1000)
    lazy = await member_factory(t)  # bought only 13 months ago, and a refunded sale last week
    await kit.sale(db, t, lazy, b, NOW - 400 * DAY, 99_000)
    await kit.sale(db, t, lazy, b, NOW - 7 * DAY, 99_000, status="refunded")
    x = await member_factory(other)  # another merchant's buyer changes nothing here
    await kit.sale(db, other, x, ob, NOW - DAY, 1)

    assert await svc.rfm_scores(db, t, NOW) == 10
    got = await scores(db, t)
    expected = {m: (1 + i // 2,) * 3 for i, m in enumerate(ms)}
    assert got == expected
    assert await svc.rfm_scores(db, t, NOW) == 10  # a rerun rewrites the same
    assert await scores(db, t) == expected
    assert await scores(db, other) == {}

    # ties: two more members exactly like ms[9] score like it, however ntile split them
    twins = [await member_factory(t) for _ in range(2)]
    for m in twins:
        for k in range(10):
            await kit.sale(db, t, m, b, NOW - (10 + k * 0.01) * DAY, 1000)
    await svc.rfm_scores(db, t, NOW)
    got = await scores(db, t)
    assert got[twins[0]] == got[twins[1]] == got[ms[9]]

    # a year on, nobody bought in the window: every score is dropped
    await svc.rfm_scores(db, t, NOW + 400 * DAY)
    assert await scores(db, t) == {}


async def test_the_periodic_job(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    t = await tenant_factory()
    b = await kit.branch(db, t, "B1")
    m = await member_factory(t)
    await kit.sale(db, t, m, b, NOW - DAY, 500)
    import lianka.tenants.marketing.jobs  # noqa: F401 - registers the job

    job = periodic.find("rfm-scores")
    report = await periodic.run(job, db, as_of=NOW, merchant=t, trigger="cli")
    assert not report.failed
    assert (await scores(db, t)) == {m: (1, 1, 1)}
