"""Segments on real PostgreSQL: every condition kind selects the member it should and not another,
AND/OR/NOT nesting, erased members never match, two merchants never see each other's members, bad
rules are refused naming the field, and a frozen snapshot holds exactly the previewed audience."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.marketing import queries as q
from lianka.tenants.marketing import services as svc
from lianka.tenants.marketing.errors import (
    BadSegmentRules,
    SegmentInUse,
    SegmentNameTaken,
    SegmentNotFound,
    UnknownReference,
)

from . import kit
from .kit import NOW

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


@dataclass
class Shop:
    tenant: uuid.UUID
    b1: uuid.UUID
    b2: uuid.UUID
    template: uuid.UUID
    names: dict[uuid.UUID, str]


@pytest.fixture
async def shop(db: Database, tenant_factory: Any, member_factory: Any) -> Shop:
    """Members a (gold regular), b (new, silver), c (at risk), e (dormant) and d (gold, erased)."""
    t = await tenant_factory()
    b1, b2 = await kit.branch(db, t, "B1"), await kit.branch(db, t, "B2")
    template = await kit.coupon_template(db, t, "WELCOME")
    a, b, c, d, e = [await member_factory(t) for _ in range(5)]
    await kit.profile(db, t, a, joined=NOW - 400 * DAY, branch=b1, tier_code="gold", tags=["vip"],
                      birthday=date(1990, 3, 5), last_purchase_at=NOW - 10 * DAY,
                      consent={"sms": {"granted": True}})  # fmt: skip
    await kit.profile(db, t, b, joined=NOW - 5 * DAY, branch=b2, tier_code="silver", tags=["new"],
                      birthday=date(1985, 7, 1), consent={"sms": {"granted": False}, "email": {"granted": True}})  # fmt: skip
    await kit.profile(db, t, c, joined=NOW - 200 * DAY, branch=b1, last_purchase_at=NOW - 120 * DAY)
    await kit.profile(db, t, d, joined=NOW - 400 * DAY, branch=b1, tier_code="gold", erased_at=NOW - DAY)
    await kit.profile(db, t, e, joined=NOW - 300 * DAY, branch=None)
    await kit.sale(db, t, a, b2, NOW - 10 * DAY, 50_000)
    await kit.sale(db, t, c, b1, NOW - 120 * DAY, 1_000)
    await kit.sale(db, t, c, b1, NOW - 150 * DAY, 1_000)
    await kit.sale(db, t, e, b1, NOW - 20 * DAY, 9_000, status="refunded")
    await kit.points(db, t, a, 500, expiring=True)
    await kit.points(db, t, c, 50)
    await kit.stored_value(db, t, b, 10_000)
    await kit.give_coupon(db, t, template, b)
    await svc.rfm_scores(db, t, NOW)
    return Shop(t, b1, b2, template, {a: "a", b: "b", c: "c", d: "d", e: "e"})


def rules(*conditions: dict[str, Any], op: str = "and", negate: bool = False) -> dict[str, Any]:
    return {"version": 1, "root": group(*conditions, op=op, negate=negate)}


def group(*conditions: dict[str, Any], op: str = "and", negate: bool = False) -> dict[str, Any]:
    return {"kind": "group", "op": op, "conditions": list(conditions), "negate": negate}


async def selected(db: Database, shop: Shop, doc: dict[str, Any]) -> set[str]:
    """Who the rules select, by letter; the count agrees with the sample."""
    p = await svc.preview(db, shop.tenant, doc, now=NOW)
    names = {shop.names[r.member_id] for r in p.sample}
    assert p.count == len(names)
    return names


def cases(shop: Shop) -> list[tuple[dict[str, Any], set[str]]]:
    today = date(2026, 11, 23)
    return [
        ({"kind": "tier", "tiers": ["gold"]}, {"a"}),
        ({"kind": "tier", "tiers": ["silver", "bronze"]}, {"b"}),
        ({"kind": "tags", "tags": ["vip"]}, {"a"}),
        ({"kind": "tags", "tags": ["vip", "new"]}, {"a", "b"}),
        ({"kind": "tags", "tags": ["vip", "new"], "match": "all"}, set()),
        ({"kind": "stage", "stages": ["active"]}, {"a"}),
        ({"kind": "stage", "stages": ["new"]}, {"b"}),
        ({"kind": "stage", "stages": ["at_risk"]}, {"c"}),
        ({"kind": "stage", "stages": ["dormant"]}, {"e"}),
        ({"kind": "rfm", "score": "recency", "min": 2}, {"a"}),
        ({"kind": "rfm", "score": "frequency", "min": 2}, {"c"}),
        ({"kind": "rfm", "score": "monetary", "max": 1}, {"c"}),
        ({"kind": "birthday_month", "months": [3, 4]}, {"a"}),
        ({"kind": "joined", "on_or_after": str(today - 30 * DAY)}, {"b"}),
        ({"kind": "joined", "before": str(today - 350 * DAY)}, {"a"}),
        ({"kind": "last_purchase", "on_or_after": str(today - 30 * DAY)}, {"a"}),
        ({"kind": "last_purchase", "before": str(today - 30 * DAY)}, {"c"}),
        ({"kind": "spend", "days": 30, "min": 10_000}, {"a"}),
        ({"kind": "spend", "days": 365, "max": 1_000}, {"b", "e"}),
        ({"kind": "visits", "days": 365, "min": 2}, {"c"}),
        ({"kind": "visits", "days": 365, "max": 0}, {"b", "e"}),
        ({"kind": "branch", "branches": [str(shop.b1)]}, {"a", "c"}),
        ({"kind": "branch", "branches": [str(shop.b2)], "how": "visited"}, {"a"}),
        ({"kind": "branch", "branches": [str(shop.b1)], "how": "visited"}, {"c", "e"}),
        ({"kind": "branch", "branches": [str(shop.b1)], "how": "visited", "days": 100}, {"e"}),
        ({"kind": "points", "min": 100}, {"a"}),
        ({"kind": "points", "max": 100}, {"b", "c", "e"}),
        ({"kind": "stored_value", "min": 1}, {"b"}),
        ({"kind": "points_expiring", "days": 30}, {"a"}),
        ({"kind": "points_expiring", "days": 10}, set()),
        ({"kind": "points_expiring", "days": 30, "min": 600}, set()),
        ({"kind": "points_expiring", "this_month": True}, set()),  # a's expire in December
        ({"kind": "coupon", "templates": [str(shop.template)]}, {"b"}),
        ({"kind": "consent", "channel": "sms"}, {"a"}),
        ({"kind": "consent", "channel": "sms", "granted": False}, {"b", "c", "e"}),
        ({"kind": "consent", "channel": "email"}, {"b"}),
    ]


async def test_points_expiring_this_month_counts_to_the_merchants_month_end(db: Database, shop: Shop) -> None:
    doc = rules({"kind": "points_expiring", "this_month": True})
    lots = await _expiries(db, shop)
    assert lots and all(at.month == 12 for at in lots)  # a's points expire in December
    assert await selected(db, shop, doc) == set()  # NOW is 23 November
    december = await svc.preview(db, shop.tenant, doc, now=NOW + 9 * DAY)
    assert {shop.names[r.member_id] for r in december.sample} == {"a"} and december.count == 1
    both = rules({"kind": "points_expiring", "this_month": True, "days": 30})
    for bad in (both, rules({"kind": "points_expiring"})):
        with pytest.raises(BadSegmentRules) as e:
            await svc.preview(db, shop.tenant, bad, now=NOW)
        assert e.value.extra["field"] == "$.root.conditions[0].days"


async def _expiries(db: Database, shop: Shop) -> list[Any]:
    async with db.uow(shop.tenant) as uow:
        rows = await uow.session.scalars(
            text("SELECT (expires_at AT TIME ZONE 'Asia/Shanghai') FROM ledger_lots WHERE expires_at IS NOT NULL")
        )
        return list(rows)


async def test_every_condition_kind_selects_its_members(db: Database, shop: Shop) -> None:
    kinds = set()
    for condition, expected in cases(shop):
        kinds.add(condition["kind"])
        assert await selected(db, shop, rules(condition)) == expected, condition
    from lianka.tenants.marketing.domain import KINDS

    assert kinds == set(KINDS)
    assert await selected(db, shop, rules()) == {"a", "b", "c", "e"}  # everyone but the erased member


async def test_and_or_not_nesting(db: Database, shop: Shop) -> None:
    gold = {"kind": "tier", "tiers": ["gold"]}
    email = {"kind": "consent", "channel": "email"}
    sv = {"kind": "stored_value", "min": 1}
    b1 = {"kind": "branch", "branches": [str(shop.b1)]}
    assert await selected(db, shop, rules(gold, group(email, sv), op="or")) == {"a", "b"}
    assert await selected(db, shop, rules(gold, group(email, sv))) == set()
    assert await selected(db, shop, rules(b1, group(gold, op="or", negate=True))) == {"c"}
    # NOT over a member without a tier (NULL) still selects them
    assert await selected(db, shop, rules(gold, negate=True)) == {"b", "c", "e"}
    deep = rules(group(group(group(gold, b1), op="or"), op="or"))
    assert await selected(db, shop, deep) == {"a"}


async def test_two_merchants_see_only_their_members(
    db: Database, shop: Shop, tenant_factory: Any, member_factory: Any
) -> None:
    other = await tenant_factory()
    x = await member_factory(other)
    await kit.profile(db, other, x, joined=NOW - 400 * DAY, branch=None, tier_code="gold")
    assert await selected(db, shop, rules({"kind": "tier", "tiers": ["gold"]})) == {"a"}
    p = await svc.preview(db, other, rules({"kind": "tier", "tiers": ["gold"]}), now=NOW)
    assert (p.count, [r.member_id for r in p.sample]) == (1, [x])
    # another merchant's branch or coupon template is unknown here
    with pytest.raises(UnknownReference) as e:
        await svc.preview(db, other, rules({"kind": "branch", "branches": [str(shop.b1)]}))
    assert e.value.extra["field"] == "branches"
    with pytest.raises(UnknownReference):
        await svc.preview(db, other, rules({"kind": "coupon", "templates": [str(shop.template)]}))
    saved = await svc.create_segment(db, shop.tenant, "Gold", rules({"kind": "tier", "tiers": ["gold"]}))
    with pytest.raises(SegmentNotFound):
        await svc.get_segment(db, other, saved.id)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"version": 2, "root": group()}, "$.version"),
        ({"version": 1, "root": group({"kind": "tier", "tiers": []})}, "$.root.conditions[0].tiers"),
        ({"version": 1, "root": group({"kind": "rfm", "score": "recency", "min": "4"})}, "$.root.conditions[0].min"),
        ({"version": 1, "root": group({"kind": "rfm", "score": "recency", "min": 6})}, "$.root.conditions[0].min"),
        ({"version": 1, "root": group({"kind": "spend", "days": 30, "min": 5, "max": 3})}, "$.root.conditions[0].min"),
        ({"version": 1, "root": group({"kind": "spend", "days": 30})}, "$.root.conditions[0]"),
        ({"version": 1, "root": group({"kind": "nope"})}, "$.root.conditions[0].kind"),
        ({"version": 1, "root": group({"kind": "tier", "tiers": ["a"], "x": 1})}, "$.root.conditions[0]"),
        ({"version": 1, "root": group(group())}, "$.root.conditions[0].conditions"),
        ({"version": 1, "root": group({"kind": "consent", "channel": "fax"})}, "$.root.conditions[0].channel"),
        ({"version": 1, "root": group({"kind": "joined"})}, "$.root.conditions[0]"),
        (
            {"version": 1, "root": group(group(group(group(group({"kind": "tier", "tiers": ["a"]})))))},
            "$.root.conditions[0].conditions[0].conditions[0].conditions[0]",
        ),
    ],
)
async def test_bad_rules_are_refused_naming_the_field(db: Database, tenant_factory: Any, doc: Any, field: str) -> None:
    t = await tenant_factory()
    with pytest.raises(BadSegmentRules) as e:
        await svc.create_segment(db, t, "Bad", doc)
    assert e.value.extra["field"] == field
    assert await svc.list_segments(db, t) == []


async def test_saved_segments_and_the_frozen_audience(db: Database, shop: Shop, owner_engine: Any) -> None:
    doc = rules({"kind": "branch", "branches": [str(shop.b1)]}, {"kind": "stage", "stages": ["dormant"]}, op="or")
    s = await svc.create_segment(db, shop.tenant, "B1 or dormant", doc)
    assert s.last_count == 3
    with pytest.raises(SegmentNameTaken):
        await svc.create_segment(db, shop.tenant, "B1 or dormant", doc)
    preview = await svc.preview(db, shop.tenant, s.rules)
    async with db.uow(shop.tenant) as uow:
        snap_id = await svc.freeze_audience(uow, s.id, seed=7)
        await uow.commit()
    async with db.uow(shop.tenant) as uow:
        snap = await q.snapshot(uow, snap_id)
        assert snap is not None
        assert (snap.members, snap.holdout) == (preview.count, 0)
        ids = await q.snapshot_member_ids(uow, snap_id)
        assert {shop.names[m] for m in ids} == {"a", "c", "e"}
    # a holdout split is a function of the seed: the same seed splits the same way
    splits = []
    for _ in range(2):
        async with db.uow(shop.tenant) as uow:
            sid = await svc.freeze_audience(uow, s.id, exclude_holdout_pct=50, seed=12345)
            await uow.commit()
        async with db.uow(shop.tenant) as uow:
            splits.append(set(await q.snapshot_member_ids(uow, sid, holdout=True)))
            assert len(await q.snapshot_member_ids(uow, sid)) == 3
    assert splits[0] == splits[1]
    async with db.uow(shop.tenant) as uow:
        sid = await svc.freeze_audience(uow, s.id, exclude_holdout_pct=100, seed=1)
        assert len(await q.snapshot_member_ids(uow, sid, holdout=True)) == 3
    async with owner_engine.connect() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM audience_snapshot_members WHERE tenant_id = :t"),
                                 {"t": shop.tenant})  # fmt: skip
    assert rows == 9  # three committed snapshots of three; the uncommitted one left nothing
    with pytest.raises(SegmentInUse):  # a frozen audience keeps its segment
        await svc.delete_segment(db, shop.tenant, s.id)
    assert (await svc.get_segment(db, shop.tenant, s.id)).name == "B1 or dormant"
