"""Request plumbing in front of every handler: the request id, and the edge checks of the input.

Request id: taken from ``X-Request-ID`` when sane, else generated; echoed and logged.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lianka.platform.errors import ValidationFailed
from lianka.platform.log import bind_context, clear_context
from lianka.web.strict import check_integer, check_integer_text, check_percent_encoded, check_text, integer_parameters

_SAFE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
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
