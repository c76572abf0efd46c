"""Settlement (月结): the chain's months, closing one, a month's summary and each branch's statement,
and their files — the console face of ``/api/v1/settlement``.

- ``/console/settlement``: every month of the book from its first to the current one, each with its
  state and what a close of it would do now (``services.calendar``: the close's own rule, asked of
  every month), and a *Close* button (with a confirmation) for those who hold ``settlement:write``.
- Closing queues the close to the worker as ``POST /settlement/periods/{p}/close`` does
  (``services.queue_close``: a month that may not be closed is refused now, with the reason); the
  progress page is polled by htmx every second until the close has written its statements.
- ``/console/settlement/<month>``: the summary (per branch: net and who pays whom, a bar chart) and
  ``…/statements/<id>`` one statement (opening, lines, late items, net, closing); the files are the
  API's exporters (``services.statement_file``), for the month or for one statement.

Guards are the API's: ``settlement:read`` to see (the menu entry's tuple), ``settlement:write`` to close.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from babel.dates import format_skeleton
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import drilldown, services
from lianka.alliance.settlement.domain import Month
from lianka.alliance.settlement.statements import PeriodStatus, Statement
from lianka.billing.membership import products as membership_products
from lianka.platform import audit
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.api.settlement import file_response
from lianka.web.console import i18n, messages
from lianka.web.console.i18n import N_, Language
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, go, is_htmx, language, page

READ = requires(*MENU["settlement"].permissions)
WRITE = requires(Permission.SETTLEMENT_WRITE)
PROGRESS_TARGET = "close-progress"
FORMATS = ("pdf", "xlsx", "csv", "instructions")
#: polls of a close still waiting for the worker before the page says it is taking long (1 s each)
PATIENCE = 30

#: the statement lines (``domain.LineKind``) as a merchant reads them
LINES: dict[str, str] = {
    "stored_value_collected": N_("Stored value collected"),
    "stored_value_consumed_principal": N_("Stored value spent (principal)"),
    "stored_value_bonus_funded": N_("Bonus spent, paid to the branch"),
    "stored_value_bonus_charged": N_("Bonus charged to the issuing branch"),
    "stored_value_refunded": N_("Stored value refunded"),
    "points_issued": N_("Points issued"),
    "points_redeemed": N_("Points redeemed"),
    "points_expired": N_("Points expired (returned)"),
    "cross_marketing_charged": N_("Cross-marketing fees paid"),
    "cross_marketing_earned": N_("Cross-marketing fees earned"),
    "fee": N_("Fees"),
    "adjustment": N_("Adjustments"),
}
FILES: dict[str, str] = {
    "pdf": N_("PDF"),
    "xlsx": N_("Excel (XLSX)"),
    "csv": N_("CSV"),
    "instructions": N_("Payment instructions (CSV)"),
}
#: the steps of a close as the progress page names them (``close.STEPS``), with how far along each is
STEPS: tuple[tuple[str, str, int], ...] = (
    ("queued", N_("Queued: waiting for the worker"), 5),
    ("closing", N_("The month stops taking entries"), 35),
    ("statements", N_("Statements written"), 70),
    ("closed", N_("Closed"), 100),
)


def month_label(period: str, lang: Language) -> str:
    """``2026年10月`` / ``October 2026``."""
    year, month = map(int, period.split("-"))
    return format_skeleton("yMMMM", date(year, month, 1), locale=lang.locale)


def status_label(status: str, lang: Language) -> str:
    labels = {
        "open": lang.pgettext("period", "Open"),
        "closing": lang.pgettext("period", "Closing"),
        "closed": lang.pgettext("period", "Closed"),
    }
    return labels.get(status, status)


def line_label(line: str, lang: Language) -> str:
    return lang.gettext(LINES[line]) if line in LINES else line


def direction_text(s: Statement, lang: Language) -> str:
    """Who pays whom: positive nets are paid by HQ to the branch, negative ones by the branch to HQ."""
    if s.entity_kind == "hub":
        return lang.gettext("HQ's own line")
    if s.net > 0:
        return lang.gettext("HQ pays %(branch)s") % {"branch": s.code}
    if s.net < 0:
        return lang.gettext("%(branch)s pays HQ") % {"branch": s.code}
    return lang.gettext("Nothing to settle")


def _when(iso: str, lang: Language, timezone: str) -> str:
    return i18n.localtime(datetime.fromisoformat(iso), lang, timezone, "short")


def refusal_text(slug: str, extra: dict[str, Any], period: str, lang: Language, timezone: str) -> str:
    """Why a month may not be closed, from the problem a close answers (its ``type`` and the facts
    it carries: when the month ends, the book's first month, the month to close first)."""
    month = month_label(period, lang)
    if slug == "period-not-ended" and extra.get("ends_at"):
        return lang.gettext("%(month)s has not ended yet (%(zone)s): it can be closed from %(when)s.") % {
            "month": month,
            "zone": timezone,
            "when": i18n.localdate(datetime.fromisoformat(str(extra["ends_at"])), lang, timezone, "long"),
        }
    if slug == "period-before-book" and extra.get("first_period"):
        return lang.gettext("%(month)s is before your books began (%(first)s): there is nothing to close.") % {
            "month": month,
            "first": month_label(str(extra["first_period"]), lang),
        }
    if slug == "period-out-of-order" and extra.get("next_period"):
        return lang.gettext("Months are closed in order: close %(first)s first.") % {
            "first": month_label(str(extra["next_period"]), lang)
        }
    if slug == "period-out-of-order" and extra.get("latest_period"):
        return lang.gettext("%(later)s is already closed: an earlier month can no longer be closed.") % {
            "later": month_label(str(extra["latest_period"]), lang)
        }
    return messages.problem_text(slug, None, 422, lang)


@dataclass(frozen=True)
class MonthRow:
    """A month of the calendar as the page shows it."""

    month: Month
    label: str
    status: str
    #: why it may not be closed now, or what closing it does; '' when there is nothing to say
    note: str


def month_rows(months: list[Month], lang: Language, timezone: str) -> list[MonthRow]:
    rows = []
    for m in months:
        if m.folded_into:
            note = lang.gettext("Closed with %(month)s, the first close: it has no statements of its own.") % {
                "month": month_label(m.folded_into, lang)
            }
        elif m.status == "closed" and not m.statements:
            note = lang.gettext("Closed with the book's first close: it has no statements of its own.")
        elif m.status == "closing":
            note = lang.gettext("The close has begun and has not finished yet.")
        elif m.refusal:
            extra = {"ends_at": m.ends_at.isoformat(), "next_period": m.close_first}
            note = refusal_text(m.refusal, extra, m.period, lang, timezone)
        elif len(m.folds) == 1:
            note = lang.gettext("Your first close: it also closes %(month)s into its opening position.") % {
                "month": month_label(m.folds[0], lang)
            }
        elif m.folds:
            note = lang.gettext("Your first close: it also closes %(first)s to %(last)s into its opening position.") % {
                "first": month_label(m.folds[0], lang),
                "last": month_label(m.folds[-1], lang),
            }
        else:
            note = ""
        rows.append(MonthRow(m, month_label(m.period, lang), status_label(m.status, lang), note))
    return rows


def progress_of(status: PeriodStatus) -> tuple[str, int]:
    """(step, percent) of a close from where its period stands."""
    if status.status == "closed":
        return "closed", 100
    step = status.step or "queued"
    return step, next((pct for key, _label, pct in STEPS if key == step), 5)


def chart_of(statements: list[Statement], lang: Language) -> dict[str, Any]:
    """The bar chart's data (drawn by ``settlement.js``): one bar per branch, its net in minor units
    and the same amount as the page writes it."""
    branches = [s for s in statements if s.entity_kind == "branch"]
    return {
        "labels": [f"{s.code} {s.name}" for s in branches],
        "values": [s.net for s in branches],
        "texts": [f"{i18n.money(s.net, s.currency)}" for s in branches],
        "legend": [lang.gettext("HQ pays the branch"), lang.gettext("The branch pays HQ")],
    }


def _late_items(s: Statement, lang: Language, timezone: str) -> list[dict[str, Any]]:
    return [
        {
            **item,
            "when": _when(str(item["business_time"]), lang, timezone),
            "belongs_label": month_label(str(item["belongs_to"]), lang),
            "line_label": line_label(str(item["line"]), lang),
        }
        for item in s.late_items
    ]


def float_chart(months: list[drilldown.FloatMonth], currency: str, lang: Language) -> dict[str, Any]:
    """The float trend's data (drawn by ``float.js``): per month of the book, the stored value members
    held at its end, principal and bonus stacked (minor units), and the total as the page writes it."""
    return {
        "labels": [month_label(m.period, lang) for m in months],
        "principal": [m.principal for m in months],
        "bonus": [m.bonus for m in months],
        "texts": [i18n.money(m.total, currency) for m in months],
        "names": [lang.gettext("Principal"), lang.gettext("Bonus")],
    }


def entry_rows(page: drilldown.LinePage, lang: Language, timezone: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(e.id),
            "kind": e.kind,
            "when": i18n.localtime(e.business_time, lang, timezone, "short"),
            "late": e.late,
            "memo": e.memo,
            "amount": e.amount,
            "points": e.points,
        }
        for e in page.entries
    ]


class SettlementPages(Controller):
    path = "/console/settlement"

    async def _index(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        refused: str | None = None,
    ) -> Template:
        """The calendar page, or for htmx only its panel (after a refused close)."""
        lang = language(request)
        months = await services.calendar(ident.db, principal.tenant)
        timezone = await self._timezone(ident, principal)
        template = "console/settlement/" + ("_months.html" if is_htmx(request) else "index.html")
        return await page(
            request,
            template,
            principal=principal,
            active="settlement",
            status=status,
            rows=month_rows(months, lang, timezone),
            refused=refused,
            timezone=timezone,
            membership_deferred=(await membership_products.get_settings(ident.db, principal.tenant)).deferred_revenue,
        )

    async def _timezone(self, ident: IdentityService, principal: Principal) -> str:
        """The chain's time zone: its months are months there (the book's)."""
        return (await merchant_profile(ident.db, principal.tenant)).timezone

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._index(request, principal, ident)

    @post("/{period:str}/close", guards=[READ, WRITE])
    async def close(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Response[Any]:
        """Queue the close (the API's use case), then its progress page; a month that may not be
        closed comes back on the calendar with the reason (the problem's status)."""
        try:
            await services.queue_close(ident.db, principal.tenant, period, actor=audit.by(principal))
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            lang = language(request)
            timezone = await self._timezone(ident, principal)
            refused = refusal_text(exc.type_slug, exc.extra, period, lang, timezone) if exc.status == 422 else None
            return await self._index(
                request,
                principal,
                ident,
                status=exc.status,
                refused=refused or messages.problem_text(exc.type_slug, "period", exc.status, lang),
            )
        return go(request, f"/console/settlement/{period}/progress")

    @get("/{period:str}/progress", guards=[READ])
    async def progress(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        n: FromQuery[int] = 0,
    ) -> Template:
        """Where the close stands; htmx's poll (every second until it is closed) gets only the progress
        part. ``n`` counts the polls, so a close that waits long for the worker says so."""
        status = await services.period_status(ident.db, principal.tenant, period)
        step, percent = progress_of(status)
        polled = is_htmx(request) and request.headers.get("hx-target") == PROGRESS_TARGET
        template = "console/settlement/" + ("_progress.html" if polled else "progress.html")
        lang = language(request)
        return await page(
            request,
            template,
            principal=principal,
            active="settlement",
            period=period,
            label=month_label(period, lang),
            state=status,
            step=step,
            percent=percent,
            steps=STEPS,
            done=step == "closed",
            polls=max(0, min(n, 10_000)),
            slow=step == "queued" and n >= PATIENCE,
        )

    @get("/{period:str}", guards=[READ])
    async def period(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str]
    ) -> Template:
        """The month's summary: each branch's net and who pays whom, as a table and a chart."""
        status = await services.period_status(ident.db, principal.tenant, period)
        lang = language(request)
        branches = [s for s in status.statements if s.entity_kind == "branch"]
        hub = next((s for s in status.statements if s.entity_kind == "hub"), None)
        currency = (await merchant_profile(ident.db, principal.tenant)).currency
        trend = await drilldown.float_trend(ident.db, principal.tenant)
        return await page(
            request,
            "console/settlement/period.html",
            principal=principal,
            active="settlement",
            period=period,
            label=month_label(period, lang),
            state=status,
            status_text=status_label(status.status, lang),
            branches=branches,
            hub=hub,
            currency=hub.currency if hub else None,
            directions={s.entity_id: direction_text(s, lang) for s in status.statements},
            chart=chart_of(status.statements, lang),
            float_chart=float_chart(trend, currency, lang),
            float_months=trend,
            float_currency=currency,
            files=FILES,
        )

    @get("/{period:str}/statements/{entity_id:uuid}", guards=[READ])
    async def statement(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        entity_id: FromPath[uuid.UUID],
    ) -> Template:
        """One branch's (or HQ's) statement: opening, lines, late items, net and direction, closing."""
        s = await services.statement(ident.db, principal.tenant, period, entity_id)
        lang = language(request)
        timezone = await self._timezone(ident, principal)
        return await page(
            request,
            "console/settlement/statement.html",
            principal=principal,
            active="settlement",
            period=period,
            label=month_label(period, lang),
            s=s,
            lines=[(line_label(k, lang), k, v) for k, v in s.lines.items()],
            late_items=_late_items(s, lang, timezone),
            direction=direction_text(s, lang),
            files=FILES,
        )

    @get("/{period:str}/statements/{entity_id:uuid}/lines/{line:str}", guards=[READ])
    async def line(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        entity_id: FromPath[uuid.UUID],
        line: FromPath[str],
        n: FromQuery[int] = 1,
    ) -> Template:
        """One line of a branch's statement: the journal entries behind it, a page (``n``) at a time."""
        found = await drilldown.line_entries(ident.db, principal.tenant, period, entity_id, line, n)
        lang = language(request)
        timezone = await self._timezone(ident, principal)
        return await page(
            request,
            "console/settlement/line.html",
            principal=principal,
            active="settlement",
            period=period,
            label=month_label(period, lang),
            s=found.statement,
            found=found,
            line_text=line_label(line, lang),
            rows=entry_rows(found, lang, timezone),
        )

    @get("/{period:str}/download/{fmt:str}", guards=[READ])
    async def download(
        self, principal: CurrentPrincipal, ident: IdentityService, period: FromPath[str], fmt: FromPath[str]
    ) -> Response[bytes]:
        """The month's statements as a file: the API's exporter (``GET /settlement/periods/{p}/download/{fmt}``)."""
        check_period(period)
        return file_response(
            await services.statement_file(ident.db, principal.tenant, period, fmt, actor=audit.by(principal))
        )

    @get("/{period:str}/statements/{entity_id:uuid}/download/{fmt:str}", guards=[READ])
    async def statement_download(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        period: FromPath[str],
        entity_id: FromPath[uuid.UUID],
        fmt: FromPath[str],
    ) -> Response[bytes]:
        """One statement as a file (and its payment instruction), by the same exporter."""
        check_period(period)
        return file_response(
            await services.statement_file(ident.db, principal.tenant, period, fmt, entity_id, actor=audit.by(principal))
        )
