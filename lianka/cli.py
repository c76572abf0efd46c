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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from lianka.alliance.ledger import cli as ledger_cli
from lianka.alliance.settlement import cli as settlement_cli
from lianka.platform import devservices
from lianka.platform.settings import Settings, get_settings
from lianka.tenants import cli as members_cli

app = typer.Typer(help="Lianka (联卡) — membership marketing for merchants, chains and alliances.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
services_app = typer.Typer(help="Embedded development services (PostgreSQL, Redis).", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(services_app, name="services")
app.add_typer(demo_app, name="demo")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(settlement_cli.app, name="settlement")
app.add_typer(members_cli.app, name="members")


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


def _serve(s: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any local peer
    # (FORWARDED_ALLOW_IPS); the app decides whom to believe (LIANKA_TRUSTED_PROXIES, web/api/cookies.py)
    uvicorn.run("lianka.web.asgi:app", host=host, port=port, log_config=None, proxy_headers=False,
                server_header=False, workers=workers)


@app.command()
def serve(host: Annotated[str, typer.Option()] = "", port: Annotated[int, typer.Option()] = 0,
          workers: Annotated[int, typer.Option(help="web processes (one per core is typical)")] = 1) -> None:
    """Serve the web app (API, console, portal)."""
    with bootstrap() as s:
        _serve(s, host or s.host, port or s.port, max(1, workers))


#: queues the worker consumes; an area that declares a new queue adds it here.
WORKER_QUEUES = ["default", "maintenance", "messages", "settlement"]


@app.command()
def worker(processes: int = 1, threads: int = 4) -> None:
    """Run dramatiq workers for every actor."""
    with bootstrap():
        child = subprocess.Popen([sys.executable, "-m", "dramatiq", "lianka.actors",
                                  "--processes", str(processes), "--threads", str(threads),
                                  "--queues", *WORKER_QUEUES])
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
                await relay_forever(db, get_broker(), batch_size=s.relay_batch_size,
                                    poll_seconds=s.relay_poll_seconds,
                                    listen_url=s.resolved_app_database_url(), stop=stop)
            finally:
                await db.dispose()

        asyncio.run(main())


@app.command()
def scheduler() -> None:
    """Run the periodic-job scheduler (one active instance cluster-wide)."""
    import threading

    from redis import Redis

    import lianka.actors  # noqa: F401 - registers the periodic jobs
    from lianka.platform.jobs import get_broker
    from lianka.platform.log import configure_logging
    from lianka.platform.scheduler import run_scheduler

    with bootstrap() as s:
        configure_logging(s)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_scheduler(Redis.from_url(s.redis_url), get_broker(), stop)


@app.command()
def run(seed: bool = True) -> None:
    """Everything for development: services, migrations, demo data, web + worker + relay + scheduler."""
    from lianka.demo import seed_if_empty
    from lianka.platform.migrate import upgrade

    with bootstrap() as s:
        typer.echo("• migrating …")
        upgrade(s.database_url)
        if seed:
            typer.echo("• " + asyncio.run(seed_if_empty(s)))
        exe = [sys.executable, "-m", "lianka.cli"]
        procs = {
            "web": subprocess.Popen([*exe, "serve"]),
            "worker": subprocess.Popen([*exe, "worker"]),
            "relay": subprocess.Popen([*exe, "relay"]),
            "scheduler": subprocess.Popen([*exe, "scheduler"]),
        }
        from lianka.demo import banner

        typer.echo(banner(s, f"http://{s.host}:{s.port}"))
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stopping:
                dead = [n for n, p in procs.items() if p.poll() is not None]
                if dead:
                    typer.echo(f"{', '.join(dead)} exited; stopping everything", err=True)
                    break
                time.sleep(0.5)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for p in procs.values():
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
            typer.echo("stopped.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
