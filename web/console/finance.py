"""Finance reports (报表) beside the dashboard: the liability report, accounting vouchers and the
bonus-funding simulator.

- ``/console/reports/vouchers?period=YYYY-MM``: the month's vouchers (``tenants.reports.vouchers``)
  and the chart-of-accounts mapping form (``settlement:write`` to save); files
  ``…/vouchers/download/vouchers.<csv|xlsx>?period=…`` in the layout of ``docs/vouchers.md``.

- ``/console/reports/liability?period=YYYY-MM``: points, stored value (principal and bonus apart) and
  deferred paid-membership revenue — opening, issued, used, expired, refunded, closing — as a chart,
  then per scheme and branch (``tenants.reports.liability``); points also in yuan. Files:
  ``…/liability/download/liability.<csv|xlsx>?period=…``.

- ``/console/reports/bonus-simulator?period=YYYY-MM``: a past month of the chain replayed under each
  stored-value bonus policy (HQ, issuing branch, redeeming branch), each branch's net side by side as
  a grouped bar chart and a table (``alliance.settlement.simulator``: the clearing rule itself, not a
  copy — decision 0040). Months are the merchant's months; the default is last month.
- ``/console/reports/bonus-simulator/download/simulator.<csv|xlsx>?period=…``: the table as a file
  (the dashboard's writers: CSV UTF-8 with a BOM, XLSX).

Guarded by ``settlement:read`` (HQ's settlement readers); a branch manager, who sees only its own
branches, is refused: the simulator is about every branch of the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import simulator
from lianka.alliance.settlement.domain import ended_periods
from lianka.platform.errors import Forbidden, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.platform.money import minor_digits
from lianka.tenants.domain.programme import BonusFunder
from lianka.tenants.reports import exports, liability, vouchers
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import downloads
from lianka.web.console.i18n import N_, Language
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, language, page

READ = requires(*MENU["simulator"].permissions)
POLICY_NAMES: dict[BonusFunder, str] = {
    BonusFunder.HQ: N_("HQ funds the bonus"),
    BonusFunder.ISSUING_BRANCH: N_("Issuing branch funds it"),
    BonusFunder.REDEEMING_BRANCH: N_("Redeeming branch bears it"),
}
VOUCHERS_READ = requires(*MENU["vouchers"].permissions)
VOUCHERS_WRITE = requires(Permission.SETTLEMENT_WRITE)
LIABILITY_READ = requires(*MENU["liability"].permissions)
SCHEME_NAMES: dict[str, str] = {
    "points": N_("Points"),
    "sv_principal": N_("Stored value, principal"),
    "sv_bonus": N_("Stored value, bonus"),
    "deferred_membership_revenue": N_("Paid membership, deferred revenue"),
}
COLUMN_NAMES: dict[str, str] = {
    "opening": N_("Opening"),
    "issued": N_("Issued"),
    "used": N_("Used"),
    "expired": N_("Expired"),
    "refunded": N_("Refunded"),
    "closing": N_("Closing"),
}
#: months offered by the picker, newest first
MONTHS = 12


def _chain_only(principal: Principal) -> None:
    if principal.branch_ids is not None:
        raise Forbidden("the simulator is for headquarters: it shows every branch of the chain")


async def _period(request: HtmlRequest, ident: IdentityService, principal: Principal) -> tuple[str, list[str], str]:
    """(the month asked for — last month by default —, the picker's months, the merchant's zone)."""
    tz = (await merchant_profile(ident.db, principal.tenant)).timezone
    choices = ended_periods(tz, MONTHS, datetime.now(UTC))
    period = check_period(request.query_params.get("period") or choices[0])
    return period, choices, tz


def chart(sim: simulator.Simulation, lang: Language) -> dict[str, Any]:
    """The grouped bar chart for ``dashboard.js``: one group per branch, one bar per policy."""
    return {
        "kind": "bar",
        "labels": [r.code for r in sim.branches],
        "series": [
            {"name": lang.gettext(POLICY_NAMES[p]), "values": [r.nets[p] for r in sim.branches]}
            for p in simulator.POLICIES
        ],
        "minor": 10 ** minor_digits(sim.currency),
    }


def table(sim: simulator.Simulation) -> tuple[list[str], list[list[object]]]:
    """(header, rows) of the download: amounts in exact major units; the header is English."""
    c = sim.currency

    def major(v: int) -> Decimal:
        return Decimal(v).scaleb(-minor_digits(c))

    header = ["branch", "name", f"actual net {sim.period} ({c})"]
    header += [f"net if {p.value} funds the bonus ({c})" for p in simulator.POLICIES]
    rows: list[list[object]] = [
        [r.code, r.name, major(r.actual), *(major(r.nets[p]) for p in simulator.POLICIES)] for r in sim.branches
    ]
    rows.append(
        ["HQ", "", major(-sum(r.actual for r in sim.branches))] + [major(sim.hub[p]) for p in simulator.POLICIES]
    )
    return header, rows


class FinancePages(Controller):
    path = "/console/reports"

    @get("/bonus-simulator", guards=[READ])
    async def simulator(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        _chain_only(principal)
        period, choices, tz = await _period(request, ident, principal)
        sim = await simulator.simulate(ident.db, principal.tenant, period)
        lang = language(request)
        return await page(
            request,
            "console/reports/simulator.html",
            principal=principal,
            active="simulator",
            sim=sim,
            choices=choices,
            timezone=tz,
            policies=simulator.POLICIES,
            policy_names=POLICY_NAMES,
            chart=chart(sim, lang),
        )

    @get("/bonus-simulator/download/{name:str}", guards=[READ])
    async def download(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, name: FromPath[str]
    ) -> Response[bytes]:
        _chain_only(principal)
        stem, _, fmt = name.partition(".")
        if stem != "simulator" or fmt not in exports.FORMATS:
            raise ValidationFailed("unknown file", field="name")
        period, _, _ = await _period(request, ident, principal)
        made = table(await simulator.simulate(ident.db, principal.tenant, period))
        return await downloads.attachment(
            ident,
            principal,
            made,
            fmt,
            f"bonus-simulator-{period}.{fmt}",
            report="bonus_simulator",
            sheet="bonus simulator",
            details={"period": period},
        )


def liability_chart(r: liability.Report, lang: Language) -> dict[str, Any]:
    """Money schemes side by side (opening, issued, used, expired, refunded, closing), in yuan."""
    money_schemes = [x for x in liability.SCHEMES if x != "points"]
    return {
        "kind": "bar",
        "labels": [lang.gettext(COLUMN_NAMES[c]) for c in liability.COLUMNS],
        "series": [
            {"name": lang.gettext(SCHEME_NAMES[s]), "values": [r.total(s).figures()[c] for c in liability.COLUMNS]}
            for s in money_schemes
        ],
        "minor": 10 ** minor_digits(r.currency),
    }


def liability_table(r: liability.Report) -> tuple[list[str], list[list[object]]]:
    """(header, rows): one row per scheme and branch (branch "*" = the scheme's total); points rows
    are counts of points, followed by their value in money at the programme's cash value per point."""
    c = r.currency

    def major(v: int) -> Decimal:
        return Decimal(v).scaleb(-minor_digits(c))

    header = ["scheme", "branch", "unit", *liability.COLUMNS]
    rows: list[list[object]] = []
    for row in r.rows:
        code = "*" if row.branch == "*" else r.branches.get(row.branch, ("-", ""))[0]
        f = row.figures()
        if row.scheme == "points":
            rows.append([row.scheme, code, "points", *(f[k] for k in liability.COLUMNS)])
            rows.append([row.scheme, code, c, *(major(row.value[k]) for k in liability.COLUMNS)])
        else:
            rows.append([row.scheme, code, c, *(major(f[k]) for k in liability.COLUMNS)])
    return header, rows


class LiabilityPages(Controller):
    path = "/console/reports/liability"

    @get("/", guards=[LIABILITY_READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        _chain_only(principal)
        period, choices, _ = await _period(request, ident, principal)
        r = await liability.report(ident.db, principal.tenant, period)
        lang = language(request)
        return await page(
            request,
            "console/reports/liability.html",
            principal=principal,
            active="liability",
            r=r,
            choices=choices,
            schemes=SCHEME_NAMES,
            columns=COLUMN_NAMES,
            chart=liability_chart(r, lang),
        )

    @get("/download/{name:str}", guards=[LIABILITY_READ])
    async def download(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, name: FromPath[str]
    ) -> Response[bytes]:
        _chain_only(principal)
        stem, _, fmt = name.partition(".")
        if stem != "liability" or fmt not in exports.FORMATS:
            raise ValidationFailed("unknown file", field="name")
        period, _, _ = await _period(request, ident, principal)
        made = liability_table(await liability.report(ident.db, principal.tenant, period))
        return await downloads.attachment(
            ident, principal, made, fmt, f"liability-{period}.{fmt}", report="liability", details={"period": period}
        )


def _last_day(period: str) -> str:
    from datetime import date, timedelta

    year, month = map(int, period.split("-"))
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return (first_next - timedelta(days=1)).isoformat()


class VoucherPages(Controller):
    path = "/console/reports/vouchers"

    @get("/", guards=[VOUCHERS_READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        _chain_only(principal)
        period, choices, _ = await _period(request, ident, principal)
        v = await vouchers.vouchers(ident.db, principal.tenant, period)
        kinds = sorted(set(vouchers.DEFAULTS) | set(v.mapping))
        return await page(
            request,
            "console/reports/vouchers.html",
            principal=principal,
            active="vouchers",
            v=v,
            choices=choices,
            mapping=[(k, *vouchers.account_for(k, v.mapping)) for k in kinds],
            can_edit=principal.has(Permission.SETTLEMENT_WRITE),
        )

    @post("/mapping", guards=[VOUCHERS_READ, VOUCHERS_WRITE])
    async def save_mapping(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        """Every row of the form in one transaction (a bad code anywhere: a 400, nothing saved)."""
        _chain_only(principal)
        form = await form_data(request)
        kinds = [form_text(form, name) for name in form if name.startswith("kind_")]
        changes = {k: (form_text(form, f"code_{k}"), form_text(form, f"name_{k}")) for k in kinds if k}
        await vouchers.set_mappings(ident.db, principal.tenant, changes)
        period = form_text(form, "period")
        return go(request, "/console/reports/vouchers" + (f"?period={period}" if period else ""))

    @get("/download/{name:str}", guards=[VOUCHERS_READ])
    async def download(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, name: FromPath[str]
    ) -> Response[bytes]:
        _chain_only(principal)
        stem, _, fmt = name.partition(".")
        if stem != "vouchers" or fmt not in exports.FORMATS:
            raise ValidationFailed("unknown file", field="name")
        period, _, _ = await _period(request, ident, principal)
        v = await vouchers.vouchers(ident.db, principal.tenant, period)
        made = (vouchers.HEADER, vouchers.rows(v, _last_day(period)))
        return await downloads.attachment(
            ident, principal, made, fmt, f"vouchers-{period}.{fmt}", report="vouchers", details={"period": period}
        )
