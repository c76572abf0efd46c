"""Earning rules beyond spend, the pure part: does a rule apply now, and how many points may it give.

A rule applies when it is active, the merchant's local day is inside its date window and one of its
weekdays, and the member's branch and tier pass its filters (an empty filter admits everything).
Caps are in points: ``cap_per_day`` is per member per local day, ``cap_per_member`` per member over
the rule's life, ``cap_total`` over all members. An award that would pass a cap is cut to what is
left; when nothing is left the rule gives nothing (no coupon either) — see
docs/decisions/0009-earning-rule-caps.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lianka.tenants.domain.programme import EarningRule, Programme


def ineligible(rule: EarningRule, *, day: date, branch_code: str | None, tier: str | None) -> str | None:
    """Why ``rule`` does not apply on ``day`` (a short reason), or None when it does."""
    if not rule.active:
        return "inactive"
    if rule.starts and day < rule.starts:
        return "not started"
    if rule.ends and day > rule.ends:
        return "ended"
    if rule.weekdays and day.weekday() not in rule.weekdays:
        return "not on this weekday"
    if rule.branches and branch_code not in rule.branches:
        return "not at this branch"
    if rule.tiers and tier not in rule.tiers:
        return "not for this tier"
    return None


@dataclass(frozen=True)
class Awarded:
    """What the member already got from a rule (points), today, ever, and everyone together."""

    today: int = 0
    member: int = 0
    total: int = 0


def allowance(rule: EarningRule, points: int, so_far: Awarded) -> int:
    """The points an award of ``points`` may give under the rule's caps (0..points)."""
    left = points
    for cap, used in (
        (rule.cap_per_day, so_far.today),
        (rule.cap_per_member, so_far.member),
        (rule.cap_total, so_far.total),
    ):
        if cap is not None:
            left = min(left, cap - used)
    return max(left, 0)


def streak_after(last_day: date | None, last_streak: int, today: date) -> int:
    """The check-in streak on ``today``: one more than yesterday's, else a fresh start."""
    if last_day is not None and (today - last_day).days == 1:
        return last_streak + 1
    return 1


def checkin_points(rule: EarningRule, streak: int) -> tuple[int, int]:
    """(base points, streak bonus) of a check-in on the ``streak``-th consecutive day."""
    return rule.points, rule.streak_bonus.get(str(streak), 0)


def base_tier(p: Programme) -> str | None:
    """The tier everybody starts in: the lowest-ranked one when it needs nothing."""
    ordered = p.tiers_by_rank()
    return ordered[0].code if ordered and ordered[0].threshold == 0 else None


def is_upgrade(p: Programme, old: str | None, new: str | None) -> bool:
    """True when ``new`` ranks above ``old`` (no tier ranks below every tier)."""

    def rank(code: str | None) -> int:
        t = p.tier(code)
        return t.rank if t else -1

    return new is not None and rank(new) > rank(old)
