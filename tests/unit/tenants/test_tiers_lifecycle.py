from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lianka.tenants.domain.lifecycle import Stage, join_eligibility, stage
from lianka.tenants.domain.programme import (
    EarningRule,
    JoinPolicy,
    JoinRules,
    Programme,
    ProgrammeError,
    RetentionAction,
    RuleKind,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
    TierPolicy,
    TierQualification,
    validate,
)
from lianka.tenants.domain.tiers import Standing, on_activity, progress, qualified_tier, retention, review

TIERS = [
    Tier(code="regular", name="普通", rank=0),
    Tier(code="silver", name="银卡", rank=1, threshold=100_000),
    Tier(code="gold", name="金卡", rank=2, threshold=500_000, points_multiplier=Decimal(2)),
    Tier(code="platinum", name="铂金", rank=3, threshold=2_000_000),
    Tier(code="plus", name="PLUS", rank=4, qualification=TierQualification.PURCHASE),
]
P = Programme(tiers=TIERS)
TODAY = date(2026, 11, 23)


def test_qualification_by_spend_and_purchase() -> None:
    assert qualified_tier(P, Standing(spend=0)).code == "regular"  # type: ignore[union-attr]
    assert qualified_tier(P, Standing(spend=100_000)).code == "silver"  # type: ignore[union-attr]
    assert qualified_tier(P, Standing(spend=600_000)).code == "gold"  # type: ignore[union-attr]
    assert qualified_tier(P, Standing(purchased=frozenset({"plus"}))).code == "plus"  # type: ignore[union-attr]


def test_upgrade_is_immediate_and_activity_never_downgrades() -> None:
    assert on_activity(P, "regular", Standing(spend=500_000), today=TODAY).new == "gold"
    assert on_activity(P, "gold", Standing(spend=0), today=TODAY).new == "gold"


def test_review_downgrades_one_step_or_reevaluates() -> None:
    assert review(P, "platinum", Standing(spend=0), today=TODAY).new == "gold"
    reeval = Programme(tiers=TIERS, tier_policy=TierPolicy(retention=RetentionAction.REEVALUATE))
    assert review(reeval, "platinum", Standing(spend=0), today=TODAY).new == "regular"
    kept = review(P, "gold", Standing(spend=500_000), today=TODAY)
    assert (kept.new, kept.reason, kept.changed) == ("gold", "retained", False)


def test_manual_floor_holds_until_its_date() -> None:
    r = review(P, "gold", Standing(spend=0), floor="gold", floor_until=date(2026, 12, 31), today=TODAY)
    assert (r.new, r.reason) == ("gold", "manual floor")
    after = review(P, "gold", Standing(spend=0), floor="gold", floor_until=date(2026, 11, 1), today=TODAY)
    assert after.new == "silver"


def test_progress_to_next_tier() -> None:
    assert progress(P, "silver", Standing(spend=420_000)) == {
        "tier": "gold",
        "measure": "spend",
        "threshold": 500_000,
        "have": 420_000,
        "needed": 80_000,
    }
    assert progress(P, "plus", Standing()) is None


@pytest.mark.parametrize("tier", ["silver", "gold", "platinum"])
@pytest.mark.parametrize("spend", [0, 99_999, 100_000, 499_999, 500_000, 1_999_999, 2_000_000, 9_000_000])
def test_what_keeps_a_tier_agrees_with_the_review(tier: str, spend: int) -> None:
    """The member's "to keep it" (保级) says nothing is needed exactly when the review does not
    take the tier away (it keeps it, or moves the member up)."""
    keep = retention(P, tier, Standing(spend=spend))
    assert keep is not None and keep["tier"] == tier and keep["window_months"] == P.tier_policy.window_months
    after = P.tier(review(P, tier, Standing(spend=spend), today=TODAY).new)
    kept = after is not None and after.rank >= P.tier(tier).rank  # type: ignore[union-attr]
    assert (keep["needed"] == 0) == kept  # kept, or moved up
    assert keep["needed"] == max(0, int(str(keep["threshold"])) - spend)


def test_nothing_keeps_a_tier_that_spend_does_not_decide() -> None:
    assert retention(P, "regular", Standing(spend=5)) is None  # threshold 0: never lost
    assert retention(P, "plus", Standing()) is None  # bought
    assert retention(P, None, Standing()) is None


def test_join_after_a_qualifying_purchase() -> None:
    rules = JoinRules(policy=JoinPolicy.QUALIFYING_PURCHASE, single_purchase_min=10_000, cumulative_min=30_000)
    assert join_eligibility(rules, purchase=10_000, cumulative=10_000, today=TODAY).eligible  # ¥100 single
    assert not join_eligibility(rules, purchase=9_999, cumulative=9_999, today=TODAY).eligible
    assert join_eligibility(rules, purchase=5_000, cumulative=30_000, today=TODAY).eligible  # ¥300 cumulative


def test_minimum_age() -> None:
    rules = JoinRules(min_age=18)
    assert not join_eligibility(rules, birthday=date(2008, 11, 24), today=TODAY).eligible  # 17 tomorrow 18
    assert join_eligibility(rules, birthday=date(2008, 11, 23), today=TODAY).eligible
    assert not join_eligibility(rules, today=TODAY).eligible


@pytest.mark.parametrize(
    ("joined", "last", "expected"),
    [
        (date(2026, 11, 1), None, Stage.NEW),
        (date(2026, 1, 1), None, Stage.DORMANT),
        (date(2025, 1, 1), date(2026, 10, 1), Stage.ACTIVE),
        (date(2025, 1, 1), date(2026, 7, 1), Stage.AT_RISK),
        (date(2025, 1, 1), date(2026, 1, 1), Stage.DORMANT),
    ],
)
def test_lifecycle_stage(joined: date, last: date | None, expected: Stage) -> None:
    assert stage(joined, last, TODAY) == expected


@pytest.mark.parametrize(
    "bad",
    [
        Programme(tiers=[Tier(code="a", name="A", rank=0), Tier(code="a", name="B", rank=1)]),
        Programme(tiers=[Tier(code="a", name="A", rank=0, threshold=5), Tier(code="b", name="B", rank=1, threshold=1)]),
        Programme(rules=[EarningRule(code="c", kind=RuleKind.CUSTOM)]),
        Programme(rules=[EarningRule(code="p", kind=RuleKind.PROMOTION, multiplier=Decimal(0))]),
        Programme(rules=[EarningRule(code="t", kind=RuleKind.SIGNUP, tiers=["nope"])]),
        Programme(stored_value=StoredValueConfig(plans=[StoredValuePlan(code="x", name="X", pay=100, get=90)])),
    ],
)
def test_inconsistent_programmes_are_refused(bad: Programme) -> None:
    with pytest.raises(ProgrammeError):
        validate(bad)
