"""Row types of the area's SQL against the real tables: a :class:`SaleRow` lands field for field in
``sales`` and ``sale_lines``; a member's sale statement moves the profile and stores the response
with the balances after it; ``rule_counters`` reads back through its model; ``idempotency_keys``
through its row type."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime

import msgspec
import pytest
from sqlalchemy import select

from lianka.platform import idempotency
from lianka.platform.db import Database
from lianka.tenants import queries
from lianka.tenants.models import Branch, MemberProfile, RuleCounter
from lianka.tenants.pos import queries as pos_queries
from lianka.tenants.pos.models import Sale, SaleLine
from lianka.tenants.services import accounts

pytestmark = pytest.mark.integration
AT = datetime(2026, 5, 4, 6, 30, tzinfo=UTC)


async def _branch(db: Database, tenant: uuid.UUID) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        b = Branch(tenant_id=tenant, code="R1", name="row types")
        uow.session.add(b)
        await uow.commit()
        return b.id


def _row(tenant: uuid.UUID, branch: uuid.UUID, member: uuid.UUID | None) -> pos_queries.SaleRow:
    """Every field a different value, so a field bound to the wrong column shows (and gross is what
    the parts add up to, as the table checks)."""
    return pos_queries.SaleRow(
        tenant_id=tenant,
        id=uuid.uuid4(),
        member_id=member,
        branch_id=branch,
        business_time=AT,
        currency="CNY",
        gross=10_007,
        promotion_discount=7,
        member_discount=11,
        coupon_total=13,
        points_redeemed=17,
        points_cash=19,
        sv_principal=23,
        sv_bonus=29,
        due=9_905,
        qualifying_spend=37,
        points_earned=41,
        payment_method="alipay",
        programme_version=0,
        offline=True,
        entries='{"earn": "e-1"}',
        coupons='["C-1"]',
        promotions='["tue"]',
        applied_promotions='[{"code": "mj", "discount": 7, "lines": [[0, 7]]}]',
        alliance_voucher='{"code": "XAB", "discount": 13}',
        skus=["tea", "cake"],
        categories=["drinks", ""],
        qtys=[3, 1],
        unit_prices=[3_000, 1_007],
    )


async def test_a_sale_row_lands_field_for_field(db: Database, tenant_factory) -> None:
    tenant = await tenant_factory()
    row = _row(tenant, await _branch(db, tenant), None)
    async with db.uow(tenant) as uow:
        await pos_queries.insert_guest_sale(uow, row)
        await uow.commit()
    async with db.uow(tenant) as uow:
        s = await uow.session.get(Sale, (tenant, row.id))
        lines = (
            await uow.session.scalars(select(SaleLine).where(SaleLine.sale_id == row.id).order_by(SaleLine.line_no))
        ).all()
    assert s is not None
    json_fields = {"entries", "coupons", "promotions", "applied_promotions", "alliance_voucher"}
    line_fields = {"skus", "categories", "qtys", "unit_prices"}
    for f in fields(row):
        if f.name in json_fields:
            assert getattr(s, f.name) == msgspec.json.decode(getattr(row, f.name)), f.name
        elif f.name not in line_fields:
            assert getattr(s, f.name) == getattr(row, f.name), f.name
    assert (s.refunded, s.status) == (0, "completed")
    assert [(x.line_no, x.sku, x.category, x.qty, x.unit_price, x.refunded_qty) for x in lines] == [
        (0, "tea", "drinks", 3, 3_000, 0),
        (1, "cake", "", 1, 1_007, 0),
    ]


async def test_a_member_sale_moves_the_profile_and_stores_the_response_with_balances(
    db: Database, tenant_factory, member_factory
) -> None:
    tenant = await tenant_factory()
    branch = await _branch(db, tenant)
    member = await member_factory(tenant)
    row = _row(tenant, branch, member)
    async with db.uow(tenant) as uow:
        assert await idempotency.claim(uow, "pos.sale", "row-types-1", "fp") is None
        await queries.ensure_profile(uow, member)
        mine = (await accounts.member_accounts(uow, member, "CNY")).ids
        b = await pos_queries.insert_member_sale(
            uow, row, accounts=mine, set_tier=True, tier="gold", body_json='{"sale_id": "x"}', key="row-types-1"
        )
        await uow.commit()
    assert b == queries.Balances(0, 0, 0, 0, 0)
    async with db.uow(tenant) as uow:
        p = await uow.session.get(MemberProfile, (tenant, member))
        replay = await idempotency.claim(uow, "pos.sale", "row-types-1", "fp")
    assert p is not None
    assert (p.cumulative_spend, p.purchase_count, p.tier_code) == (37, 1, "gold")
    assert p.first_purchase_at == p.last_purchase_at == p.tier_since == AT
    assert replay is not None
    assert (replay.status, replay.body["sale_id"]) == (201, "x")
    assert replay.body["balances"] == {
        "points": 0,
        "points_available": 0,
        "points_pending": 0,
        "sv_principal": 0,
        "sv_bonus": 0,
    }


async def test_rule_counters_read_back_through_their_model(db: Database, tenant_factory) -> None:
    tenant = await tenant_factory()
    async with db.uow(tenant) as uow:
        assert await queries.lock_rule_counter(uow, "capped") == 0
        await queries.count_rule_award(uow, "capped", 40)
        await queries.count_rule_award(uow, "capped", 2)
        assert await queries.lock_rule_counter(uow, "capped") == 42
        await uow.commit()
    async with db.uow(tenant) as uow:
        counter = await uow.session.get(RuleCounter, (tenant, "capped"))
    assert counter is not None
    assert (counter.points, counter.awards) == (42, 2)


def test_an_idempotency_record_decodes_its_body_from_text_or_json() -> None:
    text_row = {"request_hash": "h", "status": 201, "body": '{"a": 1}'}
    json_row = {"request_hash": "h", "status": None, "body": {"a": 1}}
    assert idempotency.KeyRecord.of(text_row) == idempotency.KeyRecord("h", 201, {"a": 1})
    assert idempotency.KeyRecord.of(json_row) == idempotency.KeyRecord("h", None, {"a": 1})
