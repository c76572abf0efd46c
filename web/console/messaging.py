"""Messaging providers (短信与邮件通道) in the console, under Marketing: which SMS provider (the
logging development backend, Aliyun or Tencent Cloud), which e-mail transport (SMTP) and which WeChat
app (subscribe messages) the merchant uses, with its settings; the credential's secret is write-only (sealed at rest, shown as its last
four characters). Owners and admins only (``merchant:write``). One use case per handler
(``tenants.marketing.providers``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.platform.errors import DomainError, NotFound
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.members import mask_phone
from lianka.platform.identity.principal import Principal
from lianka.tenants.marketing import providers, receipts, replies
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_errors, go, language, page, panel_page

#: what each setting is called on the page
LABELS: dict[str, str] = {
    "access_key_id": N_("AccessKey ID"),
    "access_key_secret": N_("AccessKey secret"),
    "sign_name": N_("SMS signature (签名)"),
    "template_code": N_("Template code"),
    "template_id": N_("Template ID"),
    "endpoint": N_("API endpoint (optional)"),
    "region": N_("Region (optional)"),
    "secret_id": N_("SecretId"),
    "secret_key": N_("SecretKey"),
    "sdk_app_id": N_("SMS SdkAppId"),
    "host": N_("SMTP server"),
    "port": N_("Port"),
    "sender": N_("From address"),
    "username": N_("User name"),
    "password": N_("Password"),
    "security": N_("Security: starttls, tls or none"),
    "appid": N_("AppID"),
    "app_secret": N_("AppSecret"),
    "page": N_("Page the message opens (optional)"),
    "field": N_("Template text field (optional, default thing1)"),
}
GUARD = requires(*MENU["messaging"].permissions)
REPLIES = requires(*MENU["sms_replies"].permissions)
#: what a reply did, as the replies page says it
ACTION_LABELS = {"unsubscribe": N_("Unsubscribed"), "stored": N_("Stored")}
ALL_FIELDS = (
    *tuple(sorted({name for fields in providers.FIELDS.values() for name, _ in fields})),
    "provider",
    "secret",
)


class MessagingPages(Controller):
    path = "/console/messaging"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        errors: dict[str, FormErrors] | None = None,
        values: dict[str, dict[str, str]] | None = None,
    ) -> Template:
        shown = await providers.providers(ident.db, principal.tenant)
        public = ident.cfg.public_url
        return await panel_page(
            request,
            "messaging",
            principal=principal,
            status=status,
            providers=shown,
            choices=providers.PROVIDERS,
            fields=providers.FIELDS,
            secret_names=providers.SECRET_NAME,
            labels=LABELS,
            errors=errors or {},
            values={v.channel: (values or {}).get(v.channel) or {"provider": v.provider, **v.settings} for v in shown},
            receipt_urls={p: receipts.receipt_url(public, p) for p in receipts.PROVIDERS},
            reply_urls={p: replies.reply_url(public, p) for p in replies.PROVIDERS},
        )

    @get("/", guards=[GUARD])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @post("/{channel:str}", guards=[GUARD])
    async def save(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, channel: FromPath[str]
    ) -> Response[Any]:
        if channel not in providers.CHANNELS:
            raise NotFound()
        form = await form_data(request)
        provider = fv.text_of(form, "provider", max_length=16)
        names = [name for name, _ in providers.FIELDS.get(provider, ())]
        settings = {name: fv.text_of(form, name, max_length=200) for name in names}
        secret = fv.text_of(form, "secret", max_length=500) or None
        try:
            await providers.save_provider(ident.db, principal.tenant, channel, provider, settings, secret)
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await self._panel(
                request,
                principal,
                ident,
                status=exc.status,
                errors={channel: form_errors(exc, language(request), ALL_FIELDS)},
                values={channel: {"provider": provider, **settings}},
            )
        return go(request, "/console/messaging", flash="provider-saved")


class SmsRepliesPages(Controller):
    """Members' replies to marketing SMS (decision 0045), newest first, 50 a page: when (in the
    merchant's zone), the phone masked, what they wrote and what it did (unsubscribed, or stored)."""

    path = "/console/messaging/replies"

    @get("/", guards=[REPLIES])
    async def index(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        action: FromQuery[str] = "",
        n: FromQuery[int] = 1,
    ) -> Template:
        chosen = action if action in replies.ACTIONS else ""
        found = await replies.listing(ident.db, principal.tenant, chosen or None, n)
        return await page(
            request,
            "console/messaging/replies.html",
            principal=principal,
            active="sms_replies",
            found=found,
            action=chosen,
            actions=ACTION_LABELS,
            rows=[(r, mask_phone(r.phone)) for r in found.rows],
        )
