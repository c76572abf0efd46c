"""The HQ dashboard (概览), the console's first page: a period's KPIs against the previous period,
daily sales (member / non-member), points issued / redeemed / expired, the tier distribution, and a
row per branch — with each chart's table as CSV or XLSX.

- ``/console/dashboard?period=this_month|last_month|last_30|custom&first=…&last=…&branch=…``: the
  page (htmx swaps only the body when the picker changes). Days are the merchant's local days; the
  figures come from the daily rollups (``tenants.reports``), at most a minute behind.
- ``/console/dashboard/download/<chart>.<csv|xlsx>`` with the same query: one chart as a file.

Guarded by ``reports:read`` (the menu entry). A branch manager sees only its branches
(``Principal.branch_ids``), never the merchant-wide figures.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from itertools import accumulate
from typing import Any

from babel.numbers import format_decimal, format_percent
from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.tenants.reports import dashboard as service
from lianka.tenants.reports import exports
from lianka.tenants.reports.domain import PeriodKind
from lianka.web.console import downloads, i18n
from lianka.web.console.i18n import N_, Language
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, is_htmx, language, page

READ = requires(*MENU["dashboard"].permissions)

PERIODS: dict[str, str] = {
    "this_month": N_("This month"),
    "last_month": N_("Last month"),
    "last_30": N_("Last 30 days"),
    "custom": N_("Custom"),
}
CHARTS: dict[str, str] = {
    "sales": N_("Daily sales"),
    "points": N_("Points issued, redeemed and expired"),
    "tiers": N_("Members by tier"),
    "branches": N_("Branches"),
    "growth": N_("Member growth: joined per day and in the period so far"),
    "coupons": N_("Coupons: issued and redeemed"),
    "lifecycle": N_("Members by lifecycle stage"),
    "rfm": N_("RFM grid: members by recency and frequency"),
    "tier_moves": N_("Tier movements"),
    "rewards": N_("Top rewards"),
    "campaigns": N_("Campaigns started"),
}


def ask_of(request: HtmlRequest) -> service.Request:
    """The picker's query, strictly: a bad period, day or branch is a 400."""
    params = request.query_params
    kind_text = params.get("period") or "this_month"
    try:
        kind = PeriodKind(kind_text)
    except ValueError as exc:
        raise ValidationFailed("unknown period", field="period") from exc

    def day(name: str) -> date | None:
        value = params.get(name) or ""
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationFailed("a day is YYYY-MM-DD", field=name) from exc

    branch_text = params.get("branch") or ""
    try:
        branch = uuid.UUID(branch_text) if branch_text else None
    except ValueError as exc:
        raise ValidationFailed("unknown branch", field="branch") from exc
    return service.Request(kind, day("first"), day("last"), branch)


def percent(value: Decimal | None, lang: Language) -> str:
    return "—" if value is None else format_percent(value, "#,##0.0%", locale=lang.locale)


def delta(value: Decimal | None, lang: Language) -> dict[str, str]:
    """A change in percent as the tile writes it (``+12.5%``), and its direction for the colour."""
    if value is None:
        return {"text": lang.gettext("no comparison"), "dir": "none"}
    sign = "+" if value > 0 else ""
    return {
        "text": sign + format_decimal(value, "#,##0.0", locale=lang.locale) + "%",
        "dir": "up" if value > 0 else "down" if value < 0 else "flat",
    }


def tiles(d: service.Dashboard, lang: Language) -> list[dict[str, Any]]:
    """The KPI tiles: label, value as written, change against the previous period."""
    k, c = d.kpis, d.currency

    def amount(v: int | None) -> str:
        return "—" if v is None else i18n.money(v, c)

    rows: list[dict[str, Any]] = [
        {
            "key": "sales",
            "label": lang.gettext("Sales"),
            "value": amount(k.sales),
            "delta": delta(service.change(d, "sales"), lang),
        },
        {
            "key": "member_share",
            "label": lang.gettext("Member share of sales"),
            "value": percent(k.member_share, lang),
            "delta": delta(service.change(d, "member_share"), lang),
        },
        {
            "key": "avg_member",
            "label": lang.gettext("Average ticket, members"),
            "value": amount(k.avg_ticket_member),
            "delta": delta(service.change(d, "avg_ticket_member"), lang),
        },
        {
            "key": "avg_nonmember",
            "label": lang.gettext("Average ticket, non-members"),
            "value": amount(k.avg_ticket_nonmember),
            "delta": delta(service.change(d, "avg_ticket_nonmember"), lang),
        },
        {
            "key": "active",
            "label": lang.gettext("Active members"),
            "value": format_decimal(k.active_members, locale=lang.locale),
            "delta": delta(service.change(d, "active_members"), lang),
        },
        {
            "key": "new",
            "label": lang.gettext("New members"),
            "value": format_decimal(k.new_members, locale=lang.locale),
            "delta": delta(service.change(d, "new_members"), lang),
        },
        {
            "key": "repeat",
            "label": lang.gettext("Repeat rate"),
            "value": percent(k.repeat_rate, lang),
            "delta": delta(service.change(d, "repeat_rate"), lang),
        },
    ]
    rows.append(
        {
            "key": "coupons",
            "label": lang.gettext("Coupons redeemed / issued"),
            "value": f"{format_decimal(k.coupons_redeemed, locale=lang.locale)} / "
            f"{format_decimal(k.coupons_issued, locale=lang.locale)}",
            "note": lang.gettext("redemption rate %(rate)s") % {"rate": percent(k.coupon_redemption_rate, lang)},
        }
    )
    if d.held is not None:
        rows += [
            {
                "key": "liability",
                "label": lang.gettext("Points liability"),
                "value": amount(d.held.liability),
                "note": lang.gettext("%(points)s points outstanding")
                % {"points": format_decimal(d.held.points, locale=lang.locale)},
            },
            {
                "key": "float_principal",
                "label": lang.gettext("Stored value float, principal"),
                "value": amount(d.held.sv_principal),
            },
            {
                "key": "float_bonus",
                "label": lang.gettext("Stored value float, bonus"),
                "value": amount(d.held.sv_bonus),
            },
        ]
    return rows


def charts(d: service.Dashboard, lang: Language) -> dict[str, Any]:
    """The charts' data for ``dashboard.js``: amounts in minor units plus the page's own texts."""
    days = [i18n.localdate(x.day, lang, d.timezone, "short") for x in d.daily]
    return {
        "sales": {
            "kind": "line",
            "labels": days,
            "series": [
                {"name": lang.gettext("Members"), "values": [x.sales_member for x in d.daily]},
                {"name": lang.gettext("Non-members"), "values": [x.sales_nonmember for x in d.daily]},
            ],
            "minor": 100,
        },
        "points": {
            "kind": "bar",
            "labels": days,
            "series": [
                {"name": lang.gettext("Issued"), "values": [x.points_issued for x in d.daily]},
                {"name": lang.gettext("Redeemed"), "values": [x.points_redeemed for x in d.daily]},
                {"name": lang.gettext("Expired"), "values": [x.points_expired for x in d.daily]},
            ],
            "minor": 1,
        },
        "tiers": {
            "kind": "pie",
            "labels": [t or lang.gettext("No tier") for t, _ in d.tiers or []],
            "values": [n for _, n in d.tiers or []],
        },
        "growth": {
            "kind": "line",
            "labels": days,
            "series": [
                {"name": lang.gettext("Joined that day"), "values": [x.new_members for x in d.daily]},
                {
                    "name": lang.gettext("Joined in the period so far"),
                    "values": list(accumulate(x.new_members for x in d.daily)),
                },
            ],
            "minor": 1,
        },
        "coupons": {
            "kind": "hbar",
            "labels": [lang.gettext("Issued"), lang.gettext("Redeemed")],
            "series": [{"name": lang.gettext("Coupons"), "values": list(d.coupons)}],
            "minor": 1,
        },
        "lifecycle": {
            "kind": "pie",
            "labels": [lang.gettext(STAGE_NAMES[s]) for s in STAGE_NAMES],
            "values": [d.members.lifecycle.get(s, 0) if d.members else 0 for s in STAGE_NAMES],
        },
        "tier_moves": {
            "kind": "hbar",
            "labels": [f"{old or '—'} → {new or '—'}" for old, new, _ in d.tier_moves or []],
            "series": [{"name": lang.gettext("Members"), "values": [n for _, _, n in d.tier_moves or []]}],
            "minor": 1,
        },
        "rewards": {
            "kind": "hbar",
            "labels": [r.name for r in d.top_rewards or []],
            "series": [{"name": lang.gettext("Redemptions"), "values": [r.redemptions for r in d.top_rewards or []]}],
            "minor": 1,
        },
    }


STAGE_NAMES: dict[str, str] = {
    "new": N_("New"),
    "active": N_("Active"),
    "at_risk": N_("At risk"),
    "dormant": N_("Dormant"),
}


def rfm_rows(d: service.Dashboard) -> list[dict[str, Any]]:
    """The RFM grid as table rows: recency 5 (bought most recently) first, frequency 1–5 across, each
    cell with its members and a shade 0–4 by its share of the largest cell."""
    cells = {(r, f): n for r, f, n in (d.members.rfm if d.members else [])}
    top = max(cells.values(), default=0)
    return [
        {
            "recency": r,
            "cells": [
                {"members": cells.get((r, f), 0), "shade": (4 * cells.get((r, f), 0) + top - 1) // top if top else 0}
                for f in range(1, 6)
            ],
        }
        for r in range(5, 0, -1)
    ]


def _query(request: HtmlRequest) -> str:
    return str(request.url.query or "")


class DashboardPages(Controller):
    path = "/console/dashboard"

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        d = await service.dashboard(ident.db, principal.tenant, principal.branch_ids, ask_of(request))
        lang = language(request)
        template = "console/dashboard/" + ("_body.html" if is_htmx(request) else "index.html")
        return await page(
            request,
            template,
            principal=principal,
            active="dashboard",
            d=d,
            periods=PERIODS,
            chart_names=CHARTS,
            tiles=tiles(d, lang),
            charts=charts(d, lang),
            rfm=rfm_rows(d),
            stages=STAGE_NAMES,
            query=_query(request),
            period_text=(
                i18n.localdate(d.period.first, lang, d.timezone, "medium")
                + " – "
                + i18n.localdate(d.period.last, lang, d.timezone, "medium")
            ),
            previous_text=(
                i18n.localdate(d.previous.first, lang, d.timezone, "medium")
                + " – "
                + i18n.localdate(d.previous.last, lang, d.timezone, "medium")
            ),
        )

    @get("/download/{name:str}", guards=[READ])
    async def download(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, name: FromPath[str]
    ) -> Response[bytes]:
        """One chart's table as ``<chart>.csv`` or ``<chart>.xlsx`` for the same period and branch."""
        chart, _, fmt = name.partition(".")
        if chart not in exports.CHARTS or fmt not in exports.FORMATS:
            raise ValidationFailed("unknown chart or format", field="name")
        d = await service.dashboard(ident.db, principal.tenant, principal.branch_ids, ask_of(request))
        filename = f"{chart}-{d.period.first.isoformat()}-{d.period.last.isoformat()}.{fmt}"
        return await downloads.attachment(
            ident,
            principal,
            exports.table(d, chart),
            fmt,
            filename,
            report="dashboard",
            sheet=chart,
            details={"chart": chart, "query": str(request.url.query or "")},
        )
