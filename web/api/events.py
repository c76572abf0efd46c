"""Things members do that earning rules reward, reported by staff, a POS or the merchant's systems
(``members:write``, Idempotency-Key): a review, or a custom event by name."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import events
from lianka.web.api.idempotent import created, key_of


def _branch(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    branch = requested or principal.default_branch()
    if principal.branch_ids is not None and branch is not None:
        principal.require_branch(branch)
    return branch


class EventsController(Controller):
    path = "/"
    tags = ("earning rules",)

    @post("/events", guards=[requires(Permission.MEMBERS_WRITE)],
          summary="A custom event happened (e.g. wechat_share): the CUSTOM rules listening to it award the member "
                  "(Idempotency-Key)")
    async def event(self, request: Request[Any, Any, Any], data: JSONBody[schemas.EventIn],
                    principal: CurrentPrincipal, ident: IdentityService) -> Response[schemas.EventOut]:
        out, replayed = await events.record(ident.db, principal.tenant, data, key_of(request),
                                            _branch(principal, data.branch_id))
        return created(out, replayed)

    @post("/reviews", guards=[requires(Permission.MEMBERS_WRITE)],
          summary="The member wrote a review: the REVIEW rules award the member (Idempotency-Key)")
    async def review(self, request: Request[Any, Any, Any], data: JSONBody[schemas.ReviewIn],
                     principal: CurrentPrincipal, ident: IdentityService) -> Response[schemas.EventOut]:
        out, replayed = await events.record(ident.db, principal.tenant, data, key_of(request),
                                            _branch(principal, data.branch_id))
        return created(out, replayed)
