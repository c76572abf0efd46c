"""Clearing rules and month-end netting (pure).

Every movement of value across entities produces *obligations* at posting time; month end only sums
them. Settlement is hub-and-spoke: a chain's HQ for its branches, an alliance's operator for its
partners. An obligation between two spokes (an issuing branch funding a bonus consumed at another
branch) is booked as two legs through the hub, so every spoke settles with the hub only — one
transfer each — and the hub's own line is minus the sum of the spokes' nets.

Sign convention for a spoke's net: positive = the hub pays the spoke; negative = the spoke pays the
hub. Amounts are integer minor units; points are converted to money here, rounded once per event
(half-even, to the fen), so statements are sums of integers and always add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from lianka.alliance.settlement.errors import PeriodBeforeBook, PeriodNotEnded, PeriodOutOfOrder
from lianka.platform.errors import RuleViolation
from lianka.platform.money import RoundingMode, round_minor
from lianka.tenants.domain.programme import BonusFunder

HUB = "__hub__"


class LineKind(StrEnum):
    SV_COLLECTED = "stored_value_collected"  # principal taken in cash at a top-up
    SV_CONSUMED = "stored_value_consumed_principal"
    SV_BONUS_FUNDED = "stored_value_bonus_funded"  # bonus consumed, paid to the redeeming spoke
    SV_BONUS_CHARGED = "stored_value_bonus_charged"  # bonus charged to the spoke that funds it
    SV_REFUNDED = "stored_value_refunded"  # unused principal paid back to the member at a spoke
    POINTS_ISSUED = "points_issued"
    POINTS_REDEEMED = "points_redeemed"
    POINTS_EXPIRED = "points_expired"  # breakage returned to issuers (policy)
    FEE = "fee"
    XMKT_CHARGED = "cross_marketing_charged"  # a funded offer redeemed at the funder: it pays the fee
    XMKT_EARNED = "cross_marketing_earned"  # ... and the partner whose member it was receives it
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Obligation:
    """``amount`` owed by the hub to ``entity`` (negative: owed by the entity to the hub)."""

    entity: str
    kind: LineKind
    amount: int
    quantity: int = 0  # points, where the line is about points
    late: bool = False


# --- chain stored value -------------------------------------------------------------------------


def sv_top_up(branch: str, principal: int) -> list[Obligation]:
    """The branch took the member's cash: it owes the hub the principal."""
    return [Obligation(branch, LineKind.SV_COLLECTED, -principal)]


def sv_consumed(
    redeeming: str, principal: int, bonus_by_issuer: dict[str, int], funder: BonusFunder
) -> list[Obligation]:
    """Goods delivered at ``redeeming`` against the hub's float.

    The hub owes the redeeming spoke the principal consumed. The bonus consumed is paid to the
    redeeming spoke by whoever funds bonuses: the hub (its expense), the issuing spoke (charged via
    the hub), or nobody (the redeeming spoke bears it). ``bonus_by_issuer`` says which spoke issued
    the bonus consumed (stored-value bonus is tracked in lots by issuing spoke).
    """
    out = [Obligation(redeeming, LineKind.SV_CONSUMED, principal)] if principal else []
    if funder == BonusFunder.REDEEMING_BRANCH:
        return out
    for issuer, bonus in sorted(bonus_by_issuer.items()):
        if not bonus:
            continue
        out.append(Obligation(redeeming, LineKind.SV_BONUS_FUNDED, bonus))
        if funder == BonusFunder.ISSUING_BRANCH:
            out.append(Obligation(issuer, LineKind.SV_BONUS_CHARGED, -bonus))
    return out


def consumed(redeeming: str, principal: int, issuers: dict[str, int], funder: BonusFunder) -> list[Obligation]:
    """The obligations of stored value spent at ``redeeming`` under the bonus policy ``funder``:
    :func:`sv_consumed` plus the rule for bonus with no issuing branch. The one rule both the
    posting (``clearing.post_consumed``) and the bonus-funding simulator apply (decision 0040).

    A bonus with no issuing branch ('' in ``issuers``: a reward, a legacy balance) is HQ's to fund
    under every policy that has someone fund it: the issuing-branch policy has no branch to charge."""
    known = {k: v for k, v in issuers.items() if k}
    unknown = sum(v for k, v in issuers.items() if not k)
    out = sv_consumed(redeeming, principal, known, funder)
    if unknown and funder != BonusFunder.REDEEMING_BRANCH:
        out += sv_consumed(redeeming, 0, {"": unknown}, BonusFunder.HQ)
    return out


def sv_refund(branch: str, principal: int) -> list[Obligation]:
    """Unused principal handed back at ``branch``: the hub reimburses it."""
    return [Obligation(branch, LineKind.SV_REFUNDED, principal)]


def pro_rata(amount: int, part: int, whole: int) -> int:
    """``amount × part / whole`` rounded down to a whole minor unit (``amount`` and ``part`` not
    negative, ``whole`` positive): a refund's share of what a sale's clearing booked. Exact at any
    size (a ``Fraction``, not a 28-digit ``Decimal``); ``FLOOR``, which for these non-negative
    shares is also towards zero."""
    return round_minor(Fraction(amount * part, whole), RoundingMode.FLOOR)


# --- alliance points ----------------------------------------------------------------------------


def money(points: int, price: Decimal) -> int:
    """Points × a major-unit price per point, in minor units, rounded once half-even."""
    return round_minor(Decimal(points) * price * 100, RoundingMode.HALF_EVEN)


def points_issued(partner: str, points: int, issue_price: Decimal) -> list[Obligation]:
    return [Obligation(partner, LineKind.POINTS_ISSUED, -money(points, issue_price), points)]


def points_redeemed(partner: str, points: int, reimbursement_price: Decimal) -> list[Obligation]:
    return [Obligation(partner, LineKind.POINTS_REDEEMED, money(points, reimbursement_price), points)]


def points_expired_to_issuers(expired_by_issuer: dict[str, int], issue_price: Decimal) -> list[Obligation]:
    """Breakage policy "back to issuers": each issuer is refunded the issue price of its expired points."""
    return [
        Obligation(p, LineKind.POINTS_EXPIRED, money(n, issue_price), n)
        for p, n in sorted(expired_by_issuer.items())
        if n
    ]


def cross_marketing(funder_branch: str, target_partner: str, fee_: int) -> tuple[Obligation, Obligation]:
    """A cross-marketing offer redeemed at ``funder_branch``: the funder owes the offer's fee, the
    target partner (whose member redeemed it) is owed it — two legs through the hub, which nets to
    nothing on this line (decision 0044)."""
    return Obligation(funder_branch, LineKind.XMKT_CHARGED, -fee_), Obligation(
        target_partner, LineKind.XMKT_EARNED, fee_
    )


def fee(partner: str, amount: int) -> list[Obligation]:
    return [Obligation(partner, LineKind.FEE, -amount)]


# --- netting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    entity: str
    lines: dict[LineKind, int]
    quantities: dict[LineKind, int]
    late: int
    net: int

    @property
    def direction(self) -> str:
        return "hub pays" if self.net > 0 else "pays hub" if self.net < 0 else "settled"


def net(obligations: Iterable[Obligation], entities: Iterable[str] = ()) -> tuple[dict[str, Statement], int]:
    """Statements per spoke and the hub's own line; ``sum(nets) + hub == 0`` by construction."""
    lines: dict[str, dict[LineKind, int]] = defaultdict(lambda: defaultdict(int))
    qty: dict[str, dict[LineKind, int]] = defaultdict(lambda: defaultdict(int))
    late: dict[str, int] = defaultdict(int)
    for e in entities:
        lines[e]
    for o in obligations:
        lines[o.entity][o.kind] += o.amount
        qty[o.entity][o.kind] += o.quantity
        if o.late:
            late[o.entity] += o.amount
    statements = {e: Statement(e, dict(ls), dict(qty[e]), late[e], sum(ls.values())) for e, ls in sorted(lines.items())}
    hub = -sum(s.net for s in statements.values())
    return statements, hub


def split_by_branch(parent_net: int, branch_obligations: Iterable[Obligation]) -> dict[str, int]:
    """Two levels: a chain partner's one alliance net, split across its branches by their own lines.

    The branches' obligations are the same events tagged with the branch instead of the partner, so
    their nets sum to the partner's net exactly (checked: a mismatch is a bug, not rounding).
    """
    statements, hub = net(branch_obligations)
    if -hub != parent_net:
        raise ValueError(f"branch lines sum to {-hub}, the partner's net is {parent_net}")
    return {e: s.net for e, s in statements.items()}


# --- the calendar of a book ---------------------------------------------------------------------


def period_of(at: datetime, tz: str) -> str:
    """The month ``at`` belongs to in the book's time zone (as the ledger assigns it)."""
    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


def next_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def ended_periods(tz: str, count: int, now: datetime) -> list[str]:
    """The ``count`` latest months that have ended in ``tz`` at ``now``, newest first (a month picker's)."""
    periods = [previous_period(period_of(now, tz))]
    while len(periods) < count:
        periods.append(previous_period(periods[-1]))
    return periods


def period_start(period: str, tz: str) -> datetime:
    year, month = map(int, period.split("-"))
    return datetime(year, month, 1, tzinfo=ZoneInfo(tz))


def period_end(period: str, tz: str) -> datetime:
    """The first instant after the month, in the book's time zone: the month has ended from then on."""
    return period_start(next_period(period), tz)


def months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included (empty when ``last`` is earlier)."""
    out: list[str] = []
    p = first
    while p <= last:
        out.append(p)
        p = next_period(p)
    return out


def closable(period: str, *, tz: str, now: datetime, first: str, runs: Mapping[str, bool]) -> list[str]:
    """Refuse a close that would misplace money; else the earlier months a first close folds in.

    ``first`` is the book's first month (its creation, or its earliest entry if that is earlier);
    ``runs`` maps every month the book has a close for (this one excluded) to whether it finished.
    A month is closable once it has ended in ``tz``, from ``first`` on, and in order: right after the
    book's latest close, which must have finished. The book's first close may come later than
    ``first``: the months before it (returned here) are closed with it, their movements folded into
    its opening position, so an entry dated in them later lands in the next open month as a late
    item instead of in a month no statement will ever show.
    """
    ends = period_end(period, tz)
    if now < ends:
        raise PeriodNotEnded(
            f"{period} ends at {ends.isoformat()} ({tz}); close it once it has ended",
            period=period,
            ends_at=ends.isoformat(),
        )
    if period < first:
        raise PeriodBeforeBook(f"the book starts in {first}; {period} is before it", period=period, first_period=first)
    later = sorted(p for p in runs if p > period)
    if later:
        raise PeriodOutOfOrder(
            f"{later[-1]} is already closed: months are closed in order", period=period, latest_period=later[-1]
        )
    if not runs:
        return months(first, previous_period(period))
    latest = max(runs)
    if not runs[latest]:
        raise PeriodOutOfOrder(
            f"the close of {latest} has not finished: close {latest} again first", period=period, next_period=latest
        )
    expected = next_period(latest)
    if period != expected:
        raise PeriodOutOfOrder(
            f"close {expected} first: months are closed in order", period=period, next_period=expected
        )
    return []


@dataclass(frozen=True)
class Month:
    """One month of a book's calendar, as a close would see it now.

    ``status`` is the period's (``open``, ``closing``: its close began and has not finished,
    ``closed``); ``statements``: its own close finished, so it has statements (a month folded into the
    book's first close is closed without any: ``folded_into`` names that close). ``closable``: a close
    may start (or resume) now; else ``refusal`` is the problem a close would get (``period-not-ended``,
    ``period-out-of-order``; None for a closed month) and ``close_first`` the month to close before it.
    ``folds``: the earlier months a first close of this month closes with it."""

    period: str
    status: str
    ends_at: datetime
    statements: bool
    closable: bool
    refusal: str | None = None
    close_first: str | None = None
    folded_into: str | None = None
    folds: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.refusal != PeriodNotEnded.type_slug


def calendar(
    *, first: str, runs: Mapping[str, bool], statuses: Mapping[str, str], tz: str, now: datetime
) -> list[Month]:
    """Every month of the book from its first (``first``) to the current one in ``tz``, newest first,
    with what :func:`closable` says of a close of each now. ``runs``: month -> its close finished;
    ``statuses``: the ledger's period states (a month folded into a first close is ``closed`` there)."""
    out: list[Month] = []
    for period in reversed(months(first, period_of(now, tz))):
        ends = period_end(period, tz)
        if period in runs:
            done = runs[period]
            # a finished close is read back; an unfinished one resumes where it stopped
            out.append(Month(period, "closed" if done else "closing", ends, done, not done))
            continue
        status = statuses.get(period, "open")
        if status == "closed":
            folded_into = min((p for p in runs if p > period), default=None)
            out.append(Month(period, status, ends, False, False, folded_into=folded_into))
            continue
        others = {p: done for p, done in runs.items() if p != period}
        try:
            folds = closable(period, tz=tz, now=now, first=first, runs=others)
        except RuleViolation as refused:
            close_first = refused.extra.get("next_period")
            out.append(
                Month(period, status, ends, False, False, refused.type_slug, str(close_first) if close_first else None)
            )
            continue
        out.append(Month(period, status, ends, False, True, folds=tuple(folds)))
    return out
