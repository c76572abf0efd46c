"""The scheduled month-end close (issue 11): it only ever closes months that have ended in each
merchant's time zone — the one that has just ended, wherever the merchant is — and catches up months
whose close was missed, in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import text

from lianka.alliance.settlement import jobs
from lianka.alliance.settlement.domain import period_end, period_of
from lianka.platform.db import Database
from lianka.platform.scheduler import REGISTRY, Target
from lianka.tenants.domain.programme import BonusFunder, Consumption
from tests.integration.settlement.test_close import _month

pytestmark = pytest.mark.integration
ZONES = [
    "Pacific/Kiritimati",
    "Asia/Shanghai",
    "Asia/Kathmandu",
    "Europe/London",
    "America/St_Johns",
    "America/Los_Angeles",
    "Pacific/Pago_Pago",
    "Etc/GMT+12",
]


def next_tick(after: datetime) -> datetime:
    job = REGISTRY["close-chains-monthly"]
    fire: datetime | None = CronTrigger.from_crontab(job.cron, timezone=job.timezone).get_next_fire_time(None, after)
    assert fire is not None
    return fire


@pytest.mark.parametrize(
    "mid_month",
    [datetime(2026, 11, 15, tzinfo=UTC), datetime(2027, 2, 14, tzinfo=UTC), datetime(2027, 12, 20, tzinfo=UTC)],
)
def test_the_monthly_tick_comes_once_the_month_is_over_in_every_zone(mid_month: datetime) -> None:
    fire = next_tick(mid_month)
    month = period_of(mid_month, "UTC")
    for tz in ZONES:
        assert period_end(month, tz) <= fire, tz  # over there too
        assert jobs.previous_month(fire, tz) == month, tz  # and it is the month the tick closes there


async def test_the_tick_closes_for_each_merchant_the_month_that_has_just_ended(db: Database, tenant_factory) -> None:
    mine = {
        await tenant_factory(f"zone {tz}", timezone=tz): tz
        for tz in ("America/Los_Angeles", "Asia/Shanghai", "Pacific/Pago_Pago")
    }
    fire = next_tick(datetime(2026, 11, 15, tzinfo=UTC))
    with mock.patch.object(jobs, "close_scope", return_value=[]) as close_scope:
        for tenant in mine:
            await jobs.close_ended_months(db, Target(tenant, str(tenant)), fire)
    sent = {uuid.UUID(c.args[1]): (c.args[0], c.args[2], c.kwargs) for c in close_scope.call_args_list}
    for tenant, tz in mine.items():
        assert sent[tenant] == ("chain", "2026-11", {"catch_up": True, "now": fire}), tz
        assert period_end("2026-11", tz) <= fire


async def runs(db: Database, tenant: uuid.UUID) -> dict[str, str]:
    async with db.uow(tenant) as uow:
        return {
            r.period: r.status for r in await uow.session.execute(text("SELECT period, status FROM settlement_runs"))
        }


async def test_the_job_catches_up_missed_months_in_order_and_never_an_open_one(
    db: Database, tenant_factory, member_factory
) -> None:
    tenant, _, _ = await _month(
        db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, [("top_up", 0, "p300", 0)]
    )  # August
    assert len(await jobs.close_scope("chain", str(tenant), "2026-08")) == 1
    # September and October were missed; the tick for November closes all three, oldest first
    assert len(await jobs.close_scope("chain", str(tenant), "2026-11", catch_up=True)) == 3
    assert await runs(db, tenant) == dict.fromkeys(("2026-08", "2026-09", "2026-10", "2026-11"), "closed")
    assert await jobs.close_scope("chain", str(tenant), "2026-11", catch_up=True) == []  # nothing left
    # a close of the month not over yet (a stray message) is refused and logged, not retried
    now = period_of(datetime.now(UTC), "Asia/Shanghai")
    assert await jobs.close_scope("chain", str(tenant), now) == []
    assert await jobs.close_scope("chain", str(tenant), now, catch_up=True) == []
    assert now not in await runs(db, tenant)


async def test_a_books_first_catch_up_closes_only_the_month_given(db: Database, tenant_factory, member_factory) -> None:
    tenant, _, _ = await _month(
        db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, [("top_up", 0, "p300", 0)]
    )
    assert len(await jobs.close_scope("chain", str(tenant), "2026-10", catch_up=True)) == 1  # August folded in
    assert await runs(db, tenant) == {"2026-10": "closed"}
    brand_new = await tenant_factory("new this month")  # nothing to close before it existed
    assert await jobs.close_scope("chain", str(brand_new), "2026-10", catch_up=True) == []
