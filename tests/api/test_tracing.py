"""OpenTelemetry traces (decision 0049), collected by an in-memory exporter: a till sale's HTTP span
is the ancestor of its SQL spans (SQLAlchemy's and the ledger's direct asyncpg calls); a request that
writes an outbox row is the ancestor of the job it caused, run by a real dramatiq worker after the
relay moved it; log lines — structlog's and the standard library's, in the request and in the job —
carry the trace id and the request id. Off without an endpoint: no tracer, no trace context stored."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dramatiq
import pytest
from litestar import Request, post
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind
from sqlalchemy import text

from lianka.platform import log, tracing
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.identity.guards import public
from lianka.platform.jobs import consumer, get_broker
from lianka.platform.outbox import enqueue, relay_once
from lianka.platform.settings import Settings
from lianka.tenants.services.programme import set_programme
from lianka.web.app import create_app
from tests.api.test_pos import PROGRAMME

pytestmark = pytest.mark.integration

broker = get_broker()
QUEUE = "tracing_test"
logger = log.get_logger(__name__)


@consumer(queue=QUEUE)
async def tracing_test_job(uow: UnitOfWork, code: str, **_: Any) -> None:
    logger.info("tracing test job ran", code=code)
    await uow.session.execute(text("SELECT 1"))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable("lianka-test", exporter)
    try:
        yield exporter
    finally:
        tracing.disable()


@pytest.fixture
def log_lines(settings: Settings) -> Iterator[io.StringIO]:
    """Log lines as JSON into a buffer (``capture`` after ``create_app``, which configures logging)."""
    out = io.StringIO()
    try:
        yield out
    finally:
        log.configure_logging(settings)


def capture(settings: Settings, out: io.StringIO) -> None:
    log.configure_logging(replace(settings, log_json=True, log_level="INFO"), stream=out)


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    log.flush_logs()
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


async def test_a_sale_request_is_the_parent_of_its_sql(
    spans: InMemorySpanExporter, settings: Settings, db: Database, tenant_factory, auth_kit, member_factory
) -> None:
    tenant = await tenant_factory("链路茶")
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    member = str(await member_factory(tenant))
    app = create_app(settings)  # tracing on: the Litestar plugin, an instrumented engine
    async with AsyncTestClient(app=app) as client:
        spans.clear()
        headers = {**pos.headers, "Idempotency-Key": uuid.uuid4().hex}
        r = await client.post("/api/v1/pos/sales", json={"amount": 20_000, "member_id": member}, headers=headers)
        assert r.status_code == 201, r.text
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    servers = [s for s in finished if s.kind == SpanKind.SERVER and s.parent is None]
    assert len(servers) == 1, [s.name for s in finished]
    server = servers[0]
    assert "/api/v1/pos/sales" in server.name
    assert server.attributes is not None and server.attributes.get("http.status_code") == 201
    sql = [s for s in finished if s.kind == SpanKind.CLIENT and s.attributes and s.attributes.get("db.system")]
    assert sql, "no SQL spans"
    for s in sql:
        assert s.context.trace_id == server.context.trace_id
        assert server in _ancestors(s, by_id)
    statements = " ".join(str((s.attributes or {}).get("db.statement", "")) for s in sql)
    assert "INSERT INTO sales" in statements  # the sale row itself
    # the ledger's hot path goes to asyncpg directly: it is traced too
    assert any("ledger_post" in str((s.attributes or {}).get("db.statement", "")) for s in sql), statements


async def test_the_job_a_request_caused_is_a_child_in_the_same_trace(
    spans: InMemorySpanExporter, log_lines: io.StringIO, settings: Settings, db: Database, tenant_factory
) -> None:
    tenant = await tenant_factory()
    code = uuid.uuid4().hex[:12]

    @post("/_test/tracing/enqueue", guards=[public], status_code=202)
    async def enqueue_job(request: Request[Any, Any, Any]) -> dict[str, str]:
        logger.info("enqueueing the tracing job")
        logging.getLogger("tests.tracing").warning("a standard-library line")
        database: Database = request.app.state.db
        async with database.uow(tenant) as uow:
            await enqueue(uow, "tracing_test_job", queue=QUEUE, code=code)
            await uow.commit()
        return {"code": code}

    app = create_app(settings)
    app.register(enqueue_job)
    capture(settings, log_lines)
    async with AsyncTestClient(app=app) as client:
        spans.clear()
        r = await client.post("/_test/tracing/enqueue", headers={"X-Request-ID": "trace-request-0001"})
        assert r.status_code == 202, r.text
    async with db.uow(system=True) as uow:
        stored = (
            await uow.session.execute(
                text("SELECT payload FROM outbox WHERE queue = :q AND payload->>'code' = :c"), {"q": QUEUE, "c": code}
            )
        ).scalar_one()
    assert stored["traceparent"].startswith("00-")  # W3C trace context, kept with the row
    while await relay_once(db, broker, batch_size=50):
        pass
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(QUEUE, timeout=60_000)
        worker.join()
    finally:
        worker.stop()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    server = next(s for s in finished if s.kind == SpanKind.SERVER and s.parent is None)
    jobs = [s for s in finished if s.name == "job tracing_test_job"]
    assert len(jobs) == 1, [s.name for s in finished]
    job = jobs[0]
    assert job.kind == SpanKind.CONSUMER
    assert job.context.trace_id == server.context.trace_id
    assert server in _ancestors(job, by_id)  # HTTP → (outbox row) → job
    assert job.parent is not None and stored["traceparent"].split("-")[2] == _hex(job.parent.span_id, 16)
    trace_id = _hex(server.context.trace_id, 32)

    lines = _lines(log_lines)
    request_lines = [x for x in lines if x.get("request_id") == "trace-request-0001"]
    events = {x["event"] for x in request_lines if x.get("trace_id") == trace_id and x.get("span_id")}
    assert {"enqueueing the tracing job", "a standard-library line"} <= events, request_lines
    job_lines = [x for x in lines if x.get("event") == "tracing test job ran" and x.get("code") == code]
    assert len(job_lines) == 1 and job_lines[0]["trace_id"] == trace_id
    assert job_lines[0]["span_id"] == _hex(job.context.span_id, 16)


async def test_tracing_is_off_without_an_endpoint(settings: Settings, db: Database, tenant_factory) -> None:
    assert settings.otlp_endpoint == ""
    assert tracing.configure_tracing(settings, "lianka-test") is False
    assert not tracing.enabled()
    assert isinstance(tracing.tracer(), NoOpTracer)
    app = create_app(settings)
    assert not any(isinstance(p, OpenTelemetryPlugin) for p in app.plugins)
    tenant = await tenant_factory()
    async with db.uow(tenant) as uow:
        with tracing.tracer().start_as_current_span("nothing"):
            assert tracing.current_traceparent() is None
            await enqueue(uow, "nobody_consumes_this", queue="tracing_off_test", n=1)
        await uow.commit()
    async with db.uow(system=True) as uow:
        payloads = (
            await uow.session.execute(
                text("SELECT payload FROM outbox WHERE queue = 'tracing_off_test' AND sent_at IS NULL")
            )
        ).scalars()
        assert [dict(p) for p in payloads] == [{"n": 1}]
        await uow.session.execute(text("UPDATE outbox SET sent_at = now() WHERE queue = 'tracing_off_test'"))
        await uow.commit()


def test_the_endpoint_comes_from_lianka_or_the_sdk_variable() -> None:
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}).otlp_endpoint == (
        "http://collector:4318"
    )
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "LIANKA_OTLP_ENDPOINT": "http://b:4318"}
    assert Settings.from_env(both).otlp_endpoint == "http://b:4318"
    assert Settings.from_env({}).otlp_endpoint == ""
