"""Browser tests: Playwright drives Debian's Chromium through the console, served for real.

The session starts, on free ports and against a database of its own (``<test database>_browser``,
rebuilt with the migrations) and Redis database 14: ``lianka serve`` (the web app), ``lianka relay``,
``lianka worker`` and the Stripe stand-in (``lianka billing standin``) — so an e-mail travels as in production (outbox → relay → dramatiq → the
console mail backend, which logs it) and a test reads its link from the worker's log.

Without a ``chromium`` on PATH every test here is skipped, saying why (``make test`` says it too).
Playwright's own browser download is never used (``executable_path``). Screenshots of every page
go to ``tests/browser/artifacts/<language>/`` (not committed); axe-core (vendored) checks each
page for serious and critical accessibility violations, and a page that logs a Content-Security-
Policy violation or a script error fails its test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lianka.platform.settings import Settings

CHROMIUM = shutil.which("chromium")
HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
AXE_JS = HERE / "vendor" / "axe-core-4.14.1" / "axe.min.js"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long passphrase"
SKIP_REASON = "no 'chromium' on PATH: browser tests skipped (install Debian's chromium: apt-get install chromium)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM:
        return
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _browser_urls() -> tuple[str, str, str]:
    """(admin URL, the browser tests' database URL, their Redis URL), beside the suite's own."""
    url = make_url(os.environ["DATABASE_URL"])
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    database = url.set(database=f"{url.database}_browser").render_as_string(hide_password=False)
    # the suite's (tests/conftest.py): "...?db=15" or "redis://.../15"; the browser tests take the one
    # below it (each pytest-xdist worker has a pair of its own)
    redis = os.environ["REDIS_URL"]
    number = int(re.findall(r"\d+", redis)[-1]) - 1
    redis = re.sub(r"db=\d+", f"db={number}", redis) if "db=" in redis else re.sub(r"/\d+$", f"/{number}", redis)
    return admin, database, redis


@dataclass
class Served:
    """The running console and what a test needs around it."""

    url: str
    env: dict[str, str]
    worker_log: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def mailed_link(self, to: str, path: str, timeout: float = 30) -> str:
        """The ``path`` link of the newest e-mail to ``to``, as the console mail backend logged it."""
        pattern = re.compile(rf"https?://[^\s'\"\\]+{re.escape(path)}\?token=[A-Za-z0-9._-]+")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self.worker_log.read_text(errors="replace").splitlines() if to in line]
            for line in reversed(lines):
                if found := pattern.search(line):
                    return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no e-mail to {to} with a {path} link in {self.worker_log}")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "lianka.cli", *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the process group we started (start_new_session)
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="package")
async def served() -> AsyncIterator[Served]:
    from lianka.platform.migrate import upgrade
    from tests.conftest import _recreate_database

    admin, database, redis_url = _browser_urls()
    await _recreate_database(admin, make_url(database).database or "lianka_test_browser")
    await asyncio.to_thread(upgrade, database)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "LIANKA_HOST": "127.0.0.1",
        "LIANKA_PORT": str(port),
        "LIANKA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LIANKA_LOG_LEVEL": "INFO",
        "LIANKA_MAIL_BACKEND": "console",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("APP_DATABASE_URL", None)
    # billing talks to a local Stripe stand-in (its own process, as `make run` starts it)
    stripe_port = _free_port()
    env.update(
        LIANKA_STRIPE_SECRET_KEY="sk_test_browser_" + uuid.uuid4().hex,
        LIANKA_STRIPE_WEBHOOK_SECRET="whsec_browser_" + uuid.uuid4().hex,
        LIANKA_STRIPE_API_BASE=f"http://127.0.0.1:{stripe_port}",
    )
    logs = ARTIFACTS / "logs" / os.environ.get("PYTEST_XDIST_WORKER", "")  # a folder per test process
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    server = Served(f"http://127.0.0.1:{port}", env, logs / "worker.log")
    server.processes = [
        _start(["serve", "--port", str(port)], env, logs / "web.log"),
        _start(["relay"], env, logs / "relay.log"),
        _start(["worker", "--processes", "1", "--threads", "2"], env, server.worker_log),
        _start(
            [
                "billing",
                "standin",
                "--port",
                str(stripe_port),
                "--webhook-url",
                f"{server.url}/api/v1/billing/webhooks/stripe",
            ],
            env,
            logs / "stripe.log",
        ),
    ]
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{server.url}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline or any(p.poll() is not None for p in server.processes):
                    raise RuntimeError(f"the console did not start: see {logs}")
                await asyncio.sleep(0.2)
        yield server
    finally:
        _stop(server.processes)


@pytest.fixture(scope="package")
async def browser_db(served: Served) -> AsyncIterator[Any]:
    """The application's Database on the served database (to arrange data a page then shows)."""
    from lianka.platform.db import Database

    database = Database.from_settings(Settings.from_env(served.env))
    yield database
    await database.dispose()


@pytest.fixture(scope="package")
async def browser(served: Served) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright, expect

    # CI has two cores shared by chromium, the server and PostgreSQL: a slow step is not a failure
    expect.set_options(timeout=15_000)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


class PageProblems:
    """Content-Security-Policy violations and script errors a page reported."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def console(self, message: Any) -> None:
        # a 4xx answer (a refused form: its errors are the page's content) is logged by Chromium as a
        # failed resource; that is not a problem of the page
        if message.text.startswith("Failed to load resource: the server responded with a status of 4"):
            return
        if message.type == "error" or "Content Security Policy" in message.text or "Refused to" in message.text:
            self.seen.append(f"console {message.type}: {message.text}")

    def error(self, error: Any) -> None:
        self.seen.append(f"page error: {error}")


@dataclass
class Visit:
    """One browser tab in one language, with the checks every page gets."""

    page: Any
    lang: str
    base: str
    problems: PageProblems

    async def goto(self, path: str) -> Any:
        return await self.page.goto(self.base + path)

    async def check(self, name: str) -> None:
        """Screenshot (per language), axe-core (no serious or critical violation), no CSP or script error."""
        await self.page.wait_for_load_state("networkidle")
        folder = ARTIFACTS / self.lang
        folder.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        if not await self.page.evaluate("typeof window.axe !== 'undefined'"):
            await self.page.evaluate(AXE_SOURCE[0])  # via DevTools: not subject to the page's CSP
        result = await self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
        )
        assert result == [], f"{name} ({self.lang}): accessibility violations {result}"
        # axe leaves empty style="" attributes behind; an htmx swap later copies an element's style to its
        # replacement (settling), which the CSP refuses: a violation of the test's making, not the page's
        await self.page.evaluate("document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))")
        assert self.problems.seen == [], f"{name} ({self.lang}): {self.problems.seen}"


AXE_SOURCE: list[str] = []


@pytest.fixture
async def open_page(browser: Any, served: Served) -> AsyncIterator[Callable[[str], Awaitable[Visit]]]:
    """``visit = await open_page("zh-CN")``: a fresh browser context (no cookies) speaking ``lang``."""
    if not AXE_SOURCE:
        AXE_SOURCE.append(AXE_JS.read_text())
    contexts: list[Any] = []

    async def make(lang: str, width: int = 1280) -> Visit:
        context = await browser.new_context(locale=lang, viewport={"width": width, "height": 900})
        context.set_default_timeout(20_000)  # CI has two cores shared with the server and PostgreSQL
        contexts.append(context)
        page = await context.new_page()
        problems = PageProblems()
        page.on("console", problems.console)
        page.on("pageerror", problems.error)
        return Visit(page, lang, served.url, problems)

    yield make
    for context in contexts:
        await context.close()


# --- arranging data -------------------------------------------------------------------------------


async def make_staff(db: Any, tenant: uuid.UUID, role: str, *, email: str | None = None) -> str:
    """A staff user with ``PASSWORD`` and ``role`` at ``tenant`` (an existing e-mail gets the role too)."""
    from lianka.platform.identity.passwords import hash_password

    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    async with db.uow(system=True) as uow:
        uid = await uow.session.scalar(
            text(
                "INSERT INTO staff_users (email, password_hash, email_verified_at) VALUES (:e, :h, now()) "
                "ON CONFLICT (email) DO UPDATE SET email = excluded.email RETURNING id"
            ),
            {"e": email, "h": await hash_password(PASSWORD)},
        )
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO staff_memberships (tenant_id, user_id, role, branch_ids) VALUES (:t, :u, :r, '{}')"),
            {"t": tenant, "u": uid, "r": role},
        )
        await uow.commit()
    return email


async def make_merchant(db: Any, name: str) -> tuple[uuid.UUID, str]:
    from lianka.tenants.models import Merchant

    slug = f"m-{uuid.uuid4().hex[:10]}"
    async with db.uow(system=True) as uow:
        merchant = Merchant(slug=slug, name=name)
        uow.session.add(merchant)
        await uow.commit()
        return merchant.id, slug
