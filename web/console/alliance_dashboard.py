"""The alliance dashboard (联盟看板): a tab of an alliance's pages — partners' points issuance and
acceptance over time, who redeems whose points (Sankey charts in points and in yuan), fees, breakage,
each partner's credit used against its limit and the members the partners share, for a period against
the previous one, with every chart's table as CSV or XLSX.

- ``/console/alliance/<id>/dashboard?period=this_month|last_month|last_30|custom&first=…&last=…``
- ``/console/alliance/<id>/dashboard/download/<chart>.<csv|xlsx>`` with the same query.

Days are the alliance's local days (its time zone, which its month ends use). The operator sees every
partner; a partner sees its own view only — decided by the use case (``alliance.reports.dashboard``),
not by the page. Guarded like the other alliance pages (``merchant:read`` and the back office) plus
``reports:read``.
"""

from __future__ import annotations

import uuid
from typing import Any

from babel.numbers import format_decimal
from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.alliances import membership
from lianka.alliance.reports import dashboard as service
from lianka.alliance.reports import exports
from lianka.platform import tables
from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.web.console import downloads, i18n
from lianka.web.console.alliance import READ
from lianka.web.console.dashboard import PERIODS, ask_of, delta
from lianka.web.console.i18n import N_, Language
from lianka.web.console.pages import HtmlRequest, is_htmx, language, page

REPORTS = requires(Permission.REPORTS_READ)

CHARTS: dict[str, str] = {
    "activity": N_("Points issued, accepted and expired"),
    "flows": N_("Who redeems whose points"),
    "partners": N_("Partners"),
    "credit": N_("Credit used and limit"),
}


def _ask(request: HtmlRequest) -> service.Request:
    ask = ask_of(request)
    return service.Request(ask.kind, ask.first, ask.last)


def tiles(d: service.AllianceDashboard, lang: Language) -> list[dict[str, Any]]:
    def points(v: int) -> str:
        return format_decimal(v, locale=lang.locale)

    def tile(key: str, label: str, value: str) -> dict[str, Any]:
        return {"key": key, "label": label, "value": value, "delta": delta(service.change(d, key), lang)}

    t, c = d.totals, d.currency
    return [
        tile("points_issued", lang.gettext("Points issued"), points(t["points_issued"])),
        tile("points_accepted", lang.gettext("Points accepted"), points(t["points_accepted"])),
        tile("cross_points", lang.gettext("Redeemed at another partner"), points(d.cross_points)),
        tile("fees", lang.gettext("Fees"), i18n.money(t["fees"], c)),
        tile("points_expired", lang.gettext("Points expired"), points(t["points_expired"])),
        tile("breakage_returned", lang.gettext("Breakage returned to issuers"), i18n.money(t["breakage_returned"], c)),
        {
            "key": "shared",
            "label": lang.gettext("Members shared") if d.is_operator else lang.gettext("Your members shared"),
            "value": points(d.shared),
            "note": lang.gettext("holding cards at two partners or more"),
        },
    ]


def charts(d: service.AllianceDashboard, lang: Language) -> dict[str, Any]:
    """The charts' data for ``dashboard.js`` (money in minor units)."""
    days = [i18n.localdate(x.day, lang, d.timezone, "short") for x in d.daily]

    def issuing(name: str) -> str:
        return lang.gettext("%(partner)s · issued") % {"partner": name}

    def redeeming(name: str) -> str:
        return lang.gettext("%(partner)s · redeemed") % {"partner": name}

    nodes = sorted({issuing(f.issuer) for f in d.flows} | {redeeming(f.redeemer) for f in d.flows})

    def sankey(values: list[int], minor: int) -> dict[str, Any]:
        return {
            "kind": "sankey",
            "nodes": nodes,
            "links": [
                {"source": issuing(f.issuer), "target": redeeming(f.redeemer), "value": v}
                for f, v in zip(d.flows, values, strict=True)
                if v > 0
            ],
            "minor": minor,
        }

    return {
        "activity": {
            "kind": "bar",
            "labels": days,
            "series": [
                {"name": lang.gettext("Issued"), "values": [x.figures["points_issued"] for x in d.daily]},
                {"name": lang.gettext("Accepted"), "values": [x.figures["points_accepted"] for x in d.daily]},
                {"name": lang.gettext("Expired"), "values": [x.figures["points_expired"] for x in d.daily]},
            ],
            "minor": 1,
        },
        "flows_points": sankey([f.points for f in d.flows], 1),
        "flows_amount": sankey([f.amount for f in d.flows], 100),
        "credit": {
            "kind": "hbar",
            "labels": [p.name for p in d.partners],
            "series": [
                {"name": lang.gettext("Credit used"), "values": [p.credit_used for p in d.partners]},
                {"name": lang.gettext("Credit limit"), "values": [p.credit_limit for p in d.partners]},
            ],
            "minor": 100,
        },
    }


def _range(d: service.AllianceDashboard, lang: Language, first: Any, last: Any) -> str:
    return i18n.localdate(first, lang, d.timezone, "medium") + " – " + i18n.localdate(last, lang, d.timezone, "medium")


class AllianceDashboardPages(Controller):
    path = "/console/alliance/{alliance_id:uuid}/dashboard"

    @get("/", guards=[READ, REPORTS])
    async def index(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Template:
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        d = await service.dashboard(ident.db, principal.tenant, alliance_id, _ask(request))
        lang = language(request)
        template = "console/alliance/" + ("_dashboard_body.html" if is_htmx(request) else "dashboard.html")
        return await page(
            request,
            template,
            principal=principal,
            active="alliance",
            alliance=alliance,
            tab="dashboard",
            d=d,
            periods=PERIODS,
            chart_names=CHARTS,
            tiles=tiles(d, lang),
            charts=charts(d, lang),
            query=str(request.url.query or ""),
            period_text=_range(d, lang, d.period.first, d.period.last),
            previous_text=_range(d, lang, d.previous.first, d.previous.last),
        )

    @get("/download/{name:str}", guards=[READ, REPORTS])
    async def download(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        name: FromPath[str],
    ) -> Response[bytes]:
        """One chart's table as ``<chart>.csv`` or ``<chart>.xlsx`` for the same period (and view)."""
        chart, _, fmt = name.partition(".")
        if chart not in exports.CHARTS or fmt not in tables.FORMATS:
            raise ValidationFailed("unknown chart or format", field="name")
        d = await service.dashboard(ident.db, principal.tenant, alliance_id, _ask(request))
        filename = f"alliance-{chart}-{d.period.first.isoformat()}-{d.period.last.isoformat()}.{fmt}"
        details = {"alliance_id": str(alliance_id), "chart": chart, "query": str(request.url.query or "")}
        return await downloads.attachment(
            ident,
            principal,
            exports.table(d, chart),
            fmt,
            filename,
            report="alliance_dashboard",
            sheet=chart,
            details=details,
        )
