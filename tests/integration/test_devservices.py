"""Embedded PostgreSQL/Redis: the traps named in the foundation issue, on real servers."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lianka.platform import devservices

pytestmark = pytest.mark.integration


def _modes(path: Path) -> dict[str, int]:
    out = {}
    for p in [path, *path.parents]:
        out[str(p)] = stat.S_IMODE(p.stat().st_mode)
    return out


def _psql(pg: devservices.EmbeddedPostgres, sql: str) -> str:
    return subprocess.run(
        [
            str(devservices.pg_bin_dir() / "psql"),
            "-h",
            str(pg.socket_dir),
            "-U",
            "postgres",
            "-d",
            "lianka",
            "-tAc",
            sql,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def data_dir(tmp_path: Path):
    d = tmp_path / "svc"
    yield d
    devservices.EmbeddedPostgres(d).stop()
    devservices.EmbeddedRedis(d).stop()


def test_lease_lifecycle_and_no_permission_changes_outside(data_dir: Path) -> None:
    before = _modes(data_dir.parent)
    lease = devservices.acquire(data_dir, None, None)
    assert lease.postgres is not None
    assert lease.redis is not None
    assert lease.postgres.is_running()
    assert lease.redis.is_running()
    assert _psql(lease.postgres, "select current_setting('server_version_num')::int >= 180000") == "t"
    assert _modes(data_dir.parent) == before, "permissions outside the data directory changed"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    devservices.release(lease)
    assert not lease.postgres.is_running()
    assert not lease.redis.is_running()


def test_a_second_holder_keeps_the_services_up(data_dir: Path) -> None:
    lease = devservices.acquire(data_dir, None, None)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (data_dir / "leases" / str(other.pid)).write_text("x")
        devservices.release(lease)
        assert lease.postgres is not None
        assert lease.postgres.is_running(), "stopped while another process still held a lease"
    finally:
        other.kill()
        other.wait()
    again = devservices.acquire(data_dir, None, None)
    devservices.release(again)  # the other holder is dead now: its lease is ignored
    assert again.postgres is not None
    assert not again.postgres.is_running()


def test_restart_after_kill_9(data_dir: Path) -> None:
    pg = devservices.EmbeddedPostgres(data_dir)
    assert pg.start() is True
    _psql(pg, "create table survivor(x int); insert into survivor values (42)")
    pid = int((pg.pgdata / "postmaster.pid").read_text().splitlines()[0])
    proc = psutil.Process(pid)
    children = proc.children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    for c in children:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend may exit on its own once the postmaster is gone
            c.kill()
    psutil.wait_procs([proc, *children], timeout=10)
    assert (pg.pgdata / "postmaster.pid").exists(), "stale pid file expected after kill -9"
    assert not pg.is_running()
    assert pg.start() is True
    assert _psql(pg, "select x from survivor") == "42"


def test_no_new_server_while_a_killed_servers_process_still_runs(data_dir: Path) -> None:
    """After a kill -9 of the postmaster, its processes live on until they notice. A new postmaster on
    the same files while one of them still works would corrupt the cluster, so ``start`` waits for
    them (decision 0050) rather than deleting PostgreSQL's interlock (``postmaster.pid``) at once."""
    pg = devservices.EmbeddedPostgres(data_dir)
    pg.start()
    pid = pg.postmaster_pid()
    assert pid is not None
    leftover = psutil.Process(pid).children()[0]  # e.g. the checkpointer: frozen, it cannot notice
    leftover.suspend()
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(10)
    assert leftover in pg.leftover_processes()
    with pytest.raises(devservices.DevServiceError, match="still run"):
        pg._clear_stale_lock(wait=1.0)
    assert (pg.pgdata / "postmaster.pid").exists()  # the interlock stays while they run
    assert not pg.is_running()
    leftover.resume()  # it notices its postmaster is gone and exits; then the server starts again
    assert pg.start() is True
    assert _psql(pg, "select 1") == "1"


def test_stale_pid_file_naming_a_live_foreign_process(data_dir: Path) -> None:
    pg = devservices.EmbeddedPostgres(data_dir)
    pg.start()
    pg.stop()
    lines = ["1", str(pg.pgdata), str(int(time.time())), "5432", str(pg.socket_dir), "", "0 0", "ready"]
    (pg.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")  # pid 1 is alive but not ours
    assert pg.start() is True
    assert _psql(pg, "select 1") == "1"


def test_two_processes_starting_at_once(data_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from lianka.platform.devservices import EmbeddedPostgres, "
        "EmbeddedRedis; d = Path(sys.argv[1]); print(int(EmbeddedPostgres(d).start()), "
        "int(EmbeddedRedis(d).start()))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    started_pg = sum(int(o[0]) for o in outs)
    started_redis = sum(int(o[1]) for o in outs)
    assert (started_pg, started_redis) == (1, 1)
    assert devservices.EmbeddedPostgres(data_dir).is_running()
    assert devservices.EmbeddedRedis(data_dir).is_running()
