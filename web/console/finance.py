"""Finance reports (报表) beside the dashboard: the bonus-funding simulator.

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

from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.settlement import simulator
from lianka.alliance.settlement.domain import period_of, previous_period
from lianka.alliance.settlement.statements import check_period
from lianka.platform.errors import Forbidden, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.principal import Principal
from lianka.platform.money import minor_digits
from lianka.tenants.domain.programme import BonusFunder
from lianka.tenants.reports import exports
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console.i18n import N_, Language
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, language, page

READ = requires(*MENU["simulator"].permissions)
POLICY_NAMES: dict[BonusFunder, str] = {
    BonusFunder.HQ: N_("HQ funds the bonus"),
    BonusFunder.ISSUING_BRANCH: N_("Issuing branch funds it"),
    BonusFunder.REDEEMING_BRANCH: N_("Redeeming branch bears it"),
}
#: months offered by the picker, newest first
MONTHS = 12


def _chain_only(principal: Principal) -> None:
    if principal.branch_ids is not None:
        raise Forbidden("the simulator is for headquarters: it shows every branch of the chain")


async def _period(request: HtmlRequest, ident: IdentityService, principal: Principal) -> tuple[str, list[str], str]:
    """(the month asked for — last month by default —, the picker's months, the merchant's zone)."""
    tz = (await merchant_profile(ident.db, principal.tenant)).timezone
    current = period_of(datetime.now(UTC), tz)
    choices = [previous_period(current)]
    while len(choices) < MONTHS:
        choices.append(previous_period(choices[-1]))
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
        header, rows = table(await simulator.simulate(ident.db, principal.tenant, period))
        if fmt == "csv":
            body, media = exports.to_csv(header, rows), "text/csv; charset=utf-8"
        else:
            body = exports.to_xlsx(header, rows, "bonus simulator")
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        filename = f"bonus-simulator-{period}.{fmt}"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
