"""One mapping from errors to RFC 9457 ``application/problem+json`` responses.

Domain errors keep their type, title, status and extra fields; Litestar's own HTTP errors
(unknown route, wrong method, failed validation) become problems too; a lost or refused connection
to PostgreSQL or Redis is a 503 ``service-unavailable`` with ``Retry-After`` (the request may simply
be sent again); anything else is a 500 that says nothing about the internals (the log has the
traceback, keyed by request id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DBAPIError

from lianka.platform.db import SERVER_GONE, DatabaseUnavailable
from lianka.platform.errors import PROBLEM_BASE, DomainError
from lianka.platform.log import get_logger
from lianka.web.middleware import request_id_for

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "rule-violation",
    429: "rate-limited",
    503: "service-unavailable",
}
#: what a client is told to wait before retrying while PostgreSQL or Redis is away
RETRY_AFTER_SECONDS = 5


def problem(
    request: Request[Any, Any, Any],
    status: int,
    type_uri: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_for(request.scope),
    }
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(request, exc.status, exc.type_uri, exc.title, exc.detail, **exc.extra)


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    title = "The request body or parameters are invalid"
    return problem(request, 400, PROBLEM_BASE + "validation-failed", title, str(exc.detail), errors=errors)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return internal_error_handler(request, exc)
    slug = _SLUGS.get(status, "http-error")
    # a 405 raised by the router carries ``Allow`` (RFC 9110 requires it); keep what the error says
    return problem(request, status, PROBLEM_BASE + slug, exc.detail or slug, exc.detail or slug, headers=exc.headers)


def lost_dependency(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` (or what caused it) is a lost, refused or timed-out
    connection to it, else None."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, (DatabaseUnavailable, sqlalchemy.exc.TimeoutError, *SERVER_GONE)):
            return "database"  # TimeoutError here: no pooled connection came free in time
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return "database"
        if isinstance(error, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(error):
            return "database"
        if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return "redis"
        pending += [error.__cause__, error.__context__, getattr(error, "orig", None)]
    return None


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception, dependency: str) -> Response[dict[str, Any]]:
    log.warning(
        "dependency unavailable", dependency=dependency, error=f"{type(exc).__name__}: {exc}", path=request.url.path
    )
    return problem(
        request,
        503,
        PROBLEM_BASE + "service-unavailable",
        "Service temporarily unavailable",
        f"A service this request needs is not answering. Retry in {RETRY_AFTER_SECONDS} seconds.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        retry_after=RETRY_AFTER_SECONDS,
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    dependency = lost_dependency(exc)
    if dependency is not None:
        return unavailable_handler(request, exc, dependency)
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    return problem(
        request,
        500,
        PROBLEM_BASE + "internal-error",
        "Internal server error",
        "Something went wrong on our side. Quote the request id when you report it.",
    )


#: what PostgreSQL says when a value cannot be stored — SQLSTATE 22001: longer than its column;
#: 22021: a character it cannot hold (NUL). Only a value from outside causes these: a field whose
#: length a route forgot to check, text that did not pass :mod:`lianka.web.strict` (decoded from
#: a file, say). The statement failed, so its transaction rolls back and nothing of it is written:
#: a 400, not a 500. Logged as a warning so the missing check gets added where the field is accepted.
_UNSTORABLE = {
    "22001": "A value is longer than its field allows",
    "22021": "A text value holds a character that cannot be stored",
}


def database_error_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[dict[str, Any]]:
    sqlstate = getattr(exc.orig, "sqlstate", None)

    if sqlstate not in _UNSTORABLE:
        return internal_error_handler(request, exc)
    log.warning("value refused by the database", sqlstate=sqlstate, path=request.url.path)
    return problem(
        request,
        400,
        PROBLEM_BASE + "validation-failed",
        "The request body or parameters are invalid",
        _UNSTORABLE[sqlstate],
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    DBAPIError: database_error_handler,
    Exception: internal_error_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
