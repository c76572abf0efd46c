"""The HQ dashboard's use case: one period's KPIs against the previous period's, the daily series,
the tier distribution, what members hold (points liability, stored-value float), a row per branch,
the coupon funnel, the members by lifecycle stage and the RFM grid (the nightly snapshot), the
period's tier movements, most redeemed rewards and campaigns — all read in one (read-only) unit of
work, in the merchant's time zone.

Branch scoping is the principal's: a branch-limited principal (a branch manager) sees its branches
only — the branch filter may not name another, and the merchant-wide figures (what members hold, the
tiers, movements that belong to no branch) are left out for it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from lianka.platform.db import Database
from lianka.platform.errors import Forbidden, NotFound, ValidationFailed
from lianka.tenants.reports import dashboard_queries as q
from lianka.tenants.reports import domain
from lianka.tenants.reports.domain import Kpis, Period, PeriodKind
from lianka.tenants.reports.queries import FIGURES
from lianka.tenants.services.accounts import merchant_info
from lianka.tenants.services.programme import programme_at


@dataclass(frozen=True)
class Request:
    kind: PeriodKind = PeriodKind.THIS_MONTH
    first: date | None = None
    last: date | None = None
    branch: uuid.UUID | None = None


@dataclass(frozen=True)
class Day:
    day: date
    sales_member: int
    sales_nonmember: int
    points_issued: int
    points_redeemed: int
    points_expired: int
    #: members who joined that day (the growth chart)
    new_members: int = 0


@dataclass(frozen=True)
class BranchRow:
    branch_id: uuid.UUID
    code: str
    name: str
    sales: int
    members: int
    topups: int
    sv_consumed: int
    #: this month so far, from its clearing accounts: positive, HQ owes the branch
    net_owed: int


@dataclass(frozen=True)
class Held:
    """What the members hold now (merchant-wide)."""

    points: int
    liability: int
    sv_principal: int
    sv_bonus: int


@dataclass(frozen=True)
class Dashboard:
    currency: str
    timezone: str
    kind: PeriodKind
    period: Period
    previous: Period
    branch: uuid.UUID | None
    #: the branches the principal may pick (code, name)
    branch_choices: list[tuple[uuid.UUID, str, str]]
    kpis: Kpis
    previous_kpis: Kpis
    daily: list[Day]
    branches: list[BranchRow]
    #: merchant-wide, None for a branch-limited principal
    held: Held | None
    tiers: list[tuple[str, int]] | None
    month: str
    #: merchant-wide panels, None for a branch-limited principal: the nightly member snapshot
    #: (lifecycle stages, RFM grid; None before its first night), the period's tier movements
    #: (from, to, members), its most redeemed rewards and the campaigns started in it
    members: q.MemberSnapshot | None = None
    tier_moves: list[tuple[str, str, int]] | None = None
    top_rewards: list[q.RewardRow] | None = None
    campaigns: list[q.CampaignRow] | None = None

    @property
    def coupons(self) -> tuple[int, int]:
        """The period's coupons issued and redeemed (the funnel), from the rollups."""
        return self.kpis.coupons_issued, self.kpis.coupons_redeemed


def change(d: Dashboard, name: str) -> Decimal | None:
    """A KPI's change against the previous period, in percent."""
    value = getattr(d.kpis, name)
    before = getattr(d.previous_kpis, name)
    return domain.change_pct(value, before)


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def summable(period: Period, previous: Period, branches: frozenset[uuid.UUID] | None) -> bool:
    """The buyers come from the buyer rollups (decision 0055) when both periods are month-aligned and the
    scope is every branch or exactly one; else (the last 30 days, a custom range across months, a
    manager's several branches together) they are read from the sales."""
    one_scope = branches is None or len(branches) == 1
    return one_scope and domain.month_aligned(period) and domain.month_aligned(previous)


async def dashboard(
    db: Database,
    tenant: uuid.UUID,
    allowed: frozenset[uuid.UUID] | None,
    ask: Request,
    now: datetime | None = None,
) -> Dashboard:
    """``allowed``: the principal's branches (None: every branch)."""
    async with db.uow(tenant) as uow:
        currency, tz = await merchant_info(uow)
        zone = ZoneInfo(tz)
        today = (now or datetime.now(UTC)).astimezone(zone).date()
        try:
            period = domain.period_of(ask.kind, today, ask.first, ask.last)
        except domain.BadPeriod as exc:
            raise ValidationFailed(str(exc), field="period") from exc
        previous = domain.previous_of(ask.kind, period)
        every = await q.branch_list(uow)
        choices = [b for b in every if allowed is None or b[0] in allowed]
        if ask.branch is not None:
            if allowed is not None and ask.branch not in allowed:
                raise Forbidden("This branch is outside your access", branch_id=str(ask.branch))
            if ask.branch not in {b[0] for b in every}:
                raise NotFound("No such branch", branch_id=str(ask.branch))
            branches: frozenset[uuid.UUID] | None = frozenset({ask.branch})
        else:
            branches = allowed
        scope = q.Scope(period.first, period.last, branches)
        before = q.Scope(previous.first, previous.last, branches)
        sums = await q.figures(uow, scope, before)
        if summable(period, previous, branches):
            bought = await q.summed_buyers(uow, scope, before)
        else:
            bought = await q.buyers(
                uow,
                scope,
                (_utc(period.first, zone), _utc(period.last + timedelta(1), zone)),
                (_utc(previous.first, zone), _utc(previous.last + timedelta(1), zone)),
            )
        month = today.strftime("%Y-%m")
        owed = await q.clearing(uow, currency, month)
        held = tiers = members = moves = rewards = started = None
        if allowed is None:
            lo, hi = _utc(period.first, zone), _utc(period.last + timedelta(1), zone)
            members = await q.member_snapshot(uow)
            moves = await q.tier_moves(uow, lo, hi)
            rewards = await q.top_rewards(uow, lo, hi)
            started = await q.campaigns(uow, lo, hi)
            amounts = await q.held(uow)
            _, programme = await programme_at(uow)
            value = programme.points.cash_value_per_point
            held = Held(
                amounts["points"],
                domain.points_liability(amounts["points"], value),
                amounts["sv_principal"],
                amounts["sv_bonus"],
            )
            tiers = await q.tiers(uow)
    zero = dict.fromkeys(FIGURES, 0)
    daily = [
        Day(
            d,
            f["sales_member"],
            f["sales_nonmember"],
            f["points_issued"],
            f["points_redeemed"],
            f["points_expired"],
            f["new_members"],
        )
        for d in period.each_day()
        for f in [sums.daily.get(d, zero)]
    ]
    rows = [
        BranchRow(
            bid,
            code,
            name,
            f["sales_member"] + f["sales_nonmember"],
            bought.per_branch.get(bid, 0),
            f["topup_principal"],
            f["sv_consumed_principal"] + f["sv_consumed_bonus"],
            owed.get(bid, 0),
        )
        for bid, code, name in choices
        if branches is None or bid in branches
        for f in [sums.per_branch.get(bid, zero)]
    ]
    return Dashboard(
        currency=currency,
        timezone=tz,
        kind=ask.kind,
        period=period,
        previous=previous,
        branch=ask.branch,
        branch_choices=choices,
        kpis=domain.kpis(sums.totals, *bought.period),
        previous_kpis=domain.kpis(sums.previous, *bought.previous),
        daily=daily,
        branches=rows,
        held=held,
        tiers=tiers,
        month=month,
        members=members,
        tier_moves=moves,
        top_rewards=rewards,
        campaigns=started,
    )
