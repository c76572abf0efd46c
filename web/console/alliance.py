"""Alliances (异业联盟) in the console: the merchant's alliances, founding one and joining one with an
invitation code; an alliance's partners (invite, suspend, reinstate, leave), its versioned terms and
its month-end statements.

- ``/console/alliance``: the alliances this merchant operates or is a partner of, a "found an
  alliance" form and a "join with an invitation code" form.
- ``/console/alliance/<id>``: the partners with their slug, name and status — the operator as the
  hub —, an invitation code made on request (shown once, to copy: only its hash is kept), and the
  status changes the use case allows (the operator suspends and reinstates a partner or takes it
  out; a partner leaves).
- ``/console/alliance/<id>/terms``: every terms version (in force, scheduled, superseded) and the
  editor (:mod:`alliance_terms`): every field the API's terms take, published as a new version now
  or from a chosen time, never back-dated. Partners and readers see it read-only.
- ``/console/alliance/<id>/statements?period=YYYY-MM``: the month's statements this merchant may
  see (the operator: every partner's and the hub's; a partner: its own and its branches'), the
  files from the API's exporters, and for the operator the close of the month.

Guarded like the API: the pages need ``merchant:read`` and the back office (``reports:read``); every
write ``merchant:write``; the statements ``settlement:read`` and the close ``settlement:write``.
Whether this merchant is the operator or a partner is the use cases' check (an alliance it is not
in answers 404, like an unknown one). Each handler calls the use case the API handler calls
(``alliance.alliances.membership``, ``terms``, ``month_end``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.alliance.alliances import membership, month_end
from lianka.alliance.alliances import terms as versioned_terms
from lianka.alliance.alliances.domain import Terms, decode
from lianka.alliance.ledger.domain import PERIOD
from lianka.alliance.settlement.domain import ended_periods
from lianka.alliance.settlement.statements import PeriodStatus, Statement
from lianka.platform import audit
from lianka.platform.errors import DomainError, NotFound, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.billing_gate import PLAN_LIMIT
from lianka.web.console import alliance_terms as at
from lianka.web.console import form_values as fv
from lianka.web.console import messages
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_text,
    go,
    is_htmx,
    language,
    page,
)

READ = requires(*MENU["alliance"].permissions)
WRITE = requires(Permission.MERCHANT_WRITE)
STATEMENTS = requires(Permission.SETTLEMENT_READ)
CLOSE = requires(Permission.SETTLEMENT_WRITE)
FILES = ("csv", "xlsx", "pdf", "instructions")
PARTNERS_PANEL = {"HX-Retarget": "#partners-panel", "HX-Reswap": "outerHTML"}
TERMS_FORM = {"HX-Retarget": "#terms-form", "HX-Reswap": "outerHTML"}

#: messages beside the inputs of the found, join and invite forms (by input, or input:problem type)
FORM_TEXTS: dict[str, str] = {
    "code": N_("Use 2 to 40 lower-case letters, digits or “-”, starting with a letter or a digit."),
    "code:conflict": N_("Another alliance already uses this code."),
    "name": N_("Enter a name of 1 to 200 characters."),
    "currency": N_("Choose a currency such as CNY."),
    "timezone": N_("Enter a time zone such as Asia/Shanghai."),
    "invite_code": N_("Paste the code the alliance's operator gave you."),
    "invite_code:not-found": N_("This code is not valid: mistyped, used already, or expired."),
    "note": N_("A note has at most 200 characters."),
    "days": N_("Enter 1 to 90 days."),
    "period": N_("Choose a month."),
    "period-not-ended": N_("This month has not ended yet in the alliance's time zone."),
    "period-before-book": N_("The alliance did not exist yet in this month."),
    "period-out-of-order": N_("Close the months in order: an earlier month is still open."),
    "conflict": N_("Your business is already in this alliance."),
}

#: the notes the use cases write themselves (a merchant's own notes are shown as typed)
SYSTEM_NOTES: dict[str, str] = {"founding terms": N_("Founding terms")}

#: statement lines, as the files name them (``settlement.exports.LINE_LABELS``)
LINE_LABELS: dict[str, str] = {
    "stored_value_collected": N_("Stored value collected"),
    "stored_value_consumed_principal": N_("Stored value consumed (principal)"),
    "stored_value_bonus_funded": N_("Bonus funded"),
    "stored_value_bonus_charged": N_("Bonus charged"),
    "stored_value_refunded": N_("Stored value refunded"),
    "points_issued": N_("Points issued"),
    "points_redeemed": N_("Points redeemed"),
    "points_expired": N_("Points expired (returned)"),
    "cross_marketing_charged": N_("Cross-marketing fees paid"),
    "cross_marketing_earned": N_("Cross-marketing fees earned"),
    "fee": N_("Fees"),
    "adjustment": N_("Adjustments"),
}


@dataclass(frozen=True)
class VersionRow:
    """A terms version as the history lists it."""

    version: int
    effective_from: datetime
    note: str
    status: str  # in_force | scheduled | superseded
    terms: Terms

    @property
    def from_start(self) -> bool:
        """The founding terms: they apply to everything the alliance ever booked."""
        return self.effective_from <= membership.SINCE_EVER


def _values(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: form_text(form, name) if form is not None else "" for name in names}


def _errors(
    exc: DomainError, request: HtmlRequest, names: set[str], placed: dict[str, str] | None = None
) -> FormErrors:
    """The problem beside its input (``placed``: the problem's field -> the input's name)."""
    where = placed or {}
    return fv.field_errors(exc, language(request), names, FORM_TEXTS, placed=lambda field: where.get(field, field))


def _last_month(timezone: str) -> str:
    return ended_periods(timezone, 1, datetime.now(UTC))[0]


def _history(rows: list[dict[str, Any]]) -> list[VersionRow]:
    """The versions, newest first, each with its status now."""
    now = datetime.now(UTC)
    in_force = max((r["version"] for r in rows if r["effective_from"] <= now), default=None)
    return [
        VersionRow(
            r["version"],
            r["effective_from"],
            r["note"],
            "in_force" if r["version"] == in_force else "scheduled" if r["effective_from"] > now else "superseded",
            decode(r["document"]),
        )
        for r in rows
    ]


class AlliancePages(Controller):
    path = "/console/alliance"

    # --- the merchant's alliances, found, join ------------------------------------------------------

    async def _index(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        found: dict[str, str] | None = None,
        found_errors: FormErrors | None = None,
        join: dict[str, str] | None = None,
        join_errors: FormErrors | None = None,
        fragment: str | None = None,
    ) -> Template:
        mine = await membership.my_alliances(ident.db, principal.tenant)
        merchant = await merchant_profile(ident.db, principal.tenant)
        return await page(
            request,
            fragment or "console/alliance/index.html",
            principal=principal,
            active="alliance",
            status=status,
            alliances=mine,
            found=found or {"code": "", "name": "", "currency": merchant.currency, "timezone": merchant.timezone},
            found_errors=found_errors or FormErrors(),
            join=join or {"invite_code": ""},
            join_errors=join_errors or FormErrors(),
            can_write=principal.has(Permission.MERCHANT_WRITE),
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._index(request, principal, ident)

    @post("/", guards=[READ, WRITE], opt={PLAN_LIMIT: "alliance_membership"})
    async def found(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Found an alliance: this merchant operates it; default terms, edited on its terms page."""
        values = _values(await form_data(request), ("code", "name", "currency", "timezone"))
        try:
            made = await membership.create(
                ident.db,
                principal.tenant,
                code=values["code"],
                name=values["name"],
                terms=Terms(),
                currency=values["currency"] or None,
                timezone=values["timezone"] or None,
            )
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await self._index(
                request,
                principal,
                ident,
                status=exc.status,
                found=values,
                found_errors=_errors(exc, request, set(values)),
                fragment="console/alliance/_found_form.html" if is_htmx(request) else None,
            )
        return go(request, f"/console/alliance/{made.id}", flash="alliance-founded")

    @post("/join", guards=[READ, WRITE], opt={PLAN_LIMIT: "alliance_membership"})
    async def join(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Accept an invitation code: this merchant becomes an active partner."""
        values = _values(await form_data(request), ("invite_code",))
        try:
            if not values["invite_code"] or len(values["invite_code"]) > 128:
                raise ValidationFailed("code: 1-128 characters", field="code")
            joined = await membership.accept(ident.db, principal.tenant, values["invite_code"])
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            return await self._index(
                request,
                principal,
                ident,
                status=exc.status,
                join=values,
                join_errors=_errors(exc, request, {"invite_code"}, {"code": "invite_code"}),
                fragment="console/alliance/_join_form.html" if is_htmx(request) else None,
            )
        return go(request, f"/console/alliance/{joined.id}", flash="alliance-joined")

    # --- one alliance: partners ---------------------------------------------------------------------

    async def _partners(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        alliance_id: uuid.UUID,
        *,
        status: int = 200,
        invite: dict[str, str] | None = None,
        errors: FormErrors | None = None,
        invitation: tuple[str, datetime] | None = None,
        flash: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        rows = await membership.partners(ident.db, principal.tenant, alliance_id)
        template = "console/alliance/_partners_panel.html" if is_htmx(request) else "console/alliance/partners.html"
        return await page(
            request,
            template,
            principal=principal,
            active="alliance",
            status=status,
            headers=headers,
            alliance=alliance,
            tab="partners",
            partners=rows,
            invite=invite or {"note": "", "days": "14"},
            errors=errors or FormErrors(),
            invitation=invitation,
            panel_flash=messages.flash_text(flash, language(request)),
            can_write=principal.has(Permission.MERCHANT_WRITE),
        )

    @get("/{alliance_id:uuid}", guards=[READ])
    async def partners(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._partners(request, principal, ident, alliance_id)

    @post("/{alliance_id:uuid}/invites", guards=[READ, WRITE])
    async def invite(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Template:
        """An invitation code (operator), shown in this answer only: no redirect, a reload must not show it."""
        values = _values(await form_data(request), ("note", "days"))
        try:
            days = fv.whole(values["days"], "days")
            made = await membership.invite(
                ident.db, principal.tenant, alliance_id, note=values["note"], days=days if days is not None else 14
            )
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await self._partners(
                request,
                principal,
                ident,
                alliance_id,
                status=exc.status,
                invite=values,
                errors=_errors(exc, request, set(values)),
            )
        return await self._partners(request, principal, ident, alliance_id, invitation=made, flash="invite-created")

    @post("/{alliance_id:uuid}/partners/{merchant_id:uuid}/status", guards=[READ, WRITE])
    async def set_status(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        merchant_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """Suspend, reinstate or take out a partner (operator), or leave (the partner itself). Refusals
        (403, 404, 422: the operator's own row) are the use case's, shown as the page's error."""
        status = form_text(await form_data(request), "status")
        await membership.set_status(ident.db, principal.tenant, alliance_id, merchant_id, status)
        flash = {"active": "partner-reinstated", "suspended": "partner-suspended"}.get(status, "partner-left")
        if is_htmx(request):
            return await self._partners(request, principal, ident, alliance_id, flash=flash, headers=PARTNERS_PANEL)
        return go(request, f"/console/alliance/{alliance_id}", flash=flash)

    # --- terms --------------------------------------------------------------------------------------

    async def _terms_page(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        alliance_id: uuid.UUID,
        *,
        form: at.TermsForm | None = None,
        controls: dict[str, str] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Template:
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        history = _history(await versioned_terms.terms_history(ident.db, principal.tenant, alliance_id))
        labels = await _partner_labels(ident, principal, alliance_id)
        if form is None:
            form = at.from_terms(history[0].terms if history else Terms(), list(labels.items()), alliance.currency)
        lang = language(request)
        fragment = "console/alliance/_terms_form.html" if is_htmx(request) and errors else None
        return await page(
            request,
            fragment or "console/alliance/terms.html",
            principal=principal,
            active="alliance",
            status=status,
            headers=headers,
            alliance=alliance,
            tab="terms",
            history=history,
            system_notes=SYSTEM_NOTES,
            form=form,
            controls=controls or {"effective": "now", "effective_at": "", "note": ""},
            errors=errors or FormErrors(),
            label=lambda name: lang.gettext(at.LABELS[name]),
            choices=lambda name: {k: lang.gettext(v) for k, v in at.CHOICES[name].items()},
            choice=lambda name, value: lang.gettext(at.CHOICES[name].get(str(value), str(value))),
            can_write=principal.has(Permission.MERCHANT_WRITE) and alliance.role == "operator",
        )

    @get("/{alliance_id:uuid}/terms", guards=[READ])
    async def terms(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._terms_page(request, principal, ident, alliance_id)

    @post("/{alliance_id:uuid}/terms", guards=[READ, WRITE])
    async def publish_terms(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """A new terms version (operator), from now or a chosen time in the merchant's zone."""
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        post_data = await form_data(request)
        form = at.from_post(post_data, await _partner_labels(ident, principal, alliance_id))
        controls = {name: form_text(post_data, name) for name in ("effective", "effective_at", "note")}
        effective_from = None
        try:
            if controls["effective"] == "later":
                timezone = (await merchant_profile(ident.db, principal.tenant)).timezone
                if not controls["effective_at"]:
                    raise ValidationFailed("effective_at: required", field="effective_at", reason="required")
                effective_from = fv.local_time(controls["effective_at"], "effective_at", timezone)
            await versioned_terms.publish_terms(
                ident.db,
                principal.tenant,
                alliance_id,
                at.to_document(form, alliance.currency),
                effective_from=effective_from,
                note=controls["note"],
                actor=audit.by(principal),
            )
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            placed = {"effective_from": "effective_at"}
            errors = fv.field_errors(
                exc,
                language(request),
                form.names() | {"effective_at", "note"},
                at.ERROR_TEXTS,
                placed=lambda field: placed.get(field) or form.input_for(field),
            )
            return await self._terms_page(
                request,
                principal,
                ident,
                alliance_id,
                form=form,
                controls=controls,
                errors=errors,
                status=exc.status,
                headers=TERMS_FORM if is_htmx(request) else None,
            )
        return go(
            request,
            f"/console/alliance/{alliance_id}/terms",
            flash="terms-scheduled" if effective_from is not None else "terms-published",
        )

    # --- statements ---------------------------------------------------------------------------------

    async def _statements_page(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        alliance_id: uuid.UUID,
        period: str | None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Template:
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        errors = errors or FormErrors()
        chosen = period or _last_month(alliance.timezone)
        found: PeriodStatus | None = None
        if not PERIOD.match(chosen):
            errors.fields.setdefault("period", language(request).gettext(FORM_TEXTS["period"]))
            status = max(status, 400)
        else:
            try:
                found = await month_end.period_status(ident.db, principal.tenant, alliance_id, chosen)
            except NotFound:  # the operator's month is not closed yet (membership was checked above)
                found = None
        shown = list(found.statements) if found else []
        return await page(
            request,
            "console/alliance/statements.html",
            principal=principal,
            active="alliance",
            status=status,
            alliance=alliance,
            tab="statements",
            period=chosen,
            result=found if found and found.statements else None,
            statements=_ordered(shown),
            line_labels=LINE_LABELS,
            errors=errors,
            files=FILES if alliance.role == "operator" else FILES[:3],
            can_close=alliance.role == "operator" and principal.has(Permission.SETTLEMENT_WRITE),
        )

    @get("/{alliance_id:uuid}/statements", guards=[READ, STATEMENTS])
    async def statements(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromQuery[str | None] = None,
    ) -> Template:
        return await self._statements_page(request, principal, ident, alliance_id, period)

    @post("/{alliance_id:uuid}/statements/close", guards=[READ, STATEMENTS, CLOSE])
    async def close(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """The operator closes the month (idempotent; refused for a month that may not be closed yet)."""
        period = form_text(await form_data(request), "period")
        try:
            await month_end.close_period(ident.db, principal.tenant, alliance_id, period, actor=audit.by(principal))
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            errors = _errors(exc, request, {"period"})
            if errors.general:  # the month is the form's only input: why it may not be closed stands beside it
                errors = FormErrors(fields={"period": errors.general[0]})
            return await self._statements_page(
                request, principal, ident, alliance_id, period, errors=errors, status=exc.status
            )
        return go(request, f"/console/alliance/{alliance_id}/statements?period={period}", flash="period-closed")

    @get("/{alliance_id:uuid}/statements/{period:str}/{fmt:str}", guards=[READ, STATEMENTS])
    async def download(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
        fmt: FromPath[str],
    ) -> Response[bytes]:
        """The month's statements as a file, from the API's exporters (``GET …/download/{fmt}``)."""
        f = await month_end.statement_file(
            ident.db, principal.tenant, alliance_id, period, fmt, actor=audit.by(principal)
        )
        return Response(
            f.body,
            media_type=f.media_type,
            headers={"Content-Disposition": f'attachment; filename="{f.filename}"'},
        )


async def _partner_labels(ident: IdentityService, principal: Principal, alliance_id: uuid.UUID) -> dict[str, str]:
    """merchant id (as the terms key it) -> "slug · name", for every merchant of the alliance."""
    rows = await membership.partners(ident.db, principal.tenant, alliance_id)
    return {str(p["merchant_id"]): f"{p['slug']} · {p['name']}" for p in rows}


def _ordered(statements: list[Statement]) -> list[Statement]:
    """The hub first, then each partner followed by its branches (a partner sees its own only)."""
    owner = {s.merchant_id: s for s in statements if s.entity_kind != "branch"}

    def key(s: Statement) -> tuple[bool, str, bool, str]:
        head = owner.get(s.parent_id) if s.entity_kind == "branch" else s
        return (head is None or head.entity_kind != "hub", head.code if head else "", s.entity_kind == "branch", s.code)

    return sorted(statements, key=key)
