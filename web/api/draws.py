"""The lucky draw (抽奖): staff define draws (CAMPAIGNS_WRITE, paused by the billing gate for a
restricted merchant) and read them with their stock left and draws count (CAMPAIGNS_READ); a member
draws from the portal with an Idempotency-Key (a replay returns the first result, draws nothing)."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, patch, post
from litestar.params import FromPath, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires, requires_member
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.services import member_merchant
from lianka.tenants.marketing import draws as svc
from lianka.web.api.deps import IdempotencyKey, created


class DrawsController(Controller):
    path = "/draws"
    tags = ("lucky draw",)

    @post(
        "/",
        guards=[requires(Permission.CAMPAIGNS_WRITE)],
        summary="Define a lucky draw: window, cost in points (0 = free once a day), budget, prizes",
    )
    async def create(
        self, data: JSONBody[svc.DrawIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> svc.DrawOut:
        return await svc.create_draw(ident.db, principal.tenant, data)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="The lucky draws, newest first")
    async def list_draws(self, principal: CurrentPrincipal, ident: IdentityService) -> list[svc.DrawOut]:
        return await svc.list_draws(ident.db, principal.tenant)

    @get("/{draw_id:uuid}", guards=[requires(Permission.CAMPAIGNS_READ)], summary="One draw: stock left, draws count")
    async def get_draw(
        self, draw_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> svc.DrawOut:
        return await svc.get_draw(ident.db, principal.tenant, draw_id)

    @patch(
        "/{draw_id:uuid}",
        guards=[requires(Permission.CAMPAIGNS_WRITE)],
        summary="Rename a draw, move its end, or switch it off (active=false) and on",
    )
    async def update(
        self,
        draw_id: FromPath[uuid.UUID],
        data: JSONBody[svc.DrawPatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> svc.DrawOut:
        return await svc.update_draw(ident.db, principal.tenant, draw_id, data)


class PortalDrawsController(Controller):
    path = "/portal/merchants/{merchant:str}/draws"
    tags = ("member portal",)

    @get("/{draw_id:uuid}", guards=[requires_member()], summary="A lucky draw as I see it: prizes, can I draw now")
    async def view(
        self, merchant: FromPath[str], draw_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> svc.PortalDraw:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await svc.portal_view(ident.db, tenant, draw_id, principal.subject_id)

    @post(
        "/{draw_id:uuid}/draw",
        guards=[requires_member()],
        summary="Draw once (points spent or today's free draw; Idempotency-Key)",
    )
    async def draw(
        self,
        idempotency_key: IdempotencyKey,
        merchant: FromPath[str],
        draw_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[svc.DrawResult]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        out, replayed = await svc.draw(ident.db, tenant, draw_id, principal.subject_id, idempotency_key)
        return created(out, replayed)
