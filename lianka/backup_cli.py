"""``lianka backup`` / ``lianka restore``: the database to a pg_dump file and back (decision 0048).

The work is in ``lianka.platform.backup``; these commands choose the database (``--database-url``,
else ``DATABASE_URL``, else the embedded PostgreSQL), show a progress bar and map refusals to exit
code 2 and failures to 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from lianka.platform import backup as bk
from lianka.platform import devservices
from lianka.platform.settings import Settings

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="the database, as the owner role (SQLAlchemy or libpq URL); default DATABASE_URL, else the embedded one",
    ),
]
PgBin = Annotated[
    Path | None, typer.Option("--pg-bin", help="directory of pg_dump/pg_restore (default: LIANKA_PG_BIN, embedded)")
]


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """The URL to work on; the embedded PostgreSQL (only it: no Redis) is held when none is given."""
    base = Settings.from_env()
    lease = devservices.acquire(base.data_dir, url or base.database_url or None, None, redis=False)
    try:
        yield lease.database_url
    finally:
        devservices.release(lease)


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def backup(
    out: Annotated[
        Path | None, typer.Argument(help="the dump file (default lianka-<database>-<UTC time>.dump)")
    ] = None,
    database_url: DatabaseUrl = None,
    pg_bin: PgBin = None,
) -> None:
    """Dump the database (pg_dump custom format) and write <file>.sha256 beside it."""
    console = Console(stderr=True)
    with database(database_url) as url:
        name = make_url(url).database or "lianka"
        target = out or Path(f"lianka-{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump")
        with _bar(console) as bar:
            task = bar.add_task("dumping", total=None)
            try:
                done = bk.backup(
                    url,
                    target,
                    bin_dir=pg_bin,
                    progress=lambda what, n, total: bar.update(task, completed=n, total=total, description=what),
                )
            except bk.BackupError as exc:
                console.print(f"[red]backup failed[/red] ({_shown(url)}): {exc}")
                raise typer.Exit(1) from None
    typer.echo(f"{done.path}  {done.size:,} bytes, {done.tables} tables")
    typer.echo(f"sha256 {done.sha256}  ({done.checksum_path.name})")


def restore(
    dump: Annotated[Path, typer.Argument(help="a dump written by `lianka backup` (its .sha256 beside it)")],
    database_url: DatabaseUrl = None,
    create: Annotated[bool, typer.Option("--create", help="create the target database when it does not exist")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="restore into a database that is not empty (replaces the dump's objects)")
    ] = False,
    no_owner: Annotated[
        bool, typer.Option("--no-owner", help="the restoring role owns every object (the dump's owner need not exist)")
    ] = False,
    pg_bin: PgBin = None,
) -> None:
    """Restore a dump into a fresh database, in one transaction (refuses a non-empty target unless --force)."""
    console = Console(stderr=True)
    with database(database_url or os.environ.get("DATABASE_URL")) as url:
        try:
            if create and bk.ensure_database(url):
                console.print(f"created database {bk.database_name(url)!r}")
            with _bar(console) as bar:
                task = bar.add_task("restoring", total=None)
                done = bk.restore(
                    url,
                    dump,
                    force=force,
                    no_owner=no_owner,
                    bin_dir=pg_bin,
                    progress=lambda what, n, total: bar.update(task, completed=n, total=total, description=what[:60]),
                )
        except bk.RestoreRefused as exc:
            console.print(f"[red]refused[/red], nothing written: {exc}")
            raise typer.Exit(2) from None
        except bk.BackupError as exc:
            console.print(f"[red]restore failed[/red] ({_shown(url)}): {exc}")
            raise typer.Exit(1) from None
    typer.echo(f"restored {dump} (sha256 {done.sha256[:16]}…, {done.entries} entries) into {done.database!r}")
    typer.echo("next: `lianka ledger verify` against it")
