"""``lianka members …``: bulk operations for operators."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

app = typer.Typer(help="Members.", no_args_is_help=True)


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: phone, name, gender, birthday, email, tags, branch, ...",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    merchant: Annotated[str, typer.Option(help="the merchant's slug")],
    mode: Annotated[str, typer.Option(help="all_or_nothing or skip_invalid")] = "skip_invalid",
) -> None:
    """Validate and import a member file with a progress bar (re-running the same file is harmless)."""
    from lianka.cli import bootstrap
    from lianka.platform.db import Database
    from lianka.platform.errors import DomainError
    from lianka.tenants.services import maintenance, member_imports

    console = Console()
    with bootstrap() as settings:

        async def run() -> int:
            db = Database.from_settings(settings)
            try:
                tenant = await maintenance.merchant_by_slug(db, merchant)
                if tenant is None:
                    console.print(f"[red]no merchant {merchant!r}[/red]")
                    return 2
                try:
                    job = await member_imports.start(db, tenant, file.read_bytes(), mode=mode, actor=f"cli:{merchant}")
                    job_id, status, errors = job["id"], job["status"], list(job["errors"])
                except DomainError as exc:  # the file or the mode is refused as a whole: nothing written
                    console.print(f"nothing imported: {exc.detail}", style="red", markup=False)
                    return 2
                if status != "failed":
                    with Progress(console=console) as bar:
                        task = bar.add_task("importing", total=None)
                        done = await member_imports.run(
                            db, tenant, job_id, progress=lambda n, total: bar.update(task, completed=n, total=total)
                        )
                    errors = list(done["errors"])
                    console.print(f"{done['processed']:,} rows processed, {done['created_members']:,} new members")
                for e in errors[:50]:
                    console.print(
                        f"  line {e['line']}: {'; '.join(map(str, e['errors']))}", markup=False
                    )  # the report quotes the file: "[/red]" is text, not markup
                if status == "failed":
                    console.print("[red]nothing imported[/red] (all_or_nothing and the file has invalid rows)")
                    return 1
                return 0
            finally:
                await db.dispose()

        raise typer.Exit(asyncio.run(run()))
