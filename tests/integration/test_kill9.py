"""kill -9 under load (issue 18, decision 0050): several tills sell and top up through ``lianka serve``
while the web process, the worker, the relay and the PostgreSQL postmaster are each killed with SIGKILL
at random moments and started again through the same ``lianka`` commands; jobs are queued through the
outbox all along. Then nothing acknowledged is missing, nothing is booked twice, every job ran once,
``lianka ledger verify`` passes and every member's balances are the sums of their postings.

The harness (``bench/chaos.py``) runs on an embedded PostgreSQL and Redis of its own, not the suite's;
``python -m bench chaos`` runs it longer with more tills.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos import TARGETS, Cluster, check, drain_jobs, load, open_shop

pytestmark = pytest.mark.integration


def test_kill_9_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    cluster = Cluster(tmp_path / "chaos", log=said.append)
    try:
        cluster.services_up()
        cluster.lianka("db", "upgrade")
        shop = asyncio.run(open_shop(cluster.settings, members=20))
        # the first web process also dies right after committing its 25th sale, before answering:
        # a sale booked whose till heard nothing, at least once for sure
        cluster.web_faults = [25]
        cluster.start_all()

        # every target is killed at least once, in random order, one every 2–4 s
        round_ = asyncio.run(load(cluster, shop, tills=4, seconds=24, kill_every=(2.0, 4.0)))
        seen = round_.seen
        assert all(round_.kills[t] >= 1 for t in TARGETS), (round_.kills, said)
        assert seen.failed == [], said
        assert len(seen.sales) > 20 and seen.top_ups, (len(seen.sales), len(seen.top_ups))
        assert seen.sent == set(seen.sales) | set(seen.top_ups)  # every till got its answer in the end
        assert seen.retried, "no request needed a retry: the kills did not hit a request in flight"
        assert round_.crashes["web"] == 1, said
        assert seen.replayed >= 1  # that sale's retry was answered from its key: booked once

        assert asyncio.run(drain_jobs(cluster.settings, shop.tenant, seen.jobs)) == len(seen.jobs), said
        counts = asyncio.run(check(cluster.settings, shop, seen))
        assert counts.problems == [], said
        assert counts.sales_booked == counts.sales_acknowledged == len(seen.sales)
        assert counts.top_ups_booked == counts.top_ups_acknowledged == len(seen.top_ups)
        assert counts.retried_booked_once == counts.retried_keys
        assert counts.jobs_done_once == counts.jobs_queued > 0
        assert counts.members_checked == len(shop.members)

        verify = subprocess.run(
            [sys.executable, "-m", "lianka.cli", "ledger", "verify"],
            check=False,
            env=cluster.env,
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "FAIL" not in verify.stdout
    finally:
        cluster.stop()
