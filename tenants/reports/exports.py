"""Each dashboard chart as a table, and that table as CSV (UTF-8 with a BOM, for Excel) or XLSX.
Money is exact decimal major units (``12.34``), never a float; text cells are neutralised against
formula injection (``platform.cells``)."""

from __future__ import annotations

from decimal import Decimal
from itertools import accumulate

from lianka.platform import tables
from lianka.tenants.reports.dashboard import Dashboard

#: the lifecycle stages in the order the dashboard shows them
STAGES = ("new", "active", "at_risk", "dormant")
CHARTS = (
    "sales",
    "points",
    "growth",
    "tiers",
    "branches",
    "coupons",
    "lifecycle",
    "rfm",
    "tier_moves",
    "rewards",
    "campaigns",
)
FORMATS = tables.FORMATS
#: the file writers live in ``platform.tables`` (shared with the alliance dashboard)
to_csv = tables.to_csv
to_xlsx = tables.to_xlsx


class UnknownChart(ValueError):
    pass


def _major(minor: int, currency: str) -> Decimal:
    return tables.major(minor, currency)


def table(d: Dashboard, chart: str) -> tuple[list[str], list[list[object]]]:
    """(header, rows) of one chart; the header is English (column names, as the API's files)."""
    c = d.currency
    if chart == "sales":
        return ["date", f"member sales ({c})", f"non-member sales ({c})"], [
            [x.day.isoformat(), _major(x.sales_member, c), _major(x.sales_nonmember, c)] for x in d.daily
        ]
    if chart == "points":
        return ["date", "points issued", "points redeemed", "points expired"], [
            [x.day.isoformat(), x.points_issued, x.points_redeemed, x.points_expired] for x in d.daily
        ]
    if chart == "tiers":
        return ["tier", "members"], [[tier or "-", n] for tier, n in d.tiers or []]
    if chart == "branches":
        header = ["branch", "name", f"sales ({c})", "buying members", f"top-ups collected ({c})"]
        header += [f"stored value consumed ({c})", f"net owed by HQ {d.month} ({c})"]
        return header, [
            [
                b.code,
                b.name,
                _major(b.sales, c),
                b.members,
                _major(b.topups, c),
                _major(b.sv_consumed, c),
                _major(b.net_owed, c),
            ]
            for b in d.branches
        ]
    if chart == "growth":
        joined = list(accumulate(x.new_members for x in d.daily))
        return ["date", "members joined", "joined in the period so far"], [
            [x.day.isoformat(), x.new_members, total] for x, total in zip(d.daily, joined, strict=True)
        ]
    if chart == "coupons":
        return ["coupons issued", "coupons redeemed"], [list(d.coupons)]
    if chart == "lifecycle":
        m = d.members
        as_of = m.computed_at.isoformat() if m else ""
        return ["stage", "members", "counted at"], [[s, m.lifecycle.get(s, 0) if m else 0, as_of] for s in STAGES]
    if chart == "rfm":
        return ["recency", "frequency", "members"], [list(cell) for cell in (d.members.rfm if d.members else [])]
    if chart == "tier_moves":
        return ["from tier", "to tier", "members"], [[old or "-", new or "-", n] for old, new, n in d.tier_moves or []]
    if chart == "rewards":
        return ["reward", "name", "redemptions", "points"], [
            [r.code, r.name, r.redemptions, r.points] for r in d.top_rewards or []
        ]
    if chart == "campaigns":
        return ["campaign", "channel", "started at", "recipients", "status"], [
            [x.name, x.channel, x.started_at.isoformat(), x.recipients, x.status] for x in d.campaigns or []
        ]
    raise UnknownChart(chart)
