"""Payouts (结算付款) on the settlement pages: a closed month's payouts panel — each line's payee,
amount, method, status and attempt, "pay all owed" (queued to the worker, with progress like the
close), a retry for a failed or returned line, marking a bank-file line paid or returned, the bank
payment file — and the Stripe Connect onboarding link for a branch that is not connected.

Guards are the API's (``/api/v1/settlement/…/payouts``): ``settlement:read`` to see,
``settlement:write`` to pay, retry, mark and onboard. Each handler calls one use case of
``billing.payouts``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.payouts import bankfile, connect, services
from lianka.billing.payouts.queries import PayoutRow
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.platform.settings import Settings
from lianka.web.console import messages
from lianka.web.console.i18n import N_, Language
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, is_htmx, language, page
from lianka.web.console.settlement import month_label

READ = requires(*MENU["settlement"].permissions)
WRITE = requires(Permission.SETTLEMENT_WRITE)
PANEL = {"HX-Retarget": "#payouts-panel", "HX-Reswap": "outerHTML"}

METHODS: dict[str, str] = {"stripe": N_("Stripe transfer"), "bank": N_("Bank file")}
CONNECTIONS: dict[str, str] = {
    "connected": N_("Connected to Stripe"),
    "onboarding": N_("Stripe onboarding not finished"),
    "none": N_("Not connected: paid by bank file"),
}


#: the payouts' refusals as the panel words them (other problems: ``messages.problem_text``)
PROBLEMS: dict[str, str] = {
    "payout-not-retryable": N_("Only a failed or returned payout can be tried again: this one is pending or paid."),
    "payout-not-bank": N_("A Stripe transfer is settled by Stripe, not by hand."),
    "payout-status-conflict": N_("The payout cannot be marked like that from its current status."),
    "billing-not-configured": N_("Stripe is not configured on this installation."),
}


def status_text(status: str, lang: Language) -> str:
    """A payout's status ("Paid" and "Pending" mean other things elsewhere: a context keeps them apart)."""
    labels = {
        "pending": lang.pgettext("payout", "Pending"),
        "paid": lang.pgettext("payout", "Paid"),
        "failed": lang.pgettext("payout", "Failed"),
        "returned": lang.pgettext("payout", "Returned"),
    }
    return labels.get(status, status)


def direction_text(p: PayoutRow, lang: Language) -> str:
    if p.direction == "payout":
        return lang.gettext("HQ pays %(branch)s") % {"branch": p.code}
    return lang.gettext("%(branch)s pays HQ") % {"branch": p.code}


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class PayoutPages(Controller):
    path = "/console/settlement"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        period: str,
        *,
        status: int = 200,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        """The payouts panel (htmx) or its page; while a run is under way the panel polls itself."""
        lang = language(request)
        rows = await services.list_payouts(ident.db, principal.tenant, period)
        progress = await services.progress(ident.db, principal.tenant, period)
        payees = {p.id: p for p in await connect.payees(ident.db, principal.tenant)}
        template = "console/settlement/" + ("_payouts.html" if is_htmx(request) else "payouts.html")
        return await page(
            request,
            template,
            principal=principal,
            active="settlement",
            status=status,
            headers=headers,
            period=period,
            label=month_label(period, lang),
            rows=rows,
            progress=progress,
            payees=payees,
            statuses={p.id: status_text(p.status, lang) for p in rows},
            directions={p.id: direction_text(p, lang) for p in rows},
            methods=METHODS,
            connections=CONNECTIONS,
            error=error,
            stripe=bool(_settings(request).stripe_secret_key),
        )

    async def _refused(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, period: str, exc: DomainError
    ) -> Template:
        if exc.status in (401, 403, 404):
            raise exc
        lang = language(request)
        known = PROBLEMS.get(exc.type_slug)
        text = lang.gettext(known) if known else messages.problem_text(exc.type_slug, None, exc.status, lang)
        return await self._panel(request, principal, ident, period, status=exc.status, error=text, headers=PANEL)

    async def _done(self, request: HtmlRequest, principal: Principal, ident: IdentityService, period: str) -> Any:
        if is_htmx(request):
            return await self._panel(request, principal, ident, period, headers=PANEL)
        return go(request, f"/console/settlement/{period}/payouts")

    @get("/{period:str}/payouts", guards=[READ])
    async def payouts(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Template:
        return await self._panel(request, principal, ident, period)

    @post("/{period:str}/payouts/run", guards=[READ, WRITE])
    async def run(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Any:
        """Pay all owed: the payouts are made now, the transfers sent by the worker."""
        try:
            await services.queue_run(ident.db, await services.scope_of(ident.db, principal.tenant), period)
        except DomainError as exc:
            return await self._refused(request, principal, ident, period, exc)
        return await self._done(request, principal, ident, period)

    @post("/{period:str}/payouts/{payout_id:uuid}/retry", guards=[READ, WRITE])
    async def retry(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        try:
            scope = await services.scope_of(ident.db, principal.tenant)
            await services.retry(ident.db, _settings(request), scope, payout_id)
        except DomainError as exc:
            return await self._refused(request, principal, ident, period, exc)
        return await self._done(request, principal, ident, period)

    @post("/{period:str}/payouts/{payout_id:uuid}/mark", guards=[READ, WRITE])
    async def mark(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        """What the bank did with a bank-file line: paid (received, for a collection) or returned."""
        form = await form_data(request)
        try:
            await services.mark(ident.db, principal.tenant, payout_id, form_text(form, "status"), None)
        except DomainError as exc:
            return await self._refused(request, principal, ident, period, exc)
        return await self._done(request, principal, ident, period)

    @get("/{period:str}/payouts/bank-file", guards=[READ])
    async def bank_file(
        self, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Response[bytes]:
        scope = await services.scope_of(ident.db, principal.tenant)
        body = await bankfile.bank_file(ident.db, principal.tenant, period, scope.hub_name)
        name = f"{scope.hub_code}-payouts-{period}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @post("/payees/{payee_id:uuid}/onboarding", guards=[READ, WRITE])
    async def onboarding(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, payee_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        """Send the owner to Stripe's onboarding for the branch (its connected account is made once);
        Stripe sends them back to the branches page."""
        back = str(request.base_url).rstrip("/") + "/console/branches"
        url = await connect.onboarding_link(
            ident.db, _settings(request), principal.tenant, payee_id, return_url=back, refresh_url=back
        )
        return go(request, url)
