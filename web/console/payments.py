"""Settings → Payments: the merchant chooses how its members pay online (Stripe or WeChat Pay) and
enters the credentials — stored encrypted, shown back only as their last four characters; and the
online refund of a member's payment, from the member's page.

- ``billing:manage`` (the owner) for the credentials, like the subscription; ``members:write`` for
  a refund, like the till's stored-value refund.
- Each handler calls one use case of ``billing.payments.services``, the same as ``/api/v1/payments``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.payments import services as payments
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.platform.settings import Settings
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_errors,
    form_text,
    go,
    language,
    panel_page,
)

READ = requires(*MENU["payments"].permissions)
REFUND = requires(Permission.MEMBERS_READ, Permission.MEMBERS_WRITE)
FIELDS = ("provider", "secret_key", "mchid", "serial_no", "private_key", "apiv3_key", "appid")
#: the credential fields as the merchant platforms name them
FIELD_LABELS = {
    "secret_key": N_("Secret key"),
    "mchid": N_("Merchant ID (mchid)"),
    "serial_no": N_("Certificate serial number"),
    "private_key": N_("Private key (apiclient_key.pem)"),
    "apiv3_key": N_("APIv3 key"),
    "appid": N_("AppID"),
}
PROVIDERS = {"wechatpay": N_("WeChat Pay (mainland China)"), "stripe": N_("Stripe (card, Alipay, WeChat Pay)")}


def _settings(request: HtmlRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class PaymentPages(Controller):
    path = "/console"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        provider: str | None = None,
        errors: FormErrors | None = None,
        flash: str | None = None,
    ) -> Template:
        view = await payments.credentials_view(ident.db, principal.tenant)
        return await panel_page(
            request,
            "payments",
            principal=principal,
            status=status,
            view=view,
            providers=PROVIDERS,
            field_labels=FIELD_LABELS,
            provider=provider or view.provider or "wechatpay",
            errors=errors or FormErrors(),
            flash=flash,
        )

    @get("/settings/payments", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @post("/settings/payments", guards=[READ])
    async def save(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Replace the provider and credentials (secrets are never echoed back into the form)."""
        form = await form_data(request)
        provider = form_text(form, "provider")
        values = {k: form_text(form, k, strip=k != "private_key") for k in FIELDS if k != "provider"}
        try:
            await payments.save_credentials(ident.db, _settings(request), principal.tenant, provider, values)
        except DomainError as exc:
            errors = form_errors(exc, language(request), FIELDS)
            return await self._panel(request, principal, ident, status=exc.status, provider=provider, errors=errors)
        return await self._panel(request, principal, ident, flash="payments-saved")

    @post("/members/{member_id:uuid}/payments/{order_id:uuid}/refund", guards=[REFUND])
    async def refund(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        member_id: FromPath[uuid.UUID],
        order_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """Refund what is left of an online payment through its provider (a top-up: unused principal,
        the bonus forfeited in proportion); the form's key makes a double click one refund."""
        form = await form_data(request)
        order = await payments.get_order(ident.db, principal.tenant, order_id, member_id)
        try:
            await payments.refund_order(
                ident.db, _settings(request), principal.tenant, order.id, key=form_text(form, "_key")[:200] or "console"
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            return go(request, f"/console/members/{member_id}", flash="payment-refund-refused")
        return go(request, f"/console/members/{member_id}", flash="payment-refunded")
