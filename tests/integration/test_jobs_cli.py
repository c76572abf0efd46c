"""``lianka jobs list`` / ``lianka jobs run`` through the real command line (typer's runner) on the real
database: every periodic job runs by hand, limited to one merchant, as of a given time; a dry run
reports the same counts and writes nothing anywhere; by hand then on schedule (or twice) does the
work once; a future ``--as-of`` is refused in production."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dramatiq
import pytest
from redis import Redis
from sqlalchemy import text
from typer.testing import CliRunner, Result

import lianka.actors  # noqa: F401 - registers every periodic job
from lianka.cli import app
from lianka.platform import periodic
from lianka.platform.db import Database
from lianka.platform.jobs import get_broker
from lianka.platform.scheduler import REGISTRY, fire
from lianka.platform.settings import get_settings
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import EarningRule, ExpiryPolicy, PointsConfig, Programme, RuleKind, Tier
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
PROGRAMME = Programme(
    points=PointsConfig(expiry=ExpiryPolicy(months=1, remind_days_before=10)),
    tiers=[
        Tier(code="regular", name="普通", rank=0),
        Tier(code="silver", name="银卡", rank=1, threshold=1_000),
        Tier(code="gold", name="金卡", rank=2, threshold=5_000),
    ],
    rules=[EarningRule(code="bday", kind=RuleKind.BIRTHDAY, points=88)],
)
#: every job that works per merchant (the two platform-wide prune jobs are below)
MERCHANT_JOBS = [
    "review-tiers",
    "birthday-rewards",
    "automations-daily",
    "expire-coupons",
    "expire-points",
    "close-chains-monthly",
]
runner = CliRunner()


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``lianka *args`` in a thread (the command runs its own event loop, as from a shell)."""
    return await asyncio.to_thread(runner.invoke, app, list(args), env={"COLUMNS": "200", **(env or {})})


def total(result: Result) -> int:
    """The "N in all" of a ``jobs run`` report."""
    assert result.exit_code == 0, result.output + repr(result.exception)
    found = re.search(r"target\(s\): ([\d,]+) in all", result.output)
    assert found, result.output
    return int(found.group(1).replace(",", ""))


async def snapshot(owner_engine: Any, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """A digest of every row of every table (as the owner, so row-level security hides nothing)."""
    async with owner_engine.connect() as conn:
        tables = list(
            (
                await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
            ).scalars()
        )
        return {
            t: await conn.scalar(
                text(f"SELECT md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) FROM \"{t}\" x")
            )
            for t in tables
            if t not in exclude
        }


async def slug_of(db: Database, tenant: uuid.UUID) -> str:
    async with db.uow(tenant) as uow:
        return str(await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant}))


async def due_work(db: Database, tenant: uuid.UUID, member_factory: Any) -> None:
    """A merchant with one thing due for each daily job as of NOW, and an open previous month."""
    lapsed, birthday, saver, holder = [await member_factory(tenant) for _ in range(4)]
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=NOW - timedelta(days=800))
        for member, values in (
            (lapsed, {"tier_code": "gold", "tier_since": NOW - timedelta(days=400)}),
            (birthday, {"birthday": date(1990, 11, 23)}),
        ):
            await uow.session.execute(
                text("INSERT INTO member_profiles (tenant_id, member_id) VALUES (:t, :m) ON CONFLICT DO NOTHING"),
                {"t": tenant, "m": member},
            )
            sets = ", ".join(f"{k} = :{k}" for k in values)
            await uow.session.execute(
                text(f"UPDATE member_profiles SET {sets} WHERE member_id = :m"), {"m": member, **values}
            )
        # expires within the 10-day notice (a reminder), and one lot already due (expiry)
        await accounts.award_points(
            uow, saver, 50, programme=PROGRAMME, reason="x", key="soon", business_time=NOW - timedelta(days=25)
        )
        await accounts.award_points(
            uow, saver, 30, programme=PROGRAMME, reason="x", key="due", business_time=NOW - timedelta(days=40)
        )
        template = await coupon_svc.create_template(
            uow, coupon_svc.TemplateSpec(code="c3", name="3 days", kind=CouponKind.FIXED, amount_off=100, valid_days=3)
        )
        await coupon_svc.issue(uow, template.id, holder, now=NOW - timedelta(days=5))
        await uow.commit()


@pytest.mark.parametrize("job", MERCHANT_JOBS)
async def test_a_job_by_hand_does_the_work_once(
    job: str, db: Database, owner_engine: Any, tenant_factory: Any, member_factory: Any
) -> None:
    a, b = await tenant_factory("Chain A"), await tenant_factory("Chain B")
    for tenant in (a, b):
        await due_work(db, tenant, member_factory)
    slug_a, slug_b = await slug_of(db, a), await slug_of(db, b)
    as_of = ("--as-of", NOW.isoformat())

    before = await snapshot(owner_engine)
    dry = await cli("jobs", "run", job, *as_of, "--merchant", slug_a, "--dry-run")
    would = total(dry)
    assert would >= 1, dry.output
    assert "dry run, nothing written" in dry.output
    assert re.search(rf"{slug_a}\s*│\s*{would}\s", dry.output), dry.output  # the count per merchant
    assert await snapshot(owner_engine) == before, "a dry run wrote something"

    assert total(await cli("jobs", "run", job, *as_of, "--merchant", slug_a)) == would
    done_a = await snapshot(owner_engine, exclude=("job_runs",))
    assert done_a != {t: digest for t, digest in before.items() if t != "job_runs"}
    assert total(await cli("jobs", "run", job, *as_of, "--merchant", slug_a)) == 0  # twice: once
    # the scheduled run of the same tick goes through the same function; it finds A done ...
    report = await periodic.run(REGISTRY[job], db, as_of=NOW, merchant=a, trigger="scheduler")
    assert (report.total, report.failed) == (0, [])
    assert await snapshot(owner_engine, exclude=("job_runs",)) == done_a
    # ... and B untouched by A's runs: the scheduler does it, then by hand there is nothing left
    report = await periodic.run(REGISTRY[job], db, as_of=NOW, merchant=b, trigger="scheduler")
    assert report.total == would
    assert total(await cli("jobs", "run", job, *as_of, "--merchant", slug_b)) == 0


async def test_the_scheduler_tick_then_by_hand(db: Database, tenant_factory: Any, member_factory: Any) -> None:
    """The real path: the scheduler enqueues the ticks, a worker runs them over every merchant and
    records each run (a consumer-style job's with its effects); by hand afterwards finds the work done."""
    a = await tenant_factory()
    await due_work(db, a, member_factory)
    broker, redis = get_broker(), Redis.from_url(get_settings().redis_url)
    tick = NOW.replace(minute=10) + timedelta(microseconds=uuid.uuid4().int % 999_999)  # a tick of its own
    jobs = [REGISTRY["expire-coupons"], REGISTRY["prune-identity"]]
    for job in jobs:
        assert fire(redis, broker, job, tick)

    def work() -> None:
        worker = dramatiq.Worker(broker, queues={"maintenance"}, worker_threads=1)
        worker.start()
        try:
            broker.join("maintenance", timeout=60_000)
            worker.join()
        finally:
            worker.stop()

    await asyncio.to_thread(work)
    async with db.uow(a) as uow:
        assert await uow.session.scalar(text("SELECT status FROM coupons")) == "expired"
    async with db.uow(system=True) as uow:
        runs = (
            await uow.session.execute(
                text("SELECT job, trigger, status FROM job_runs WHERE as_of = :a ORDER BY job"), {"a": tick}
            )
        ).all()
    assert [tuple(r) for r in runs] == [
        ("expire-coupons", "scheduler", "done"),
        ("prune-identity", "scheduler", "done"),
    ]
    assert (
        total(
            await cli("jobs", "run", "expire-coupons", "--as-of", tick.isoformat(), "--merchant", await slug_of(db, a))
        )
        == 0
    )


async def test_platform_jobs_run_by_hand(db: Database, tenant_factory: Any) -> None:
    t = await tenant_factory()
    old = datetime.now(UTC) - timedelta(days=20)
    async with db.uow(t) as uow:
        await uow.session.execute(
            text("INSERT INTO outbox (tenant_id, actor, created_at, sent_at) VALUES (:t, 'old_message', :o, :o)"),
            {"t": t, "o": old},
        )
        await uow.session.execute(
            text(
                "INSERT INTO processed_messages (message_id, tenant_id, actor, processed_at) VALUES (:m, :t, 'x', :o)"
            ),
            {"m": uuid.uuid4(), "t": t, "o": old},
        )
        await uow.commit()
    assert total(await cli("jobs", "run", "prune-outbox", "--dry-run")) >= 2
    assert total(await cli("jobs", "run", "prune-outbox")) >= 2
    assert total(await cli("jobs", "run", "prune-outbox")) == 0
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM outbox WHERE actor = 'old_message'")) == 0
    # a consumer-style job (its handler is called directly), and a limit it has no use for
    assert (await cli("jobs", "run", "prune-identity")).exit_code == 0
    refused = await cli("jobs", "run", "prune-outbox", "--merchant", await slug_of(db, t))
    assert refused.exit_code == 2
    assert "whole platform" in refused.output


async def test_list_shows_every_job_its_schedule_and_last_run() -> None:
    assert total(await cli("jobs", "run", "prune-outbox", "--as-of", "2001-01-01T00:00:00+08:00")) == 0
    listed = await cli("jobs", "list")
    assert listed.exit_code == 0, listed.output
    assert set(REGISTRY) >= {*MERCHANT_JOBS, "prune-outbox", "prune-identity"}
    for name, job in REGISTRY.items():
        line = next((ln for ln in listed.output.splitlines() if f"│ {name} " in ln), None)
        assert line is not None, f"{name} missing:\n{listed.output}"
        assert job.cron in line
        assert periodic.summary_of(job)[:30] in line
    prune = next(ln for ln in listed.output.splitlines() if "│ prune-outbox " in ln)
    assert "by cli: done" in prune


async def test_future_as_of_is_refused_in_production(
    db: Database, owner_engine: Any, tenant_factory: Any, member_factory: Any
) -> None:
    t = await tenant_factory()
    await due_work(db, t, member_factory)
    slug = await slug_of(db, t)
    production = {
        "LIANKA_ENV": "production",
        "LIANKA_SECRET_KEY": secrets.token_urlsafe(48),
        "LIANKA_METRICS_TOKEN": secrets.token_urlsafe(48),
        "LIANKA_APP_DB_PASSWORD": secrets.token_urlsafe(24),
    }  # production refuses weak secrets
    future = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    before = await snapshot(owner_engine)
    try:
        refused = await cli("jobs", "run", "expire-coupons", "--merchant", slug, "--as-of", future, env=production)
        assert refused.exit_code == 2
        assert "future" in refused.output
        assert await snapshot(owner_engine) == before
        # the past is fine in production (a day the scheduler missed), the future outside it
        assert (
            total(
                await cli(
                    "jobs", "run", "expire-coupons", "--merchant", slug, "--as-of", NOW.isoformat(), env=production
                )
            )
            == 1
        )
        assert (
            total(
                await cli(
                    "jobs",
                    "run",
                    "expire-points",
                    "--merchant",
                    slug,
                    "--as-of",
                    future,
                    env={"LIANKA_ENV": "development"},
                )
            )
            == 2
        )  # both lots are due by then
    finally:
        get_settings.cache_clear()  # the command cached production settings in this process


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-job"], "no job 'no-such-job'"),
        (["expire-coupons", "--merchant", "no-such-merchant"], "no merchant 'no-such-merchant'"),
        (["expire-coupons", "--as-of", "2026-11-23T00:05:00"], "needs its UTC offset"),
        (["expire-coupons", "--as-of", "yesterday"], "not an ISO 8601 time"),
    ],
)
async def test_bad_requests_change_nothing(args: list[str], message: str, owner_engine: Any) -> None:
    before = await snapshot(owner_engine)
    result = await cli("jobs", "run", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert await snapshot(owner_engine) == before
