"""Process commands on their own, in development (no DATABASE_URL / REDIS_URL): each takes a lease on
the embedded services as ``make run`` does, works, and hands it back (the last one out stops them).
A data directory of its own keeps the suite's services out of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lianka.platform import devservices

pytestmark = pytest.mark.integration


@pytest.fixture
def dev_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL")}
    yield {**env, "LIANKA_DATA_DIR": str(data), "LIANKA_LOG_LEVEL": "INFO", "COLUMNS": "200"}
    devservices.EmbeddedPostgres(data).stop()
    devservices.EmbeddedRedis(data).stop()


def lianka(project_root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lianka.cli", *args],
        check=False,
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_scheduler_and_jobs_on_the_embedded_services(
    project_root: Path, dev_env: dict[str, str], tmp_path: Path
) -> None:
    data = Path(dev_env["LIANKA_DATA_DIR"])
    assert lianka(project_root, dev_env, "db", "upgrade").returncode == 0
    dry = lianka(project_root, dev_env, "jobs", "run", "expire-coupons", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run, nothing written" in dry.stdout
    assert not devservices.EmbeddedPostgres(data).is_running()  # handed back: nobody holds them

    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lianka.cli", "scheduler"],
            cwd=project_root,
            env=dev_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "scheduler is leader" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert devservices.live_leases(data) == [proc.pid]
        assert devservices.EmbeddedRedis(data).is_running()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert devservices.live_leases(data) == []
    assert not devservices.EmbeddedPostgres(data).is_running()
