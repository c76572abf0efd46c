"""``lianka payouts …``: an operator's view of settlement payouts — list a month's, pay what is owed,
retry a failed one, and record what the bank did with a bank-file line (banks send no webhooks)."""

from __future__ import annotations

import asyncio
import getpass
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lianka.platform.money import Money

if TYPE_CHECKING:
    from lianka.alliance.settlement.statements import Scope
    from lianka.billing.payouts.queries import PayoutRow
    from lianka.billing.payouts.services import RunResult
    from lianka.platform.db import Database
    from lianka.platform.settings import Settings

app = typer.Typer(help="Settlement payouts: Stripe Connect transfers and the bank payment file.", no_args_is_help=True)
T = TypeVar("T")
SCOPE = typer.Option(help="chain:<merchant slug> or alliance:<alliance code>")


def _run(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run ``work(db, settings)`` with a database; a refusal exits 1 with its reason."""
    from lianka.cli import bootstrap
    from lianka.platform.db import Database
    from lianka.platform.errors import DomainError

    with bootstrap() as settings:

        async def go() -> T:
            db = Database.from_settings(settings)
            try:
                return await work(db, settings)
            finally:
                await db.dispose()

        try:
            return asyncio.run(go())
        except DomainError as exc:
            Console(stderr=True).print(f"[red]{escape(exc.title)}[/red]: {escape(exc.detail)}", highlight=False)
            raise typer.Exit(1) from None


def _table(title: str, rows: list[PayoutRow]) -> None:
    table = Table(title=title)
    for col in ("id", "period", "payee", "direction", "amount", "method", "status", "attempt", "reason"):
        table.add_column(col, overflow="fold", justify="right" if col == "amount" else "left")
    for p in rows:
        table.add_row(
            str(p.id),
            p.period,
            f"{p.code} {p.name}",
            p.direction,
            Money(p.amount_minor, p.currency).format(),
            p.method or "—",
            p.status,
            str(p.attempt),
            p.reason or "",
        )
    Console(width=220).print(table)


@app.command("list")
def list_command(
    scope: Annotated[str, SCOPE],
    period: Annotated[str | None, typer.Option(help="the month, YYYY-MM (all months when left out)")] = None,
) -> None:
    """The payouts and collections of a month (or all), with their latest attempt."""
    from lianka.alliance.settlement import scopes
    from lianka.billing.payouts import services

    async def work(db: Database, _settings: Settings) -> tuple[Scope, list[PayoutRow]]:
        target = await scopes.resolve(db, scope)
        return target, await services.list_payouts(db, target.book, period)

    target, rows = _run(work)
    _table(f"{target.hub_name} — payouts {period or ''}", rows)


@app.command("run")
def run_command(
    scope: Annotated[str, SCOPE],
    period: Annotated[str, typer.Option(help="the closed month, YYYY-MM")],
    bank_file: Annotated[Path | None, typer.Option(help="also write the bank payment file (CSV) here")] = None,
) -> None:
    """Pay everything owed for a closed month: one payout per statement line, Stripe transfers to the
    connected payees, the rest in the bank file. Idempotent: a second run pays nothing new."""
    from lianka.alliance.settlement import scopes
    from lianka.billing.payouts import bankfile, services
    from lianka.platform import audit

    async def work(db: Database, settings: Settings) -> tuple[Scope, RunResult, bytes | None]:
        target = await scopes.resolve(db, scope)
        done = await services.run(db, settings if settings.stripe_secret_key else None, target, period)
        body = None
        merchant = target.book if target.kind == "chain" else target.operator.id if target.operator else None
        if bank_file and merchant is not None:
            body = await bankfile.bank_file(
                db, target.book, period, target.hub_name, merchant=merchant, actor=audit.operator(getpass.getuser())
            )
        return target, done, body

    target, done, body = _run(work)
    _table(f"{target.hub_name} — payouts {period} ({done.created} new)", done.payouts)
    if bank_file is not None and body is not None:
        bank_file.write_bytes(body)
        Console().print(f"bank payment file written to {bank_file}")


@app.command("retry")
def retry_command(
    scope: Annotated[str, SCOPE],
    payout: Annotated[uuid.UUID, typer.Argument(help="the payout's id, as `lianka payouts list` shows it")],
) -> None:
    """Try a failed or returned payout again (refused for any other: it never pays twice)."""
    from lianka.alliance.settlement import scopes
    from lianka.billing.payouts import services
    from lianka.platform import audit

    async def work(db: Database, settings: Settings) -> PayoutRow:
        target = await scopes.resolve(db, scope)
        return await services.retry(
            db,
            settings if settings.stripe_secret_key else None,
            target,
            payout,
            actor=audit.operator(getpass.getuser()),
        )

    _table("retried", [_run(work)])


@app.command("mark")
def mark_command(
    scope: Annotated[str, SCOPE],
    payout: Annotated[uuid.UUID, typer.Argument(help="the payout's id")],
    status: Annotated[str, typer.Argument(help="paid (a collection: received) or returned")],
    note: Annotated[str | None, typer.Option(help="what the bank said")] = None,
) -> None:
    """Record what the bank did with a bank-file line (Stripe payouts are settled by Stripe's events)."""
    from lianka.alliance.settlement import scopes
    from lianka.billing.payouts import services

    async def work(db: Database, _settings: Settings) -> PayoutRow:
        target = await scopes.resolve(db, scope)
        return await services.mark(db, target.book, payout, status, note)

    _table("marked", [_run(work)])
