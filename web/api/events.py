"""Things members do that earning rules reward, reported by staff, a POS or the merchant's systems
(``members:write``, Idempotency-Key): a review, or a custom event by name."""

from __future__ import annotations

from litestar import Controller, Response, post
from litestar.params import JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import events
from lianka.web.api.deps import Db, IdempotencyKey, acting_branch, created


class EventsController(Controller):
    path = "/"
    tags = ("earning rules",)

    @post(
        "/events",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="A custom event happened (e.g. wechat_share): the CUSTOM rules listening to it award the member "
        "(Idempotency-Key)",
    )
    async def event(
        self, idempotency_key: IdempotencyKey, data: JSONBody[schemas.EventIn], principal: CurrentPrincipal, db: Db
    ) -> Response[schemas.EventOut]:
        out, replayed = await events.record(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id, required=False)
        )
        return created(out, replayed)

    @post(
        "/reviews",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="The member wrote a review: the REVIEW rules award the member (Idempotency-Key)",
    )
    async def review(
        self, idempotency_key: IdempotencyKey, data: JSONBody[schemas.ReviewIn], principal: CurrentPrincipal, db: Db
    ) -> Response[schemas.EventOut]:
        out, replayed = await events.record(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id, required=False)
        )
        return created(out, replayed)
