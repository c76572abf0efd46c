"""Pricing a sale, in the words of the seed documents, plus invariants over random baskets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lianka.platform.errors import RuleViolation, ValidationFailed
from lianka.tenants.domain.pricing import (
    CouponKind,
    CouponNotApplicable,
    CouponTerms,
    InsufficientPoints,
    InsufficientStoredValue,
    Intent,
    Line,
    MemberState,
    PaymentExceedsBill,
    SaleContext,
    quote,
    split_stored_value,
)
from lianka.tenants.domain.programme import (
    Consumption,
    EarningRule,
    PointsConfig,
    Programme,
    RuleKind,
    Tier,
    validate,
)

TUESDAY = date(2026, 11, 24)
WEDNESDAY = date(2026, 11, 25)

PROGRAMME = validate(
    Programme(
        points=PointsConfig(
            earn_per_major=Decimal("1"), cash_value_per_point=Decimal("0.01"), cash_max_share_percent=50
        ),
        tiers=[
            Tier(code="regular", name="普通", rank=0),
            Tier(code="silver", name="银卡", rank=1, threshold=100_000, discount_percent=5),
            Tier(
                code="gold",
                name="金卡",
                rank=2,
                threshold=500_000,
                points_multiplier=Decimal(2),
                discount_percent=10,
                birthday_multiplier=Decimal(2),
            ),
        ],
        rules=[
            EarningRule(
                code="tue-x2-sh01", kind=RuleKind.PROMOTION, multiplier=Decimal(2), weekdays=[1], branches=["SH01"]
            )
        ],
    )
)
NOBODY = MemberState(tier="regular", points_available=0, sv_principal=0, sv_bonus=0)


def ctx(day: date = WEDNESDAY, branch: str = "SH02") -> SaleContext:
    return SaleContext(business_date=day, branch_code=branch)


def test_regular_member_earns_one_point_per_yuan() -> None:
    q = quote(PROGRAMME, 12_345, (), NOBODY, Intent(), ctx())
    assert q.points_earned == 123  # ¥123.45 → 123 points, rounded down
    assert q.due == 12_345


def test_gold_earns_double_and_gets_ten_percent_off() -> None:
    gold = MemberState(tier="gold", points_available=0, sv_principal=0, sv_bonus=0)
    q = quote(PROGRAMME, 10_000, (), gold, Intent(), ctx())
    assert q.member_discount == 1_000
    assert q.due == 9_000
    assert q.base_points == 90
    assert q.points_earned == 180


def test_double_points_on_tuesdays_at_one_branch_only() -> None:
    assert quote(PROGRAMME, 10_000, (), NOBODY, Intent(), ctx(TUESDAY, "SH01")).points_earned == 200
    assert quote(PROGRAMME, 10_000, (), NOBODY, Intent(), ctx(TUESDAY, "SH02")).points_earned == 100
    assert quote(PROGRAMME, 10_000, (), NOBODY, Intent(), ctx(WEDNESDAY, "SH01")).points_earned == 100


def test_gold_on_birthday_on_promo_day_multiplies_once() -> None:
    gold = MemberState(tier="gold", points_available=0, sv_principal=0, sv_bonus=0, birthday_today=True)
    q = quote(PROGRAMME, 10_001, (), gold, Intent(), ctx(TUESDAY, "SH01"))
    assert q.multiplier == 8
    # ¥90.01 (after 10%: 10001 - 1000) × 8 = 720.08 → 720, rounded once (not 90 × 8 = 720 by luck)
    assert q.points_earned == 720


def test_coupons_fixed_percent_gift_and_min_spend() -> None:
    lines = (Line("latte", 2, 3_000), Line("cookie", 1, 1_500))
    fixed = CouponTerms("F10", CouponKind.FIXED, amount_off=1_000, min_spend=5_000)
    pct = CouponTerms("P20", CouponKind.PERCENT, percent_off=20, cap=500)
    gift = CouponTerms("G", CouponKind.GIFT, gift_sku="cookie")
    q = quote(PROGRAMME, 7_500, lines, NOBODY, Intent(coupons=(fixed, pct, gift)), ctx())
    assert q.coupon_discounts == (("F10", 1_000), ("P20", 500), ("G", 1_500))
    assert q.due == 4_500
    assert q.points_earned == 45
    with pytest.raises(CouponNotApplicable):
        quote(PROGRAMME, 4_999, (), NOBODY, Intent(coupons=(fixed,)), ctx())


def test_non_stackable_coupon_stands_alone() -> None:
    solo = CouponTerms("SOLO", CouponKind.FIXED, amount_off=100, stackable=False)
    other = CouponTerms("O", CouponKind.FIXED, amount_off=100)
    assert quote(PROGRAMME, 1_000, (), NOBODY, Intent(coupons=(solo,)), ctx()).due == 900
    with pytest.raises(CouponNotApplicable):
        quote(PROGRAMME, 1_000, (), NOBODY, Intent(coupons=(solo, other)), ctx())


def test_points_as_cash_within_the_share_limit() -> None:
    rich = MemberState(tier="regular", points_available=100_000, sv_principal=0, sv_bonus=0)
    q = quote(PROGRAMME, 10_000, (), rich, Intent(points=3_000), ctx())
    assert q.points_cash == 3_000  # 3000 points × ¥0.01
    assert q.due == 7_000
    assert q.max_points_usable == 5_000  # 50% of ¥100
    assert q.points_earned == 70  # points-as-cash is not spend
    with pytest.raises(RuleViolation):
        quote(PROGRAMME, 10_000, (), rich, Intent(points=5_001), ctx())
    with pytest.raises(InsufficientPoints):
        quote(PROGRAMME, 10_000, (), NOBODY, Intent(points=1), ctx())


def test_stored_value_bonus_is_not_spend() -> None:
    # the chain example: balance 1000 principal + 100 bonus, spend 550 → 500 + 50
    member = MemberState(tier="regular", points_available=0, sv_principal=100_000, sv_bonus=10_000)
    q = quote(PROGRAMME, 55_000, (), member, Intent(stored_value=55_000), ctx())
    assert (q.stored_value.principal, q.stored_value.bonus) == (50_000, 5_000)
    assert q.due == 0
    assert q.qualifying_spend == 50_000
    assert q.points_earned == 500
    with pytest.raises(PaymentExceedsBill):
        quote(PROGRAMME, 1_000, (), member, Intent(stored_value=1_001), ctx())


def test_worked_example_splits() -> None:
    s1 = split_stored_value(55_000, 100_000, 10_000, Consumption.PROPORTIONAL)
    assert (s1.principal, s1.bonus) == (50_000, 5_000)
    s2 = split_stored_value(11_000, 50_000, 5_000, Consumption.PROPORTIONAL)
    assert (s2.principal, s2.bonus) == (10_000, 1_000)
    s3 = split_stored_value(55_000, 100_000, 10_000, Consumption.PRINCIPAL_FIRST)
    assert (s3.principal, s3.bonus) == (55_000, 0)
    with pytest.raises(InsufficientStoredValue):
        split_stored_value(110_001, 100_000, 10_000, Consumption.PROPORTIONAL)


@pytest.mark.parametrize(("amount", "lines"), [(0, ()), (-5, ()), (100, (Line("a", 1, 99),))])
def test_bad_baskets(amount: int, lines: tuple[Line, ...]) -> None:
    with pytest.raises(ValidationFailed):
        quote(PROGRAMME, amount, lines, NOBODY, Intent(), ctx())


@given(
    amount=st.integers(0, 10**9),
    principal=st.integers(0, 10**9),
    bonus=st.integers(0, 10**9),
    order=st.sampled_from(list(Consumption)),
)
def test_split_always_adds_up_and_stays_within_balances(
    amount: int, principal: int, bonus: int, order: Consumption
) -> None:
    assume(amount <= principal + bonus)
    s = split_stored_value(amount, principal, bonus, order)
    assert s.principal + s.bonus == amount
    assert 0 <= s.principal <= principal
    assert 0 <= s.bonus <= bonus


@given(
    gross=st.integers(1, 10**8),
    tier=st.sampled_from(["regular", "silver", "gold", None]),
    points=st.integers(0, 10**6),
    sv=st.integers(0, 10**8),
    principal=st.integers(0, 10**8),
    bonus=st.integers(0, 10**7),
    coupon_off=st.integers(0, 10**6),
    birthday=st.booleans(),
)
def test_quote_conserves_money(
    gross: int, tier: str | None, points: int, sv: int, principal: int, bonus: int, coupon_off: int, birthday: bool
) -> None:
    member = MemberState(
        tier=tier, points_available=10**6, sv_principal=principal, sv_bonus=bonus, birthday_today=birthday
    )
    coupons = (CouponTerms("C", CouponKind.FIXED, amount_off=coupon_off),) if coupon_off else ()
    probe = quote(PROGRAMME, gross, (), member, Intent(coupons=coupons), ctx())
    use_points = min(points, probe.max_points_usable)
    after_points = probe.due - use_points  # 1 point = 1 fen in this programme
    use_sv = min(sv, after_points, principal + bonus)
    q = quote(PROGRAMME, gross, (), member, Intent(points=use_points, stored_value=use_sv, coupons=coupons), ctx())
    assert q.gross == q.member_discount + q.coupons_total + q.points_cash + q.stored_value.total + q.due
    assert min(q.member_discount, q.coupons_total, q.points_cash, q.due, q.qualifying_spend) >= 0
    assert q.points_earned >= 0
    assert q.points_cash <= (q.net * 50) // 100
