"""Strict request bodies.

Litestar converts bodies with msgspec's *lax* rules (``"12"`` becomes ``12``), which is right for
query strings and wrong for money: a POS that sends an amount as a string has a bug we want to see.
This ``before_request`` hook decodes a handler's ``data`` body strictly against the same type first,
so a wrong type is a 400 problem and the handler never runs.
"""

from __future__ import annotations

import weakref
from typing import Any

import msgspec
from litestar import Request

from lianka.platform.errors import ValidationFailed

_WRITE_METHODS = {"POST", "PUT", "PATCH"}
_types: dict[int, tuple[weakref.ref[Any], Any]] = {}


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
    if request.method not in _WRITE_METHODS:
        return
    target = _data_type(request)
    if target is None:
        return
    body = await request.body()
    try:
        msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from None
    except msgspec.DecodeError:
        raise ValidationFailed("The body is not valid JSON") from None
