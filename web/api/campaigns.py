"""Marketing campaigns: create, preview per recipient, send (now or at the scheduled time), results
(with attribution against the holdout control group), dead letters and their re-send, and the
weekly frequency cap. Writes need CAMPAIGNS_WRITE, which the billing gate pauses for a restricted
merchant (``web/billing_gate.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import campaigns as svc
from lianka.tenants.marketing.models import Campaign


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    segment_id: uuid.UUID
    channel: str
    template_a: str
    template_b: str | None = None
    split_a_pct: int = 100
    holdout_pct: int = 0
    subject: str = ""
    coupon_template_id: uuid.UUID | None = None
    scheduled_at: datetime | None = None
    attribution_days: int = 7
    #: the price of one message, fen (for ROI)
    message_cost: int = 0
    link: str = ""


class CampaignOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    segment_id: uuid.UUID | None
    channel: str
    status: str
    template_a: str
    template_b: str | None
    split_a_pct: int
    holdout_pct: int
    coupon_template_id: uuid.UUID | None
    scheduled_at: datetime | None
    started_at: datetime | None
    recipients: int


class PreviewOut(msgspec.Struct):
    variant: str
    text: str


class GroupOut(msgspec.Struct):
    members: int
    converted: int
    sales: int


class VariantOut(msgspec.Struct):
    variant: str
    recipients: int
    converted: int
    sales: int


class AttributionOut(msgspec.Struct):
    recipients: GroupOut
    control: GroupOut
    #: percentage points, as a decimal string ("5.00")
    uplift_pct: str
    incremental_sales: int
    coupon_cost: int
    message_cost: int
    #: percent, as a decimal string; null without cost
    roi_pct: str | None


class ResultsOut(msgspec.Struct):
    campaign: CampaignOut
    currency: str
    sent: int
    delivered: int
    failed: int
    dead: int
    queued: int
    opened: int
    coupons_redeemed: int
    attribution: AttributionOut | None
    variants: list[VariantOut]


class DeadLetterOut(msgspec.Struct):
    member_id: uuid.UUID
    attempts: int
    error: str


class CapIn(msgspec.Struct, forbid_unknown_fields=True):
    frequency_cap: int


class CapOut(msgspec.Struct):
    frequency_cap: int


def _out(c: Campaign) -> CampaignOut:
    return CampaignOut(c.id, c.name, c.segment_id, c.channel, c.status, c.template_a, c.template_b, c.split_a_pct,
                       c.holdout_pct, c.coupon_template_id, c.scheduled_at, c.started_at, c.recipients)  # fmt: skip


def _pct(value: object) -> str:
    from decimal import Decimal
    from fractions import Fraction

    assert isinstance(value, Fraction)
    return f"{Decimal(value.numerator * 100) / Decimal(value.denominator):.2f}"


def results_out(r: svc.Results) -> ResultsOut:
    a = r.attribution
    attribution = (
        AttributionOut(
            GroupOut(a.recipients.members, a.recipients.converted, a.recipients.sales),
            GroupOut(a.control.members, a.control.converted, a.control.sales),
            _pct(a.uplift),
            a.incremental_sales,
            a.coupon_cost,
            a.message_cost,
            None if a.roi is None else _pct(a.roi),
        )
        if a is not None
        else None
    )
    return ResultsOut(_out(r.campaign), r.currency, r.sent, r.count("delivered"), r.count("failed"), r.count("dead"),
                      r.count("queued") + r.count("pending") + r.count("retry"), r.count("opened"),
                      r.coupons_redeemed, attribution,
                      [VariantOut(v, g.members, g.converted, g.sales) for v, g in r.variants.items()])  # fmt: skip


class CampaignsController(Controller):
    path = "/campaigns"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Campaigns, newest first")
    async def list_campaigns(self, principal: CurrentPrincipal, ident: IdentityService) -> list[CampaignOut]:
        return [_out(c) for c in await svc.list_campaigns(ident.db, principal.tenant)]

    @post("/", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Create a campaign (a draft)")
    async def create(
        self, data: JSONBody[CampaignIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> CampaignOut:
        spec = svc.CampaignIn(**msgspec.structs.asdict(data))
        return _out(await svc.create_campaign(ident.db, principal.tenant, spec))

    @get("/{campaign_id:uuid}", guards=[requires(Permission.CAMPAIGNS_READ)], summary="One campaign")
    async def get_campaign(
        self, campaign_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> CampaignOut:
        return _out(await svc.get_campaign(ident.db, principal.tenant, campaign_id))

    @get(
        "/{campaign_id:uuid}/preview",
        guards=[requires(Permission.CAMPAIGNS_READ)],
        summary="Each variant as a member would get it (sample values without member_id)",
    )
    async def preview(
        self,
        campaign_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
        member_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[PreviewOut]:
        shown = await svc.preview(ident.db, principal.tenant, campaign_id, member_id)
        return [PreviewOut(p.variant, p.text) for p in shown]

    @post(
        "/{campaign_id:uuid}/send",
        status_code=200,
        guards=[requires(Permission.CAMPAIGNS_WRITE)],
        summary="Send now, or schedule (402 when the plan's messages this month would be passed)",
    )
    async def send(
        self, campaign_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> CampaignOut:
        return _out(await svc.send(ident.db, principal.tenant, campaign_id, actor=audit.by(principal)))

    @get("/{campaign_id:uuid}/results", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Results")
    async def results(
        self, campaign_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> ResultsOut:
        return results_out(await svc.results(ident.db, principal.tenant, campaign_id))

    @get("/{campaign_id:uuid}/dead-letters", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Dead letters")
    async def dead_letters(
        self, campaign_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[DeadLetterOut]:
        rows = await svc.dead_letters(ident.db, principal.tenant, campaign_id)
        return [DeadLetterOut(m.member_id, m.attempts, m.error) for m in rows]

    @post(
        "/{campaign_id:uuid}/dead-letters/{member_id:uuid}/resend",
        status_code=204,
        guards=[requires(Permission.CAMPAIGNS_WRITE)],
        summary="Queue a dead letter again",
    )
    async def resend(
        self,
        campaign_id: FromPath[uuid.UUID],
        member_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> None:
        await svc.resend(ident.db, principal.tenant, campaign_id, member_id)


class MarketingSettingsController(Controller):
    path = "/marketing/settings"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="The weekly frequency cap")
    async def get_settings(self, principal: CurrentPrincipal, ident: IdentityService) -> CapOut:
        return CapOut(await svc.frequency_cap(ident.db, principal.tenant))

    @put("/", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Set the weekly frequency cap")
    async def put_settings(self, data: JSONBody[CapIn], principal: CurrentPrincipal, ident: IdentityService) -> CapOut:
        await svc.set_frequency_cap(ident.db, principal.tenant, data.frequency_cap)
        return CapOut(data.frequency_cap)
