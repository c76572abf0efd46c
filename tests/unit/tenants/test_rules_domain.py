"""Earning rules, the pure part: when a rule applies, what its caps leave, check-in streaks."""

from __future__ import annotations

from datetime import date

import pytest

from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind, Tier
from lianka.tenants.domain.rules import (
    Awarded,
    allowance,
    base_tier,
    checkin_points,
    ineligible,
    is_upgrade,
    streak_after,
)
from lianka.tenants.services.programme import decode

MONDAY = date(2026, 11, 23)


def rule(**kw: object) -> EarningRule:
    return EarningRule(code="r", kind=RuleKind.CUSTOM, event="e", points=10, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("r", "day", "branch", "tier", "why"),
    [
        (rule(), MONDAY, None, None, None),
        (rule(active=False), MONDAY, None, None, "inactive"),
        (rule(starts=date(2026, 11, 24)), MONDAY, None, None, "not started"),
        (rule(ends=date(2026, 11, 22)), MONDAY, None, None, "ended"),
        (rule(starts=MONDAY, ends=MONDAY), MONDAY, None, None, None),
        (rule(weekdays=[1]), MONDAY, None, None, "not on this weekday"),  # Tuesdays only
        (rule(weekdays=[0, 1]), MONDAY, None, None, None),
        (rule(branches=["SH01"]), MONDAY, "SH02", None, "not at this branch"),
        (rule(branches=["SH01"]), MONDAY, None, None, "not at this branch"),  # no branch known: not proven
        (rule(branches=["SH01"]), MONDAY, "SH01", None, None),
        (rule(tiers=["gold"]), MONDAY, None, "silver", "not for this tier"),
        (rule(tiers=["gold"]), MONDAY, None, "gold", None),
    ],
)
def test_when_a_rule_applies(r: EarningRule, day: date, branch: str | None, tier: str | None, why: str | None) -> None:
    assert ineligible(r, day=day, branch_code=branch, tier=tier) == why


def test_caps_cut_an_award_to_what_is_left() -> None:
    assert allowance(rule(), 10, Awarded()) == 10
    assert allowance(rule(cap_per_day=25), 10, Awarded(today=20, member=20)) == 5
    assert allowance(rule(cap_per_day=25), 10, Awarded(today=25, member=25)) == 0
    assert allowance(rule(cap_per_member=100), 10, Awarded(today=0, member=95)) == 5
    assert allowance(rule(cap_total=1_000), 10, Awarded(total=1_000)) == 0
    assert allowance(rule(cap_per_day=50, cap_total=1_000), 10, Awarded(today=45, total=998)) == 2
    assert allowance(rule(cap_per_day=5), 10, Awarded(today=9)) == 0  # never negative


def test_streaks_count_consecutive_local_days() -> None:
    assert streak_after(None, 0, MONDAY) == 1
    assert streak_after(date(2026, 11, 22), 6, MONDAY) == 7
    assert streak_after(date(2026, 11, 21), 6, MONDAY) == 1  # a day missed: start again
    r = EarningRule(code="c", kind=RuleKind.CHECKIN, points=5, streak_bonus={"7": 20, "30": 100})
    assert checkin_points(r, 6) == (5, 0)
    assert checkin_points(r, 7) == (5, 20)


def test_tiers_start_at_the_free_one_and_upgrades_go_up() -> None:
    p = Programme(
        tiers=[
            Tier(code="gold", name="金", rank=2, threshold=100),
            Tier(code="regular", name="普", rank=0),
            Tier(code="silver", name="银", rank=1, threshold=10),
        ]
    )
    assert base_tier(p) == "regular"
    assert base_tier(Programme()) is None
    assert is_upgrade(p, "regular", "gold")
    assert is_upgrade(p, None, "silver")
    assert not is_upgrade(p, "gold", "silver")
    assert not is_upgrade(p, "gold", "gold")


@pytest.mark.parametrize(
    "rules",
    [
        [{"code": "a", "kind": "checkin", "points": 1}, {"code": "b", "kind": "checkin", "points": 2}],
        [{"code": "a", "kind": "promotion", "multiplier": "2", "coupon_template": "x"}],
        [{"code": "a", "kind": "checkin", "streak_bonus": {"seven": 3}}],
        [{"code": "a", "kind": "tier_upgrade", "tiers": ["nope"]}],
    ],
)
def test_inconsistent_rules_are_refused(rules: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationFailed):
        decode({"rules": rules})


def test_tier_upgrade_rules_with_coupons_are_accepted() -> None:
    p = decode(
        {
            "tiers": [{"code": "gold", "name": "金", "rank": 1}],
            "rules": [{"code": "up", "kind": "tier_upgrade", "tiers": ["gold"], "coupon_template": "gold-gift"}],
        }
    )
    assert p.rules[0].kind == RuleKind.TIER_UPGRADE
    assert p.rules[0].coupon_template == "gold-gift"
