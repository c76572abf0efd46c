"""Automations (自动化营销) in the console, under Marketing: the list with an on/off switch and each
automation's stats (fired, sent, coupons, points), and the form that creates or changes one (trigger
and its parameters, wait, then a message, a coupon and/or points) with field errors. Each handler
calls one use case of ``tenants.marketing.automations`` (decision 0039).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import automations as svc
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import domain
from lianka.tenants.marketing import services as segments
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console.campaigns import CHANNELS
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_errors, go, language, page, panel_page

READ = requires(*MENU["automations"].permissions)
WRITE = requires(Permission.CAMPAIGNS_WRITE)
TRIGGERS = {
    "joined": N_("Joined"),
    "first_purchase": N_("First purchase"),
    "birthday": N_("Birthday (N days before)"),
    "points_expiring": N_("Points expiring in N days"),
    "coupon_expiring": N_("Coupon expiring in N days"),
    "win_back": N_("No purchase for N days (win-back)"),
    "tier_up": N_("Tier up"),
    "tier_at_risk": N_("Tier at risk at the review in N days"),
    "stored_value_below": N_("Stored value below an amount"),
    "membership_expiring": N_("Paid membership ending (not renewed)"),
}
MESSAGE_CHANNELS = {"": N_("No message"), **CHANNELS}
FIELDS = ("name", "trigger", "days", "amount", "wait_days", "channel", "subject", "template", "coupon_template_id",
          "points")  # fmt: skip


class AutomationPages(Controller):
    path = "/console/automations"

    async def _form(self, request: HtmlRequest, principal: Any, ident: IdentityService, *, values: dict[str, str],
                    automation_id: uuid.UUID | None = None, errors: Any = None, status: int = 200) -> Template:  # fmt: skip
        b = await segments.builder(ident.db, principal.tenant, domain.encode(domain.everyone()))
        return await page(
            request,
            "console/automations/form.html",
            principal=principal,
            active="automations",
            status=status,
            automation_id=automation_id,
            templates=b.templates,
            triggers=TRIGGERS,
            channels=MESSAGE_CHANNELS,
            variables=list(cd.VARIABLES),
            values=values,
            errors=errors,
        )

    async def _panel(self, request: HtmlRequest, principal: Any, ident: IdentityService, *,
                     flash: str | None = None) -> Template:  # fmt: skip
        views = await svc.list_all(ident.db, principal.tenant)
        return await panel_page(request, "automations", principal=principal, flash=flash, views=views,
                                triggers=TRIGGERS, channels=MESSAGE_CHANNELS)  # fmt: skip

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        values = {"trigger": "birthday", "days": "0", "wait_days": "0", "channel": "sms", "points": "0"}
        return await self._form(request, principal, ident, values=values)

    async def _save(self, request: HtmlRequest, principal: Any, ident: IdentityService,
                    automation_id: uuid.UUID | None) -> Response[Any]:  # fmt: skip
        form = await form_data(request)
        values = {name: fv.text_of(form, name, max_length=1000) for name in FIELDS}
        enabled = True
        profile = await merchant_profile(ident.db, principal.tenant)
        try:
            coupon = _uuid(values["coupon_template_id"]) if values["coupon_template_id"] else None
            spec = svc.AutomationIn(
                name=values["name"],
                trigger=values["trigger"],
                days=fv.whole(values["days"] or "0", "days") or 0,
                amount=fv.minor_units(values["amount"], "amount", profile.currency, required=False) or 0,
                wait_days=fv.whole(values["wait_days"] or "0", "wait_days") or 0,
                channel=values["channel"] or None,
                subject=values["subject"],
                template=values["template"],
                coupon_template_id=coupon,
                points=fv.whole(values["points"] or "0", "points") or 0,
                enabled=enabled,
            )
            if automation_id is None:
                a = await svc.create(ident.db, principal.tenant, spec)
            else:
                current = await svc.get(ident.db, principal.tenant, automation_id)
                spec = svc.AutomationIn(**{**spec.__dict__, "enabled": current.automation.enabled})
                a = await svc.update(ident.db, principal.tenant, automation_id, spec)
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            errors = form_errors(exc, language(request), FIELDS)
            where = str(exc.extra.get("field") or "")
            if where in errors.fields and exc.detail and exc.type_slug == "bad-automation":
                errors.fields[where] += f" ({exc.detail})"
            return await self._form(request, principal, ident, values=values, automation_id=automation_id,
                                    errors=errors, status=exc.status)  # fmt: skip
        return go(request, "/console/automations", flash="automation-saved" if a else None)

    @post("/", guards=[READ, WRITE], status_code=200)
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        return await self._save(request, principal, ident, None)

    @get("/{automation_id:uuid}", guards=[READ, WRITE])
    async def edit(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                   automation_id: FromPath[uuid.UUID]) -> Template:  # fmt: skip
        v = await svc.get(ident.db, principal.tenant, automation_id)
        f = v.form()
        values = {
            "name": f.name, "trigger": f.trigger, "days": str(f.days),
            "amount": f"{f.amount // 100}.{f.amount % 100:02d}" if f.amount else "", "wait_days": str(f.wait_days),
            "channel": f.channel or "", "subject": f.subject, "template": f.template,
            "coupon_template_id": str(f.coupon_template_id or ""), "points": str(f.points),
        }  # fmt: skip
        return await self._form(request, principal, ident, values=values, automation_id=automation_id)

    @post("/{automation_id:uuid}", guards=[READ, WRITE], status_code=200)
    async def update(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                     automation_id: FromPath[uuid.UUID]) -> Response[Any]:  # fmt: skip
        return await self._save(request, principal, ident, automation_id)

    @post("/{automation_id:uuid}/enabled", guards=[READ, WRITE], status_code=200)
    async def toggle(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                     automation_id: FromPath[uuid.UUID]) -> Template:  # fmt: skip
        form = await form_data(request)
        on = fv.text_of(form, "enabled", max_length=5) == "on"
        await svc.set_enabled(ident.db, principal.tenant, automation_id, on)
        return await self._panel(request, principal, ident, flash="automation-on" if on else "automation-off")


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationFailed("coupon_template_id: choose one", field="coupon_template_id") from None
