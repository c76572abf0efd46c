"""Settings → Webhooks: the merchant's subscriptions (a new or rotated secret shown once), switch on
and off, test send, the delivery log with each attempt, replay (decision 0052).

- ``webhooks:read`` to see (owners and admins), ``webhooks:write`` to change anything.
- Each handler calls one use case of ``platform.webhooks.services``, the same as ``/api/v1/webhooks``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.platform.webhooks import domain, sender
from lianka.platform.webhooks import services as svc
from lianka.platform.webhooks.domain import BREAKER_THRESHOLD, ROTATION_OVERLAP
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_errors,
    form_text,
    language,
    page,
    panel_page,
)

READ = requires(*MENU["webhooks"].permissions)
WRITE = requires(Permission.WEBHOOKS_WRITE)
FIELDS = ("url", "events", "description")
#: the events in the reader's words (the keys are the API's)
EVENT_LABELS = {
    "sale.recorded": N_("A sale is recorded"),
    "member.joined": N_("A member joins"),
    "member.tier_changed": N_("A member changes tier"),
    "points.expiring": N_("A member's points are about to expire"),
    "period.closed": N_("A settlement month is closed"),
    "sale.refunded": N_("A sale is refunded"),
    "topup.recorded": N_("Stored value is topped up"),
}
assert set(EVENT_LABELS) == set(domain.EVENT_TYPES)
STATUS_LABELS = {"pending": N_("Retrying"), "delivered": N_("Delivered"), "failed": N_("Failed")}


def _values(form: Any = None) -> dict[str, Any]:
    if form is None:
        return {"url": "", "description": "", "events": ["sale.recorded"]}
    return {
        "url": form_text(form, "url")[:2000],
        "description": form_text(form, "description")[:200],
        "events": [str(e) for e in form.getall("events", [])][:10],
    }


def _policy(ident: IdentityService) -> sender.Policy:
    return sender.Policy(production=ident.settings.is_production)


class WebhookPages(Controller):
    path = "/console/settings/webhooks"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: FormErrors | None = None,
        secret: tuple[str, str] | None = None,
        flash: str | None = None,
    ) -> Template:
        subs = await svc.list_subscriptions(ident.db, principal.tenant)
        return await panel_page(
            request,
            "webhooks",
            principal=principal,
            status=status,
            subscriptions=subs,
            urls={s.id: s.url for s in subs},
            deliveries=await svc.list_deliveries(ident.db, principal.tenant, limit=50),
            event_labels=EVENT_LABELS,
            status_labels=STATUS_LABELS,
            breaker_threshold=BREAKER_THRESHOLD,
            now=datetime.now(UTC),
            values=values or _values(),
            errors=errors or FormErrors(),
            secret=secret,
            flash=flash,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @post("/", guards=[READ, WRITE])
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """Subscribe; the answer shows the secret once (no redirect: a reload must not show it)."""
        values = _values(await form_data(request))
        try:
            made = await svc.subscribe(
                ident.db, principal.tenant, values["url"], values["events"], values["description"], _policy(ident)
            )
        except DomainError as exc:
            errors = form_errors(exc, language(request), FIELDS)
            return await self._panel(request, principal, ident, status=exc.status, values=values, errors=errors)
        secret = (made.subscription.url, made.secret)
        return await self._panel(request, principal, ident, secret=secret, flash="webhook-created")

    @post("/{sub_id:uuid}/rotate", guards=[READ, WRITE])
    async def rotate(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, sub_id: FromPath[uuid.UUID]
    ) -> Template:
        leaked = form_text(await form_data(request), "old") == "stop"  # the old one stops at once
        new = await svc.rotate_secret(ident.db, principal.tenant, sub_id, timedelta(0) if leaked else ROTATION_OVERLAP)
        subs = {s.id: s.url for s in await svc.list_subscriptions(ident.db, principal.tenant)}
        return await self._panel(request, principal, ident, secret=(subs[sub_id], new), flash="webhook-rotated")

    @post("/{sub_id:uuid}/active", guards=[READ, WRITE])
    async def switch(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, sub_id: FromPath[uuid.UUID]
    ) -> Template:
        on = form_text(await form_data(request), "active") == "on"
        await svc.change(ident.db, principal.tenant, sub_id, active=on, policy=_policy(ident))
        flash = "webhook-switched-on" if on else "webhook-switched-off"
        return await self._panel(request, principal, ident, flash=flash)

    @post("/{sub_id:uuid}/test", guards=[READ, WRITE])
    async def test_send(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, sub_id: FromPath[uuid.UUID]
    ) -> Template:
        await svc.test_send(ident.db, principal.tenant, sub_id)
        return await self._panel(request, principal, ident, flash="webhook-test-queued")

    @post("/deliveries/{delivery_id:uuid}/replay", guards=[READ, WRITE])
    async def replay(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        delivery_id: FromPath[uuid.UUID],
    ) -> Template:
        await svc.replay(ident.db, principal.tenant, delivery_id)
        return await self._panel(request, principal, ident, flash="webhook-replay-queued")

    @get("/deliveries/{delivery_id:uuid}", guards=[READ])
    async def delivery(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        delivery_id: FromPath[uuid.UUID],
    ) -> Template:
        """One delivery and every attempt: HTTP status, duration, error, the start of the answer."""
        d, attempts = await svc.delivery_log(ident.db, principal.tenant, delivery_id)
        return await page(
            request,
            "console/webhooks/delivery.html",
            principal=principal,
            active="webhooks",
            delivery=d,
            attempts=attempts,
            event_labels=EVENT_LABELS,
            status_labels=STATUS_LABELS,
        )
