"""The lucky draw's pure rules: each prize is won with its basis-point chance, the rest is no prize,
a broken definition names its field, and the free draw's day is the merchant's local day."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from lianka.tenants.marketing import draw_domain as dd

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def fixed(roll: int) -> dd.RandBelow:
    return lambda n: roll


def test_choose_walks_the_chances_in_order() -> None:
    chances = [1000, 2500]
    assert [dd.choose(chances, fixed(r)) for r in (0, 999, 1000, 3499, 3500, 9999)] == [0, 0, 1, 1, None, None]
    assert dd.choose([10_000], fixed(dd.SCALE - 1)) == 0  # certain
    asked: list[int] = []

    def spy(n: int) -> int:
        asked.append(n)
        return 0

    dd.choose([1], spy)
    assert asked == [dd.SCALE]


def test_chances_are_respected_statistically() -> None:
    rng = random.Random(20261202)
    n = 200_000
    seen = Counter(dd.choose([100, 2000, 5000], rng.randrange) for _ in range(n))
    for outcome, chance in ((0, 100), (1, 2000), (2, 5000), (None, 2900)):
        share = seen[outcome] / n
        assert abs(share - chance / dd.SCALE) < 0.005, (outcome, share)


def test_the_default_source_is_secrets() -> None:
    assert {dd.choose([5000]) for _ in range(200)} == {0, None}


def spec(**kw: object) -> dd.DrawSpec:
    prizes = kw.pop("prizes", [dd.PrizeSpec(name="杯子", kind="gift", chance_bp=500, stock=3, gift="随行杯")])
    base: dict[str, object] = {
        "name": "双十二",
        "starts_at": NOW,
        "ends_at": NOW + timedelta(days=7),
        "cost_points": 0,
        "budget": None,
        "prizes": prizes,
    }
    return dd.DrawSpec(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": " "}, "name"),
        ({"ends_at": NOW}, "ends_at"),
        ({"starts_at": NOW.replace(tzinfo=None)}, "starts_at"),
        ({"cost_points": -1}, "cost_points"),
        ({"budget": -5}, "budget"),
        ({"prizes": []}, "prizes"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="car", chance_bp=1, stock=1)]}, "prizes[0].kind"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="points", chance_bp=0, stock=1, points=5)]}, "prizes[0].chance_bp"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="points", chance_bp=10, stock=1)]}, "prizes[0].points"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="coupon", chance_bp=10, stock=1)]}, "prizes[0].coupon_template"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="gift", chance_bp=10, stock=-1, gift="g")]}, "prizes[0].stock"),
        ({"prizes": [dd.PrizeSpec(name="x", kind="gift", chance_bp=10, stock=1)]}, "prizes[0].gift"),
        (
            {
                "prizes": [
                    dd.PrizeSpec(name=f"p{i}", kind="points", chance_bp=4000, stock=1, points=1) for i in range(3)
                ]
            },
            "prizes",
        ),
    ],
)
def test_a_broken_draw_names_its_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(dd.DrawError) as e:
        dd.check(spec(**kw))
    assert e.value.field == field


def test_a_sound_draw_passes() -> None:
    dd.check(spec())
    dd.check(spec(prizes=[dd.PrizeSpec(name="全中", kind="points", chance_bp=10_000, stock=1, points=10)]))


def test_the_free_draw_day_is_the_merchants_local_day() -> None:
    late = datetime(2026, 12, 2, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert dd.local_day(late, "Asia/Shanghai").isoformat() == "2026-12-02"
    assert dd.local_day(late + timedelta(minutes=1), "Asia/Shanghai").isoformat() == "2026-12-03"
    assert dd.local_day(late + timedelta(minutes=1), "UTC").isoformat() == "2026-12-02"
    assert dd.is_open(NOW, NOW + timedelta(hours=1), True, NOW)
    assert not dd.is_open(NOW, NOW + timedelta(hours=1), True, NOW + timedelta(hours=1))
    assert not dd.is_open(NOW, NOW + timedelta(hours=1), False, NOW)
