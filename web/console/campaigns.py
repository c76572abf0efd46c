"""Campaigns (营销活动) in the console, under Marketing: the list, the form that creates one (segment,
channel, message with variables, optional B variant and split, holdout, coupon, when), and the
campaign's page — preview, the send button, the results with attribution against the control
group (an ECharts bar chart drawn by ``members.js`` from its JSON) and the dead letters with a
re-send button. Each handler calls one use case of ``tenants.marketing.campaigns``.
"""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform import audit
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import campaigns as svc
from lianka.tenants.marketing import domain
from lianka.tenants.marketing import services as segments
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_errors, go, language, page, panel_page

READ = requires(*MENU["campaigns"].permissions)
WRITE = requires(Permission.CAMPAIGNS_WRITE)
CHANNELS = {"sms": N_("SMS"), "email": N_("E-mail"), "portal": N_("Portal inbox"), "wechat": N_("WeChat")}
STATUSES = {"draft": N_("Draft"), "scheduled": N_("Scheduled"), "sending": N_("Sending"), "sent": N_("Sent")}
FIELDS = ("name", "segment_id", "channel", "subject", "template_a", "template_b", "split_a_pct", "holdout_pct",
          "coupon_template_id", "scheduled_at", "attribution_days", "message_cost", "link")  # fmt: skip


def percent(value: Fraction | None) -> str:
    """A fraction as a percentage with two decimals (``Fraction(1, 8)`` → ``12.50%``)."""
    if value is None:
        return "—"
    hundredths = (value * 10000).numerator * 2 // (value * 10000).denominator
    hundredths = (hundredths + (1 if hundredths >= 0 else 0)) // 2  # round half away from zero
    sign = "-" if hundredths < 0 else ""
    return f"{sign}{abs(hundredths) // 100}.{abs(hundredths) % 100:02d}%"


class CampaignPages(Controller):
    path = "/console/campaigns"

    async def _form(self, request: HtmlRequest, principal: Any, ident: IdentityService, *, values: dict[str, str],
                    errors: Any = None, status: int = 200) -> Template:  # fmt: skip
        segs = await segments.list_segments(ident.db, principal.tenant)
        b = await segments.builder(ident.db, principal.tenant, domain.encode(domain.everyone()))
        return await page(
            request,
            "console/campaigns/new.html",
            principal=principal,
            active="campaigns",
            status=status,
            segments=segs,
            templates=b.templates,
            channels=CHANNELS,
            variables=list(cd.VARIABLES),
            values=values,
            errors=errors,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    async def _panel(self, request: HtmlRequest, principal: Any, ident: IdentityService, *, flash: str | None = None,
                     cap: str | None = None, cap_errors: Any = None) -> Template:  # fmt: skip
        campaigns = await svc.list_campaigns(ident.db, principal.tenant)
        shown = cap if cap is not None else str(await svc.frequency_cap(ident.db, principal.tenant))
        return await panel_page(request, "campaigns", principal=principal, flash=flash, campaigns=campaigns,
                                channels=CHANNELS, statuses=STATUSES, cap=shown, cap_errors=cap_errors)  # fmt: skip

    @post("/settings", guards=[READ, WRITE], status_code=200)
    async def settings(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        form = await form_data(request)
        raw = fv.text_of(form, "frequency_cap", max_length=5)
        try:
            await svc.set_frequency_cap(ident.db, principal.tenant, fv.whole(raw, "frequency_cap") or 0)
        except DomainError as exc:
            errors = form_errors(exc, language(request), ("frequency_cap",))
            return await self._panel(request, principal, ident, cap=raw, cap_errors=errors)
        return await self._panel(request, principal, ident, flash="campaign-cap-saved")

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        values = {"split_a_pct": "100", "holdout_pct": "10", "attribution_days": "7", "channel": "sms"}
        return await self._form(request, principal, ident, values=values)

    @post("/", guards=[READ, WRITE], status_code=200)
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        values = {name: fv.text_of(form, name, max_length=1000) for name in FIELDS}
        profile = await merchant_profile(ident.db, principal.tenant)
        try:
            segment = _uuid(values["segment_id"], "segment_id")
            coupon = _uuid(values["coupon_template_id"], "coupon_template_id") if values["coupon_template_id"] else None
            spec = svc.CampaignIn(
                name=values["name"],
                segment_id=segment,
                channel=values["channel"],
                subject=values["subject"],
                template_a=values["template_a"],
                template_b=values["template_b"] or None,
                split_a_pct=fv.whole(values["split_a_pct"] or "100", "split_a_pct") or 0,
                holdout_pct=fv.whole(values["holdout_pct"] or "0", "holdout_pct") or 0,
                coupon_template_id=coupon,
                scheduled_at=fv.local_time(values["scheduled_at"], "scheduled_at", profile.timezone)
                if values["scheduled_at"]
                else None,
                attribution_days=fv.whole(values["attribution_days"] or "7", "attribution_days") or 0,
                message_cost=fv.minor_units(values["message_cost"], "message_cost", profile.currency, required=False)
                or 0,
                link=values["link"],
            )
            c = await svc.create_campaign(ident.db, principal.tenant, spec)
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            errors = form_errors(exc, language(request), FIELDS)
            where = str(exc.extra.get("field") or "")
            if where in errors.fields and exc.detail and exc.type_slug == "bad-campaign":
                errors.fields[where] += f" ({exc.detail})"  # names the variable or the bound
            return await self._form(request, principal, ident, values=values, errors=errors, status=exc.status)
        return go(request, f"/console/campaigns/{c.id}", flash="campaign-saved")

    @get("/{campaign_id:uuid}", guards=[READ])
    async def show(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        campaign_id: FromPath[uuid.UUID],
    ) -> Template:
        r = await svc.results(ident.db, principal.tenant, campaign_id)
        previews = await svc.preview(ident.db, principal.tenant, campaign_id)
        dead = await svc.dead_letters(ident.db, principal.tenant, campaign_id)
        lang = language(request)
        chart = None
        a = r.attribution
        if a is not None:
            chart = {
                "kind": "bar",
                "labels": [lang.gettext(N_("Recipients")), lang.gettext(N_("Control group"))],
                "values": [round(float(a.recipients.rate * 100), 2), round(float(a.control.rate * 100), 2)],
            }
        return await page(
            request,
            "console/campaigns/show.html",
            principal=principal,
            active="campaigns",
            r=r,
            c=r.campaign,
            a=a,
            chart=chart,
            previews=previews,
            dead=dead,
            channels=CHANNELS,
            statuses=STATUSES,
            percent=percent,
        )

    @post("/{campaign_id:uuid}/send", guards=[READ, WRITE], status_code=200)
    async def send(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        campaign_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await svc.send(ident.db, principal.tenant, campaign_id, actor=audit.by(principal))
        return go(request, f"/console/campaigns/{campaign_id}", flash="campaign-sent")

    @post("/{campaign_id:uuid}/resend/{member_id:uuid}", guards=[READ, WRITE], status_code=200)
    async def resend(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        campaign_id: FromPath[uuid.UUID],
        member_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await svc.resend(ident.db, principal.tenant, campaign_id, member_id)
        return go(request, f"/console/campaigns/{campaign_id}", flash="campaign-resent")


def _uuid(text: str, field: str) -> uuid.UUID:
    from lianka.platform.errors import ValidationFailed

    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationFailed(f"{field}: choose one", field=field) from None
