"""kill -9 under load (issue 18): tills sell while the web process, the worker, the relay and the
PostgreSQL postmaster are killed with SIGKILL and started again through the project's own commands.

Everything here is real and separate from any other run: an embedded PostgreSQL and Redis in a data
directory of their own (``lianka services up`` / ``down``), migrated with ``lianka db upgrade``, and
``lianka serve`` / ``lianka worker`` / ``lianka relay`` as child processes, each leading its own process
group so a kill reaches whatever it started (uvicorn, dramatiq's worker processes) — as the supervisor
of ``lianka run`` does. The tills are async HTTP clients; a till retries a request it did not see
acknowledged with the *same* Idempotency-Key until it is. Jobs are queued through the outbox while the
kills go on. :func:`check` then counts what the database holds against what the tills and the job
feeder saw. ``tests/integration/test_kill9.py`` runs a short round in ``make test``;
``python -m bench chaos`` runs a longer one and prints sales/s with and without the kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis.asyncio import Redis
from sqlalchemy import text

from lianka.platform.db import Database, owner_connection
from lianka.platform.devservices import EmbeddedPostgres
from lianka.platform.identity.testing import AuthKit
from lianka.platform.outbox import enqueue, message_id_for
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import PointsConfig, Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

PROCESSES = ("web", "worker", "relay")
#: what a kill can hit: the app's processes and the database server
TARGETS = (*PROCESSES, "postgres")
OPENING_POINTS = 1_000_000
PLAN = StoredValuePlan(code="100-110", name="充100送10", pay=10_000, get=11_000)
#: the real actor the feeder queues (it takes any extra field, so each job carries a token to count)
JOB_ACTOR = "points_expiry_reminder"
#: HTTP answers after which a till gives up on a request instead of retrying it (its own mistake)
FATAL = {400, 401, 403, 404, 409, 422}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child and everything in its process group (what it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Cluster:
    """The embedded services and the app's processes, each started through ``lianka`` commands."""

    def __init__(self, data: Path, *, log: Callable[[str], None] = lambda _: None) -> None:
        self.data, self.say = data, log
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: dict[str, int] = dict.fromkeys(TARGETS, 0)
        #: the web process started next dies by SIGKILL right after committing its Nth sale, before
        #: answering (``LIANKA_FAULTS``, ``platform/faults.py``): one N per start, none when empty
        self.web_faults: list[int] = []
        #: processes that died on their own (a fault point) and were started again
        self.crashes: dict[str, int] = dict.fromkeys(PROCESSES, 0)
        self._lock = threading.Lock()
        self.database_url = self.redis_url = ""
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL")}
        self._base_env = {**base, "LIANKA_DATA_DIR": str(data), "LIANKA_LOG_LEVEL": "WARNING"}
        self._base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    # --- the services ---------------------------------------------------------------------------

    def lianka(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        """Run ``lianka ARGS`` to completion; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "lianka.cli", *args],
            env=env if env is not None else self.env,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"lianka {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done.stdout + done.stderr

    def services_up(self, timeout: float = 60) -> None:
        """``lianka services up`` until it succeeds (after a kill -9 the old server's backends may hold
        its shared memory for a moment, and the new postmaster refuses to start until they are gone)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                out = self.lianka("services", "up", env=self._base_env)
                break
            except RuntimeError as exc:
                if time.monotonic() > deadline:
                    raise
                self.say(f"  services up failed: {str(exc).strip().splitlines()[-1][:200]}")
                time.sleep(0.5)
        urls = dict(line.split("=", 1) for line in out.strip().splitlines() if "=" in line)
        self.database_url, self.redis_url = urls["DATABASE_URL"], urls["REDIS_URL"]

    @property
    def env(self) -> dict[str, str]:
        return {**self._base_env, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def postmaster_pid(self) -> int | None:
        return EmbeddedPostgres(self.data).postmaster_pid()

    # --- the app's processes --------------------------------------------------------------------

    def start(self, name: str) -> None:
        argv = {
            "web": ["serve", "--host", "127.0.0.1", "--port", str(self.port)],
            "worker": ["worker", "--processes", "1", "--threads", "4"],
            "relay": ["relay"],
        }[name]
        env = self.env
        if name == "web" and self.web_faults:
            env["LIANKA_FAULTS"] = f"pos.sale.after_commit={self.web_faults.pop(0)}"
        out = (self.data / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "lianka.cli", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: a kill reaches what it started
        )
        out.close()

    def start_all(self) -> None:
        for name in PROCESSES:
            self.start(name)
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"web not ready\n{(self.data / 'web.log').read_text()[-3000:]}")

    def revive(self) -> None:
        """Start again, through the same command, a process that died on its own (as ``lianka run``'s
        supervisor would)."""
        with self._lock:
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    self.crashes[name] += 1
                    self.say(f"{name} (pid {proc.pid}) died: exit {proc.returncode}; starting it again")
                    _kill_group(proc)
                    self.start(name)

    def kill(self, target: str) -> None:
        """SIGKILL ``target`` and start it again through the same command."""
        with self._lock:
            self._kill(target)

    def _kill(self, target: str) -> None:
        self.kills[target] += 1
        if target == "postgres":
            pid = self.postmaster_pid()
            if pid is not None:
                psutil.Process(pid).send_signal(signal.SIGKILL)
                self.say(f"kill -9 postgres (pid {pid})")
            at = time.monotonic()
            while EmbeddedPostgres(self.data).leftover_processes() and time.monotonic() - at < 30:
                time.sleep(0.1)
            self.say(f"  its processes gone after {time.monotonic() - at:.1f} s")
            self.services_up()
            return
        proc = self.procs[target]
        self.say(f"kill -9 {target} (pid {proc.pid})")
        _kill_group(proc)
        self.start(target)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                _kill_group(proc)
        self.procs.clear()
        if self.database_url:
            self.lianka("services", "down", check=False, env=self._base_env)


# --- the shop -------------------------------------------------------------------------------------


@dataclass
class Shop:
    tenant: uuid.UUID
    headers: dict[str, str]
    members: list[str]


async def open_shop(settings: Settings, members: int) -> Shop:
    """A merchant with a branch, a programme (points, a stored-value plan), members with points to pay
    with, and a POS token."""
    db, redis = Database.from_settings(settings), Redis.from_url(settings.redis_url)
    try:
        async with db.uow(system=True) as uow:
            tenant = await uow.session.scalar(
                text("INSERT INTO merchants (slug, name) VALUES (:s, 'Chaos tea') RETURNING id"),
                {"s": f"chaos-{uuid.uuid4().hex[:8]}"},
            )
            await uow.commit()
        kit = AuthKit(db, settings, redis)
        branch = await kit.branch(tenant, "SH01")
        programme = Programme(
            points=PointsConfig(),
            tiers=[Tier(code="regular", name="普通", rank=0)],
            stored_value=StoredValueConfig(plans=[PLAN]),
        )
        async with db.uow(tenant) as uow:
            await set_programme(uow, programme)
            await uow.commit()
        ids = [str((await kit.member(tenant, phone=f"+86139{i:08d}")).subject_id) for i in range(members)]
        async with db.uow(tenant) as uow:
            for i, member in enumerate(ids):
                await accounts.award_points(
                    uow,
                    uuid.UUID(member),
                    OPENING_POINTS,
                    programme=programme,
                    reason="opening",
                    key=f"open-{i}",
                    business_time=datetime.now(UTC),
                )
            await uow.commit()
        pos = await kit.pos(tenant, ["pos"], branch=branch)
        return Shop(tenant, dict(pos.headers), ids)
    finally:
        await redis.aclose()
        await db.dispose()


@dataclass
class Seen:
    """What the clients saw: every key sent, and for the acknowledged ones what came back."""

    sales: dict[str, str] = field(default_factory=dict)  # key -> sale_id
    top_ups: dict[str, str] = field(default_factory=dict)  # key -> top_up_id
    sent: set[str] = field(default_factory=set)
    retried: set[str] = field(default_factory=set)  # keys sent more than once
    replayed: int = 0  # acknowledgements that were replays (Idempotent-Replayed)
    attempts: int = 0
    failed: list[str] = field(default_factory=list)  # fatal answers: a till's own mistake, a bug
    jobs: set[str] = field(default_factory=set)  # tokens of jobs committed to the outbox


async def till(base_url: str, shop: Shop, seen: Seen, w: int, stop: asyncio.Event) -> None:
    """One till: sales (and now and then a top-up) until ``stop``; an unacknowledged request is sent
    again with the same key until it is acknowledged, whatever happens meanwhile."""
    rng = random.Random(w)
    async with httpx.AsyncClient(base_url=base_url, headers=shop.headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            member = rng.choice(shop.members)
            key = f"t{w}-{n}-{uuid.uuid4().hex[:8]}"
            body: dict[str, Any]
            if rng.random() < 0.2:
                url, body = "/api/v1/pos/top-ups", {"member_id": member, "plan": PLAN.code}
            else:
                amount = rng.randrange(1_000, 20_000)
                body = {"amount": amount, "member_id": member, "points": 100, "lines": []}
                url = "/api/v1/pos/sales"
            seen.sent.add(key)
            tries = 0
            while True:  # until acknowledged: the key never changes
                tries += 1
                seen.attempts += 1
                if tries > 1:
                    seen.retried.add(key)
                try:
                    r = await client.post(url, json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code in (200, 201):
                    got = r.json()
                    if r.headers.get("idempotent-replayed") == "true":
                        seen.replayed += 1
                    if url.endswith("sales"):
                        seen.sales[key] = got["sale_id"]
                    else:
                        seen.top_ups[key] = got["top_up_id"]
                    break
                if r.status_code in FATAL:
                    seen.failed.append(f"{url} {key}: {r.status_code} {r.text[:300]}")
                    break
                await asyncio.sleep(0.2)  # 503 while the database is away, 500, 502 …


async def feed_jobs(settings: Settings, shop: Shop, seen: Seen, stop: asyncio.Event, every: float = 0.25) -> None:
    """Queue a job through the outbox every ``every`` seconds; a commit whose outcome is unknown (the
    database was killed under it) is looked up by its token before it is tried again."""
    db = Database.from_settings(settings)
    tenant = shop.tenant
    try:
        n = 0
        while not stop.is_set():
            n += 1
            token = f"j{n}-{uuid.uuid4().hex[:8]}"
            while token not in seen.jobs:
                try:
                    if await _job_committed(db, tenant, token):
                        seen.jobs.add(token)
                        break
                    async with db.uow(tenant) as uow:
                        await enqueue(
                            uow,
                            JOB_ACTOR,
                            queue="messages",
                            member_id=shop.members[n % len(shop.members)],
                            points=1,
                            expires_on="2099-01-01",
                            token=token,
                        )
                        await uow.commit()
                    seen.jobs.add(token)
                except Exception:  # the database is away: look again in a moment
                    await asyncio.sleep(0.3)
            await asyncio.sleep(every)
    finally:
        await db.dispose()


async def _job_committed(db: Database, tenant: uuid.UUID, token: str) -> bool:
    async with db.uow(tenant) as uow:
        found = await uow.session.scalar(text("SELECT count(*) FROM outbox WHERE payload->>'token' = :t"), {"t": token})
    return bool(found)


@dataclass
class Round:
    seconds: float
    seen: Seen
    kills: dict[str, int]
    #: deaths at a fault point (the web process after committing a sale, before answering)
    crashes: dict[str, int]

    @property
    def acknowledged(self) -> int:
        return len(self.seen.sales) + len(self.seen.top_ups)

    @property
    def rate(self) -> float:
        return len(self.seen.sales) / self.seconds if self.seconds else 0.0


async def load(
    cluster: Cluster,
    shop: Shop,
    *,
    tills: int,
    seconds: float,
    kill_every: tuple[float, float] | None,
    seed: int | None = None,
) -> Round:
    """Run ``tills`` for ``seconds``; with ``kill_every`` (min, max seconds) SIGKILL a random target
    (every target at least once, in random order first) at random moments meanwhile. When the time
    is up the tills finish the request in hand, which may mean waiting for a restart."""
    seen, stop = Seen(), asyncio.Event()
    kills_before = dict(cluster.kills)
    if seed is None:  # LIANKA_CHAOS_SEED repeats a round's order and moments of the kills
        seed = int(os.environ.get("LIANKA_CHAOS_SEED") or random.randrange(1 << 30))
    cluster.say(f"round: {tills} tills, {seconds:g} s, kills {kill_every}, seed {seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    work = [asyncio.create_task(till(cluster.base_url, shop, seen, w, stop)) for w in range(tills)]
    work.append(asyncio.create_task(feed_jobs(cluster.settings, shop, seen, stop)))
    crashes_before = dict(cluster.crashes)
    finished = asyncio.Event()  # the tills may need a process started again to finish

    async def supervise() -> None:
        while not finished.is_set():
            await asyncio.to_thread(cluster.revive)
            await asyncio.sleep(0.2)

    supervisor = asyncio.create_task(supervise())
    try:
        order = list(TARGETS)
        rng.shuffle(order)
        while time.monotonic() - started < seconds or (kill_every is not None and order):
            if kill_every is None:
                await asyncio.sleep(min(0.5, seconds))
                continue
            await asyncio.sleep(rng.uniform(*kill_every))
            if time.monotonic() - started >= seconds and not order:
                break
            target = order.pop(0) if order else rng.choice(TARGETS)
            at = time.monotonic()
            await asyncio.to_thread(cluster.kill, target)
            cluster.say(f"  {target} back in {time.monotonic() - at:.1f} s (t={at - started:.1f} s)")
        # the round ends with everything up again
        await asyncio.to_thread(cluster.wait_ready)
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(asyncio.gather(*work), timeout=120)
    finally:
        stop.set()
        for t in work:
            t.cancel()
        finished.set()
        await supervisor
    kills = {k: cluster.kills[k] - kills_before[k] for k in TARGETS}
    crashes = {k: cluster.crashes[k] - crashes_before[k] for k in PROCESSES}
    return Round(elapsed, seen, kills, crashes)


# --- what the database holds ----------------------------------------------------------------------


@dataclass
class Counts:
    sales_acknowledged: int
    sales_booked: int
    top_ups_acknowledged: int
    top_ups_booked: int
    retried_keys: int
    retried_booked_once: int
    jobs_queued: int
    jobs_done_once: int
    members_checked: int
    problems: list[str]


async def drain_jobs(settings: Settings, tenant: uuid.UUID, tokens: set[str], within: float = 150) -> int:
    """Wait until every queued job has been processed; how many were (the rest time out)."""
    db = Database.from_settings(settings)
    deadline = time.monotonic() + within
    try:
        while True:
            done = await _jobs_done(db, tenant)
            if len(set(done) & tokens) == len(tokens) or time.monotonic() > deadline:
                return len(set(done) & tokens)
            await asyncio.sleep(1)
    finally:
        await db.dispose()


async def _jobs_done(db: Database, tenant: uuid.UUID) -> dict[str, int]:
    """token -> how many processed-message records its outbox rows have."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text("SELECT id, payload->>'token' AS token FROM outbox WHERE tenant_id = :t AND actor = :a"),
                {"t": tenant, "a": JOB_ACTOR},
            )
        ).all()
        ids = [uuid.UUID(message_id_for(r.id)) for r in rows]
        processed = {
            r.message_id
            for r in (
                await uow.session.execute(
                    text("SELECT message_id FROM processed_messages WHERE message_id = ANY(:ids)"), {"ids": ids}
                )
            ).all()
        }
    done: dict[str, int] = {}
    for row in rows:
        if uuid.UUID(message_id_for(row.id)) in processed:
            done[row.token] = done.get(row.token, 0) + 1
    return done


async def check(settings: Settings, shop: Shop, seen: Seen) -> Counts:
    """Count what the database holds against what the clients saw (as the owner: no RLS in the way)."""
    problems: list[str] = list(seen.failed)
    db = Database.from_settings(settings)
    tenant = shop.tenant
    try:
        async with owner_connection(settings.database_url) as q:

            async def rows(sql: str, **params: Any) -> list[Any]:
                return list((await q.execute(text(sql), {"t": tenant, **params})).all())

            # sales: each acknowledged key has its record, naming the sale the till saw, which exists
            keys = {
                r.key: r.sale_id
                for r in await rows(
                    "SELECT key, body->>'sale_id' AS sale_id FROM idempotency_keys WHERE tenant_id = :t AND scope = 'pos.sale'"
                )
            }
            sales = {str(r.id) for r in await rows("SELECT id FROM sales WHERE tenant_id = :t")}
            for key, sale_id in seen.sales.items():
                if keys.get(key) != sale_id:
                    problems.append(f"sale {key}: the till saw {sale_id}, the key names {keys.get(key)}")
                if sale_id not in sales:
                    problems.append(f"sale {key}: acknowledged sale {sale_id} does not exist")
            if len(sales) != len(seen.sales):
                problems.append(f"{len(sales)} sales booked for {len(seen.sales)} acknowledged sale keys")
            if set(keys) - set(seen.sales):
                problems.append(f"keys booked that no till saw acknowledged: {sorted(set(keys) - set(seen.sales))[:5]}")

            # top-ups: the ledger entry is keyed by the request's key
            entries: dict[str, int] = {}
            for r in await rows(
                "SELECT idempotency_key AS k, count(*) AS n FROM ledger_entries WHERE tenant_id = :t "
                "AND idempotency_key LIKE :like GROUP BY idempotency_key",
                like="%:top_up",
            ):
                entries[r.k.removesuffix(":top_up")] = int(r.n)
            for key in seen.top_ups:
                if entries.get(key) != 1:
                    problems.append(f"top-up {key}: {entries.get(key, 0)} ledger entries")
            if sum(entries.values()) != len(seen.top_ups):
                problems.append(f"{sum(entries.values())} top-ups booked for {len(seen.top_ups)} acknowledged keys")

            retried_once = sum(
                1 for k in seen.retried if (k in seen.sales and seen.sales[k] in sales) or entries.get(k) == 1
            )

            # every member: each balance equals the sum of its postings; the profile counts its sales
            members = await rows(
                "SELECT a.owner_id AS member, a.unit, b.balance, coalesce(sum(p.amount), 0) AS postings "
                "FROM ledger_accounts a JOIN ledger_balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id "
                "LEFT JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id "
                "WHERE a.tenant_id = :t AND a.owner_kind = 'member' GROUP BY a.owner_id, a.id, a.unit, b.balance"
            )
            for r in members:
                if r.balance != r.postings:
                    problems.append(f"member {r.member} {r.unit}: balance {r.balance} ≠ postings {r.postings}")
            for r in await rows(
                "SELECT m.member_id, m.purchase_count, m.cumulative_spend, count(s.id) AS n, "
                "coalesce(sum(s.qualifying_spend), 0) AS spend FROM member_profiles m "
                "LEFT JOIN sales s ON s.tenant_id = m.tenant_id AND s.member_id = m.member_id "
                "WHERE m.tenant_id = :t GROUP BY m.member_id, m.purchase_count, m.cumulative_spend"
            ):
                if (r.purchase_count, r.cumulative_spend) != (r.n, r.spend):
                    problems.append(
                        f"member {r.member_id}: profile says {r.purchase_count} purchases / {r.cumulative_spend}, "
                        f"sales say {r.n} / {r.spend}"
                    )
        done = await _jobs_done(db, tenant)
        outbox_rows: dict[str, int] = {}
        async with db.uow(system=True) as uow:
            for r in (
                await uow.session.execute(
                    text(
                        "SELECT payload->>'token' AS token, count(*) AS n, count(*) FILTER (WHERE sent_at IS NULL) "
                        "AS unsent FROM outbox WHERE tenant_id = :t AND actor = :a GROUP BY 1"
                    ),
                    {"t": tenant, "a": JOB_ACTOR},
                )
            ).all():
                outbox_rows[r.token] = int(r.n)
                if r.unsent:
                    problems.append(f"job {r.token}: never relayed")
        for token in seen.jobs:
            if outbox_rows.get(token) != 1:
                problems.append(f"job {token}: {outbox_rows.get(token, 0)} outbox rows")
            if done.get(token) != 1:
                problems.append(f"job {token}: processed {done.get(token, 0)} times")
        return Counts(
            sales_acknowledged=len(seen.sales),
            sales_booked=len(sales),
            top_ups_acknowledged=len(seen.top_ups),
            top_ups_booked=sum(entries.values()),
            retried_keys=len(seen.retried),
            retried_booked_once=retried_once,
            jobs_queued=len(seen.jobs),
            jobs_done_once=sum(1 for t in seen.jobs if done.get(t) == 1),
            members_checked=len({r.member for r in members}),
            problems=problems,
        )
    finally:
        await db.dispose()


# --- python -m bench chaos ------------------------------------------------------------------------

BENCH_SECONDS = float(os.environ.get("BENCH_CHAOS_SECONDS", "180"))
BENCH_TILLS = int(os.environ.get("BENCH_CHAOS_TILLS", "8"))


def run() -> None:
    import tempfile

    from rich.table import Table

    from bench.common import console

    with tempfile.TemporaryDirectory(prefix="lianka-chaos-") as tmp:
        data = Path(tmp)
        cluster = Cluster(data, log=lambda line: console.print(f"  [dim]{line}[/dim]"))
        try:
            cluster.services_up()
            cluster.lianka("db", "upgrade")
            shop = asyncio.run(open_shop(cluster.settings, 200))
            cluster.start_all()  # calm: no fault armed
            calm_seconds = max(20.0, BENCH_SECONDS / 6)
            console.print(
                f"[bold]kill -9 under load[/bold]: {BENCH_TILLS} tills, {calm_seconds:.0f} s calm, then "
                f"{BENCH_SECONDS:.0f} s with a SIGKILL every 3–10 s"
            )
            calm = asyncio.run(load(cluster, shop, tills=BENCH_TILLS, seconds=calm_seconds, kill_every=None))
            # under chaos every web start dies after committing its Nth sale, N at random; the calm
            # round's web process is replaced first so that it is armed too
            cluster.web_faults = [random.randrange(20, 150) for _ in range(1000)]
            cluster.kill("web")
            cluster.kills["web"] -= 1
            cluster.wait_ready()
            chaos = asyncio.run(load(cluster, shop, tills=BENCH_TILLS, seconds=BENCH_SECONDS, kill_every=(3.0, 10.0)))
            seen = Seen()
            for part in (calm.seen, chaos.seen):
                seen.sales.update(part.sales)
                seen.top_ups.update(part.top_ups)
                seen.sent |= part.sent
                seen.retried |= part.retried
                seen.jobs |= part.jobs
                seen.failed += part.failed
                seen.replayed += part.replayed
            asyncio.run(drain_jobs(cluster.settings, shop.tenant, seen.jobs))
            counts = asyncio.run(check(cluster.settings, shop, seen))
            verify = subprocess.run(
                [sys.executable, "-m", "lianka.cli", "ledger", "verify"],
                check=False,
                env=cluster.env,
                capture_output=True,
                text=True,
            )
        finally:
            cluster.stop()
    ratio = chaos.rate / calm.rate if calm.rate else 0.0
    t = Table(title="kill -9 under load")
    for col in ("round", "seconds", "sales", "top-ups", "sales/s", "kills"):
        t.add_column(col, justify="left" if col in ("round", "kills") else "right")
    for name, r in (("calm", calm), ("kill -9 chaos", chaos)):
        kills = ", ".join(f"{k} {v}" for k, v in r.kills.items() if v) or "—"
        if r.crashes.get("web"):
            kills += f"; web died after a commit {r.crashes['web']}"
        t.add_row(
            name, f"{r.seconds:.0f}", f"{len(r.seen.sales):,}", f"{len(r.seen.top_ups):,}", f"{r.rate:.1f}", kills
        )
    console.print(t)
    console.print(
        f"sales/s during chaos = [bold]{ratio:.2f}[/bold] × without; "
        f"sales {counts.sales_booked:,} booked / {counts.sales_acknowledged:,} acknowledged, "
        f"top-ups {counts.top_ups_booked:,} / {counts.top_ups_acknowledged:,}, "
        f"retried keys booked once {counts.retried_booked_once:,} / {counts.retried_keys:,} "
        f"({seen.replayed:,} answered as replays), "
        f"jobs done once {counts.jobs_done_once:,} / {counts.jobs_queued:,}, members checked {counts.members_checked}, "
        f"ledger verify {'ok' if verify.returncode == 0 else 'FAILED'}"
    )
    for problem in counts.problems[:20]:
        console.print(f"  [red]{problem}[/red]")
    if counts.problems or verify.returncode != 0:
        console.print(verify.stdout[-2000:])
