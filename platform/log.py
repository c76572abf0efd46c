"""Structured logging (structlog over the standard library) with request, tenant and trace ids.

``request_id`` and ``tenant_id`` live in context variables bound by the web middleware and the
unit of work, so every line logged inside a request or a job carries them; inside a span (tracing
on, ``platform/tracing.py``) lines also carry ``trace_id`` and ``span_id``.

Lines are *rendered and written on a thread of their own*: the caller only puts the record on a
queue. Rendering a traceback (source lines, in colour) took seconds in development, and done on the
event loop it stalled every other request — ``/healthz`` included — behind one 500. What must be
read in the caller's thread is read there before the hand-over: the context variables (they do not
cross threads) and ``exc_info=True`` (it means "the exception being handled here").
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys
from typing import IO, Any

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, WrappedLogger

from lianka.platform.settings import Settings
from lianka.platform.tracing import add_trace_ids

_CONTEXT_ATTR = "lianka_context"


class _HandOver(logging.handlers.QueueHandler):
    """Puts records on the queue as they are (the standard ``QueueHandler`` formats them first, in
    the caller's thread, which is exactly the work we move away)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not isinstance(record.msg, dict):  # a standard-library logger's line: keep our context
            setattr(record, _CONTEXT_ATTR, add_trace_ids(None, "", structlog.contextvars.get_contextvars()))
        return record


class _Writer:
    """The queue, the thread that drains it into the real handler, and the handler on the root logger."""

    def __init__(self) -> None:
        self.queue: queue.Queue[logging.LogRecord] = queue.Queue()
        self.hand_over = _HandOver(self.queue)
        self.listener: logging.handlers.QueueListener | None = None
        self.sink: logging.Handler | None = None

    def start(self, sink: logging.Handler) -> None:
        self.stop()
        self.sink = sink
        self.listener = logging.handlers.QueueListener(self.queue, sink, respect_handler_level=True)
        self.listener.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def after_fork(self) -> None:
        """A forked child has the queue but not the thread: give it both afresh."""
        self.queue = queue.Queue()
        self.hand_over.queue = self.queue
        self.listener = None
        if self.sink is not None:
            self.start(self.sink)


_writer = _Writer()
atexit.register(_writer.stop)
os.register_at_fork(after_in_child=_writer.after_fork)


def _resolve_exc_info(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """``exc_info=True`` names the exception being handled *in this thread*: capture it now, before
    the line is rendered on the writer thread (where there is none)."""
    if event_dict.get("exc_info") is True:
        event_dict["exc_info"] = sys.exc_info()
    return event_dict


def _record_context(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """For standard-library lines: the context variables :class:`_HandOver` saved on the record."""
    saved = getattr(event_dict.get("_record"), _CONTEXT_ATTR, None) or {}
    for key, value in saved.items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Route every log line through the writer thread to ``stream`` (stderr); returns the handler
    that renders and writes them (on that thread). Calling it again replaces the previous set-up."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Any]
    if settings.log_json:
        # the traceback as data (frames, lines), not the exception's repr; never the frames' locals
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        renderer = [structlog.processors.ExceptionRenderer(tracebacks), structlog.processors.JSONRenderer()]
    else:
        # no locals in tracebacks (here nor above): a failed sign-in's locals hold the password
        console = structlog.dev.RichTracebackFormatter(show_locals=False)
        renderer = [structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty(), exception_formatter=console)]
    structlog.configure(
        processors=[*shared, _resolve_exc_info, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    sink = logging.StreamHandler(stream)
    sink.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_record_context, *shared[2:]],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    _writer.start(sink)
    root = logging.getLogger()
    root.handlers[:] = [_writer.hand_over]
    root.setLevel(settings.log_level)
    for noisy in ("sqlalchemy.engine", "asyncio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return sink


def flush_logs() -> None:
    """Block until every line logged so far is written (a command about to exit, a test)."""
    _writer.queue.join()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


bind_context = structlog.contextvars.bind_contextvars
clear_context = structlog.contextvars.clear_contextvars
