"""``lianka billing …``: the operators' view of the webhook inbox."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Billing: Stripe webhook events.", no_args_is_help=True)


@app.command("events")
def events_command(
    failed: Annotated[bool, typer.Option("--failed", help="only the events whose processing failed")] = False,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
) -> None:
    """The latest webhook deliveries: event, type, merchant, status and why (ignored, failed, refused)."""
    from lianka.billing import services
    from lianka.billing.queries import EventRow
    from lianka.cli import bootstrap
    from lianka.platform.db import Database

    with bootstrap() as settings:

        async def run() -> list[EventRow]:
            db = Database.from_settings(settings)
            try:
                return await services.list_events(db, failed_only=failed, limit=limit)
            finally:
                await db.dispose()

        rows = asyncio.run(run())
    table = Table(title="billing events" + (" (failed)" if failed else ""))
    for column in ("id", "received", "event", "type", "merchant", "status", "tries", "deliveries", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.id),
            f"{r.received_at:%Y-%m-%d %H:%M:%S}",
            r.event_id or "—",
            r.type or "—",
            str(r.tenant_id) if r.tenant_id else "—",
            r.status,
            str(r.attempts),
            str(r.deliveries),
            r.reason or "",
        )
    Console(width=200).print(table)


@app.command("reprocess")
def reprocess_command(
    event: Annotated[int, typer.Argument(help="the event's id, as `lianka billing events` shows it")],
) -> None:
    """Process one stored event again now (a failed one, typically). Safe: an event older than what
    the merchant's subscription already reflects changes nothing."""
    from lianka.billing import services
    from lianka.billing.queries import EventRow
    from lianka.cli import bootstrap
    from lianka.platform.db import Database
    from lianka.platform.errors import DomainError

    console = Console()
    with bootstrap() as settings:

        async def run() -> EventRow:
            db = Database.from_settings(settings)
            try:
                return await services.reprocess(db, event)
            finally:
                await db.dispose()

        try:
            row = asyncio.run(run())
        except DomainError as exc:
            console.print(f"[red]{exc.detail}[/red]")
            raise typer.Exit(2) from None
    console.print(
        f"event {row.id} ({row.event_id or 'refused delivery'}): {row.status}"
        + (f" — {row.reason}" if row.reason else "")
    )
    if row.status == "failed":
        raise typer.Exit(1)
