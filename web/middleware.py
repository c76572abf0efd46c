"""Request plumbing around every handler: the request id, the security headers of every response,
and the edge checks of the input.

Request id: taken from ``X-Request-ID`` when sane, else generated; echoed and logged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lianka.platform import audit
from lianka.platform.errors import ValidationFailed
from lianka.platform.log import bind_context, clear_context
from lianka.platform.settings import ip_networks
from lianka.web.api.cookies import forwarded_client
from lianka.web.strict import check_integer, check_integer_text, check_percent_encoded, check_text, integer_parameters

_SAFE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = request_id_for(scope)
        clear_context()
        bind_context(request_id=rid, path=scope["path"])
        address = audit.client_ip.set(_client_address(scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            clear_context()
            audit.client_ip.reset(address)

    return middleware


def _client_address(scope: Scope) -> str | None:
    """The caller's address for the audit log: as ``web.api.cookies.client_ip`` reads it (the TCP
    peer, or the forwarded client behind a trusted proxy)."""
    client = scope.get("client")
    peer = client[0] if client else None
    app = scope.get("litestar_app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    trusted = ip_networks(settings.trusted_proxies) if settings is not None else ()
    if peer is None or not trusted:
        return peer
    forwarded = (value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for")
    return forwarded_client(peer, forwarded, trusted)


def request_id_for(scope: Scope | dict[str, Any]) -> str:
    """The request's id, chosen once and kept in the scope's state. Errors raised before a route is
    found (404, 405) never pass through the route middleware, so the problem mapping asks here too."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if not isinstance(rid, str):
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE.match(incoming) else uuid.uuid4().hex
        state["request_id"] = rid
    return rid


# --- security headers ---------------------------------------------------------------------------

#: JSON, problems, metrics: nothing may load, frame, or be framed
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: the API documentation pages (``web/docs.py``): their viewer scripts and styles from this server
#: only; styles also inline (both viewers set style attributes); the schema fetched from here
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"

BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def security_headers(*, production: bool, docs_path: str = "/schema") -> BeforeSend:
    """A ``before_send`` hook: it sees every response the app sends — unknown routes and wrong
    methods included, which route middleware never sees — and adds what the response does not set
    itself: a Content-Security-Policy (:data:`DOCS_CSP` for HTML under ``docs_path``, else
    :data:`API_CSP`), ``nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, the
    request id, and HSTS in production (behind TLS; browsers ignore it over plain HTTP anyway)."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
            return
        headers = MutableScopeHeaders.from_message(message)
        path = scope["path"]
        is_docs = (path == docs_path or path.startswith(docs_path + "/")) and (
            headers.get("content-type") or ""
        ).startswith("text/html")
        wanted = {
            "Content-Security-Policy": DOCS_CSP if is_docs else API_CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "X-Request-ID": request_id_for(scope),
        }
        if production:
            wanted["Strict-Transport-Security"] = HSTS
        for name, value in wanted.items():
            if headers.get(name) is None:
                headers[name] = value

    return hook


async def edge_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The first guard of every route: headers, path and query string by :mod:`lianka.web.strict`'s rules.

    A guard rather than an ASGI middleware because it must run after routing (it needs the handler to
    know which query parameters are integers) and before every other guard (authentication reads
    headers and looks merchants up by them), and because what it raises is then rendered by the
    route's problem mapping like any other error, with the request id. Bodies are checked later, by
    the ``before_request`` hook, once the caller is known to be allowed to send one.
    """
    scope = connection.scope
    for _header, raw in scope["headers"]:
        if b"\x00" in raw:
            raise ValidationFailed("headers: NUL characters are not allowed", field="headers")
    raw_path = scope.get("raw_path")
    if raw_path:  # ASGI servers give it without the query; some test transports with it
        check_percent_encoded(raw_path.partition(b"?")[0], "path")
    else:
        check_text(scope["path"], "path")
    for name, value in connection.path_params.items():
        if isinstance(value, str):
            check_text(value, name)
        elif isinstance(value, int) and not isinstance(value, bool):
            check_integer(value, name)
    query = scope["query_string"]
    if not query:
        return
    check_percent_encoded(query, "query")
    integers = integer_parameters(handler)
    if integers:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name in integers:
                check_integer_text(value, name)
