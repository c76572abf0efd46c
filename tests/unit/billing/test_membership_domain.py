"""Paid membership's pure rules: calendar months in the merchant's zone, the exact deferred-revenue
schedule, recognition and refunds of unused whole months, perks in pricing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lianka.billing.membership import domain
from lianka.billing.membership.domain import RefundPolicy
from lianka.tenants.domain import pricing
from lianka.tenants.domain.programme import Programme, Tier

TZ = "Asia/Shanghai"


def test_a_year_of_100_yuan_splits_exactly_with_the_remainder_last() -> None:
    parts = domain.schedule(10_000, 12)
    assert parts == [833] * 11 + [837]
    assert sum(parts) == 10_000


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=36))
def test_the_schedule_always_sums_to_the_price(price: int, months: int) -> None:
    parts = domain.schedule(price, months)
    assert sum(parts) == price and len(parts) == months
    assert len(set(parts[:-1])) <= 1 and parts[-1] >= parts[0]


def test_months_are_calendar_months_on_the_merchants_clock_from_the_terms_own_start() -> None:
    # 31 January 10:00 in Shanghai: months start on the 28th of February, then back on the 31st of March
    start = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)
    assert domain.month_start(start, 1, TZ) == datetime(2026, 2, 28, 2, 0, tzinfo=UTC)
    assert domain.month_start(start, 2, TZ) == datetime(2026, 3, 31, 2, 0, tzinfo=UTC)
    assert domain.add_months(start, 12, TZ) == datetime(2027, 1, 31, 2, 0, tzinfo=UTC)
    # 23:30 UTC on 31 Dec is already 1 January in Shanghai: a monthly term ends on 1 February local
    late = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert domain.add_months(late, 1, TZ) == datetime(2026, 1, 31, 23, 30, tzinfo=UTC)


def test_recognition_books_ended_months_only_and_never_twice() -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)

    def rec(recognised: int, now: datetime) -> domain.Recognition:
        return domain.recognisable(
            price=10_000, months=12, starts_at=start, refunded=0, tz=TZ, recognised=recognised, now=now
        )

    assert rec(0, datetime(2026, 2, 9, tzinfo=UTC)).amounts == ()
    r = rec(0, datetime(2026, 4, 10, tzinfo=UTC))
    assert (r.first, r.amounts) == (0, (833, 833, 833))
    again = rec(3, datetime(2026, 4, 10, tzinfo=UTC))
    assert again.amounts == ()
    end = rec(3, datetime(2027, 6, 1, tzinfo=UTC))
    assert end.first == 3 and end.total == 10_000 - 3 * 833 and end.amounts[-1] == 837


def test_a_refund_pays_back_the_months_not_begun_and_recognises_the_rest() -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    # in month 3 (begun 10 March): 9 months not begun; months 1-2 were recognised, month 3 is now
    plan = domain.refund_plan(
        price=10_000,
        months=12,
        starts_at=start,
        recognised=2,
        now=datetime(2026, 3, 20, tzinfo=UTC),
        tz=TZ,
        policy=RefundPolicy.UNUSED_MONTHS,
    )
    assert plan.refunded_months == 9
    assert plan.refund == 8 * 833 + 837
    assert plan.recognise.first == 2 and plan.recognise.amounts == (833,)
    assert 2 * 833 + plan.recognise.total + plan.refund == 10_000
    # a renewal not begun yet is paid back whole
    ahead = domain.refund_plan(
        price=3_000,
        months=1,
        starts_at=start,
        recognised=0,
        now=start.replace(day=1),
        tz=TZ,
        policy=RefundPolicy.UNUSED_MONTHS,
    )
    assert (ahead.refunded_months, ahead.refund, ahead.recognise.amounts) == (1, 3_000, ())


def test_packs_are_due_once_per_begun_month() -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    assert list(domain.pack_months_due(start, 12, 0, start, TZ)) == [0]
    assert list(domain.pack_months_due(start, 12, 1, datetime(2026, 3, 10, tzinfo=UTC), TZ)) == [1, 2]
    assert list(domain.pack_months_due(start, 12, 3, datetime(2026, 3, 11, tzinfo=UTC), TZ)) == []


def test_the_meter_bar_is_capped() -> None:
    assert domain.Savings(discount=1_000, points_value=200, coupons=300, fee=10_000).percent_of_fee == 15
    assert domain.Savings(discount=30_000, points_value=0, coupons=0, fee=10_000).percent_of_fee == 100
    assert domain.Savings(discount=0, points_value=0, coupons=0, fee=0).percent_of_fee == 0


# --- perks in pricing ---------------------------------------------------------------------------------


def _programme() -> Programme:
    return Programme(
        tiers=[
            Tier(code="silver", name="Silver", rank=1, discount_percent=0),
            Tier(code="gold", name="Gold", rank=2, threshold=100_000, discount_percent=5, points_multiplier=Decimal(2)),
        ]
    )


def _quote(member: pricing.MemberState, amount: int = 10_000) -> pricing.Quote:
    return pricing.quote(
        _programme(), amount, (), member, pricing.Intent(), pricing.SaleContext(date(2026, 5, 1), "SH01")
    )


def test_a_paid_member_gets_the_granted_tier_the_extra_discount_and_the_multiplier() -> None:
    plain = _quote(pricing.MemberState(tier="silver", points_available=0, sv_principal=0, sv_bonus=0))
    assert (plain.member_discount, plain.membership_discount, plain.membership_points) == (0, 0, 0)
    paid = pricing.PaidPerks(product="plus", tier="gold", extra_discount_percent=10, points_multiplier=Decimal(2))
    q = _quote(pricing.MemberState(tier="silver", points_available=0, sv_principal=0, sv_bonus=0, paid=paid))
    # gold: 5% of 100.00 = 5.00; then 10% of the 95.00 left = 9.50
    assert q.tier == "gold"
    assert q.member_discount == 500 + 950 and q.membership_discount == 1_450
    assert q.due == 10_000 - 1_450
    # qualifying 85.50 × gold's 2 × the membership's 2 = 342 points (floor); silver alone earns 85
    assert (q.qualifying_spend, q.multiplier, q.points_earned) == (8_550, Decimal(4), 342)
    assert q.membership_points == 342 - 85


def test_the_higher_of_earned_and_granted_tier_applies() -> None:
    paid = pricing.PaidPerks(product="basic", tier="silver")
    q = _quote(pricing.MemberState(tier="gold", points_available=0, sv_principal=0, sv_bonus=0, paid=paid))
    assert q.tier == "gold" and q.member_discount == 500 and q.membership_discount == 0 and q.membership_points == 0


@given(
    st.integers(min_value=1, max_value=10**7),
    st.sampled_from(["silver", "gold"]),
    st.sampled_from([None, "silver", "gold"]),
    st.integers(min_value=0, max_value=90),
    st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(3)]),
)
def test_perks_never_cost_the_member_and_empty_perks_change_nothing(
    amount: int, own: str, granted: str | None, extra: int, multiplier: Decimal
) -> None:
    state = pricing.MemberState(tier=own, points_available=0, sv_principal=0, sv_bonus=0)
    plain = _quote(state, amount)
    empty = _quote(replace(state, paid=pricing.PaidPerks(product="x")), amount)
    assert (empty.member_discount, empty.points_earned, empty.due) == (
        plain.member_discount,
        plain.points_earned,
        plain.due,
    )
    assert (empty.membership_discount, empty.membership_points) == (0, 0)
    perks = pricing.PaidPerks(product="x", tier=granted, extra_discount_percent=extra, points_multiplier=multiplier)
    q = _quote(replace(state, paid=perks), amount)
    assert q.member_discount >= plain.member_discount and q.due <= plain.due
    assert q.membership_discount == q.member_discount - plain.member_discount
    assert q.membership_points >= 0 and 0 <= q.due <= amount
