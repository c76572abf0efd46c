"""``lianka billing …``: the operators' view of the webhook inbox."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
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


@app.command("standin")
def standin_command(
    port: Annotated[int, typer.Option(help="the port to serve on")] = 12111,
    host: Annotated[str, typer.Option(help="the address to serve on")] = "127.0.0.1",
    api_key: Annotated[str, typer.Option(envvar="LIANKA_STRIPE_SECRET_KEY", help="the secret key it accepts")] = "",
    webhook_secret: Annotated[
        str, typer.Option(envvar="LIANKA_STRIPE_WEBHOOK_SECRET", help="the secret it signs webhooks with")
    ] = "",
    webhook_url: Annotated[str, typer.Option(help="where it POSTs Stripe's events (the web app's endpoint)")] = "",
    state_file: Annotated[
        Path | None, typer.Option(help="keep its objects in this JSON file across restarts (default: memory only)")
    ] = None,
) -> None:
    """Serve the local Stripe stand-in (what `lianka run` starts when no Stripe key is set): Checkout,
    the portal, subscriptions, meter events and signed webhooks, in memory. Never for production."""
    from lianka.billing.stripe_standin import StripeStandin

    if not api_key or not webhook_secret:
        typer.echo("set --api-key and --webhook-secret (or LIANKA_STRIPE_SECRET_KEY / _WEBHOOK_SECRET)", err=True)
        raise typer.Exit(2)
    standin = StripeStandin(
        api_key=api_key, webhook_secret=webhook_secret, webhook_url=webhook_url, state_file=state_file
    )
    standin.load()

    async def serve() -> None:
        async with standin.serve(host, port) as base:
            typer.echo(f"Stripe stand-in on {base}, webhooks to {webhook_url or '(none)'}", err=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
