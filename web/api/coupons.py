"""Coupon templates (代金券) and coupons: staff configure templates (``programme:write``), issue a
coupon to a member (``coupons:issue``, Idempotency-Key) and list a member's coupons."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import coupon_admin
from lianka.web.api.deps import Db, IdempotencyKey, actor_of, created


class CouponTemplatesController(Controller):
    path = "/coupon-templates"
    tags = ("coupons",)

    @post(
        "/",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Create a coupon template: fixed amount off, percent off with a cap, or a gift item",
    )
    async def create(
        self, data: JSONBody[schemas.TemplateIn], principal: CurrentPrincipal, db: Db
    ) -> schemas.TemplateOut:
        return await coupon_admin.create_template(db, principal.tenant, data)

    @get("/", guards=[requires(Permission.PROGRAMME_READ)], summary="Coupon templates (active=true|false filters)")
    async def list_templates(
        self, principal: CurrentPrincipal, db: Db, active: FromQuery[bool | None] = None
    ) -> list[schemas.TemplateOut]:
        return await coupon_admin.list_templates(db, principal.tenant, active=active)

    @get("/{template_id:uuid}", guards=[requires(Permission.PROGRAMME_READ)], summary="One coupon template")
    async def get_template(
        self, template_id: FromPath[uuid.UUID], principal: CurrentPrincipal, db: Db
    ) -> schemas.TemplateOut:
        return await coupon_admin.get_template(db, principal.tenant, template_id)

    @post(
        "/{template_id:uuid}/deactivate",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        status_code=200,
        summary="Stop issuing coupons of this template (issued coupons stay valid)",
    )
    async def deactivate(
        self, template_id: FromPath[uuid.UUID], principal: CurrentPrincipal, db: Db
    ) -> schemas.TemplateOut:
        return await coupon_admin.deactivate(db, principal.tenant, template_id)

    @post(
        "/{template_id:uuid}/issue",
        guards=[requires(Permission.COUPONS_ISSUE)],
        summary="Issue one coupon of this template to a member (stock, per-member limit; Idempotency-Key)",
    )
    async def issue(
        self,
        idempotency_key: IdempotencyKey,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.IssueIn],
        principal: CurrentPrincipal,
        db: Db,
    ) -> Response[schemas.CouponOut]:
        out, replayed = await coupon_admin.issue(
            db, principal.tenant, template_id, data.member_id, idempotency_key, actor=actor_of(principal)
        )
        return created(out, replayed)


class MemberCouponsController(Controller):
    path = "/members/{member_id:uuid}/coupons"
    tags = ("coupons",)

    @get(
        "/",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="A member's coupons, newest first (status=issued|redeemed|void|expired filters)",
    )
    async def member_coupons(
        self, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal, db: Db, status: FromQuery[str | None] = None
    ) -> list[schemas.CouponOut]:
        return await coupon_admin.member_coupons(db, principal.tenant, member_id, status=status)
