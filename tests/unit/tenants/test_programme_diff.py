"""The programme document's problems name the field at fault, and two versions compare field by field."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from lianka.demo import DEMO_PROGRAMME
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import (
    EarningRule,
    ExpiryPolicy,
    Programme,
    ProgrammeError,
    Promotion,
    PromotionKind,
    RuleKind,
    SpendStep,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
    TierQualification,
    validate,
)
from lianka.tenants.domain.programme_diff import Unit, diff
from lianka.tenants.services.programme import decode

A, B = Tier(code="a", name="A", rank=0), Tier(code="b", name="B", rank=1, threshold=100)


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        (Programme(tiers=[A, B, msgspec.structs.replace(B, rank=2)]), "tiers[2].code", "duplicate"),
        (Programme(tiers=[A, msgspec.structs.replace(B, code="c", rank=0)]), "tiers[1].rank", "duplicate"),
        (Programme(tiers=[msgspec.structs.replace(A, threshold=500), B]), "tiers[1].threshold", "order"),
        (
            Programme(tiers=[A, msgspec.structs.replace(B, birthday_multiplier=Decimal(0))]),
            "tiers[1].birthday_multiplier",
            "range",
        ),
        (
            Programme(rules=[EarningRule(code="x", kind=RuleKind.SIGNUP), EarningRule(code="c", kind=RuleKind.CUSTOM)]),
            "rules[1].event",
            "required",
        ),
        (
            Programme(rules=[EarningRule(code="p", kind=RuleKind.PROMOTION, coupon_template="t")]),
            "rules[0].coupon_template",
            "conflict",
        ),
        (
            Programme(
                rules=[EarningRule(code="k1", kind=RuleKind.CHECKIN), EarningRule(code="k2", kind=RuleKind.CHECKIN)]
            ),
            "rules[1].kind",
            "duplicate",
        ),
        (
            Programme(stored_value=StoredValueConfig(plans=[StoredValuePlan(code="x", name="X", pay=100, get=90)])),
            "stored_value.plans[0].get",
            "order",
        ),
    ],
)
def test_a_refusal_names_the_field_at_fault(bad: Programme, field: str, reason: str) -> None:
    with pytest.raises(ProgrammeError) as refused:
        validate(bad)
    assert (refused.value.field, refused.value.reason) == (field, reason)
    with pytest.raises(ValidationFailed) as problem:  # what the API and the console receive
        decode(msgspec.to_builtins(bad))
    assert problem.value.extra == {"field": field, "reason": reason}


def test_a_value_of_the_wrong_shape_names_its_path() -> None:
    with pytest.raises(ValidationFailed) as problem:
        decode({"tiers": [{"code": "a", "name": "A", "rank": 0}, {"code": "B!", "name": "B", "rank": 1}]})
    assert problem.value.extra == {"field": "tiers[1].code", "reason": "invalid"}


def test_a_threshold_change_reads_as_money_for_spend_and_points_for_points() -> None:
    gold = next(t for t in DEMO_PROGRAMME.tiers if t.code == "gold")
    raised = [msgspec.structs.replace(t, threshold=500_000) if t is gold else t for t in DEMO_PROGRAMME.tiers]
    changes = diff(DEMO_PROGRAMME, msgspec.structs.replace(DEMO_PROGRAMME, tiers=raised))
    assert [(c.section, c.item, c.item_name, c.field, c.old, c.new, c.unit) for c in changes] == [
        ("tiers", "gold", "金卡", "threshold", 300_000, 500_000, Unit.MONEY)
    ]
    by_points = [msgspec.structs.replace(t, qualification=TierQualification.POINTS) for t in DEMO_PROGRAMME.tiers]
    old = msgspec.structs.replace(DEMO_PROGRAMME, tiers=by_points)
    new = msgspec.structs.replace(old, tiers=[msgspec.structs.replace(t, threshold=t.threshold + 1) for t in by_points])
    assert {c.unit for c in diff(old, new)} == {Unit.POINTS}


def test_items_are_matched_by_code_and_nested_fields_flattened() -> None:
    old = Programme(tiers=[A, B])
    new = Programme(
        tiers=[msgspec.structs.replace(B, discount_percent=5), Tier(code="c", name="C", rank=2)],
        points=msgspec.structs.replace(Programme().points, expiry=ExpiryPolicy(months=24)),
    )
    assert [(c.section, c.item, c.field, c.kind, c.unit) for c in diff(old, new)] == [
        ("points", None, "expiry.months", "changed", Unit.NUMBER),
        ("tiers", "a", "", "removed", Unit.ITEM),
        ("tiers", "b", "discount_percent", "changed", Unit.PERCENT),
        ("tiers", "c", "", "added", Unit.ITEM),
    ]
    assert diff(new, new) == []
    assert diff(Programme(tiers=[A, B]), Programme(tiers=[B, A])) == []  # reordering is no change


def test_every_section_is_compared() -> None:
    """A change anywhere in the document shows: the diff covers every top-level section."""
    changed = Programme(
        points=msgspec.structs.replace(Programme().points, pending_days=7),
        tier_policy=msgspec.structs.replace(Programme().tier_policy, window_months=6),
        join=msgspec.structs.replace(Programme().join, min_age=18),
        stored_value=msgspec.structs.replace(Programme().stored_value, bonus_counts_as_spend=True),
        refunds=msgspec.structs.replace(Programme().refunds, anywhere=True),
        rules=[EarningRule(code="r", kind=RuleKind.SIGNUP, points=10)],
        tiers=[A],
        promotions=[Promotion(code="p", name="满减", kind=PromotionKind.SPEND_SAVE, steps=[SpendStep(100, 10)])],
    )
    sections = {c.section for c in diff(Programme(), changed)}
    assert sections == {"points", "tier_policy", "join", "stored_value", "refunds", "rules", "tiers", "promotions"}
    assert set(Programme.__struct_fields__) == {
        "points",
        "tiers",
        "tier_policy",
        "rules",
        "join",
        "stored_value",
        "refunds",
        "promotions",
    }
