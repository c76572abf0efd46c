"""``lianka ledger …``: operator commands."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.ext.asyncio import create_async_engine

from lianka.alliance.ledger.queries import CHECKS
from lianka.alliance.ledger.verify import verify

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)


@app.command("verify")
def verify_command(limit: int = 20) -> None:
    """Check every ledger invariant over all tenants; exit 1 when any fails."""
    from lianka.cli import bootstrap

    console = Console()
    with bootstrap() as settings:

        async def run() -> bool:
            engine = create_async_engine(settings.database_url)
            try:
                with Progress(console=console, transient=True) as bar:
                    task = bar.add_task("verifying", total=len(CHECKS))
                    async with engine.connect() as conn:
                        report = await verify(
                            conn, limit=limit, progress=lambda name: bar.update(task, advance=1, description=name)
                        )
            finally:
                await engine.dispose()
            console.print(", ".join(f"{k.removeprefix('ledger_')}: {v:,}" for k, v in report.counts.items()))
            for name in CHECKS:
                mark = "[red]FAIL[/red]" if name in report.failures else "[green]ok[/green]"
                console.print(f"  {mark}  {name}")
                for row in report.failures.get(name, []):
                    console.print(f"        {row}")
            return report.ok

        if not asyncio.run(run()):
            raise typer.Exit(1)
