"""Periodic jobs as operators know them: fired by the scheduler, or run by hand (``lianka jobs run``).

A job works through *targets* — every merchant, every ledger book with due lots, or the platform as a
whole — and does one target's work in a *step*. Steps are idempotent: running a job twice, or by hand
and then on schedule, does the work once (the second time each step finds nothing left to do).

:func:`run` is the one way a job runs. The scheduled actor (declared by :func:`declare`) calls it with
the tick's time; the CLI with ``--as-of``, ``--merchant`` and ``--dry-run``. A failing target does not
stop the others. Every run except a dry run is recorded in ``job_runs`` (started, finished, how much
each target did), which is where ``lianka jobs list`` finds the last run.

A *dry run* does each target's real work inside one transaction that is rolled back — every unit of
work in it becomes a savepoint — so its counts are exactly what the run would do and nothing is
written. It holds the locks the real run would, one target at a time, and gives up waiting for a lock
after ``DRY_RUN_LOCK_TIMEOUT`` rather than queue behind live traffic. Process caches of committed rows
saw those units of work commit, so they are cleared afterwards (``db.COMMITTED_ROW_CACHES``).

Jobs declared with ``@consumer`` and registered with ``scheduler.periodic`` (no targets, no step) run
by hand too: their handler is called once for the whole platform in a system unit of work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dramatiq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from lianka.platform.db import COMMITTED_ROW_CACHES, Database, ScopedSession, UnitOfWork
from lianka.platform.jobs import HANDLERS, get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.scheduler import REGISTRY, Periodic, Step, Target, Targets, periodic
from lianka.platform.tracing import job_span

log = get_logger(__name__)
DRY_RUN_LOCK_TIMEOUT = "5s"
#: a scheduled run works through every merchant in one message: the default 10 minutes would cut a
#: month-end close or a big tier review short and start it over again and again
TIME_LIMIT_MS = 6 * 3_600_000
PLATFORM = "platform"


class JobRequestError(ValueError):
    """An operator asked for something a job cannot do: an unknown job or merchant, a malformed or
    (in production) future ``--as-of``, ``--merchant`` for a platform-wide job."""


# --- targets -----------------------------------------------------------------------------------------


async def every_merchant(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    """Every merchant (or the one asked for), in a stable order."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text("SELECT id, slug FROM merchants WHERE CAST(:m AS uuid) IS NULL OR id = :m ORDER BY id"),
                {"m": merchant},
            )
        ).all()
    return [Target(row.id, row.slug) for row in rows]


async def whole_platform(db: Database, as_of: datetime, merchant: uuid.UUID | None) -> list[Target]:
    """One target, the platform: housekeeping that is not any merchant's."""
    if merchant is not None:
        raise JobRequestError("this job works on the whole platform; --merchant does not apply to it")
    return [Target(None, PLATFORM)]


async def merchant_id(db: Database, slug: str) -> uuid.UUID:
    async with db.uow(system=True) as uow:
        found = await uow.session.scalar(text("SELECT id FROM merchants WHERE slug = :s"), {"s": slug})
    if found is None:
        raise JobRequestError(f"no merchant {slug!r}")
    return uuid.UUID(str(found))


# --- the registry, as operators see it ---------------------------------------------------------------


def find(name: str) -> Periodic:
    job = REGISTRY.get(name)
    if job is None:
        raise JobRequestError(f"no job {name!r}; `lianka jobs list` shows them ({', '.join(sorted(REGISTRY))})")
    return job


def work_of(job: Periodic) -> tuple[Targets, Step]:
    """The job's targets and step; a ``consumer`` job's handler becomes one platform-wide step."""
    if job.targets is not None and job.step is not None:
        return job.targets, job.step
    handler = HANDLERS.get(job.actor)
    if handler is None:
        raise JobRequestError(f"job {job.name!r} has no step to run by hand")

    async def step(db: Database, target: Target, as_of: datetime) -> int | None:
        async with db.uow(system=True) as uow:
            done = await handler(uow, **{**job.kwargs, "fire_time": as_of.isoformat()})
            await uow.commit()
        return done if isinstance(done, int) else None

    return whole_platform, step


def summary_of(job: Periodic) -> str:
    """What the job does: its declared summary, else the first paragraph of its handler's docstring."""
    if job.summary:
        return job.summary
    handler = HANDLERS.get(job.actor)
    doc = (handler.__doc__ if handler is not None else None) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def as_of_for_operator(value: str | None, *, production: bool, now: datetime | None = None) -> datetime:
    """``--as-of``: an ISO 8601 time with its UTC offset (now when not given). In production a time in
    the future is refused: it would expire points and coupons or close a month before their time."""
    now = now or datetime.now(UTC)
    if not value:
        return now
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise JobRequestError(f"--as-of {value!r} is not an ISO 8601 time such as 2026-11-23T00:05:00+08:00") from None
    if at.tzinfo is None:
        raise JobRequestError(f"--as-of {value!r} needs its UTC offset, e.g. {value}+08:00 or {value}Z")
    if production and at > now:
        raise JobRequestError(f"--as-of {value} is in the future; refused in production")
    return at


# --- running -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    target: Target
    count: int | None = None
    error: str | None = None


@dataclass
class Report:
    job: str
    as_of: datetime
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(o.count or 0 for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]


#: called after each target: (target, how many done, how many in all)
Progress = Callable[[Target, int, int], None]


async def run(
    job: Periodic,
    db: Database,
    *,
    as_of: datetime,
    merchant: uuid.UUID | None = None,
    dry_run: bool = False,
    trigger: str = "cli",
    progress: Progress | None = None,
) -> Report:
    """Run ``job`` as of ``as_of`` over its targets (one merchant's when ``merchant`` is given)."""
    targets_of, step = work_of(job)
    targets = await targets_of(db, as_of, merchant)
    report = Report(job.name, as_of, dry_run)
    run_id = None if dry_run else await _start(db, job.name, trigger, as_of, merchant, len(targets))
    for n, target in enumerate(targets, 1):
        try:
            count = await (_rehearse(db, step, target, as_of) if dry_run else step(db, target, as_of))
            report.outcomes.append(Outcome(target, count))
        except Exception as exc:
            log.exception("periodic job failed for one target", job=job.name, target=target.label)
            report.outcomes.append(Outcome(target, error=f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(target, n, len(targets))
    if run_id is not None:
        await _finish(db, run_id, report)
    log.info(
        "periodic job done",
        job=job.name,
        trigger=trigger,
        dry_run=dry_run,
        targets=len(targets),
        total=report.total,
        failed=len(report.failed),
    )
    return report


async def _rehearse(db: Database, step: Step, target: Target, as_of: datetime) -> int | None:
    async with db.engine.connect() as conn:
        outer = await conn.begin()
        try:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{DRY_RUN_LOCK_TIMEOUT}'"))
            return await step(_within(db, conn), target, as_of)
        finally:
            await outer.rollback()
            for forget in COMMITTED_ROW_CACHES:  # they saw the rehearsal's units of work "commit"
                forget()


def _within(db: Database, conn: AsyncConnection) -> Database:
    """``db`` whose units of work are savepoints of ``conn``'s open transaction."""
    bound = Database(db.engine)
    bound.after_commit = False  # what a rehearsal "commits" is rolled back: count nothing
    bound.sessionmaker = async_sessionmaker(
        bind=conn,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=ScopedSession,
    )
    return bound


class JobFailed(RuntimeError):
    """Some targets of a scheduled run failed: dramatiq retries the tick (the others find nothing left)."""


def declare(
    name: str,
    cron: str,
    *,
    step: Step,
    summary: str,
    targets: Targets = every_merchant,
    queue: str = "maintenance",
    timezone: str = "Asia/Shanghai",
    max_retries: int = 5,
) -> Periodic:
    """Register a periodic job and the actor the scheduler fires (``name`` with underscores)."""
    actor = name.replace("-", "_")
    job = periodic(name, actor, cron, queue=queue, timezone=timezone, summary=summary, targets=targets, step=step)

    async def scheduled(fire_time: str = "", **_: Any) -> None:
        with job_span(actor, None, **{"lianka.fire_time": fire_time}):  # a trace of its own (tracing on)
            report = await run(job, get_database(), as_of=_tick(fire_time), trigger="scheduler")
        if report.failed:
            raise JobFailed(f"{name}: {len(report.failed)} target(s) failed, first: {report.failed[0].error}")

    scheduled.__name__ = actor
    dramatiq.actor(
        actor_name=actor, queue_name=queue, max_retries=max_retries, time_limit=TIME_LIMIT_MS, broker=get_broker()
    )(scheduled)
    return job


def _tick(fire_time: object) -> datetime:
    return datetime.fromisoformat(fire_time) if isinstance(fire_time, str) and fire_time else datetime.now(UTC)


# --- the record of runs ------------------------------------------------------------------------------


async def _start(
    db: Database, job: str, trigger: str, as_of: datetime, merchant: uuid.UUID | None, targets: int
) -> int:
    async with db.uow(system=True) as uow:
        run_id = await _insert(uow, job, trigger, as_of, merchant, targets=targets)
        await uow.commit()
    return run_id


async def _finish(db: Database, run_id: int, report: Report) -> None:
    errors = "; ".join(f"{o.target.label}: {o.error}" for o in report.failed[:20])
    async with db.uow(system=True) as uow:
        await uow.session.execute(
            text(
                "UPDATE job_runs SET finished_at = now(), status = :s, total = :t, counts = CAST(:c AS jsonb), "
                "error = :e WHERE id = :id"
            ),
            {
                "s": "failed" if report.failed else "done",
                "t": report.total,
                "e": errors or None,
                "id": run_id,
                "c": json.dumps({o.target.label: o.count for o in report.outcomes if o.count}),
            },
        )
        await uow.commit()


async def _insert(
    uow: UnitOfWork,
    job: str,
    trigger: str,
    as_of: datetime,
    merchant: uuid.UUID | None,
    *,
    targets: int,
    done: bool = False,
    total: int | None = None,
) -> int:
    return int(
        await uow.session.scalar(
            text(
                "INSERT INTO job_runs (job, trigger, as_of, merchant_id, targets, status, total, finished_at) "
                "VALUES (:j, :tr, :a, :m, :n, :s, :total, CASE WHEN :done THEN now() END) RETURNING id"
            ),
            {
                "j": job,
                "tr": trigger,
                "a": as_of,
                "m": merchant,
                "n": targets,
                "s": "done" if done else "running",
                "total": total,
                "done": done,
            },
        )
        or 0
    )


async def record_tick(uow: UnitOfWork, actor: str, fire_time: object, done: object) -> None:
    """A ``consumer`` job's scheduled tick, recorded in the transaction of its effects."""
    job = next((j.name for j in REGISTRY.values() if j.actor == actor), None)
    if job is not None:
        await _insert(
            uow,
            job,
            "scheduler",
            _tick(fire_time),
            None,
            targets=1,
            done=True,
            total=done if isinstance(done, int) else None,
        )


@dataclass(frozen=True)
class LastRun:
    trigger: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    total: int | None


async def last_runs(db: Database) -> dict[str, LastRun]:
    """The latest recorded run of every job that has one."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT DISTINCT ON (job) job, trigger, as_of, started_at, finished_at, status, total FROM job_runs "
                    "ORDER BY job, started_at DESC, id DESC"
                )
            )
        ).all()
    return {r.job: LastRun(r.trigger, r.as_of, r.started_at, r.finished_at, r.status, r.total) for r in rows}
