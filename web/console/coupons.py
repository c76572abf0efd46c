"""Coupons (优惠券): templates with their stock and use, a new template, deactivating one, and issuing
one coupon to a member.

- Guards are the API's: reading needs ``programme:read`` (and the back office), creating and
  deactivating ``programme:write``, issuing ``coupons:issue`` (a manager may issue, an analyst only
  reads). Each handler calls the use case the API calls (:mod:`tenants.services.coupon_admin`).
- Issuing carries an Idempotency-Key made when the form is shown (a hidden field): a double click,
  a retry or a reload books one coupon and shows the same one. The member is found by card number.
- Amounts are typed in yuan (exact to the fen), dates are days in the merchant's time zone: a
  template valid until 31 May is valid through the end of that day.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import coupon_admin as svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.api.deps import actor_of
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_, NP_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, go, is_htmx, language, page, panel_page

READ = requires(*MENU["coupons"].permissions)
WRITE = requires(Permission.PROGRAMME_WRITE)
ISSUE = requires(Permission.COUPONS_ISSUE)
PANEL = {"HX-Retarget": "#coupons-panel", "HX-Reswap": "outerHTML"}
FIELDS = (
    "code",
    "name",
    "kind",
    "amount_off",
    "percent_off",
    "cap",
    "gift_sku",
    "min_spend",
    "valid_from",
    "valid_until",
    "valid_days",
    "branches",
    "stackable",
    "per_member_limit",
    "stock_total",
    "claimable",
)
KINDS = {
    "fixed": NP_("coupon kind", "Amount off"),
    "percent": NP_("coupon kind", "Percent off"),
    "gift": N_("Gift item"),
}
TEXTS: dict[str, str] = {
    **fv.CODE_AND_NAME,
    "code:conflict": N_("Another template uses this code."),
    "kind": N_("Choose what the coupon gives."),
    "amount_off": N_("An amount-off coupon needs an amount above zero."),
    "percent_off": N_("Enter a percentage from 1 to 100."),
    "gift_sku": N_("A gift coupon needs the item's SKU."),
    "valid_days": N_("Give an end date or a number of days from issue (1 to 3660)."),
    "valid_until": N_("The end must be after the start."),
    "branches": N_("Use the codes of your branches, separated by commas."),
    "per_member_limit": N_("Enter a whole number above zero, or leave it empty for no limit."),
    "stock_total": N_("Enter a whole number, or leave it empty for no limit."),
    "card": N_("Enter the member's card number."),
    "card:not-found": N_("None of your members has this card number."),
    "coupon-sold-out": N_("No coupons of this kind are left."),
    "coupon-limit-reached": N_("The member already holds as many of these coupons as allowed."),
    "coupon-template-inactive": N_("This template no longer issues coupons."),
    "bad-request": N_("This page has expired. Reload it and try again."),
}
#: validity ends are exclusive (the midnight after the last day): shown as the last day
ONE_TICK = timedelta(microseconds=1)
_LIST = str.maketrans({"，": ",", "、": ",", ";": ",", " ": ","})


@dataclass(frozen=True)
class TemplateRef:
    """The template an issue form is for."""

    id: uuid.UUID
    code: str
    name: str


def _ref(t: schemas.TemplateOut) -> TemplateRef:
    return TemplateRef(t.id, t.code, t.name)


def blank() -> dict[str, str]:
    return {**dict.fromkeys(FIELDS, ""), "kind": "fixed", "stackable": "on", "valid_days": "30"}


def template_in(post: FormMultiDict, currency: str, timezone: str) -> schemas.TemplateIn:
    """The form as the API's request body (amounts in fen, dates as the merchant's midnights)."""
    v = {name: fv.text_of(post, name) for name in FIELDS}
    until = fv.day(v["valid_until"], "valid_until")
    return fv.struct(
        schemas.TemplateIn,
        {
            "code": v["code"],
            "name": v["name"],
            "kind": v["kind"],
            "amount_off": fv.minor_units(v["amount_off"], "amount_off", currency, required=False) or 0,
            "percent_off": fv.whole(v["percent_off"], "percent_off", required=False) or 0,
            "cap": fv.minor_units(v["cap"], "cap", currency, required=False),
            "gift_sku": v["gift_sku"],
            "min_spend": fv.minor_units(v["min_spend"], "min_spend", currency, required=False) or 0,
            "valid_from": fv.start_of_day(fv.day(v["valid_from"], "valid_from"), timezone),
            "valid_until": fv.start_of_day(until + timedelta(days=1), timezone) if until else None,
            "valid_days": fv.whole(v["valid_days"], "valid_days", required=False),
            "branches": [c for c in v["branches"].translate(_LIST).split(",") if c],
            "stackable": bool(v["stackable"]),
            "per_member_limit": fv.whole(v["per_member_limit"], "per_member_limit", required=False),
            "stock_total": fv.whole(v["stock_total"], "stock_total", required=False),
            "claimable": bool(v["claimable"]),
        },
    )


class CouponPages(Controller):
    path = "/console/coupons"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        editor: dict[str, Any] | None = None,
        issued: dict[str, Any] | None = None,
        flash: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        rows = await svc.templates_with_usage(ident.db, principal.tenant)
        return await panel_page(
            request,
            "coupons",
            principal=principal,
            status=status,
            headers=headers,
            rows=rows,
            editor=editor,
            issued=issued,
            kinds=KINDS,
            one_tick=ONE_TICK,
            flash=flash,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._form(request, principal, ident, values=blank(), errors=FormErrors())

    async def _form(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        values: dict[str, str],
        errors: FormErrors,
        status: int = 200,
    ) -> Template:
        if is_htmx(request):
            return await page(
                request,
                "console/coupons/_form.html",
                principal=principal,
                status=status,
                values=values,
                errors=errors,
                kinds=KINDS,
            )
        return await self._panel(request, principal, ident, status=status, editor={"values": values, "errors": errors})

    @post("/", guards=[READ, WRITE])
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        post_ = await form_data(request)
        values = {name: value if isinstance(value := post_.get(name), str) else "" for name in FIELDS}
        try:
            merchant = await merchant_profile(ident.db, principal.tenant)
            await svc.create_template(
                ident.db, principal.tenant, template_in(post_, merchant.currency, merchant.timezone)
            )
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            return await self._form(
                request,
                principal,
                ident,
                values=values,
                status=exc.status,
                errors=fv.field_errors(exc, language(request), FIELDS, TEXTS),
            )
        return await self._done(request, principal, ident, "coupon-template-created")

    @post("/{template_id:uuid}/deactivate", guards=[READ, WRITE])
    async def deactivate(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        template_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await svc.deactivate(ident.db, principal.tenant, template_id)
        return await self._done(request, principal, ident, "coupon-template-deactivated")

    @get("/{template_id:uuid}/issue", guards=[READ, ISSUE])
    async def issue_form(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        template_id: FromPath[uuid.UUID],
    ) -> Template:
        template = await svc.get_template(ident.db, principal.tenant, template_id)
        return await self._issue(
            request, principal, ident, _ref(template), card="", key=secrets.token_urlsafe(24), errors=FormErrors()
        )

    async def _issue(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        template: TemplateRef,
        *,
        card: str,
        key: str,
        errors: FormErrors,
        coupon: schemas.CouponOut | None = None,
        status: int = 200,
    ) -> Template:
        """The issue form alone (htmx, while it is filled in), or the panel around it: after a coupon is
        issued the list's counts change too."""
        issuing: dict[str, Any] = {"issue_for": template, "card": card, "key": key, "errors": errors, "coupon": coupon}
        if is_htmx(request) and coupon is None:
            return await page(
                request, "console/coupons/_issue.html", principal=principal, status=status, one_tick=ONE_TICK, **issuing
            )
        return await self._panel(
            request, principal, ident, status=status, issued=issuing, headers=PANEL if is_htmx(request) else None
        )

    @post("/{template_id:uuid}/issue", guards=[READ, ISSUE])
    async def issue(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        template_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """One coupon to the member with this card, once under the form's key."""
        post_ = await form_data(request)
        card, key = fv.text_of(post_, "card", max_length=64), fv.text_of(post_, "_key", max_length=200)
        try:
            coupon, _ = await svc.issue_to_card(
                ident.db, principal.tenant, template_id, card, key, actor=actor_of(principal)
            )
        except DomainError as exc:
            if exc.status in (401, 403) or (exc.status == 404 and exc.extra.get("field") != "card"):
                raise
            template = await svc.get_template(ident.db, principal.tenant, template_id)  # to show the form again
            return await self._issue(
                request,
                principal,
                ident,
                _ref(template),
                card=card,
                key=key,
                status=exc.status,
                errors=fv.field_errors(exc, language(request), ("card",), TEXTS),
            )
        # the next coupon is another write: a new key (this one would answer this coupon again)
        ref = TemplateRef(coupon.template_id, coupon.template_code, coupon.name)
        return await self._issue(
            request, principal, ident, ref, card="", key=secrets.token_urlsafe(24), errors=FormErrors(), coupon=coupon
        )

    async def _done(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, flash: str
    ) -> Response[Any]:
        if is_htmx(request):
            return await self._panel(request, principal, ident, flash=flash, headers=PANEL)
        return go(request, "/console/coupons", flash=flash)
