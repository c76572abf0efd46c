"""The alliance's liability report (积分与储值负债): a tab of an alliance's pages — the points and stored
value members hold, per issuing partner, for a month of the alliance's book (its time zone), with a
chart of each partner's points and the table as CSV or XLSX.

- ``/console/alliance/<id>/liability?period=YYYY-MM`` (last month by default; the picker offers 12)
- ``/console/alliance/<id>/liability/download/liability.<csv|xlsx>?period=…``

The operator sees every partner and the totals; a partner its own rows — decided by the use case
(``alliance.reports.liability``). Guarded like the other alliance pages plus ``settlement:read``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.alliances import membership
from lianka.alliance.reports import liability as service
from lianka.alliance.settlement.domain import ended_periods
from lianka.platform import tables
from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.money import minor_digits
from lianka.tenants.reports.liability import COLUMNS, Row
from lianka.web.console import downloads
from lianka.web.console.alliance import READ
from lianka.web.console.finance import COLUMN_NAMES, MONTHS
from lianka.web.console.i18n import N_, Language
from lianka.web.console.pages import HtmlRequest, language, page

SETTLEMENT = requires(Permission.SETTLEMENT_READ)
SCHEME_NAMES: dict[str, str] = {
    "alliance_points": N_("Alliance points"),
    "alliance_sv_principal": N_("Alliance stored value, principal"),
    "alliance_sv_bonus": N_("Alliance stored value, bonus"),
}


def months(timezone: str, now: datetime | None = None) -> list[str]:
    """The picker's months, newest first: last month and the eleven before it."""
    return ended_periods(timezone, MONTHS, now or datetime.now(UTC))


def issuer_name(r: service.Report, row: Row, lang: Language) -> str:
    if row.branch == "*":
        return lang.gettext("All partners")
    if row.branch == service.NO_ISSUER:
        return lang.gettext("No issuer (debts, entries without a partner)")
    return r.partners.get(row.branch, "?")


def chart(r: service.Report, lang: Language) -> dict[str, Any]:
    """Each partner's points: opening, issued, used, expired and closing side by side."""
    rows = [x for x in r.rows if x.scheme == service.POINTS and x.branch != "*"]
    return {
        "kind": "bar",
        "labels": [issuer_name(r, x, lang) for x in rows],
        "series": [
            {"name": lang.gettext(COLUMN_NAMES[c]), "values": [x.figures()[c] for x in rows]}
            for c in COLUMNS
            if c != "refunded"
        ],
        "minor": 1,
    }


def table(r: service.Report) -> tuple[list[str], list[list[object]]]:
    """(header, rows) of the download, the header in English: a row per scheme and issuer ("*": all
    partners, "-": no issuer); points rows in points, each followed by its value in money."""
    c = r.currency

    def major(v: int) -> Decimal:
        return Decimal(v).scaleb(-minor_digits(c))

    header = ["scheme", "issuer_id", "issuer", "unit", *COLUMNS]
    out: list[list[object]] = []
    for row in r.rows:
        who = {"*": ("*", "all partners"), service.NO_ISSUER: ("-", "no issuer")}.get(
            row.branch, (row.branch, r.partners.get(row.branch, ""))
        )
        f = row.figures()
        if row.scheme == service.POINTS:
            out.append([row.scheme, *who, "points", *(f[k] for k in COLUMNS)])
            out.append([row.scheme, *who, c, *(major(row.value[k]) for k in COLUMNS)])
        else:
            out.append([row.scheme, *who, c, *(major(f[k]) for k in COLUMNS)])
    return header, out


class AllianceLiabilityPages(Controller):
    path = "/console/alliance/{alliance_id:uuid}/liability"

    @get("/", guards=[READ, SETTLEMENT])
    async def index(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
    ) -> Template:
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        choices = months(alliance.timezone)
        period = request.query_params.get("period") or choices[0]
        r = await service.report(ident.db, principal.tenant, alliance_id, period)
        lang = language(request)
        return await page(
            request,
            "console/alliance/liability.html",
            principal=principal,
            active="alliance",
            alliance=alliance,
            tab="liability",
            r=r,
            choices=choices if period in choices else [period, *choices],
            schemes=SCHEME_NAMES,
            columns=COLUMN_NAMES,
            names={row.branch: issuer_name(r, row, lang) for row in r.rows},
            chart=chart(r, lang),
        )

    @get("/download/{name:str}", guards=[READ, SETTLEMENT])
    async def download(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        alliance_id: FromPath[uuid.UUID],
        name: FromPath[str],
    ) -> Response[bytes]:
        """The report's table as ``liability.csv`` or ``liability.xlsx`` for the month asked for."""
        stem, _, fmt = name.partition(".")
        if stem != "liability" or fmt not in tables.FORMATS:
            raise ValidationFailed("unknown file", field="name")
        alliance = await membership.get(ident.db, principal.tenant, alliance_id)
        period = request.query_params.get("period") or months(alliance.timezone)[0]
        r = await service.report(ident.db, principal.tenant, alliance_id, period)
        details = {"alliance_id": str(alliance_id), "period": r.period}
        filename = f"alliance-liability-{r.period}.{fmt}"
        return await downloads.attachment(
            ident, principal, table(r), fmt, filename, report="alliance_liability", sheet="liability", details=details
        )
