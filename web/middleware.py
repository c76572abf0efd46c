"""Request id: taken from ``X-Request-ID`` when sane, else generated; echoed and logged. Security
headers on every response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lianka.platform.log import bind_context, clear_context

_SAFE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = request_id_for(scope)
        clear_context()
        bind_context(request_id=rid, path=scope["path"])

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            clear_context()

    return middleware


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
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'")
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
        is_docs = (path == docs_path or path.startswith(docs_path + "/")) and \
            (headers.get("content-type") or "").startswith("text/html")
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
