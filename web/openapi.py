"""Problem responses in the OpenAPI document: every operation lists the 4xx/5xx statuses it can
answer, each as ``application/problem+json`` with the :class:`ProblemDetails` schema.

Litestar documents only a 400 of its own shape (``status_code``/``detail``/``extra`` as
``application/json``), which is not what this API sends. Which statuses an operation can answer
follows from how it is declared, so it is derived here rather than repeated on ~150 handlers:

- every operation: 400 (strict decoding, parameters, headers) and 500;
- signed-in routes (a guard from ``platform.identity.guards``): 401 and 403;
- routes with path parameters or acting for a merchant: 404 (unknown ids and other merchants' alike);
- writes (POST, PUT, PATCH, DELETE): 409 (conflicts, reused idempotency keys) and 422 (rules);
- open writes (sign-in, sign-up, codes, tokens): 429;
- configuration and marketing writes (``web/billing_gate.py``): 402 (``plan-restricted``,
  ``plan-limit-reached``), and billing's plan change (a downgrade that does not fit).

A handler that knows better names its statuses exactly with ``opt={"problems": (400, 401, 500)}``;
its own ``responses=`` for a status wins over the derived one.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from lianka.platform.errors import PROBLEM_BASE
from lianka.web.billing_gate import gated
from lianka.web.problems import PROBLEM_JSON

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class ProblemDetails(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem. ``type`` is a stable URI under ``https://lianka.dev/problems/`` (the
    last segment names the problem: ``validation-failed``, ``not-found``, ``insufficient-points`` …);
    ``request_id`` is also the ``X-Request-ID`` response header. Problems may carry more members
    (``field``, ``errors``, ``retry_after``, a rule's figures)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    field: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None


_EXAMPLE_TYPES = {
    400: "validation-failed",
    402: "plan-restricted",
    401: "unauthorized",
    403: "insufficient-permission",
    404: "not-found",
    409: "conflict",
    415: "json-required",
    422: "rule-violation",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


def _spec(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails,
        media_type=PROBLEM_JSON,
        generate_examples=False,
        description=f"{HTTPStatus(status).phrase} (for example {PROBLEM_BASE}{_EXAMPLE_TYPES[status]})",
    )


def problem_statuses(handler: HTTPRouteHandler, route: HTTPRoute) -> set[int]:
    if "problems" in handler.opt:
        return set(handler.opt["problems"])
    marks = [m for g in handler.resolve_guards() if (m := getattr(g, "lianka_permissions", None))]
    signed_in = bool(marks)  # requires(…), requires_staff(), requires_member(); ``public`` has none
    for_merchant = any(tuple(m) not in (("staff",), ("member",)) for m in marks)
    statuses = {400, 500}
    if signed_in:
        statuses |= {401, 403}
    if route.path_parameters or for_merchant:
        statuses.add(404)
    if handler.http_methods & WRITES:
        statuses |= {409, 422}
        if not signed_in:
            statuses.add(429)
        if gated(handler):
            statuses.add(402)
    return statuses


def document_problems(app: Litestar) -> None:
    """Add the problem responses to every documented operation (before the document is built: it is
    built lazily, on the first request for it)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            derived = {status: _spec(status) for status in sorted(problem_statuses(handler, route))}
            handler.responses = {**derived, **(handler.responses or {})}
