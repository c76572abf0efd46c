"""The member portal's programme pages for one merchant the member belongs to: daily check-in (签到),
the rewards catalogue and redemptions, coupons. ``{merchant}`` is the merchant's slug or id; a
merchant the member has not joined answers 404 like one that does not exist."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.platform.identity.services import member_merchant
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import checkin, coupon_admin, rewards
from lianka.web.api.deps import IdempotencyKey, actor_of, created


class PortalProgrammeController(Controller):
    path = "/portal/merchants/{merchant:str}"
    tags = ("member portal",)

    @get("/checkin", guards=[requires_member()], summary="Have I checked in today? My streak and the next bonus")
    async def checkin_status(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.CheckinStatus:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await checkin.status(ident.db, tenant, principal.subject_id)

    @post(
        "/checkin",
        guards=[requires_member()],
        summary="Check in for today (201; once per local day — a retry answers 200 with the same check-in)",
    )
    async def check_in(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[schemas.CheckinOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        out = await checkin.check_in(ident.db, tenant, principal.subject_id)
        return Response(out, status_code=200 if out.already else 201)

    @get(
        "/rewards",
        guards=[requires_member()],
        summary="The rewards catalogue as I see it (redeemable=true: only what I can redeem now)",
    )
    async def catalogue(
        self,
        merchant: FromPath[str],
        principal: CurrentPrincipal,
        ident: IdentityService,
        redeemable: FromQuery[bool] = False,
    ) -> schemas.CatalogueOut:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await rewards.catalogue(ident.db, tenant, principal.subject_id, redeemable_only=redeemable)

    @post(
        "/rewards/{reward_id:uuid}/redeem",
        guards=[requires_member()],
        summary="Redeem a reward with my points (Idempotency-Key)",
    )
    async def redeem(
        self,
        idempotency_key: IdempotencyKey,
        merchant: FromPath[str],
        reward_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[schemas.RedemptionOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        out, replayed = await rewards.redeem(
            ident.db,
            tenant,
            reward_id,
            principal.subject_id,
            idempotency_key,
            channel="portal",
            actor=actor_of(principal),
        )
        return created(out, replayed)

    @get("/redemptions", guards=[requires_member()], summary="My redemptions, newest first")
    async def redemptions(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[schemas.RedemptionOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await rewards.redemptions(ident.db, tenant, member_id=principal.subject_id)

    @get("/coupons", guards=[requires_member()], summary="My coupons (status=issued for the usable ones)")
    async def coupons(
        self,
        merchant: FromPath[str],
        principal: CurrentPrincipal,
        ident: IdentityService,
        status: FromQuery[str | None] = None,
    ) -> list[schemas.CouponOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await coupon_admin.member_coupons(ident.db, tenant, principal.subject_id, status=status)
