"""Business metrics for Prometheus (``GET /metrics``; decision 0049).

Counters move only once the transaction that did the thing has committed — they are incremented
from :meth:`lianka.platform.db.UnitOfWork.after_commit` callbacks, so a rolled-back sale never
counts, and an idempotent replay (which commits nothing new) neither.

Labels are chosen for low cardinality: never a merchant, member, branch or campaign id (thousands
of merchants times every other label would swamp Prometheus; per-merchant numbers are the reports'
job). Currency, ledger entry kind (~30 values), channel and provider are bounded sets.

Several processes: counters live in the process that did the work. With ``PROMETHEUS_MULTIPROC_DIR``
set (prometheus-client's multiprocess mode), every process on a host writes its samples there and
whichever endpoint reads the directory shows their sum: the web's ``/metrics`` (several uvicorn
workers) and the worker's own endpoint (``lianka worker`` with ``LIANKA_WORKER_METRICS_PORT``, over
its dramatiq processes). Web and worker are scraped separately; Prometheus sums across targets.

Gauges of the outbox (depth, age of the oldest unsent row: the job lag) are computed when scraped,
by one small query on the partial index of unsent rows, cached for :data:`SCRAPE_CACHE_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from lianka.platform.db import Database, UnitOfWork

SALES = Counter("lianka_sales", "Sales recorded at the till (committed)", ["currency", "member"])
SALES_MINOR = Counter(
    "lianka_sales_amount_minor", "Gross amount of committed sales, in minor units (fen)", ["currency"]
)
TOP_UPS = Counter("lianka_top_ups", "Stored-value top-ups (committed)", ["currency", "scope"])
TOP_UPS_MINOR = Counter(
    "lianka_top_ups_amount_minor", "Principal paid in by top-ups, in minor units (fen)", ["currency", "scope"]
)
POINTS_CREDITED = Counter(
    "lianka_points_credited", "Points credited to members (issued), by ledger entry kind", ["kind"]
)
POINTS_DEBITED = Counter(
    "lianka_points_debited",
    "Points debited from members, by ledger entry kind (points_redeemed: paid at the till; expiry …)",
    ["kind"],
)
MESSAGES = Counter(
    "lianka_messages", "Marketing messages by outcome (sent, delivered, failed, dead)", ["channel", "outcome"]
)
WEBHOOKS_REJECTED = Counter(
    "lianka_webhooks_rejected", "Incoming provider webhooks refused (bad signature)", ["provider"]
)
WEBHOOK_DELIVERIES = Counter(
    "lianka_webhook_deliveries",
    "Outbound webhook attempts by outcome (delivered, retry: will be tried again, failed: given up)",
    ["outcome"],
)
JOB_LATENCY = Histogram(
    "lianka_job_queue_latency_seconds",
    "From the outbox row's commit to its job starting in a worker",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)

#: scrape-time gauges are recomputed at most this often (Prometheus scrapes every 15–60 s)
SCRAPE_CACHE_SECONDS = 5.0

#: every metric family name the application exports (``infra`` dashboards and alerts are checked
#: against this list by ``tests/unit/test_observability_as_code.py``)
HTTP_METRICS = (
    "lianka_requests_total",
    "lianka_request_duration_seconds",
    "lianka_requests_in_progress",
    "lianka_requests_error_total",
)
OUTBOX_GAUGES = ("lianka_outbox_depth", "lianka_outbox_oldest_age_seconds")


def exported_names() -> set[str]:
    """Every sample name ``/metrics`` can show (counters with their ``_total``, histograms with
    ``_bucket``/``_sum``/``_count``), for the dashboards-as-code test."""
    names: set[str] = set(OUTBOX_GAUGES)
    for family in (*HTTP_METRICS, "lianka_job_queue_latency_seconds"):
        if family.endswith("_seconds"):
            names |= {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        else:
            names.add(family)
    for counter in (SALES, SALES_MINOR, TOP_UPS, TOP_UPS_MINOR, POINTS_CREDITED, POINTS_DEBITED, MESSAGES):
        names.add(f"{counter._name}_total")
    names.add(f"{WEBHOOKS_REJECTED._name}_total")
    names.add(f"{WEBHOOK_DELIVERIES._name}_total")
    return names


# --- after commit -------------------------------------------------------------------------------


def count_sale(uow: UnitOfWork, currency: str, gross: int, *, member: bool) -> None:
    def count() -> None:
        SALES.labels(currency, "yes" if member else "no").inc()
        SALES_MINOR.labels(currency).inc(gross)

    uow.after_commit(count)


def count_top_up(uow: UnitOfWork, currency: str, principal: int, scope: str) -> None:
    def count() -> None:
        TOP_UPS.labels(currency, scope).inc()
        TOP_UPS_MINOR.labels(currency, scope).inc(principal)

    uow.after_commit(count)


def count_points(uow: UnitOfWork, kind: str, credited: int, debited: int) -> None:
    if not (credited or debited):
        return

    def count() -> None:
        if credited:
            POINTS_CREDITED.labels(kind).inc(credited)
        if debited:
            POINTS_DEBITED.labels(kind).inc(debited)

    uow.after_commit(count)


def count_message(uow: UnitOfWork, channel: str, outcome: str) -> None:
    uow.after_commit(lambda: MESSAGES.labels(channel, outcome).inc())


def count_webhook_delivery(uow: UnitOfWork, outcome: str) -> None:
    """An outbound webhook attempt (``platform/webhooks``), counted once its log row committed."""
    uow.after_commit(lambda: WEBHOOK_DELIVERIES.labels(outcome).inc())


def count_webhook_rejected(provider: str) -> None:
    """A refusal commits only its record: counted at once (the refusal stands even if that fails)."""
    WEBHOOKS_REJECTED.labels(provider).inc()


# --- scrape time ----------------------------------------------------------------------------------


@dataclass
class _Outbox:
    depth: int = 0
    oldest_age: float = 0.0
    at: float = float("-inf")


class OutboxGauges(Collector):
    """``lianka_outbox_depth`` and ``lianka_outbox_oldest_age_seconds`` from one cached query."""

    def __init__(self) -> None:
        self._last = _Outbox()

    async def refresh(self, db: Database, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last.at < SCRAPE_CACHE_SECONDS:
            return
        async with db.uow(system=True) as uow:
            row = (
                await uow.session.execute(
                    text(
                        "SELECT count(*) AS depth, "
                        "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
                        "FROM outbox WHERE sent_at IS NULL"
                    )
                )
            ).one()
        self._last = _Outbox(int(row.depth), float(row.age), now)

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("lianka_outbox_depth", "Outbox rows not yet handed to the queue", self._last.depth)
        yield GaugeMetricFamily(
            "lianka_outbox_oldest_age_seconds",
            "Age of the oldest unsent outbox row (job lag; 0 when the outbox is empty)",
            self._last.oldest_age,
        )


def scrape_time_exposition(gauges: OutboxGauges) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(gauges)
    return generate_latest(registry)
