"""Member payments over HTTP: the member's online top-up and its status (portal), the merchant's
provider credentials, a member's payments and the online refund (staff), and WeChat Pay's
notification endpoint (public: its authentication is the platform-certificate signature)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, JSONBody

from lianka.billing.membership import terms as membership_terms
from lianka.billing.payments import services as svc
from lianka.billing.payments.queries import Order, Refund
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires, requires_member
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.services import member_merchant
from lianka.platform.settings import Settings
from lianka.web.api.deps import IdempotencyKey

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Secret = Annotated[str, msgspec.Meta(max_length=8000)]


class TopUpBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    plan: Code
    channel: Literal["h5", "jsapi"] = "h5"
    openid: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class MembershipBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product: Code
    channel: Literal["h5", "jsapi"] = "h5"
    openid: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class StartOut(msgspec.Struct):
    order_id: uuid.UUID
    provider: str
    status: str
    redirect_url: str | None
    params: dict[str, str]


class RefundOut(msgspec.Struct):
    refund_id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    bonus_forfeited: int
    status: str
    created_at: datetime


class OrderOut(msgspec.Struct):
    order_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    purpose: dict[str, Any]
    description: str
    amount: int
    currency: str
    provider: str
    status: str
    refunded_amount: int
    created_at: datetime
    paid_at: datetime | None
    refunds: list[RefundOut] = []


class RefundBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Refund ``amount`` (minor units) of the order; all that is left when omitted."""

    amount: Annotated[int, msgspec.Meta(gt=0, le=10**12)] | None = None


class CredentialsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    provider: Literal["stripe", "wechatpay"]
    secret_key: Secret | None = None
    mchid: Secret | None = None
    serial_no: Secret | None = None
    private_key: Secret | None = None
    apiv3_key: Secret | None = None
    appid: Secret | None = None


class CredentialsOut(msgspec.Struct):
    provider: str | None
    hints: dict[str, str]
    updated_at: datetime | None


class WeChatAck(msgspec.Struct):
    code: str
    message: str = ""


def refund_out(r: Refund) -> RefundOut:
    return RefundOut(r.id, r.order_id, r.amount, r.bonus_forfeited, r.status, r.created_at)


def order_out(o: Order, refunds: list[Refund] | None = None) -> OrderOut:
    return OrderOut(
        o.id, o.member_id, o.kind, o.purpose, o.description, o.amount, o.currency, o.provider, o.status,
        o.refunded_amount, o.created_at, o.paid_at, [refund_out(r) for r in refunds or []],
    )  # fmt: skip


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class PortalPaymentsController(Controller):
    path = "/portal/merchants/{merchant:str}/payments"
    tags = ("member portal",)

    @post("/top-up", status_code=201, guards=[requires_member()], summary="Buy a stored-value plan online")
    async def top_up(
        self,
        request: Request[Any, Any, Any],
        merchant: FromPath[str],
        data: JSONBody[TopUpBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> StartOut:
        """Creates the order and the provider's payment; send the member to ``redirect_url`` (or
        hand ``params`` to WeChat's JSAPI). The member is credited when the provider confirms."""
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        back = f"{ident.cfg.public_url}/m/{merchant}/top-up/{{order_id}}"
        s = await svc.start_top_up(
            ident.db, _settings(request), tenant, principal.subject_id, data.plan, return_url=back,
            channel=data.channel, openid=data.openid,
        )  # fmt: skip
        return StartOut(s.order_id, s.provider, s.status, s.redirect_url, s.params)

    @post("/membership", status_code=201, guards=[requires_member()], summary="Buy a paid membership online")
    async def membership(
        self,
        request: Request[Any, Any, Any],
        merchant: FromPath[str],
        data: JSONBody[MembershipBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> StartOut:
        """Creates the order for the product's price and the provider's payment; the membership term
        starts when the provider confirms."""
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        back = f"{ident.cfg.public_url}/m/{merchant}/top-up/{{order_id}}"
        s = await membership_terms.start_online_purchase(
            ident.db, _settings(request), tenant, principal.subject_id, data.product, return_url=back,
            channel=data.channel, openid=data.openid,
        )  # fmt: skip
        return StartOut(s.order_id, s.provider, s.status, s.redirect_url, s.params)

    @get("/", guards=[requires_member()], summary="My online payments and their refunds")
    async def mine(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[OrderOut]:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        h = await svc.member_history(ident.db, tenant, principal.subject_id)
        return [order_out(o, h.refunds.get(o.id)) for o in h.orders]

    @get("/{order_id:uuid}", guards=[requires_member()], summary="One of my orders (asks the provider while pending)")
    async def one(
        self,
        request: Request[Any, Any, Any],
        merchant: FromPath[str],
        order_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> OrderOut:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        order = await svc.get_order(ident.db, tenant, order_id, principal.subject_id)
        if order.status == "pending":
            order = await svc.reconcile(ident.db, _settings(request), tenant, order_id)
        return order_out(order)


class PaymentsController(Controller):
    path = "/payments"
    tags = ("payments",)

    @get("/credentials", guards=[requires(Permission.BILLING_MANAGE)], summary="The provider chosen (last 4 only)")
    async def show_credentials(self, principal: CurrentPrincipal, ident: IdentityService) -> CredentialsOut:
        v = await svc.credentials_view(ident.db, principal.tenant)
        return CredentialsOut(v.provider, v.hints, v.updated_at)

    @put(
        "/credentials",
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Choose the provider and enter its credentials (stored encrypted, never shown back)",
    )
    async def save_credentials(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CredentialsBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> CredentialsOut:
        values = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "provider" and v is not None}
        v = await svc.save_credentials(ident.db, _settings(request), principal.tenant, data.provider, values)
        return CredentialsOut(v.provider, v.hints, v.updated_at)

    @get("/members/{member_id:uuid}", guards=[requires(Permission.MEMBERS_READ)], summary="A member's online payments")
    async def of_member(
        self, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[OrderOut]:
        h = await svc.member_history(ident.db, principal.tenant, member_id)
        return [order_out(o, h.refunds.get(o.id)) for o in h.orders]

    @post(
        "/orders/{order_id:uuid}/refund",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="Refund an online payment through its provider (a top-up: unused principal; Idempotency-Key)",
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey,
        order_id: FromPath[uuid.UUID],
        data: JSONBody[RefundBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[RefundOut]:
        done = await svc.refund_order(
            ident.db, _settings(request), principal.tenant, order_id, key=idempotency_key, amount=data.amount
        )
        return Response(refund_out(done.refund), status_code=200 if done.replayed else 201)

    @post(
        "/orders/{order_id:uuid}/reconcile",
        status_code=200,
        guards=[requires(Permission.MEMBERS_READ)],
        summary="Ask the provider about a pending order now",
    )
    async def reconcile(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> OrderOut:
        return order_out(await svc.reconcile(ident.db, _settings(request), principal.tenant, order_id))


class PaymentWebhooksController(Controller):
    path = "/webhooks"
    tags = ("payments",)

    @post("/wechatpay/{ref:str}", status_code=200, guards=[public], summary="WeChat Pay notifications (signed)")
    async def wechatpay(self, request: Request[Any, Any, Any], ref: FromPath[str], ident: IdentityService) -> WeChatAck:
        """Verified with the merchant's platform certificate, decrypted with its APIv3 key, stored once
        by notification id and answered ``{"code": "SUCCESS"}`` after the commit; processed by a job.
        A bad signature is recorded and refused (400)."""
        body = await request.body()
        await svc.receive_wechatpay_notification(ident.db, _settings(request), ref, dict(request.headers), body)
        return WeChatAck("SUCCESS")
