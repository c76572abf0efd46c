"""Payouts (结算付款) on the settlement pages: a closed month's payouts panel — each line's payee,
amount, method, status and attempt, "pay all owed" (queued to the worker, with progress like the
close), a retry for a failed or returned line, marking a bank-file line paid or returned, the bank
payment file — and the Stripe Connect onboarding link for a payee that is not connected.

One implementation for both books (:class:`Book`): a chain's month (``/console/settlement/<p>``,
branches are paid by HQ) and an alliance's (``/console/alliance/<id>/settlement/<p>``, shown on the
alliance's statements page: partners are paid by the operator; a partner sees its own line only).

Guards are the API's (``/api/v1/settlement/…/payouts``, ``/api/v1/alliances/<id>/settlement/…``):
``settlement:read`` to see, ``settlement:write`` to pay, retry, mark and onboard (and, in an
alliance, being its operator: the use cases check it). Each handler calls one use case of
``billing.payouts`` (``services`` for a chain, ``alliances`` for an alliance).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.payouts import alliances, bankfile, connect, services
from lianka.billing.payouts.queries import PayoutRow
from lianka.platform import audit
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
ALLIANCE_READ = requires(*MENU["alliance"].permissions, Permission.SETTLEMENT_READ)
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
    if p.entity_kind == "partner":
        if p.direction == "payout":
            return lang.gettext("The operator pays %(partner)s") % {"partner": p.code}
        return lang.gettext("%(partner)s pays the operator") % {"partner": p.code}
    if p.direction == "payout":
        return lang.gettext("HQ pays %(branch)s") % {"branch": p.code}
    return lang.gettext("%(branch)s pays HQ") % {"branch": p.code}


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@dataclass(frozen=True)
class Panel:
    rows: list[PayoutRow]
    progress: services.Progress
    payees: list[connect.Payee]
    can_pay: bool


@dataclass(frozen=True)
class Book:
    """Whose payouts a panel shows: the merchant's own chain, or (``alliance``) an alliance the
    merchant operates or is a partner of. Each method is one use case for that book."""

    merchant: uuid.UUID
    alliance: uuid.UUID | None = None

    @property
    def kind(self) -> str:
        return "alliance" if self.alliance else "chain"

    @property
    def base(self) -> str:
        """Where the panel's routes are (``<base>/<period>/payouts…``, ``<base>/payees/…``)."""
        return f"/console/alliance/{self.alliance}/settlement" if self.alliance else "/console/settlement"

    def month_url(self, period: str) -> str:
        """The page the panel sits on."""
        if self.alliance:
            return f"/console/alliance/{self.alliance}/statements?period={period}"
        return f"/console/settlement/{period}"

    @property
    def back(self) -> str:
        """Where Stripe's onboarding sends the owner back to."""
        return f"/console/alliance/{self.alliance}/statements" if self.alliance else "/console/branches"

    async def panel(self, ident: IdentityService, principal: Principal, period: str) -> Panel:
        writer = principal.has(Permission.SETTLEMENT_WRITE)
        if self.alliance:
            v = await alliances.view(ident.db, self.merchant, self.alliance, period)
            return Panel(v.rows, v.progress, v.payees, writer and v.operator)
        rows = await services.list_payouts(ident.db, self.merchant, period)
        progress = await services.progress(ident.db, self.merchant, period)
        return Panel(rows, progress, await connect.payees(ident.db, self.merchant), writer)

    async def run(self, ident: IdentityService, period: str) -> None:
        if self.alliance:
            await alliances.run(ident.db, None, self.merchant, self.alliance, period, wait=False)
        else:
            await services.queue_run(ident.db, await services.scope_of(ident.db, self.merchant), period)

    async def retry(self, ident: IdentityService, settings: Settings, payout_id: uuid.UUID, actor: audit.Actor) -> None:
        if self.alliance:
            await alliances.retry(ident.db, settings, self.merchant, self.alliance, payout_id, actor=actor)
        else:
            scope = await services.scope_of(ident.db, self.merchant)
            await services.retry(ident.db, settings, scope, payout_id, actor=actor)

    async def mark(self, ident: IdentityService, payout_id: uuid.UUID, status: str) -> None:
        if self.alliance:
            await alliances.mark(ident.db, self.merchant, self.alliance, payout_id, status, None)
        else:
            await services.mark(ident.db, self.merchant, payout_id, status, None)

    async def bank_file(self, ident: IdentityService, period: str, actor: audit.Actor) -> tuple[str, bytes]:
        if self.alliance:
            return await alliances.bank_file(ident.db, self.merchant, self.alliance, period, actor=actor)
        scope = await services.scope_of(ident.db, self.merchant)
        body = await bankfile.bank_file(
            ident.db, self.merchant, period, scope.hub_name, merchant=self.merchant, actor=actor
        )
        return f"{scope.hub_code}-payouts-{period}.csv", body

    async def onboarding_link(self, ident: IdentityService, settings: Settings, payee: uuid.UUID, back: str) -> str:
        if self.alliance:
            return await alliances.onboarding_link(
                ident.db, settings, self.merchant, self.alliance, payee, return_url=back, refresh_url=back
            )
        return await connect.onboarding_link(
            ident.db, settings, self.merchant, payee, return_url=back, refresh_url=back
        )


async def panel_page(
    request: HtmlRequest,
    principal: Principal,
    ident: IdentityService,
    book: Book,
    period: str,
    *,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Template:
    """The payouts panel (htmx) or its page; while a run is under way the panel polls itself."""
    lang = language(request)
    data = await book.panel(ident, principal, period)
    template = "console/settlement/" + ("_payouts.html" if is_htmx(request) else "payouts.html")
    return await page(
        request,
        template,
        principal=principal,
        active="alliance" if book.alliance else "settlement",
        status=status,
        headers=headers,
        period=period,
        label=month_label(period, lang),
        kind=book.kind,
        base=book.base,
        month_url=book.month_url(period),
        can_pay=data.can_pay,
        rows=data.rows,
        progress=data.progress,
        payees={p.id: p for p in data.payees},
        statuses={p.id: status_text(p.status, lang) for p in data.rows},
        directions={p.id: direction_text(p, lang) for p in data.rows},
        methods=METHODS,
        connections=CONNECTIONS,
        error=error,
        stripe=bool(_settings(request).stripe_secret_key),
    )


async def refused(
    request: HtmlRequest, principal: Principal, ident: IdentityService, book: Book, period: str, exc: DomainError
) -> Template:
    if exc.status in (401, 403, 404):
        raise exc
    lang = language(request)
    known = PROBLEMS.get(exc.type_slug)
    text = lang.gettext(known) if known else messages.problem_text(exc.type_slug, None, exc.status, lang)
    return await panel_page(request, principal, ident, book, period, status=exc.status, error=text, headers=PANEL)


async def done(request: HtmlRequest, principal: Principal, ident: IdentityService, book: Book, period: str) -> Any:
    if is_htmx(request):
        return await panel_page(request, principal, ident, book, period, headers=PANEL)
    return go(request, f"{book.base}/{period}/payouts")


async def run_all(request: HtmlRequest, principal: Principal, ident: IdentityService, book: Book, period: str) -> Any:
    """Pay all owed: the payouts are made now, the transfers sent by the worker."""
    try:
        await book.run(ident, period)
    except DomainError as exc:
        return await refused(request, principal, ident, book, period, exc)
    return await done(request, principal, ident, book, period)


async def retry_one(
    request: HtmlRequest, principal: Principal, ident: IdentityService, book: Book, period: str, payout_id: uuid.UUID
) -> Any:
    try:
        await book.retry(ident, _settings(request), payout_id, audit.by(principal))
    except DomainError as exc:
        return await refused(request, principal, ident, book, period, exc)
    return await done(request, principal, ident, book, period)


async def mark_one(
    request: HtmlRequest, principal: Principal, ident: IdentityService, book: Book, period: str, payout_id: uuid.UUID
) -> Any:
    """What the bank did with a bank-file line: paid (received, for a collection) or returned."""
    form = await form_data(request)
    try:
        await book.mark(ident, payout_id, form_text(form, "status"))
    except DomainError as exc:
        return await refused(request, principal, ident, book, period, exc)
    return await done(request, principal, ident, book, period)


async def bank_file_response(ident: IdentityService, principal: Principal, book: Book, period: str) -> Response[bytes]:
    name, body = await book.bank_file(ident, period, audit.by(principal))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def onboard(request: HtmlRequest, ident: IdentityService, book: Book, payee_id: uuid.UUID) -> Response[Any]:
    """Send the owner to Stripe's onboarding for the payee (its connected account is made once);
    Stripe sends them back to the branches page (a chain) or the alliance's statements."""
    back = str(request.base_url).rstrip("/") + book.back
    return go(request, await book.onboarding_link(ident, _settings(request), payee_id, back))


class PayoutPages(Controller):
    """A chain's payouts (the merchant's own book)."""

    path = "/console/settlement"

    @get("/{period:str}/payouts", guards=[READ])
    async def payouts(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Template:
        return await panel_page(request, principal, ident, Book(principal.tenant), period)

    @post("/{period:str}/payouts/run", guards=[READ, WRITE])
    async def run(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Any:
        return await run_all(request, principal, ident, Book(principal.tenant), period)

    @post("/{period:str}/payouts/{payout_id:uuid}/retry", guards=[READ, WRITE])
    async def retry(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        return await retry_one(request, principal, ident, Book(principal.tenant), period, payout_id)

    @post("/{period:str}/payouts/{payout_id:uuid}/mark", guards=[READ, WRITE])
    async def mark(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        return await mark_one(request, principal, ident, Book(principal.tenant), period, payout_id)

    @get("/{period:str}/payouts/bank-file", guards=[READ])
    async def bank_file(
        self, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Response[bytes]:
        return await bank_file_response(ident, principal, Book(principal.tenant), period)

    @post("/payees/{payee_id:uuid}/onboarding", guards=[READ, WRITE])
    async def onboarding(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, payee_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        return await onboard(request, ident, Book(principal.tenant), payee_id)


class AlliancePayoutPages(Controller):
    """An alliance's payouts: the operator pays the partners; a partner sees its own line. The panel
    is loaded into the alliance's statements page of a closed month."""

    path = "/console/alliance/{alliance_id:uuid}/settlement"

    @get("/{period:str}/payouts", guards=[ALLIANCE_READ])
    async def payouts(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
    ) -> Template:
        return await panel_page(request, principal, ident, Book(principal.tenant, alliance_id), period)

    @post("/{period:str}/payouts/run", guards=[ALLIANCE_READ, WRITE])
    async def run(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
    ) -> Any:
        return await run_all(request, principal, ident, Book(principal.tenant, alliance_id), period)

    @post("/{period:str}/payouts/{payout_id:uuid}/retry", guards=[ALLIANCE_READ, WRITE])
    async def retry(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        return await retry_one(request, principal, ident, Book(principal.tenant, alliance_id), period, payout_id)

    @post("/{period:str}/payouts/{payout_id:uuid}/mark", guards=[ALLIANCE_READ, WRITE])
    async def mark(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
        payout_id: FromPath[uuid.UUID],
    ) -> Any:
        return await mark_one(request, principal, ident, Book(principal.tenant, alliance_id), period, payout_id)

    @get("/{period:str}/payouts/bank-file", guards=[ALLIANCE_READ])
    async def bank_file(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
    ) -> Response[bytes]:
        return await bank_file_response(ident, principal, Book(principal.tenant, alliance_id), period)

    @post("/payees/{payee_id:uuid}/onboarding", guards=[ALLIANCE_READ, WRITE])
    async def onboarding(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        payee_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        return await onboard(request, ident, Book(principal.tenant, alliance_id), payee_id)
