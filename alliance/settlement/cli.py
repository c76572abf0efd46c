"""``lianka settlement …``: month-end close and statements for operators."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from lianka.platform.money import Money

app = typer.Typer(help="Clearing and month-end settlement.", no_args_is_help=True)


@app.command("close")
def close_command(
    scope: Annotated[str, typer.Option(help="chain:<merchant slug> or alliance:<alliance code>")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    out: Annotated[
        Path | None,
        typer.Option(help="also write statements (csv, xlsx, pdf) and the instruction file into this directory"),
    ] = None,
) -> None:
    """Close a month (idempotent; resumes after a crash) and print every statement's net.

    A month that may not be closed (not ended yet in the book's time zone, before the book, out of
    order) or an unknown scope exits with status 1 and the reason."""
    from lianka.alliance.settlement import close, exports, scopes
    from lianka.alliance.settlement.statements import CloseResult
    from lianka.cli import bootstrap
    from lianka.platform import audit
    from lianka.platform.db import Database
    from lianka.platform.errors import DomainError

    console = Console()
    with bootstrap() as settings:

        async def run() -> CloseResult:
            db = Database.from_settings(settings)
            try:
                target = await scopes.resolve(db, scope)
                with Progress(console=console, transient=True) as bar:
                    task = bar.add_task("closing", total=len(close.STEPS))
                    done = await close.close(
                        db,
                        target,
                        period,
                        actor=audit.operator(getpass.getuser()),
                        progress=lambda step, n, total: bar.update(task, completed=n, description=step),
                    )
            finally:
                await db.dispose()
            table = Table(title=f"{target.hub_name} — {period}")
            for col in ("entity", "kind", "opening", "net", "direction", "closing"):
                table.add_column(col, justify="right" if col in ("opening", "net", "closing") else "left")
            for s in done.statements:
                table.add_row(
                    f"{s.code} {s.name}",
                    s.entity_kind,
                    Money(s.opening, s.currency).format(),
                    Money(s.net, s.currency).format(),
                    s.direction,
                    Money(s.closing, s.currency).format(),
                )
            console.print(table)
            console.print(f"sum of nets + hub = {done.summary['sum_with_hub']}   checksum {done.checksum}")
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                stem = f"{target.hub_code}-{period}"
                (out / f"{stem}.csv").write_bytes(exports.to_csv(done))
                (out / f"{stem}.xlsx").write_bytes(exports.to_xlsx(done))
                (out / f"{stem}.pdf").write_bytes(exports.to_pdf(done))
                (out / f"{stem}-instructions.csv").write_bytes(exports.instructions(done, target.hub_name))
                console.print(f"statements written to {out}")
            return done

        try:
            asyncio.run(run())
        except DomainError as exc:
            Console(stderr=True).print(f"[red]{escape(exc.title)}[/red]: {escape(exc.detail)}", highlight=False)
            raise typer.Exit(1) from None
