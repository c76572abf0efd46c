"""Helpers for idempotent writes: the ``Idempotency-Key`` header and the 201/200-replayed answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from lianka.platform.db import Database
from lianka.platform.idempotency import check_key


def db_of(request: Request[Any, Any, Any]) -> Database:
    db: Database = request.app.state.db
    return db


def key_of(request: Request[Any, Any, Any]) -> str:
    """The request's Idempotency-Key (400 problem when missing or malformed)."""
    return check_key(request.headers.get("idempotency-key"))


def created(body: Any, replayed: bool) -> Response[Any]:
    """201 for the first call; a retry answers 200 with ``Idempotent-Replayed: true`` and the same body."""
    return Response(body, status_code=200 if replayed else 201,
                    headers={"Idempotent-Replayed": "true"} if replayed else {})


def actor_of(principal: Any) -> str:
    """Who did it, for the records: ``staff:<id>``, ``client:<client_id>`` or ``member:<id>``."""
    if principal.client_id:
        return f"client:{principal.client_id}"
    return f"{principal.kind}:{principal.subject_id}"
