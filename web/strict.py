"""Strict request input: the rules every request meets before any handler, service or SQL sees it.

PostgreSQL refuses a NUL character in ``text`` and a BIGINT overflows past ±(2**63-1); a string with a
lone UTF-16 surrogate cannot even be encoded to UTF-8 for the driver. Each of those used to reach
SQL and answer 500. Rather than hoping every field of every route remembers them, they are refused
here, once, for every request, with a 400 ``validation-failed`` problem:

* text (query strings, path segments, form fields, every JSON string and object key at any depth)
  must be valid UTF-8 without NUL and without lone surrogates;
* a JSON body is valid JSON nested at most :data:`MAX_DEPTH` deep, and none of its numbers, nor
  any integer query or path parameter, lies beyond ±(2**63-1) (:data:`INT_LIMIT`); what an
  endpoint needs below that (an amount cap, a page size) it still checks itself;
* bodies larger than Litestar's ``request_max_body_size`` are a 413.

Then, for handlers that take a typed ``data`` body, the body is decoded *strictly* against that type:
Litestar converts bodies with msgspec's lax rules (``"12"`` becomes ``12``), which is right for query
strings and wrong for money — a POS that sends an amount as a string has a bug we want to see.

Query strings, paths and headers are checked by :func:`lianka.web.middleware.input_guard_middleware`
before the guards run (they read headers and may look things up); bodies are checked by the
``before_request`` hook, after the guards, so an unauthenticated caller cannot make us parse large
bodies for routes it may not call.
"""

from __future__ import annotations

import re
import weakref
from decimal import Decimal, InvalidOperation
from typing import Any, get_args
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.params import ParameterKwarg

from lianka.platform.errors import ValidationFailed

#: the deepest a JSON body may nest (objects and arrays); our deepest document, the programme, is ~6
MAX_DEPTH = 32
#: the largest magnitude of an integer accepted anywhere: what a PostgreSQL BIGINT holds
INT_LIMIT = 2**63 - 1

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_FORM = "application/x-www-form-urlencoded"
_types: dict[int, tuple[weakref.ref[Any], Any]] = {}
_int_params: dict[int, tuple[weakref.ref[Any], frozenset[str]]] = {}


# --- text -------------------------------------------------------------------------------------


def check_text(value: str, where: str) -> None:
    """Refuse NUL (PostgreSQL cannot store it) and lone surrogates (UTF-8 cannot encode them)."""
    if _BAD_CHAR.search(value):
        raise ValidationFailed(f"{where}: NUL characters and unpaired surrogates are not allowed", field=where)


def check_percent_encoded(raw: bytes, where: str) -> None:
    """A query string, path or form body: once percent-decoded it must be UTF-8 text without NUL.

    Decoding the whole string at once is enough: a decoded ``&`` or ``=`` cannot make bad text good.
    """
    if b"%" not in raw and b"\x00" not in raw and raw.isascii():
        return
    decoded = unquote_to_bytes(raw)
    try:
        text = decoded.decode("utf-8")  # strict: refuses encoded surrogates (CESU-8) too
    except UnicodeDecodeError:
        raise ValidationFailed(f"{where}: not valid UTF-8 once percent-decoded", field=where) from None
    check_text(text, where)


def check_integer(value: int | float, where: str) -> None:
    if not -INT_LIMIT <= value <= INT_LIMIT:
        raise ValidationFailed(f"{where}: numbers must lie within ±(2**63-1)", field=where)


def check_integer_text(value: str, where: str) -> None:
    """An integer parameter as sent (``99999999999999999999``, ``1e20``): within :data:`INT_LIMIT`."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return  # not a number at all: the parameter's own decoding answers that
    if number.is_finite():
        check_integer(number, where)  # type: ignore[arg-type]  # Decimal compares with int exactly


# --- JSON -------------------------------------------------------------------------------------


def check_json(body: bytes) -> Any:
    """Decode a JSON body by the rules above and return it (untyped)."""
    try:
        doc = msgspec.json.decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError):
        raise ValidationFailed("The body is not valid JSON in UTF-8") from None
    except msgspec.ValidationError as exc:  # a number msgspec cannot represent (1e400)
        raise ValidationFailed(f"The body is not acceptable JSON: {exc}") from None
    except RecursionError:
        raise ValidationFailed(f"The body nests deeper than {MAX_DEPTH} levels") from None
    _walk(doc)
    return doc


def _walk(doc: Any) -> None:
    """Every string (keys too), every number and the depth, without recursion."""
    stack: list[tuple[Any, int, str]] = [(doc, 0, "$")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            check_text(node, where)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            check_integer(node, where)
        elif isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise ValidationFailed(f"The body nests deeper than {MAX_DEPTH} levels", field=where)
            if isinstance(node, dict):
                for key, value in node.items():
                    check_text(key, where)
                    stack.append((value, depth + 1, f"{where}.{key}"))
            else:
                stack.extend((value, depth + 1, f"{where}[{i}]") for i, value in enumerate(node))


# --- the hooks --------------------------------------------------------------------------------


def _data_type(request: Request[Any, Any, Any]) -> Any:
    handler = request.route_handler
    key = id(handler)
    cached = _types.get(key)
    # an id outlives its object: a handler of an app already gone (tests build many) may have left
    # its entry under the id a new handler now has, so the entry remembers whose it is
    if cached is None or cached[0]() is not handler:
        field = handler.parsed_fn_signature.parameters.get("data")
        annotation = field.annotation if field is not None else None
        is_json = isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)
        is_list = getattr(annotation, "__origin__", None) is list
        cached = _types[key] = (weakref.ref(handler), annotation if (is_json or is_list) else None)
    return cached[1]


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """The body rules (a form's fields, or JSON), then the strict decode against the handler's type."""
    if request.method not in _BODY_METHODS:
        return
    body = await request.body()  # Litestar's size limit applies: 413 past it
    if not body:
        return
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == _FORM:
        check_percent_encoded(body.replace(b"+", b" "), "form")
        return
    if content_type.startswith("multipart/"):
        # the console's member import uploads a CSV: Litestar parses (and limits) multipart itself; the
        # import's parser refuses NUL in the file, and its few text fields are checked against fixed values
        return
    check_json(body)  # every other body here is JSON, whatever the client called it
    target = _data_type(request)
    if target is None:
        return
    try:
        msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from None
    except msgspec.DecodeError:
        raise ValidationFailed("The body is not valid JSON") from None


def integer_parameters(handler: Any) -> frozenset[str]:
    """The query names whose handler parameter is an integer (``limit``, ``offset``), cached per handler."""
    key = id(handler)
    cached = _int_params.get(key)
    if cached is None or cached[0]() is not handler:
        names = set()
        for name, field in handler.parsed_fn_signature.parameters.items():
            if not _has_int(field.annotation):
                continue
            kwarg = field.kwarg_definition
            if isinstance(kwarg, ParameterKwarg):
                if kwarg.header or kwarg.cookie:
                    continue
                names.add(kwarg.query or name)
            elif kwarg is None:
                names.add(name)
        cached = _int_params[key] = (weakref.ref(handler), frozenset(names))
    return cached[1]


def _has_int(annotation: Any) -> bool:
    """``int``, ``int | None``, ``list[int]``, ``Annotated[int, …]`` — not ``bool``."""
    return annotation is int or any(_has_int(arg) for arg in get_args(annotation))
