"""Paid membership (付费会员) API: products and settings (console), a purchase and a refund at the till
(Idempotency-Key), cancellation, a member's terms; the portal's own membership with its value-back
meter. Online purchases arrive through ``billing/payments`` (``terms.fulfil_membership``)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.billing.membership import products, schemas, terms
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires, requires_member
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.services import member_merchant
from lianka.web.api.deps import Db, IdempotencyKey, acting_branch, created


class MembershipController(Controller):
    path = "/membership"
    tags = ("paid membership",)

    @get("/products", guards=[requires(Permission.PROGRAMME_READ)], summary="Membership products (active first)")
    async def list_products(
        self, db: Db, principal: CurrentPrincipal, active: FromQuery[bool | None] = None
    ) -> list[schemas.ProductOut]:
        return await products.list_products(db, principal.tenant, active=active)

    @post(
        "/products",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="A membership product: period, price, perks (tier, extra discount, points multiplier, coupon pack, gifts)",
    )
    async def create_product(
        self, db: Db, data: JSONBody[schemas.ProductIn], principal: CurrentPrincipal
    ) -> schemas.ProductOut:
        return await products.create_product(db, principal.tenant, data)

    @patch(
        "/products/{product_id:uuid}",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Change or retire a product (applies to purchases from now on; terms keep their perks)",
    )
    async def update_product(
        self, db: Db, product_id: FromPath[uuid.UUID], data: JSONBody[schemas.ProductPatch], principal: CurrentPrincipal
    ) -> schemas.ProductOut:
        return await products.update_product(db, principal.tenant, product_id, data)

    @get(
        "/settings",
        guards=[requires(Permission.PROGRAMME_READ)],
        summary="Refund policy, reminder lead time, and the deferred membership revenue owed (liability)",
    )
    async def get_settings(self, db: Db, principal: CurrentPrincipal) -> schemas.SettingsOut:
        return await products.get_settings(db, principal.tenant)

    @put("/settings", guards=[requires(Permission.PROGRAMME_WRITE)], summary="Set the refund policy and reminder")
    async def put_settings(
        self, db: Db, data: JSONBody[schemas.SettingsIn], principal: CurrentPrincipal
    ) -> schemas.SettingsOut:
        return await products.save_settings(db, principal.tenant, data)

    @get(
        "/members/{member_id:uuid}",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="A member's paid membership: the live term, every term, the value-back meter",
    )
    async def member(
        self, db: Db, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> schemas.MembershipOut:
        return await terms.member_membership(db, principal.tenant, member_id)

    @post(
        "/terms/{term_id:uuid}/cancel",
        guards=[requires(Permission.MEMBERS_WRITE)],
        status_code=200,
        summary="Stop auto-renewal; the perks last to the end of the term",
    )
    async def cancel(self, db: Db, term_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> schemas.TermOut:
        return await terms.cancel(db, principal.tenant, term_id)


class PosMembershipController(Controller):
    path = "/pos/memberships"
    tags = ("pos", "paid membership")

    @post(
        "",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Sell a paid membership at the counter, paid in cash or by card there (Idempotency-Key); "
        "bought while one runs, it starts when that one ends",
    )
    async def buy(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        data: JSONBody[schemas.TillPurchaseIn],
        principal: CurrentPrincipal,
    ) -> Response[schemas.TermOut]:
        out, replayed = await terms.buy_at_till(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id)
        )
        return created(out, replayed)

    @post(
        "/{term_id:uuid}/refund",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Pay back the unused whole months of a term (and any term bought to follow it) by the "
        "merchant's policy; the perks end now (Idempotency-Key)",
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        idempotency_key: IdempotencyKey,
        term_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RefundIn],
        principal: CurrentPrincipal,
    ) -> Response[schemas.RefundOut]:
        out, replayed = await terms.refund_at_till(
            db, request.app.state.settings, principal.tenant, term_id, data, idempotency_key
        )
        return created(out, replayed)


class PortalMembershipController(Controller):
    path = "/portal/merchants/{merchant:str}/membership"
    tags = ("member portal",)

    @get("", guards=[requires_member()], summary="My paid membership here: the term, and 本年已省 ¥X / 会费 ¥Y")
    async def mine(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.MembershipOut:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await terms.member_membership(ident.db, tenant, principal.subject_id)

    @get("/products", guards=[requires_member()], summary="The membership products I can buy")
    async def products_for_sale(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[schemas.ProductOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await products.list_products(ident.db, tenant, active=True)
