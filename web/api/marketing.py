"""Marketing: segments (saved audiences with a live preview), the merchant's SMS, e-mail and WeChat
providers (credentials sealed, shown masked), the SMS providers' delivery-receipt and reply webhooks
(public: authenticated by the token in the URL configured at the provider), and the member's WeChat
subscriptions (what ``wx.requestSubscribeMessage`` answered)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires, requires_member
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.services import member_merchant
from lianka.tenants.marketing import providers, receipts, replies, wechat
from lianka.tenants.marketing import services as svc
from lianka.tenants.marketing.models import Segment
from lianka.web.api.deps import IdempotencyKey


class SegmentIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    #: the rule document (``{"version": 1, "root": {"kind": "group", ...}}``), decoded strictly
    rules: dict[str, Any]


class SegmentPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    rules: dict[str, Any] | None = None


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    rules: dict[str, Any]


class SampleOut(msgspec.Struct):
    member_id: uuid.UUID
    card_number: str
    name: str
    tier: str | None


class PreviewOut(msgspec.Struct):
    count: int
    sample: list[SampleOut]


class SegmentOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    rules: dict[str, Any]
    last_count: int | None
    counted_at: datetime | None
    updated_at: datetime


class ProviderIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: str
    settings: dict[str, str] = msgspec.field(default_factory=dict)
    #: the credential's secret part; empty keeps the stored one
    secret: str | None = None


class ProviderOut(msgspec.Struct):
    channel: str
    provider: str
    settings: dict[str, str]
    secret_hint: str
    updated_at: datetime | None


def _out(s: Segment) -> SegmentOut:
    return SegmentOut(s.id, s.name, dict(s.rules), s.last_count, s.counted_at, s.updated_at)


def _provider(v: providers.ProviderView) -> ProviderOut:
    return ProviderOut(v.channel, v.provider, v.settings, v.secret_hint, v.updated_at)


class SegmentsController(Controller):
    path = "/segments"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Saved segments with their last counts")
    async def list_segments(self, principal: CurrentPrincipal, ident: IdentityService) -> list[SegmentOut]:
        return [_out(s) for s in await svc.list_segments(ident.db, principal.tenant)]

    @post("/", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Save a segment (rules checked, counted)")
    async def create(
        self, data: JSONBody[SegmentIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> SegmentOut:
        return _out(await svc.create_segment(ident.db, principal.tenant, data.name, data.rules))

    @post(
        "/preview",
        status_code=200,
        guards=[requires(Permission.CAMPAIGNS_READ)],
        summary="Live count and a sample of 10 for unsaved rules",
    )
    async def preview(
        self, data: JSONBody[PreviewIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> PreviewOut:
        p = await svc.preview(ident.db, principal.tenant, data.rules)
        return PreviewOut(p.count, [SampleOut(r.member_id, r.card_number, r.name, r.tier_code) for r in p.sample])

    @get("/{segment_id:uuid}", guards=[requires(Permission.CAMPAIGNS_READ)], summary="One segment")
    async def get_segment(
        self, segment_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> SegmentOut:
        return _out(await svc.get_segment(ident.db, principal.tenant, segment_id))

    @patch("/{segment_id:uuid}", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Rename or change rules")
    async def change(
        self,
        segment_id: FromPath[uuid.UUID],
        data: JSONBody[SegmentPatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> SegmentOut:
        return _out(await svc.change_segment(ident.db, principal.tenant, segment_id, name=data.name, raw=data.rules))

    @delete("/{segment_id:uuid}", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Delete a segment")
    async def remove(
        self, segment_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> None:
        await svc.delete_segment(ident.db, principal.tenant, segment_id)


class MessagingProvidersController(Controller):
    path = "/messaging/providers"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.MERCHANT_READ)], summary="SMS and e-mail providers (secrets masked)")
    async def list_providers(self, principal: CurrentPrincipal, ident: IdentityService) -> list[ProviderOut]:
        return [_provider(v) for v in await providers.providers(ident.db, principal.tenant)]

    @put("/{channel:str}", guards=[requires(Permission.MERCHANT_WRITE)], summary="Choose a channel's provider")
    async def choose(
        self, channel: FromPath[str], data: JSONBody[ProviderIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> ProviderOut:
        v = await providers.save_provider(
            ident.db, principal.tenant, channel, data.provider, dict(data.settings), data.secret
        )
        return _provider(v)


class SmsReceiptsController(Controller):
    path = "/webhooks/sms"
    tags = ("marketing",)

    @post("/{provider:str}", status_code=200, guards=[public], summary="SMS delivery receipts (Aliyun, Tencent)")
    async def receive(
        self,
        provider: FromPath[str],
        request: Request[Any, Any, Any],
        ident: IdentityService,
        token: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """The push's JSON array in the provider's shape; stored once per message and phone; the
        answer is what the provider expects (Aliyun ``{"code": 0}``, Tencent ``{"result": 0}``)."""
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        await receipts.receive(ident.db, provider, token, body)
        return receipts.ack(provider)

    @post("/{provider:str}/replies", status_code=200, guards=[public],
          summary="Members' SMS replies (Aliyun SmsUp push, Tencent reply callback); TD withdraws SMS consent")  # fmt: skip
    async def replies(
        self,
        provider: FromPath[str],
        request: Request[Any, Any, Any],
        ident: IdentityService,
        token: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Aliyun: a JSON array (``sequence_id`` identifies a reply); Tencent: one object. An opt-out
        reply (TD, T, N, 退订…) withdraws that member's SMS consent at once; a re-push changes nothing.
        The answer is what the provider expects (Aliyun ``{"code": 0}``, Tencent ``{"result": 0}``)."""
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        await replies.receive(ident.db, provider, token, body)
        return replies.ack(provider)


class SmsReplyOut(msgspec.Struct):
    received_at: datetime
    phone: str
    member_id: uuid.UUID | None
    content: str
    #: unsubscribe (withdrew the SMS consent) or stored
    action: str
    provider: str


class SmsRepliesController(Controller):
    path = "/marketing/sms-replies"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Members' latest replies to SMS (TD and others)")
    async def latest(self, principal: CurrentPrincipal, ident: IdentityService) -> list[SmsReplyOut]:
        rows = await replies.latest(ident.db, principal.tenant)
        return [SmsReplyOut(r.received_at, r.phone, r.member_id, r.content, r.action, r.provider) for r in rows]


class WechatSubscriptionsIn(msgspec.Struct, forbid_unknown_fields=True):
    #: the member's openid at the merchant's mini-program (from ``wx.login`` → ``code2Session``)
    openid: str
    #: ``wx.requestSubscribeMessage``'s success result as is: ``{"errMsg": …, "<template id>": "accept"}``
    results: dict[str, str]


class WechatSubscriptionsOut(msgspec.Struct):
    #: open one-time subscriptions per template id
    grants: dict[str, int]
    added: int


class PortalWechatController(Controller):
    path = "/portal/merchants/{merchant:str}/wechat/subscriptions"
    tags = ("member portal",)

    @post("/", guards=[requires_member()], status_code=201,
          summary="Report wx.requestSubscribeMessage's answer: one grant per accepted template (Idempotency-Key)")  # fmt: skip
    async def report(
        self,
        merchant: FromPath[str],
        data: JSONBody[WechatSubscriptionsIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
        idempotency_key: IdempotencyKey,
    ) -> WechatSubscriptionsOut:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        out = await wechat.report(ident.db, tenant, principal.subject_id, data.openid, dict(data.results),
                                  key=idempotency_key)  # fmt: skip
        return WechatSubscriptionsOut(out.grants, out.added)

    @get("/", guards=[requires_member()], summary="My open WeChat subscriptions per template")
    async def mine(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> WechatSubscriptionsOut:
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return WechatSubscriptionsOut(await wechat.grants(ident.db, tenant, principal.subject_id), 0)
