"""Shared benchmark plumbing: services, a fresh migrated database, timing and a results table."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from lianka.platform.settings import Settings, get_settings

console = Console()


@contextmanager
def bench_database(name: str = "lianka_bench", *, keep: bool = False) -> Iterator[Settings]:
    """Services (embedded unless configured) and a fresh database ``name``, migrated to head
    (``keep``: the database an earlier run left, when there is one, migrated to head)."""
    from lianka.cli import bootstrap
    from lianka.platform.migrate import upgrade

    with bootstrap() as s:
        url = make_url(s.database_url)
        bench_url = url.set(database=name).render_as_string(hide_password=False)
        admin = url.set(database="postgres").render_as_string(hide_password=False)
        if not (keep and asyncio.run(_exists(admin, name))):
            asyncio.run(_recreate(admin, name))
        upgrade(bench_url)
        os.environ["DATABASE_URL"] = bench_url
        get_settings.cache_clear()
        try:
            yield get_settings()
        finally:
            os.environ["DATABASE_URL"] = s.database_url
            get_settings.cache_clear()


async def _exists(admin_url: str, name: str) -> bool:
    import asyncpg

    from lianka.platform.db import asyncpg_params

    conn = await asyncpg.connect(**asyncpg_params(admin_url))
    try:
        return bool(await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _recreate(admin_url: str, name: str) -> None:
    import asyncpg

    from lianka.platform.db import asyncpg_params

    conn = await asyncpg.connect(**asyncpg_params(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class Run:
    """``ops`` operations (each one transaction, e.g. one earn) in ``seconds``."""

    name: str
    ops: int
    seconds: float
    latencies: list[float]
    per_op: int = 1  # e.g. postings per earn: a secondary count, never the ratio to R
    #: the same operation with nothing but the driver in the way, measured in the same run
    ceiling: Run | None = None
    #: an open loop's arrivals in the measured window (``ops`` counts those that completed)
    offered: int | None = None
    #: CPU seconds each group of processes used in the measured window (``drive``'s ``probe``)
    cpu: dict[str, float] | None = None

    def cpu_ms(self, group: str) -> float:
        """CPU milliseconds per operation that ``group`` used (0 when not probed)."""
        return (self.cpu or {}).get(group, 0.0) / max(self.ops, 1) * 1000

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def unit_rate(self) -> float:
        return self.rate * self.per_op

    def pct(self, q: float) -> float:
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else 0.0


async def drive(
    name: str,
    workers: int,
    seconds: float,
    op: Callable[[int, int], Awaitable[None]],
    per_op: int = 1,
    warmup: float = 1.0,
    probe: Probe | None = None,
) -> Run:
    """Run ``op(worker, i)`` in ``workers`` concurrent loops for ``seconds`` (after a warm-up); with a
    ``probe``, the CPU its process groups used in the measured window goes into ``Run.cpu``."""
    latencies: list[float] = []
    count = 0
    measuring = False
    cpu: dict[str, float] | None = None
    stop_at = time.perf_counter() + warmup + seconds

    async def loop(w: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await op(w, i)
            i += 1
            if measuring:
                latencies.append(time.perf_counter() - t)
                count += 1

    async def timer() -> float:
        nonlocal measuring, cpu
        await asyncio.sleep(warmup)
        measuring = True
        before = probe() if probe else None
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        if probe and before is not None:
            after = probe()
            cpu = {k: after[k] - before.get(k, 0.0) for k in after}
        return time.perf_counter() - start

    elapsed, _ = await asyncio.gather(timer(), asyncio.gather(*[loop(w) for w in range(workers)]))
    return Run(name, count, elapsed, latencies, per_op, cpu=cpu)


#: CPU seconds used so far, per named group of processes
Probe = Callable[[], dict[str, float]]
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` have used, from ``/proc`` (Linux; a process
    that has gone counts nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def postgres_pids() -> list[int]:
    """The PostgreSQL server processes on this machine (the embedded one's, or a local server's; none
    for a database elsewhere)."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_cpu() -> float:
    """CPU seconds this machine's cores have been busy (user, system, interrupts), from ``/proc/stat``."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]  # steal and guest are not ours
    return (user + nice + system + irq + softirq) / _TICKS


async def open_loop(
    name: str, rate: float, seconds: float, op: Callable[[int], Awaitable[None]], warmup: float = 1.0
) -> Run:
    """Start ``op(i)`` at a fixed arrival rate (``rate`` per second) for ``seconds`` after a warm-up,
    whether or not earlier ones have finished — an open loop, as independent tills are. Each latency
    runs from the moment the operation was due, not from when it could start, so a backlog shows in
    the percentiles (no coordinated omission); ``ops`` counts the measured arrivals that completed."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def one(i: int, due: float) -> None:
        await op(i)
        if due >= measure_from:
            latencies.append(time.perf_counter() - due)

    i = offered = 0
    while (due := start + i / rate) < stop_at:
        offered += due >= measure_from
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
        i += 1
    await asyncio.gather(*tasks)
    return Run(name, len(latencies), seconds, latencies, offered=offered)


def merge(name: str, runs: list[Run]) -> Run:
    cpus = [r.cpu for r in runs if r.cpu is not None]
    return Run(
        name,
        sum(r.ops for r in runs),
        sum(r.seconds for r in runs),
        [x for r in runs for x in r.latencies],
        runs[0].per_op,
        runs[0].ceiling,
        cpu={k: sum(c.get(k, 0.0) for c in cpus) for k in cpus[0]} if cpus else None,
    )


def table(
    title: str, baseline: Run, runs: list[Run], unit: str, notes: list[str], *, secondary: str | None = None
) -> None:
    """One row per run: ``unit``/s (one ``unit`` is one transaction) and its ratio to the baseline R's
    transactions/s, then — when a run has one — its ratio to its own ceiling, and the ``secondary``
    count (``per_op`` per operation, e.g. postings) for runs that have several."""
    rows = [baseline, *runs]
    ceilings = any(r.ceiling is not None for r in rows)
    columns = ["benchmark", f"{unit}/s", "ratio to R"]
    columns += ["÷ its ceiling"] if ceilings else []
    columns += [f"{secondary}/s"] if secondary else []
    t = Table(title=title)
    for col in [*columns, "p50 ms", "p99 ms"]:
        t.add_column(col, justify="right" if col != "benchmark" else "left")
    for r in rows:
        cells = [r.name, f"{r.rate:,.0f}", f"{r.rate / baseline.rate:.2f}"]
        if ceilings:
            cells.append(f"{r.rate / r.ceiling.rate:.2f}" if r.ceiling is not None else "—")
        if secondary:
            cells.append(f"{r.unit_rate:,.0f}" if r.per_op > 1 else "—")
        p50, p99 = (f"{r.pct(0.5):.2f}", f"{r.pct(0.99):.2f}") if r.latencies else ("—", "—")
        t.add_row(*cells, p50, p99)
    console.print(t)
    for n in notes:
        console.print(f"  {n}")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0
