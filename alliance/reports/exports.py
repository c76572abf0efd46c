"""Each chart of the alliance dashboard as a table (English header, as the API's files); the files
are written by ``platform.tables``. Money in exact major units."""

from __future__ import annotations

from lianka.alliance.reports.dashboard import AllianceDashboard
from lianka.platform.tables import major

CHARTS = ("activity", "flows", "partners", "credit")


class UnknownChart(ValueError):
    pass


def table(d: AllianceDashboard, chart: str) -> tuple[list[str], list[list[object]]]:
    c = d.currency
    if chart == "activity":
        return [
            "date",
            "points issued",
            "points accepted",
            "points expired",
            f"fees ({c})",
            f"breakage returned ({c})",
        ], [
            [
                x.day.isoformat(),
                x.figures["points_issued"],
                x.figures["points_accepted"],
                x.figures["points_expired"],
                major(x.figures["fees"], c),
                major(x.figures["breakage_returned"], c),
            ]
            for x in d.daily
        ]
    if chart == "flows":
        return ["issuing partner", "redeeming partner", "points", f"reimbursed ({c})"], [
            [f.issuer, f.redeemer, f.points, major(f.amount, c)] for f in d.flows
        ]
    if chart == "partners":
        header = ["partner", "points issued", "points accepted", f"issue cost ({c})", f"reimbursed ({c})"]
        header += [f"fees ({c})", "points expired", f"breakage returned ({c})", "members shared"]
        return header, [
            [
                p.name,
                p.figures["points_issued"],
                p.figures["points_accepted"],
                major(p.figures["issue_cost"], c),
                major(p.figures["reimbursed"], c),
                major(p.figures["fees"], c),
                p.figures["points_expired"],
                major(p.figures["breakage_returned"], c),
                p.shared,
            ]
            for p in d.partners
        ]
    if chart == "credit":
        return ["partner", f"credit used ({c})", f"credit limit ({c}, 0 = none)"], [
            [p.name, major(p.credit_used, c), major(p.credit_limit, c)] for p in d.partners
        ]
    raise UnknownChart(chart)
