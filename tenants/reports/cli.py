"""``lianka reports …``: the dashboard's rollups for operators."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

app = typer.Typer(help="Reports: the dashboards' daily rollups (merchants' and alliances').", no_args_is_help=True)


@app.command("rebuild")
def rebuild_command(merchant: Annotated[str, typer.Option(help="the merchant's slug")]) -> None:
    """Roll up every day of the merchant's history again from scratch, with a progress bar (harmless
    to repeat, and safe while the periodic job runs)."""
    from lianka.cli import bootstrap
    from lianka.platform.db import Database
    from lianka.tenants.reports import rollups
    from lianka.tenants.services import maintenance

    console = Console()
    with bootstrap() as settings:

        async def run() -> int:
            db = Database.from_settings(settings)
            try:
                tenant = await maintenance.merchant_by_slug(db, merchant)
                if tenant is None:
                    console.print(f"[red]no merchant {merchant!r}[/red]")
                    return 2
                with Progress(console=console) as bar:
                    task = bar.add_task("rolling up days", total=None)
                    done = await rollups.rebuild(
                        db, tenant, progress=lambda n, total: bar.update(task, completed=n, total=total)
                    )
                console.print(f"{done.days:,} days rolled up into {done.rows:,} rows")
                return 0
            finally:
                await db.dispose()

        code = asyncio.run(run())
    if code:
        raise typer.Exit(code)


@app.command("rebuild-alliance")
def rebuild_alliance_command(alliance: Annotated[str, typer.Option(help="the alliance's code")]) -> None:
    """Roll up every day of an alliance's book again from scratch (the alliance dashboard's rollups;
    harmless to repeat, safe while the periodic job runs)."""
    from lianka.alliance.reports import queries, rollups
    from lianka.cli import bootstrap
    from lianka.platform.db import Database

    console = Console()
    with bootstrap() as settings:

        async def run() -> int:
            db = Database.from_settings(settings)
            try:
                async with db.uow(system=True) as uow:
                    found = await queries.alliance_by_code(uow, alliance)
                if found is None:
                    console.print(f"[red]no alliance {alliance!r}[/red]")
                    return 2
                with Progress(console=console) as bar:
                    task = bar.add_task("rolling up days", total=None)
                    done = await rollups.rebuild(
                        db, found, progress=lambda n, total: bar.update(task, completed=n, total=total)
                    )
                console.print(f"{done.days:,} days rolled up into {done.rows:,} rows")
                return 0
            finally:
                await db.dispose()

        code = asyncio.run(run())
    if code:
        raise typer.Exit(code)
