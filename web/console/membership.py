"""Paid membership (付费会员) in the console: the products and the merchant's policy, with the deferred
membership revenue still owed to members (a liability) — and, at the till and on a member's page, a
membership sold at the counter, its terms, cancellation and a refund of unused whole months.

Each handler calls the use case the JSON API calls (``billing/membership``). Writes that move money
(a sale, a refund) carry an Idempotency-Key made when the form is shown: a double click books once.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.membership import products, schemas, terms
from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.api.deps import acting_branch
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_errors, go, language, page
from lianka.web.console.till_forms import PAYMENT_METHODS

READ = requires(*MENU["membership"].permissions)
WRITE = requires(Permission.PROGRAMME_WRITE)
SELL = requires(Permission.SALES_WRITE, Permission.MEMBERS_READ)
MEMBER_READ = requires(Permission.MEMBERS_READ)
MEMBER_WRITE = requires(Permission.MEMBERS_WRITE)
FIELDS = (
    "code",
    "name",
    "period",
    "price",
    "tier",
    "extra_discount_percent",
    "points_multiplier",
    "coupon_pack",
    "gifts",
)
PERIODS = {"monthly": N_("Monthly"), "yearly": N_("Yearly")}
POLICIES = {"unused_months": N_("Pay back unused whole months"), "none": N_("No refunds")}
STATUSES = {
    "active": N_("Active"),
    "canceled": N_("Not renewing"),
    "refunded": N_("Refunded"),
    "expired": N_("Ended"),
}
_LIST = str.maketrans({"，": ",", "、": ",", ";": ",", "；": ","})
_PACK_ITEM = re.compile(r"^(?P<code>[A-Za-z0-9_-]+?)\s*(?:[x×*]\s*(?P<n>\d{1,2}))?$")


def new_key(kind: str) -> str:
    return f"membership-{kind}-{uuid.uuid4().hex}"


def _pack(text: str) -> list[dict[str, Any]]:
    """``m5x2, tea`` → two coupons of template m5 and one of tea, each month."""
    out: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in text.translate(_LIST).split(","))):
        found = _PACK_ITEM.match(part)
        if found is None:
            raise ValidationFailed("coupon pack: code x count, separated by commas", field="coupon_pack")
        out.append({"template": found["code"], "count": int(found["n"] or "1")})
    return out


def product_in(form: Any, currency: str) -> schemas.ProductIn:
    v = {name: fv.text_of(form, name) for name in FIELDS}
    try:
        multiplier = Decimal(v["points_multiplier"] or "1")
    except InvalidOperation:
        raise ValidationFailed("points multiplier", field="points_multiplier") from None
    return fv.struct(
        schemas.ProductIn,
        {
            "code": v["code"],
            "name": v["name"],
            "period": v["period"],
            "price": fv.minor_units(v["price"], "price", currency),
            "tier": v["tier"] or None,
            "extra_discount_percent": fv.whole(v["extra_discount_percent"], "extra_discount_percent", required=False)
            or 0,
            "points_multiplier": str(multiplier),
            "coupon_pack": _pack(v["coupon_pack"]),
            "gifts": [g.strip() for g in v["gifts"].translate(_LIST).split(",") if g.strip()],
        },
    )


class MembershipPages(Controller):
    path = "/console/membership"

    async def _index(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        values: dict[str, str] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Template:
        return await page(
            request,
            "console/membership/index.html",
            principal=principal,
            active="membership",
            status=status,
            products=await products.list_products(ident.db, principal.tenant),
            settings=await products.get_settings(ident.db, principal.tenant),
            values=values or {"period": "yearly", "points_multiplier": "1", "extra_discount_percent": "0"},
            errors=errors or FormErrors(),
            periods=PERIODS,
            policies=POLICIES,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._index(request, principal, ident)

    @post("/products", guards=[READ, WRITE])
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        values = {name: fv.text_of(form, name) for name in FIELDS}
        try:
            merchant = await merchant_profile(ident.db, principal.tenant)
            await products.create_product(ident.db, principal.tenant, product_in(form, merchant.currency))
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            errors = form_errors(exc, language(request), FIELDS)
            return await self._index(request, principal, ident, values=values, errors=errors, status=exc.status)
        return go(request, "/console/membership", flash="membership-product-created")

    @post("/products/{product_id:uuid}/active", guards=[READ, WRITE])
    async def toggle(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, product_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        form = await form_data(request)
        active = fv.text_of(form, "active") == "true"
        await products.update_product(ident.db, principal.tenant, product_id, schemas.ProductPatch(active=active))
        return go(request, "/console/membership")

    @post("/settings", guards=[READ, WRITE])
    async def settings(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        form = await form_data(request)
        body = fv.struct(
            schemas.SettingsIn,
            {
                "refund_policy": fv.text_of(form, "refund_policy"),
                "reminder_days": fv.whole(fv.text_of(form, "reminder_days"), "reminder_days") or 0,
            },
        )
        await products.save_settings(ident.db, principal.tenant, body)
        return go(request, "/console/membership", flash="membership-settings-saved")

    # --- at the till ---------------------------------------------------------------------------------

    @get("/till/{member_id:uuid}", guards=[SELL])
    async def till_form(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Template:
        """The till's membership box for the member found (loaded into the member card by htmx)."""
        return await self._till(request, principal, ident, member_id)

    async def _till(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        member_id: uuid.UUID,
        *,
        sold: schemas.TermOut | None = None,
        replayed: bool = False,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Template:
        return await page(
            request,
            "console/membership/_till.html",
            principal=principal,
            status=status,
            member_id=member_id,
            mine=await terms.member_membership(ident.db, principal.tenant, member_id),
            products=await products.list_products(ident.db, principal.tenant, active=True),
            payment_methods=PAYMENT_METHODS,
            key=new_key("sale"),
            sold=sold,
            replayed=replayed,
            errors=errors or FormErrors(),
            statuses=STATUSES,
        )

    @post("/till", guards=[SELL])
    async def sell(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Sell the chosen product to the member at the counter (cash or card), once under the form's key."""
        form = await form_data(request)
        member_id = fv.text_of(form, "member_id")
        try:
            body = fv.struct(
                schemas.TillPurchaseIn,
                {
                    "member_id": member_id,
                    "product": fv.text_of(form, "product"),
                    "payment_method": fv.text_of(form, "payment_method") or "cash",
                    "branch_id": fv.text_of(form, "branch_id") or None,
                },
            )
            sold, replayed = await terms.buy_at_till(
                ident.db, principal.tenant, body, fv.text_of(form, "key"), acting_branch(principal, body.branch_id)
            )
        except DomainError as exc:
            if exc.status in (401, 403) or not member_id:
                raise
            errors = form_errors(exc, language(request), ("product", "payment_method"))
            return await self._till(request, principal, ident, uuid.UUID(member_id), errors=errors, status=exc.status)
        return await self._till(request, principal, ident, sold.member_id, sold=sold, replayed=replayed)

    # --- on a member's page ------------------------------------------------------------------------

    @get("/members/{member_id:uuid}", guards=[MEMBER_READ])
    async def member(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Template:
        """The member's terms and value-back meter (loaded into the member's page by htmx)."""
        return await page(
            request,
            "console/membership/_member.html",
            principal=principal,
            mine=await terms.member_membership(ident.db, principal.tenant, member_id),
            member_id=member_id,
            key=new_key("refund"),
            statuses=STATUSES,
        )

    @post("/terms/{term_id:uuid}/cancel", guards=[MEMBER_WRITE])
    async def cancel(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, term_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        term = await terms.cancel(ident.db, principal.tenant, term_id)
        return go(request, f"/console/members/{term.member_id}", flash="membership-canceled")

    @post("/terms/{term_id:uuid}/refund", guards=[requires(Permission.SALES_WRITE)])
    async def refund(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, term_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        form = await form_data(request)
        out, _ = await terms.refund_at_till(
            ident.db, request.app.state.settings, principal.tenant, term_id, schemas.RefundIn(), fv.text_of(form, "key")
        )
        return go(request, f"/console/members/{out.member_id}", flash="membership-refunded")
