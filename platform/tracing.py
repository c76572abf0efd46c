"""OpenTelemetry traces: HTTP → service → SQL → outbox → job, exported by OTLP when configured.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``LIANKA_OTLP_ENDPOINT``) is set: then no tracer
provider is installed, nothing is instrumented, and :func:`tracer` is OpenTelemetry's no-op tracer
(decision 0049). On, each process (web, worker, relay) installs one SDK provider with a batching
OTLP http/protobuf exporter, and:

* the web app adds Litestar's OpenTelemetry plugin (a server span per request);
* every engine made by :func:`lianka.platform.db.make_engine` is instrumented (a span per SQL
  statement through SQLAlchemy), and asyncpg itself too (the hot paths that use the driver directly);
* :func:`lianka.platform.outbox.enqueue` stores the W3C ``traceparent`` of the current span in the
  outbox row; the relay hands it to dramatiq in the message's options, and the worker starts the
  job's span as its child — one trace holds a sale's request, its SQL and the job it caused;
* log lines carry ``trace_id`` and ``span_id`` (:func:`add_trace_ids`).

Tests install a provider of their own with :func:`enable` (an in-memory exporter) and undo it with
:func:`disable`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

    from lianka.platform.settings import Settings

#: the key under which :func:`lianka.platform.outbox.enqueue` keeps the trace context in a row's
#: payload (taken out again by the relay: actors never see it) and dramatiq's message option
TRACEPARENT = "traceparent"

_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()
_NOOP = NoOpTracer()


def endpoint(settings: Settings) -> str:
    """The OTLP endpoint tracing exports to; empty: tracing is off."""
    return settings.otlp_endpoint


def enabled() -> bool:
    return _provider is not None


def tracer() -> trace.Tracer:
    """Lianka's tracer: the configured provider's, or the no-op tracer when tracing is off."""
    if _provider is None:
        return _NOOP
    return _provider.get_tracer("lianka")


def configure_tracing(settings: Settings, service: str) -> bool:
    """Turn tracing on for this process when an OTLP endpoint is configured; True when it is on.
    Called once per process (the web app factory, the worker, the relay); a second call is a no-op."""
    if _provider is not None or not endpoint(settings):
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = endpoint(settings).rstrip("/")
    # the SDK's own variable is a base URL (it appends /v1/traces); ours may be either
    exporter = OTLPSpanExporter(endpoint=url if url.endswith("/v1/traces") else f"{url}/v1/traces")
    provider = enable(service, exporter, batch=True)
    trace.set_tracer_provider(provider)  # libraries that ask the global provider get ours
    return True


def enable(service: str, exporter: SpanExporter, *, batch: bool = False) -> TracerProvider:
    """Install a provider exporting to ``exporter`` for this process (tests: an in-memory exporter,
    ``batch=False`` so spans are there as soon as they end) and instrument asyncpg."""
    global _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _provider = provider
    _asyncpg_instrumentor().instrument(tracer_provider=provider)
    return provider


def disable() -> None:
    """Undo :func:`enable` (tests): flush, forget the provider, un-patch asyncpg."""
    global _provider
    if _provider is None:
        return
    _asyncpg_instrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement of ``engine`` (when tracing is on)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import engine as sql
    from opentelemetry.metrics import NoOpMeter

    engine_tracer: Any = sql.EngineTracer  # untyped; SQLAlchemyInstrumentor would patch create_engine globally
    connections = NoOpMeter("lianka.sql").create_up_down_counter("db.client.connections.usage")
    engine_tracer(_provider.get_tracer("lianka.sql"), engine.sync_engine, connections, enable_commenter=False)


def _asyncpg_instrumentor() -> Any:
    """asyncpg's instrumentation (a process-wide patch of ``asyncpg.Connection``: the hot paths that
    use the driver directly, ``UnitOfWork.driver``); untyped."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor: Any = AsyncPGInstrumentor
    return instrumentor()


def litestar_plugin() -> OpenTelemetryPlugin | None:
    """Litestar's OpenTelemetry plugin on this process's provider, or None when tracing is off."""
    if _provider is None:
        return None
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    return OpenTelemetryPlugin(
        OpenTelemetryConfig(tracer_provider=_provider, exclude=["/metrics", "/healthz", "/readyz"])
    )


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None (tracing off, or no span)."""
    if _provider is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextmanager
def job_span(actor: str, traceparent: str | None, **attributes: Any) -> Iterator[None]:
    """The span of one job run: a child of the span that enqueued it (``traceparent``), else a root."""
    if _provider is None:
        yield
        return
    parent = _propagator.extract({TRACEPARENT: traceparent}) if traceparent else otel_context.Context()
    with tracer().start_as_current_span(
        f"job {actor}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "dramatiq", **attributes},
    ):
        yield


def add_trace_ids(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current span's ``trace_id`` and ``span_id`` (hex, as OTLP backends
    show them) on every line logged inside a span."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict
