"""``lianka worker`` with ``LIANKA_WORKER_METRICS_PORT`` serves its dramatiq processes' metrics, summed
(prometheus-client's multiprocess mode, decision 0049): a real worker command with two processes,
a job relayed from the outbox, and a scrape of the worker's endpoint that counts it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.jobs import get_broker
from lianka.platform.outbox import enqueue, relay_once

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _scrape(client: httpx.AsyncClient, url: str) -> dict[str, float] | None:
    try:
        r = await client.get(url)
    except httpx.TransportError:
        return None
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if not s.labels or (set(s.labels) == {"le"} and s.labels["le"] == "+Inf"):
                samples[s.name] = s.value
    return samples


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, samples: Path, log: Path) -> None:
        self.proc, self.url, self.samples, self.log = proc, url, samples, log

    def pids(self) -> set[str]:
        return {p.stem.rsplit("_", 1)[-1] for p in self.samples.glob("histogram_*.db")}

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


@pytest.fixture
def worker(project_root: Path, tmp_path: Path) -> Iterator[Worker]:
    """``lianka worker --processes 2`` with its metrics endpoint on a free port."""
    port = _free_port()
    samples = tmp_path / "prometheus"
    samples.mkdir()
    env = {**os.environ, "LIANKA_WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(samples)}
    log = tmp_path / "worker.log"
    get_broker().flush_all()  # messages other tests left in the shared queues would be counted here
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lianka.cli", "worker", "--processes", "2", "--threads", "1"],
            cwd=project_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Worker(proc, f"http://127.0.0.1:{port}/metrics", samples, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_the_worker_serves_the_sum_of_its_processes(worker: Worker, db: Database) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        samples = None
        for _ in range(300):  # the endpoint is up and both processes have written their samples
            samples = await _scrape(client, worker.url)
            if samples and "lianka_job_queue_latency_seconds_count" in samples and len(worker.pids()) == 2:
                break
            assert worker.proc.poll() is None, worker.tail()
            await asyncio.sleep(0.2)
        assert samples is not None and len(worker.pids()) == 2, worker.tail()
        assert str(worker.proc.pid) not in worker.pids()  # the dramatiq processes' samples, not the parent's
        # other tests' messages left in the shared outbox must not be relayed into this count: set them
        # aside (the outbox is plumbing, not the ledger), then let the worker finish anything it holds
        async with db.uow(system=True) as uow:
            await uow.session.execute(text("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL"))
            await uow.commit()
        before = samples["lianka_job_queue_latency_seconds_count"]
        for _ in range(10):
            await asyncio.sleep(0.3)
            again = await _scrape(client, worker.url)
            if again is not None and again["lianka_job_queue_latency_seconds_count"] == before:
                break
            before = again["lianka_job_queue_latency_seconds_count"] if again else before

        async with db.uow(system=True) as uow:  # a harmless job: prune nothing younger than ten years
            await enqueue(uow, "prune_identity", queue="maintenance", keep_days=3650)
            await uow.commit()
        while await relay_once(db, get_broker(), batch_size=50):
            pass
        for _ in range(300):
            samples = await _scrape(client, worker.url)
            if samples and samples["lianka_job_queue_latency_seconds_count"] == before + 1:
                break
            await asyncio.sleep(0.2)
        assert samples is not None, worker.tail()
        assert samples["lianka_job_queue_latency_seconds_count"] == before + 1, worker.tail()
