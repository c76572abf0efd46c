"""The ``lianka`` command line: services, database, demo data, and the processes of a deployment.

Every command first *bootstraps*: when ``DATABASE_URL`` / ``REDIS_URL`` are unset it starts the
embedded PostgreSQL / Redis (see ``lianka.platform.devservices``) and exports their URLs, so the
processes it spawns share them; on exit it hands its lease back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from lianka import backup_cli
from lianka.alliance.ledger import cli as ledger_cli
from lianka.alliance.settlement import cli as settlement_cli
from lianka.billing import cli as billing_cli
from lianka.billing.payouts import cli as payouts_cli
from lianka.platform import devservices
from lianka.platform.settings import Settings, get_settings
from lianka.tenants import cli as members_cli
from lianka.tenants.reports import cli as reports_cli

app = typer.Typer(
    help="Lianka (联卡) — membership marketing for merchants, chains and alliances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
services_app = typer.Typer(help="Embedded development services (PostgreSQL, Redis).", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(services_app, name="services")
app.add_typer(demo_app, name="demo")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(settlement_cli.app, name="settlement")
app.add_typer(members_cli.app, name="members")
app.add_typer(billing_cli.app, name="billing")
app.add_typer(payouts_cli.app, name="payouts")
app.add_typer(reports_cli.app, name="reports")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)


@contextmanager
def bootstrap() -> Iterator[Settings]:
    """Settings with concrete service URLs; embedded services are held for the block's duration."""
    base = Settings.from_env()
    lease = devservices.acquire(base.data_dir, base.database_url or None, base.redis_url or None)
    os.environ["DATABASE_URL"] = lease.database_url
    os.environ["REDIS_URL"] = lease.redis_url
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        devservices.release(lease)


@services_app.command("up")
def services_up() -> None:
    """Start the embedded services and print their URLs (they keep running: `services down`)."""
    base = Settings.from_env()
    lease = devservices.acquire(base.data_dir, base.database_url or None, base.redis_url or None)
    devservices.pin(base.data_dir)  # outlives this process; `lianka services down` unpins
    lease.lease_file.unlink(missing_ok=True)
    typer.echo(f"DATABASE_URL={lease.database_url}\nREDIS_URL={lease.redis_url}")


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded services (refuses while another lianka process holds them)."""
    data_dir = Settings.from_env().data_dir.resolve()
    devservices.pin(data_dir, pinned=False)
    live = devservices.live_leases(data_dir)
    if live:
        typer.echo(f"still in use by pid(s) {live}; stop those first", err=True)
        raise typer.Exit(1)
    devservices.EmbeddedPostgres(data_dir).stop()
    devservices.EmbeddedRedis(data_dir).stop()
    typer.echo("stopped")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (as the owner role in DATABASE_URL)."""
    from lianka.platform.migrate import upgrade

    with bootstrap() as s:
        upgrade(s.database_url, revision)
        typer.echo(f"database at {revision}")


keys_app = typer.Typer(help="JWT signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Retire the current signing key (it keeps verifying for its grace period) and start a new one."""
    from lianka.platform.db import Database
    from lianka.platform.identity.tokens import rotate_signing_key

    with bootstrap() as s:

        async def main() -> str:
            db = Database.from_settings(s)
            try:
                return await rotate_signing_key(db, s.secret_key, s.identity)
            finally:
                await db.dispose()

        typer.echo(f"new signing key: {asyncio.run(main())}")


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo merchants, branches and members when the database has none."""
    from lianka.demo import seed_if_empty

    with bootstrap() as s:
        typer.echo(asyncio.run(seed_if_empty(s)))


def _multiprocess_metrics() -> str:
    """The directory where this command's processes keep their Prometheus samples (prometheus-client's
    multiprocess mode, decision 0049): ``PROMETHEUS_MULTIPROC_DIR`` when set, else a fresh one. Set in
    the environment before the children start, so they all write there."""
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="lianka-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


@demo_app.command("shop")
def demo_shop(
    sales: Annotated[int, typer.Option(help="sales per round")] = 5,
    merchant: Annotated[str, typer.Option(help="the demo merchant's slug")] = "demo-tea",
    every: Annotated[int, typer.Option(help="repeat every N seconds (0: once)")] = 0,
) -> None:
    """Ring up sales for random demo members through the sale service (recently messaged members
    likelier, with their campaign coupon), so a campaign's results fill. Development only."""
    import time

    from lianka.demo_shopper import shop_once
    from lianka.platform.db import Database

    with bootstrap() as s:
        if s.is_production:
            typer.echo("the demo shopper never runs in production", err=True)
            raise typer.Exit(2)

        async def once() -> str:
            db = Database.from_settings(s)
            try:
                done = await shop_once(db, merchant, sales)
            finally:
                await db.dispose()
            back = sum(1 for d in done if d.messaged)
            coupons = sum(1 for d in done if d.coupon)
            return f"demo shopper: {len(done)} sales at {merchant} ({back} by messaged members, {coupons} coupons)"

        while True:
            try:
                typer.echo(asyncio.run(once()))
            except ValueError as e:  # no such merchant (a database without the demo)
                typer.echo(f"demo shopper: {e}", err=True)
            if every <= 0:
                return
            time.sleep(every)


def _serve(s: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    if workers > 1:  # /metrics answers for every web process, not just the one that took the scrape
        _multiprocess_metrics()

    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any local peer
    # (FORWARDED_ALLOW_IPS); the app decides whom to believe (LIANKA_TRUSTED_PROXIES, web/api/cookies.py)
    uvicorn.run(
        "lianka.web.asgi:app",
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        workers=workers,
        # named rather than "auto" (which picks them when installed, as litestar[standard] does): the
        # event loop and HTTP parser in C; the pure-Python fallbacks cost the POS sale (decision 0053)
        loop="uvloop",
        http="httptools",
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "",
    port: Annotated[int, typer.Option()] = 0,
    workers: Annotated[int, typer.Option(help="web processes (one per core is typical)")] = 1,
) -> None:
    """Serve the web app (API, console, portal)."""
    with bootstrap() as s:
        _serve(s, host or s.host, port or s.port, max(1, workers))


#: queues the worker consumes; an area that declares a new queue adds it here.
WORKER_QUEUES = ["default", "maintenance", "messages", "settlement", "billing", "webhooks"]


@app.command()
def worker(processes: int = 1, threads: int = 4) -> None:
    """Run dramatiq workers for every actor. With ``LIANKA_WORKER_METRICS_PORT`` set, this process
    serves the workers' Prometheus metrics (``/metrics``) on that port (decision 0049)."""
    from lianka.platform.supervisor import die_with_parent

    with bootstrap() as s:
        if s.worker_metrics_port:
            from prometheus_client import CollectorRegistry, multiprocess, start_http_server

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=_multiprocess_metrics())  # type: ignore[no-untyped-call]
            start_http_server(s.worker_metrics_port, addr=s.host, registry=registry)
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "lianka.actors",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--queues",
                *WORKER_QUEUES,
            ],
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
        raise typer.Exit(child.wait())


@app.command()
def relay() -> None:
    """Move committed outbox messages to dramatiq."""
    from lianka.platform.db import Database
    from lianka.platform.jobs import get_broker
    from lianka.platform.log import configure_logging
    from lianka.platform.outbox import relay_forever

    with bootstrap() as s:
        configure_logging(s)
        stop = asyncio.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            db = Database.from_settings(s)
            try:
                await relay_forever(
                    db,
                    get_broker(),
                    batch_size=s.relay_batch_size,
                    poll_seconds=s.relay_poll_seconds,
                    listen_url=s.resolved_app_database_url(),
                    stop=stop,
                )
            finally:
                await db.dispose()

        asyncio.run(main())


@app.command()
def scheduler() -> None:
    """Run the periodic-job scheduler (one active instance cluster-wide)."""
    import threading

    from redis import Redis

    with bootstrap() as s:
        # the actors declare themselves on the broker, which needs REDIS_URL: only after bootstrap
        import lianka.actors  # noqa: F401 - registers the periodic jobs
        from lianka.platform.jobs import get_broker
        from lianka.platform.log import configure_logging
        from lianka.platform.scheduler import run_scheduler

        configure_logging(s)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_scheduler(Redis.from_url(s.redis_url), get_broker(), stop)


@app.command()
def run(seed: bool = True, shopper: bool = True) -> None:
    """Everything for development: services, migrations, demo data, web + worker + relay + scheduler,
    and (with the demo data) the demo shopper, which buys for demo members every minute.

    A process that dies is restarted (with back-off); Ctrl-C stops everything."""
    from lianka.billing.devstripe import local_stripe
    from lianka.demo import banner, seed_if_empty
    from lianka.platform.migrate import upgrade
    from lianka.platform.supervisor import Supervisor

    with bootstrap() as s:
        typer.echo("• migrating …")
        upgrade(s.database_url)
        if seed:
            typer.echo("• " + asyncio.run(seed_if_empty(s)))
        exe = [sys.executable, "-m", "lianka.cli"]
        commands = {
            "web": [*exe, "serve"],
            "worker": [*exe, "worker"],
            "relay": [*exe, "relay"],
            "scheduler": [*exe, "scheduler"],
        }
        if seed and shopper and not s.is_production:
            commands["shopper"] = [*exe, "demo", "shop", "--every", "60", "--sales", "3"]
        if not s.wechatpay_api_base:  # no real WeChat Pay: the local stand-in (decision 0033)
            port = os.environ.get("LIANKA_WECHATPAY_STANDIN_PORT", "8126")
            os.environ["LIANKA_WECHATPAY_API_BASE"] = f"http://127.0.0.1:{port}"
            commands["wechatpay"] = [*exe, "payments", "wechat-standin", "--port", port]
        stripe = local_stripe(s, exe)
        if stripe is not None:  # no Stripe key: billing talks to a local stand-in (the children inherit it)
            os.environ.update(stripe.env)
            commands["stripe"] = stripe.command
            typer.echo(f"• no LIANKA_STRIPE_SECRET_KEY: a local Stripe stand-in on {stripe.base_url}")
        supervisor = Supervisor(commands, say=lambda line: typer.echo(f"• {line}", err=True))
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _stop)
        supervisor.start()
        typer.echo(banner(s, f"http://{s.host}:{s.port}"))
        try:
            supervisor.run(lambda: stopping)
        finally:
            supervisor.stop()
            typer.echo("stopped.")


payments_app = typer.Typer(help="Member payments: the local WeChat Pay stand-in.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


@payments_app.command("wechat-standin")
def payments_wechat_standin(port: int = 8126) -> None:
    """Serve the local WeChat Pay v3 stand-in (started by `lianka run` when no real gateway is set)."""
    from lianka.billing.wechatpay_standin import serve_dev

    serve_dev(Settings.from_env().data_dir, port)


@payments_app.command("use-wechat-standin")
def payments_use_wechat_standin(merchant: Annotated[str, typer.Argument(help="the merchant's slug")]) -> None:
    """Give a merchant the stand-in's test WeChat Pay credentials (development only), so its members
    can top up online on the local stand-in."""
    from sqlalchemy import text

    from lianka.billing.payments.services import save_credentials
    from lianka.billing.wechatpay_standin import dev_merchant
    from lianka.platform.db import Database

    with bootstrap() as s:
        if s.is_production:
            raise typer.BadParameter("only in development")
        creds = dev_merchant(s.data_dir)

        async def go() -> str:
            db = Database.from_settings(s)
            try:
                async with db.uow(system=True) as uow:
                    tenant = await uow.session.scalar(text("SELECT id FROM merchants WHERE slug = :s"), {"s": merchant})
                if tenant is None:
                    raise typer.BadParameter(f"no merchant {merchant!r}")
                await save_credentials(db, s, tenant, "wechatpay", dict(creds.__dict__))
                return f"{merchant} now pays through the WeChat Pay stand-in (mchid {creds.mchid})"
            finally:
                await db.dispose()

        typer.echo(asyncio.run(go()))


jobs_app = typer.Typer(help="Periodic jobs: what runs when, and running one by hand.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list() -> None:
    """Every periodic job: its name, schedule, what it does and its last recorded run."""
    from zoneinfo import ZoneInfo

    from rich.console import Console
    from rich.table import Table

    with bootstrap() as s:
        import lianka.actors  # noqa: F401 - registers the periodic jobs
        from lianka.platform import periodic
        from lianka.platform.db import Database
        from lianka.platform.scheduler import REGISTRY

        async def last_runs() -> dict[str, periodic.LastRun]:
            db = Database.from_settings(s)
            try:
                return await periodic.last_runs(db)
            finally:
                await db.dispose()

        runs = asyncio.run(last_runs())
        table = Table(title="periodic jobs")
        table.add_column("job", no_wrap=True)
        table.add_column("schedule (cron)", no_wrap=True)
        table.add_column("what it does")
        table.add_column("last run")
        for name in sorted(REGISTRY):
            job, last = REGISTRY[name], runs.get(name)
            when = "not recorded"
            if last is not None:
                started = last.started_at.astimezone(ZoneInfo(job.timezone))
                total = "" if last.total is None else f", {last.total:,}"
                when = f"{started:%Y-%m-%d %H:%M %Z} by {last.trigger}: {last.status}{total}"
            table.add_row(name, f"{job.cron}  {job.timezone}", periodic.summary_of(job), when)
        Console().print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="the job, as `lianka jobs list` names it")],
    as_of: Annotated[
        str | None,
        typer.Option(help="work as of this time (ISO 8601 with its offset; default now; no future time in production)"),
    ] = None,
    merchant: Annotated[str | None, typer.Option(help="only this merchant (its slug)")] = None,
    dry_run: Annotated[bool, typer.Option(help="report what it would do per merchant; write nothing")] = False,
) -> None:
    """Run a periodic job now. Idempotent with the scheduled runs: what one did, the other finds done."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from lianka.platform import periodic

    console = Console()
    try:
        at = periodic.as_of_for_operator(as_of, production=Settings.from_env().is_production)
    except periodic.JobRequestError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with bootstrap() as s:
        import lianka.actors  # noqa: F401 - registers the periodic jobs
        from lianka.platform.db import Database

        async def main() -> periodic.Report:
            db = Database.from_settings(s)
            try:
                job = periodic.find(name)
                limit = await periodic.merchant_id(db, merchant) if merchant else None
                with Progress(console=console, transient=True) as bar:
                    task = bar.add_task(name, total=None)
                    return await periodic.run(
                        job,
                        db,
                        as_of=at,
                        merchant=limit,
                        dry_run=dry_run,
                        progress=(
                            lambda target, n, total: bar.update(
                                task, completed=n, total=total, description=f"{name}: {target.label}"
                            )
                        ),
                    )
            finally:
                await db.dispose()

        try:
            report = asyncio.run(main())
        except periodic.JobRequestError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    dry = " — dry run, nothing written" if dry_run else ""
    console.print(f"{name} as of {at.isoformat(timespec='seconds')}{dry}")
    table = Table()
    table.add_column("target", no_wrap=True)
    table.add_column("would do" if dry_run else "done", justify="right")
    table.add_column("error")
    idle = 0
    for o in report.outcomes:
        if o.count == 0 and o.error is None:
            idle += 1
            continue
        table.add_row(o.target.label, "—" if o.count is None else f"{o.count:,}", o.error or "")
    console.print(table)
    console.print(
        f"{len(report.outcomes)} target(s): {report.total:,} in all, {idle} with nothing to do, "
        f"{len(report.failed)} failed"
    )
    if report.failed:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
