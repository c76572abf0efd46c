"""Web plumbing every controller shares, written once.

Handlers declare what they need by name and Litestar provides it (registered in
``web.app.create_app``):

* ``db: Database`` — the application's database (handlers pass it to one use case, which opens the
  unit of work; handlers never open one themselves);
* ``idempotency_key: str`` — the request's ``Idempotency-Key`` header, checked (400 problem when it
  is missing or malformed); declaring it documents the header in the OpenAPI.

and use two functions for the answer and the branch:

* :func:`created` — 201 for the first call of an idempotent write, 200 with
  ``Idempotent-Replayed: true`` and the same body for a retry;
* :func:`acting_branch` — the branch a principal acts at: the one the request names, else the
  principal's only branch; a branch-limited principal (branch terminal, manager, cashier) may act
  only at its own branches.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter

from lianka.platform.db import Database
from lianka.platform.idempotency import check_key
from lianka.platform.identity.principal import Principal


async def provide_db(request: Request[Any, Any, Any]) -> Database:
    db: Database = request.app.state.db
    return db


async def provide_idempotency_key(
    raw_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            required=False,
            description="A key unique to this write; a retry with the same key answers the first response",
        ),
    ] = None,
) -> str:
    return check_key(raw_key)


#: ``db: Db`` in a handler's signature
Db = NamedDependency[Database]
#: ``idempotency_key: IdempotencyKey`` in a handler's signature
IdempotencyKey = NamedDependency[str]

DEPENDENCIES: dict[str, Provide] = {
    "db": Provide(provide_db),
    "idempotency_key": Provide(provide_idempotency_key),
}


def created(body: Any, replayed: bool) -> Response[Any]:
    """201 for the first call; a retry answers 200 with ``Idempotent-Replayed: true`` and the same body."""
    return Response(
        body, status_code=200 if replayed else 201, headers={"Idempotent-Replayed": "true"} if replayed else {}
    )


def acting_branch(principal: Principal, requested: uuid.UUID | None, *, required: bool = True) -> uuid.UUID | None:
    """The branch this request acts at (see the module docstring).

    ``required``: a branch-limited principal must end up at one of its branches (a sale, a top-up);
    otherwise (an event that may name no branch) ``None`` is allowed through.
    """
    branch = requested or principal.default_branch()
    if principal.branch_ids is not None and (required or branch is not None):
        principal.require_branch(branch)
    return branch


def actor_of(principal: Principal) -> str:
    """Who did it, for the records: ``staff:<id>``, ``client:<client_id>`` or ``member:<id>``."""
    if principal.client_id:
        return f"client:{principal.client_id}"
    return f"{principal.kind}:{principal.subject_id}"
