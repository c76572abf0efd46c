"""The member portal's referral and coupon centre for one merchant the member belongs to — the use
cases of the portal's "Invite friends" and "Coupon centre" pages. ``{merchant}`` is the merchant's
slug or id; a merchant the member has not joined answers 404 like one that does not exist."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.params import FromPath

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.platform.identity.services import member_merchant
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import coupon_centre, referrals
from lianka.web.api.deps import IdempotencyKey, created


class PortalReferralController(Controller):
    path = "/portal/merchants/{merchant:str}"
    tags = ("member portal",)

    @get(
        "/referral",
        guards=[requires_member()],
        summary="My invitation code and link, the friends who joined through it and what they earned me",
    )
    async def referral(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> referrals.Invite:
        return await referrals.invite(ident.db, merchant, principal.subject_id, ident.cfg.public_url)

    @get("/coupon-centre", guards=[requires_member()], summary="Coupons I can claim (领券中心), with the stock left")
    async def offers(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[coupon_centre.Offer]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await coupon_centre.offers(ident.db, tenant, principal.subject_id)

    @post(
        "/coupon-centre/{template_id:uuid}/claim",
        guards=[requires_member()],
        summary="Claim one coupon (stock and per-member limit; Idempotency-Key)",
    )
    async def claim(
        self,
        idempotency_key: IdempotencyKey,
        merchant: FromPath[str],
        template_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[schemas.CouponOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        out, replayed = await coupon_centre.claim(ident.db, tenant, template_id, principal.subject_id, idempotency_key)
        return created(out, replayed)
