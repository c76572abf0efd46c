"""Price promotions at the till (decision 0043): every kind, who gets them, stacking, and invariants
over random baskets (never more off than the basket, lines add up, the same answer twice)."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.tenants.domain.pricing import Intent, Line, MemberState, SaleContext, quote
from lianka.tenants.domain.programme import Programme, ProgrammeError, PromotionKind, validate
from lianka.tenants.domain.promotions import line_discounts

WEDNESDAY = date(2026, 11, 25)  # weekday 2
THURSDAY = date(2026, 11, 26)
TIERS = [
    {"code": "regular", "name": "普通", "rank": 0},
    {"code": "silver", "name": "银卡", "rank": 1, "discount_percent": 5},
    {"code": "gold", "name": "金卡", "rank": 2, "discount_percent": 10},
]
GUEST = MemberState(tier=None, points_available=0, sv_principal=0, sv_bonus=0, member=False)


def member(tier: str | None = "regular") -> MemberState:
    return MemberState(tier=tier, points_available=0, sv_principal=0, sv_bonus=0)


def programme(*promotions: dict[str, Any], **extra: Any) -> Programme:
    doc = {"tiers": TIERS, "promotions": [{"name": p["code"], **p} for p in promotions], **extra}
    return validate(msgspec.convert(doc, Programme, strict=False))


def price(
    p: Programme,
    lines: tuple[Line, ...],
    who: MemberState | None = None,
    day: date = WEDNESDAY,
    at: time | None = time(12, 0),
    branch: str = "hq",
    amount: int | None = None,
) -> Any:
    total = amount if amount is not None else sum(ln.total for ln in lines)
    return quote(p, total, lines, who or member(), Intent(), SaleContext(day, branch, at))


MANJIAN = {"code": "mj", "kind": "spend_save", "steps": [{"spend": 10000, "off": 1000}, {"spend": 20000, "off": 3000}]}


def test_spend_and_save_takes_the_highest_step_reached() -> None:
    p = programme(MANJIAN)
    assert price(p, (), amount=9999).promotion_discount == 0
    assert price(p, (), amount=10000).promotion_discount == 1000
    q = price(p, (), amount=25000)
    assert q.promotion_discount == 3000 and q.net == 22000 and q.due == 22000
    assert [(a.code, a.kind, a.discount) for a in q.applied_promotions] == [("mj", PromotionKind.SPEND_SAVE, 3000)]
    assert q.promotions == ("mj",)


def test_percent_off_a_category_rounds_down_per_line_and_touches_only_its_lines() -> None:
    p = programme({"code": "tea20", "kind": "percent_off", "percent_off": 20, "categories": ["tea"]})
    lines = (Line("oolong", 3, 1999, "tea"), Line("cup", 1, 5000, "ware"), Line("puer", 1, 333, "tea"))
    q = price(p, lines)
    # 5997 × 20% = 1199.4 → 1199; 333 × 20% = 66.6 → 66
    assert q.promotion_discount == 1199 + 66
    assert q.applied_promotions[0].lines == ((0, 1199), (2, 66))


def test_percent_off_a_sku_only_within_its_window_in_local_time() -> None:
    p = programme(
        {
            "code": "happy",
            "kind": "percent_off",
            "percent_off": 50,
            "skus": ["latte"],
            "starts": "2026-11-20",
            "ends": "2026-11-30",
            "from_time": "14:00:00",
            "until_time": "17:00:00",
            "branches": ["hq"],
        }
    )
    lines = (Line("latte", 2, 3000),)
    assert price(p, lines, at=time(14, 0)).promotion_discount == 3000
    assert price(p, lines, at=time(13, 59)).promotion_discount == 0
    assert price(p, lines, at=time(17, 0)).promotion_discount == 0  # until is exclusive
    assert price(p, lines, at=None).promotion_discount == 0  # time unknown: an hourly promotion does not apply
    assert price(p, lines, day=date(2026, 12, 1)).promotion_discount == 0
    assert price(p, lines, branch="east").promotion_discount == 0


def test_buy_two_get_one_frees_the_cheapest_units_of_a_mixed_category() -> None:
    p = programme({"code": "b2g1", "kind": "buy_n_get_one", "buy": 2, "categories": ["bread"]})
    lines = (Line("baguette", 2, 1200, "bread"), Line("bun", 4, 500, "bread"), Line("jam", 1, 2000, "jar"))
    q = price(p, lines)
    # 6 bread units → 2 free, the cheapest: two buns
    assert q.promotion_discount == 1000
    assert q.applied_promotions[0].lines == ((1, 1000),)
    assert price(p, (Line("bun", 2, 500, "bread"),)).promotion_discount == 0  # 2 units: no third


def test_member_day_for_a_tier_and_above_on_its_weekday_with_extra_points() -> None:
    p = programme(
        {
            "code": "wed",
            "kind": "member_day",
            "weekdays": [2],
            "min_tier": "silver",
            "percent_off": 10,
            "multiplier": "2",
        }
    )
    lines = (Line("x", 1, 10000),)
    gold = price(p, lines, member("gold"))
    # member day first (10% of 10000), then gold's 10% on what is left
    assert gold.promotion_discount == 1000 and gold.member_discount == 900 and gold.net == 8100
    assert gold.multiplier == Decimal(2) and gold.points_earned == 162
    assert price(p, lines, member("regular")).promotion_discount == 0
    assert price(p, lines, member("gold"), day=THURSDAY).promotion_discount == 0
    assert price(p, lines, GUEST).promotion_discount == 0


def test_a_points_only_member_day_keeps_the_points_promotion_rule_working() -> None:
    p = programme(
        {"code": "wedx", "kind": "member_day", "weekdays": [2], "multiplier": "3"},
        rules=[{"code": "double", "kind": "promotion", "multiplier": "2", "weekdays": [2]}],
    )
    q = price(p, (Line("x", 1, 10000),))
    assert q.promotion_discount == 0 and q.multiplier == Decimal(6) and q.points_earned == 600
    assert q.promotions == ("double", "wedx")


def test_members_only_and_tier_floor() -> None:
    p = programme(
        {**MANJIAN, "members_only": True},
        {"code": "gold5", "kind": "spend_save", "min_tier": "gold", "steps": [{"spend": 5000, "off": 500}]},
    )
    assert price(p, (), GUEST, amount=10000).promotion_discount == 0
    assert price(p, (), member(None), amount=10000).promotion_discount == 1000  # a member without a tier
    assert price(p, (), member("gold"), amount=10000).promotion_discount == 1500


def test_a_per_member_limit_counts_the_members_earlier_sales_and_excludes_guests() -> None:
    p = programme({**MANJIAN, "limit_per_member": 2})
    used = lambda n: MemberState(  # noqa: E731
        tier="regular", points_available=0, sv_principal=0, sv_bonus=0, promotion_uses={"mj": n}
    )
    assert price(p, (), used(0), amount=10000).promotion_discount == 1000
    assert price(p, (), used(1), amount=10000).promotion_discount == 1000
    assert price(p, (), used(2), amount=10000).promotion_discount == 0
    assert price(p, (), GUEST, amount=10000).promotion_discount == 0  # a guest's uses cannot be counted


def test_stacking_item_promotions_then_spend_and_save_on_what_is_left() -> None:
    p = programme({"code": "tea20", "kind": "percent_off", "percent_off": 20, "categories": ["tea"]}, MANJIAN)
    lines = (Line("oolong", 1, 5000, "tea"), Line("cup", 1, 6000, "ware"))
    q = price(p, lines)
    # tea 20% → 1000 off; 10000 left reaches 满100减10 (not 满200)
    assert [(a.code, a.discount) for a in q.applied_promotions] == [("tea20", 1000), ("mj", 1000)]
    # the 满减 is spread over the lines by what was left of them: 4000 and 6000
    assert q.applied_promotions[1].lines == ((0, 400), (1, 600))
    assert line_discounts(q.applied_promotions, 2) == [1400, 600]


def test_one_item_promotion_per_line_in_the_programmes_order() -> None:
    p = programme(
        {"code": "first", "kind": "percent_off", "percent_off": 10, "skus": ["a"]},
        {"code": "second", "kind": "percent_off", "percent_off": 50},
    )
    q = price(p, (Line("a", 1, 1000), Line("b", 1, 1000)))
    assert [(a.code, a.lines) for a in q.applied_promotions] == [("first", ((0, 100),)), ("second", ((1, 500),))]


def test_a_non_stackable_promotion_is_used_alone_when_it_saves_more() -> None:
    small = {"code": "tea10", "kind": "percent_off", "percent_off": 10}
    big = {"code": "half", "kind": "percent_off", "percent_off": 50, "stackable": False}
    lines = (Line("a", 1, 20000),)
    q = price(programme(small, MANJIAN, big), lines)
    assert [a.code for a in q.applied_promotions] == ["half"] and q.promotion_discount == 10000
    # when the combinable ones save more, the exclusive one is left out
    tiny = {**big, "percent_off": 5}
    q = price(programme(small, MANJIAN, tiny), lines)
    assert [a.code for a in q.applied_promotions] == ["tea10", "mj"] and q.promotion_discount == 2000 + 1000
    # a tie goes to the combinable set
    tie = {**big, "percent_off": 15}
    assert [a.code for a in price(programme(small, MANJIAN, tie), lines).applied_promotions] == ["tea10", "mj"]


def test_an_ended_or_inactive_promotion_does_not_apply() -> None:
    p = programme({**MANJIAN, "active": False}, {**MANJIAN, "code": "old", "ends": "2026-11-24"})
    assert price(p, (), amount=30000).promotion_discount == 0


def test_coupons_and_points_follow_the_promotions() -> None:
    from lianka.tenants.domain.pricing import CouponKind, CouponTerms

    p = programme(MANJIAN)
    q = quote(
        p,
        10000,
        (),
        member("gold"),
        Intent(coupons=(CouponTerms("c1", CouponKind.FIXED, amount_off=500, min_spend=8000),)),
        SaleContext(WEDNESDAY, "hq"),
    )
    # 10000 − 满减 1000 = 9000; gold 10% → 900; 8100 ≥ min spend 8000; coupon 500
    assert (q.promotion_discount, q.member_discount, q.coupons_total, q.due) == (1000, 900, 500, 7600)
    assert q.qualifying_spend == 7600


@pytest.mark.parametrize(
    ("promotion", "field", "reason"),
    [
        ({"code": "x", "kind": "percent_off", "percent_off": 0}, "promotions[0].percent_off", "range"),
        ({"code": "x", "kind": "spend_save"}, "promotions[0].steps", "required"),
        (
            {"code": "x", "kind": "spend_save", "steps": [{"spend": 100, "off": 200}]},
            "promotions[0].steps[0].off",
            "order",
        ),
        ({"code": "x", "kind": "member_day", "percent_off": 5}, "promotions[0].weekdays", "required"),
        ({"code": "x", "kind": "member_day", "weekdays": [1]}, "promotions[0].percent_off", "required"),
        ({**MANJIAN, "min_tier": "platinum"}, "promotions[0].min_tier", "unknown"),
        ({**MANJIAN, "starts": "2026-12-02", "ends": "2026-12-01"}, "promotions[0].ends", "dates"),
        ({**MANJIAN, "from_time": "18:00:00", "until_time": "09:00:00"}, "promotions[0].until_time", "dates"),
        ({**MANJIAN, "multiplier": "2"}, "promotions[0].multiplier", "range"),
        (
            {"code": "x", "kind": "member_day", "weekdays": [1], "multiplier": "NaN"},
            "promotions[0].multiplier",
            "range",
        ),
    ],
)
def test_unsound_promotions_are_refused_with_their_field(promotion: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ProgrammeError) as refused:
        programme(promotion)
    assert (refused.value.field, refused.value.reason) == (field, reason)


def test_a_rate_that_is_not_a_number_is_refused_not_compared() -> None:
    with pytest.raises(ProgrammeError) as refused:
        programme(rules=[{"code": "x", "kind": "promotion", "multiplier": "NaN"}])
    assert refused.value.field == "rules[0].multiplier"


def test_duplicate_codes_and_out_of_range_values_are_refused() -> None:
    with pytest.raises(ProgrammeError):
        programme(MANJIAN, MANJIAN)
    for bad in (
        {"code": "x", "kind": "percent_off", "percent_off": 101},
        {**MANJIAN, "steps": [{"spend": -1, "off": 1}]},
    ):
        with pytest.raises(msgspec.ValidationError):
            programme(bad)


_LINE = st.builds(
    Line,
    st.sampled_from(["a", "b", "c"]),
    st.integers(1, 5),
    st.integers(0, 20000),
    st.sampled_from(["", "tea", "ware"]),
)
_PROMO = st.one_of(
    st.builds(
        lambda pct, cats, stack: {"kind": "percent_off", "percent_off": pct, "categories": cats, "stackable": stack},
        st.integers(1, 100),
        st.sampled_from([[], ["tea"], ["ware"]]),
        st.booleans(),
    ),
    st.builds(
        lambda n, cats, stack: {"kind": "buy_n_get_one", "buy": n, "categories": cats, "stackable": stack},
        st.integers(1, 4),
        st.sampled_from([[], ["tea"]]),
        st.booleans(),
    ),
    st.builds(
        lambda spend, off, stack: {
            "kind": "spend_save",
            "steps": [{"spend": spend, "off": min(off, spend)}],
            "stackable": stack,
        },
        st.integers(1, 50000),
        st.integers(1, 50000),
        st.booleans(),
    ),
    st.builds(
        lambda pct: {"kind": "member_day", "weekdays": [2], "percent_off": pct},
        st.integers(1, 100),
    ),
)


@given(
    st.lists(_LINE, min_size=1, max_size=6), st.lists(_PROMO, max_size=5), st.sampled_from([None, "regular", "gold"])
)
def test_promotions_never_take_more_than_the_basket_and_lines_add_up(
    lines: list[Line], promos: list[dict[str, Any]], tier: str | None
) -> None:
    basket = tuple(lines)
    total = sum(ln.total for ln in basket)
    if total <= 0:
        return
    p = programme(*({**x, "code": f"p{i}"} for i, x in enumerate(promos)))
    q = price(p, basket, member(tier))
    assert 0 <= q.promotion_discount <= total
    assert q.net >= 0 and q.due >= 0
    per_line = line_discounts(q.applied_promotions, len(basket))
    assert sum(per_line) == q.promotion_discount
    assert all(0 <= off <= ln.total for off, ln in zip(per_line, basket, strict=True))
    assert all(sum(o for _, o in a.lines) == a.discount for a in q.applied_promotions)
    assert price(p, basket, member(tier)) == q  # deterministic: the quote is what the sale books
