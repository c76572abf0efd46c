"""The web till (收银台): find a member, ring up a basket with a live quote, take the sale, top up,
refund, enrol — what a POS terminal does through ``/api/v1/pos``, in the browser.

- Every action calls the use case the API calls: ``members.lookup_member`` (find),
  ``enrolment.enrol``, ``sales.quote``, ``sales.sale``, ``stored_value.top_up``, ``refunds.get_sale``
  and ``refunds.refund``; the till's own reads (a member's wallet, recent sales) are
  ``tenants.services.till``. The branch is :func:`acting_branch`'s, as for the API: a cashier
  limited to one branch sells there, an owner chooses in a select, another branch is refused.
- Writes that move value carry an Idempotency-Key put in the form when it is rendered, so a double
  click or a retried post books once (the second answer is the first receipt).
- Keyboard first: the find box has the focus, a scanner's text + Enter finds the member, Enter in the
  basket takes the sale. With htmx the page updates in parts (``#find-area``, ``#quote``,
  ``#receipt``, ``#recent-sales``) and events (``till-sold``, ``till-member``, ``till-quote``) refresh
  the others; without JavaScript every form posts and the whole page comes back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.platform.errors import DomainError, NotFound, ValidationFailed
from lianka.platform.identity import members
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.members import MemberView
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.models import Branch
from lianka.tenants.pos import refunds, sales, schemas, stored_value
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import enrolment
from lianka.tenants.services import till as till_svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.api.deps import acting_branch
from lianka.web.console import till_forms as forms
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_errors,
    form_text,
    is_htmx,
    language,
    page,
)

TILL = requires(*MENU["till"].permissions)
QUOTE = requires(Permission.SALES_READ)
ENROL = requires(Permission.MEMBERS_WRITE)
#: the basket's fields that show their own errors (the others' go on top of the form)
BASKET_FIELDS = (
    "amount",
    "points",
    "stored_value",
    "coupons",
    "alliance_voucher",
    "lines",
    "payment_method",
    "join_phone",
)
FIND_FIELDS = ("phone", "card", "qr")
REFUND_FIELDS = ("refund_amount", "refund_lines", "mode")
TOP_UP_FIELDS = ("plan", "payment_method", "branch_id")
FIND_RESPONSE = "console/till/_find_response.html"
NO_MEMBER = N_("No member has this card or code.")


def new_key(kind: str) -> str:
    """An Idempotency-Key for one form as rendered: a retry of that very form books once."""
    return f"till-{kind}-{uuid.uuid4().hex}"


def _events(*names: str) -> dict[str, str]:
    return {"HX-Trigger": json.dumps(dict.fromkeys(names, ""))}


@dataclass
class TillView:
    """Everything the till's templates may show; a page shows what is set."""

    branches: list[Branch] = field(default_factory=list)
    branch_id: uuid.UUID | None = None
    q: str = ""
    find_error: str | None = None
    member: MemberView | None = None
    wallet: till_svc.Wallet | None = None
    #: a phone that is not a member yet: they join with this sale (``join_phone``), or "enrol now"
    newcomer: str | None = None
    basket: forms.BasketValues = field(default_factory=forms.BasketValues)
    basket_errors: FormErrors = field(default_factory=FormErrors)
    quote: schemas.QuoteOut | None = None
    quote_errors: FormErrors = field(default_factory=FormErrors)
    top_up_key: str = ""
    top_up_errors: FormErrors = field(default_factory=FormErrors)
    receipt: schemas.SaleOut | None = None
    replayed: bool = False
    topped_up: schemas.TopUpOut | None = None
    refund_sale: dict[str, Any] | None = None
    refund_values: forms.RefundValues = field(default_factory=forms.RefundValues)
    refund_errors: FormErrors = field(default_factory=FormErrors)
    refunded: schemas.RefundOut | None = None
    sales: list[till_svc.SaleSummary] | None = None
    payment_methods: dict[str, str] = field(default_factory=lambda: forms.PAYMENT_METHODS)

    def __post_init__(self) -> None:
        self.basket.key = self.basket.key or new_key("sale")
        self.top_up_key = self.top_up_key or new_key("top-up")
        self.refund_values.key = self.refund_values.key or new_key("refund")


async def _currency(ident: IdentityService, principal: Principal) -> str:
    return (await merchant_profile(ident.db, principal.tenant)).currency


class TillPages(Controller):
    path = "/console/till"

    async def _show(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        view: TillView,
        fragment: str | None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Template:
        """htmx: only ``fragment``; otherwise (or with no fragment) the whole till with ``view`` in it."""
        if fragment is not None and is_htmx(request):
            return await page(request, fragment, principal=principal, status=status, headers=headers, till=view)
        view.branches = await branch_svc.branches(ident.db, principal.tenant, principal.branch_ids)
        chosen = uuid.UUID(view.basket.branch_id) if _is_id(view.basket.branch_id) else None
        if not any(b.id == chosen for b in view.branches):
            chosen = principal.default_branch() or (view.branches[0].id if view.branches else None)
        view.branch_id = chosen
        if view.sales is None:
            view.sales = await till_svc.recent_sales(ident.db, principal.tenant, principal.branch_ids)
        return await page(
            request, "console/till/index.html", principal=principal, active="till", status=status, till=view
        )

    @get("/", guards=[TILL])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._show(request, principal, ident, TillView(), None)

    @get("/work", guards=[TILL])
    async def work(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """A fresh find box and basket (new Idempotency-Key) for the next customer."""
        return await self._show(request, principal, ident, TillView(), "console/till/_work.html")

    @get("/line", guards=[TILL])
    async def line(self, request: HtmlRequest, principal: CurrentPrincipal) -> Template:
        """One more empty line for the basket."""
        return await page(request, "console/till/_line.html", principal=principal, line=forms.Line(), errors=None)

    # --- the member ----------------------------------------------------------------------------

    async def _member(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, view: TillView, *, status: int = 200
    ) -> Template:
        """The member panel (and, for htmx, the member's part of the basket out of band)."""
        if view.member is not None:
            view.wallet = await till_svc.member_wallet(ident.db, principal.tenant, view.member.member_id)
        view.basket.member_id = str(view.member.member_id) if view.member else ""
        view.basket.join_phone = view.newcomer or ""
        return await self._show(
            request, principal, ident, view, FIND_RESPONSE, status=status, headers=_events("till-quote")
        )

    @post("/find", guards=[TILL])
    async def find(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Phone, card number or the text a scanner types from the member's QR code."""
        form = await form_data(request)
        q = form_text(form, "q")
        view = TillView(q=q)
        how = _kind_of(q)
        try:
            if not q:
                raise ValidationFailed("type a phone or card number, or scan the member's code", field="phone")
            view.member = await members.lookup_member(ident, principal.tenant, **{how: q})
        except DomainError as exc:
            if how == "phone" and isinstance(exc, NotFound):
                view.newcomer = members.normalise_phone(q)
                return await self._member(request, principal, ident, view)
            if isinstance(exc, NotFound):
                view.find_error = language(request).gettext(NO_MEMBER)
            else:
                errors = form_errors(exc, language(request), FIND_FIELDS)
                view.find_error = next(iter(errors.fields.values()), None) or errors.general[0]
            return await self._show(request, principal, ident, view, FIND_RESPONSE, status=exc.status)
        return await self._member(request, principal, ident, view)

    @get("/members/{member_id:uuid}", guards=[TILL])
    async def member(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Template:
        """The member panel again (after a top-up or a sale: balances changed)."""
        view = TillView(member=await members.get_member(ident, principal.tenant, member_id))
        return await self._member(request, principal, ident, view)

    @post("/enrol", guards=[TILL, ENROL])
    async def enrol(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Enrol the customer now (without a sale), at the till's branch."""
        form = await form_data(request)
        phone = form_text(form, "phone")
        view = TillView(q=phone)
        try:
            branch = acting_branch(principal, forms.an_id(form_text(form, "branch_id"), "branch_id"), required=False)
            done = await enrolment.enrol(ident, principal.tenant, phone, branch)
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            view.newcomer = phone
            view.find_error = form_errors(exc, language(request), ("phone",)).get("phone")
            return await self._member(request, principal, ident, view, status=exc.status)
        view.member = done.member
        return await self._member(request, principal, ident, view)

    # --- the basket: quote and sale ------------------------------------------------------------

    @post("/quote", guards=[TILL, QUOTE])
    async def quote(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """What the basket would cost and earn, as the cashier types (nothing is written)."""
        values = forms.basket_values(await form_data(request))
        view = TillView(basket=values)
        status = 200
        try:
            basket = forms.basket(values, await _currency(ident, principal))
            if basket is not None:
                view.quote = await sales.quote(
                    ident.db, principal.tenant, basket, acting_branch(principal, basket.branch_id)
                )
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            view.quote_errors = form_errors(forms.place(exc), language(request), BASKET_FIELDS)
            status = exc.status
        return await self._show(request, principal, ident, view, "console/till/_quote.html", status=status)

    @post("/sale", guards=[TILL])
    async def sale(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Take the sale. The form's Idempotency-Key makes a double click (or a retry) book once."""
        values = forms.basket_values(await form_data(request))
        view = TillView(basket=values)
        try:
            basket = forms.basket(values, await _currency(ident, principal))
            if basket is None:
                raise ValidationFailed("the amount is required", field="amount")
            view.receipt, view.replayed = await sales.sale(
                ident.db, principal.tenant, basket, values.key, acting_branch(principal, basket.branch_id)
            )
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            view.basket_errors = form_errors(forms.place(exc), language(request), BASKET_FIELDS)
            member = forms.an_id(values.member_id, "member_id") if _is_id(values.member_id) else None
            if member is not None:  # the member's coupons, to show the basket again as it was
                view.wallet = await till_svc.member_wallet(ident.db, principal.tenant, member)
            return await self._show(request, principal, ident, view, "console/till/_basket.html", status=exc.status)
        if is_htmx(request):
            return await page(
                request,
                "console/till/_receipt.html",
                principal=principal,
                till=view,
                headers={"HX-Retarget": "#receipt", "HX-Reswap": "innerHTML", **_events("till-sold")},
            )
        view.basket = forms.BasketValues(branch_id=values.branch_id, key=new_key("sale"))  # the next customer's
        return await self._show(request, principal, ident, view, None)

    # --- stored value ------------------------------------------------------------------------------

    @post("/top-up", guards=[TILL])
    async def top_up(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Sell a stored-value plan to the member (Idempotency-Key from the form)."""
        form = await form_data(request)
        values = {name: form_text(form, name) for name in ("member_id", "plan", "payment_method", "branch_id", "key")}
        member_id = forms.an_id(values["member_id"], "member_id")
        if member_id is None:
            raise NotFound("member not found")
        view = TillView(top_up_key=values["key"], basket=forms.BasketValues(branch_id=values["branch_id"]))
        try:
            body = forms.convert(
                {
                    "member_id": member_id,
                    "plan": values["plan"],
                    "payment_method": values["payment_method"] or "cash",
                    "branch_id": forms.an_id(values["branch_id"], "branch_id"),
                },
                schemas.TopUpIn,
            )
            view.topped_up, view.replayed = await stored_value.top_up(
                ident.db, principal.tenant, body, values["key"], acting_branch(principal, body.branch_id)
            )
        except DomainError as exc:
            if exc.status in (403, 404) and exc.extra.get("field") != "plan":  # a plan withdrawn meanwhile: inline
                raise
            view.member = await members.get_member(ident, principal.tenant, member_id)
            view.top_up_errors = form_errors(exc, language(request), TOP_UP_FIELDS)
            view.wallet = await till_svc.member_wallet(ident.db, principal.tenant, member_id)
            return await self._show(
                request,
                principal,
                ident,
                view,
                FIND_RESPONSE,
                status=exc.status,
                headers={"HX-Retarget": "#find-area", "HX-Reswap": "outerHTML"},
            )
        if is_htmx(request):
            return await page(
                request,
                "console/till/_receipt.html",
                principal=principal,
                till=view,
                headers=_events("till-member", "till-quote"),
            )
        view.member = await members.get_member(ident, principal.tenant, member_id)
        view.wallet = await till_svc.member_wallet(ident.db, principal.tenant, member_id)
        view.top_up_key = new_key("top-up")
        return await self._show(request, principal, ident, view, None)

    # --- sales and refunds -------------------------------------------------------------------------

    @get("/sales", guards=[TILL])
    async def recent(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        member_id: FromQuery[uuid.UUID | None] = None,
    ) -> Template:
        view = TillView(
            sales=await till_svc.recent_sales(ident.db, principal.tenant, principal.branch_ids, member_id=member_id)
        )
        return await self._show(request, principal, ident, view, "console/till/_sales.html")

    @get("/sales/{sale_id:uuid}", guards=[TILL])
    async def refund_form(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, sale_id: FromPath[uuid.UUID]
    ) -> Template:
        """A sale with its lines and the refund form (another branch's or merchant's sale: 404)."""
        view = TillView(refund_sale=await refunds.get_sale(ident.db, principal.tenant, sale_id, principal.branch_ids))
        return await self._show(request, principal, ident, view, "console/till/_receipt.html")

    @post("/sales/{sale_id:uuid}/refund", guards=[TILL])
    async def refund(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, sale_id: FromPath[uuid.UUID]
    ) -> Template:
        """Refund all of the sale, an amount, or some of its lines (Idempotency-Key from the form)."""
        values = forms.refund_values(await form_data(request))
        view = TillView(refund_values=values)
        try:
            body = forms.refund(values, await _currency(ident, principal))
            view.refunded, view.replayed = await refunds.refund(
                ident.db, principal.tenant, sale_id, body, values.key, principal.branch_ids
            )
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            where = {"refund-exceeds-sale": "refund_lines" if values.mode == "lines" else "refund_amount"}
            view.refund_errors = form_errors(forms.place(exc, where), language(request), REFUND_FIELDS)
            view.refund_sale = await refunds.get_sale(ident.db, principal.tenant, sale_id, principal.branch_ids)
            return await self._show(request, principal, ident, view, "console/till/_receipt.html", status=exc.status)
        return await self._show(
            request,
            principal,
            ident,
            view,
            "console/till/_receipt.html",
            headers=_events("till-refunded", "till-member", "till-quote"),
        )


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _kind_of(q: str) -> str:
    """Which look-up the typed or scanned text asks for: a Lianka QR code (``LK1.…``), a card number
    (12 digits with a valid check digit), else a phone number."""
    stripped = q.strip()
    if stripped.upper().startswith("LK1."):
        return "qr"
    if members.is_valid_card_number(stripped):
        return "card"
    return "phone"
