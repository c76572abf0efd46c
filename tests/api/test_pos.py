"""The till, as the seed documents tell it: join after a qualifying purchase, gold earns double,
"pay ¥1000 get ¥1100", a refund after the points were spent leaves a visible debt — through the API,
on real PostgreSQL, with two merchants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.errors import IdempotencyConflict
from lianka.tenants.domain.programme import (
    JoinPolicy,
    JoinRules,
    PointsConfig,
    Programme,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
)
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"

PROGRAMME = Programme(
    points=PointsConfig(),  # 1 point per ¥1, 1 point = ¥0.01 as cash, at most 50% of a bill
    tiers=[
        Tier(code="regular", name="普通", rank=0),
        Tier(code="silver", name="银卡", rank=1, threshold=50_000),
        Tier(code="gold", name="金卡", rank=2, threshold=200_000, points_multiplier=Decimal(2)),
    ],
    join=JoinRules(policy=JoinPolicy.QUALIFYING_PURCHASE, single_purchase_min=10_000, cumulative_min=30_000),
    stored_value=StoredValueConfig(
        plans=[StoredValuePlan(code="1000-1100", name="储值1000送100", pay=100_000, get=110_000)]
    ),
)


class Till:
    def __init__(self, client: AsyncTestClient[Litestar], headers: dict[str, str], tenant: uuid.UUID) -> None:
        self.client, self.headers, self.tenant = client, headers, tenant

    async def post(self, url: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post(f"/api/v1/pos{url}", json=body, headers=headers)

    async def sale(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        r = await self.post("/sales", body, key)
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
async def till(client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit) -> Till:
    tenant, branch = await _shop(db, tenant_factory, auth_kit, "一点茶")
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    return Till(client, pos.headers, tenant)


async def _shop(db: Database, tenant_factory, auth_kit, name: str = "Test merchant") -> tuple[uuid.UUID, uuid.UUID]:
    """A merchant on :data:`PROGRAMME` with one branch: (merchant, branch)."""
    tenant = await tenant_factory(name)
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    return tenant, branch


async def test_a_100_yuan_purchase_makes_a_customer_eligible_to_join(till: Till) -> None:
    r = await till.post("/sales", {"amount": 9_999, "join_phone": "13800138001"})
    assert r.status_code == 422
    assert r.json()["type"].endswith("/not-eligible-to-join")
    quote = await till.client.post(
        "/api/v1/pos/quote", json={"amount": 10_000, "join_phone": "13800138001"}, headers=till.headers
    )
    assert quote.json()["joins"] is True
    assert quote.json()["points_earned"] == 100
    s = await till.sale({"amount": 10_000, "join_phone": "13800138001"})
    assert s["member_id"] is not None
    assert s["balances"]["points"] == 100
    assert s["quote"]["points_earned"] == 100


async def test_gold_earns_double_after_qualifying(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    first = await till.sale({"amount": 200_000, "member_id": m})
    assert first["quote"]["points_earned"] == 2_000  # still regular when the sale was priced
    assert first["tier"] == "gold"
    assert first["tier_changed"] is True
    second = await till.sale({"amount": 10_000, "member_id": m})
    assert second["quote"]["multiplier"] == "2"
    assert second["quote"]["points_earned"] == 200  # gold earns double
    assert second["balances"]["points"] == 2_200


async def test_stored_value_pay_1000_get_1100_and_spend_550(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    r = await till.post("/top-ups", {"member_id": m, "plan": "1000-1100"})
    assert r.status_code == 201, r.text
    assert r.json()["balances"]["sv_principal"] == 100_000
    assert r.json()["balances"]["sv_bonus"] == 10_000
    s = await till.sale({"amount": 55_000, "member_id": m, "stored_value": 55_000})
    q = s["quote"]
    assert (q["sv_principal"], q["sv_bonus"], q["due"]) == (50_000, 5_000, 0)
    assert q["points_earned"] == 500  # the bonus part is not spend
    assert (s["balances"]["sv_principal"], s["balances"]["sv_bonus"]) == (50_000, 5_000)
    r = await till.post("/sales", {"amount": 60_000, "member_id": m, "stored_value": 60_000})
    assert r.status_code == 422
    assert r.json()["type"].endswith("/insufficient-stored-value")


async def test_refund_after_spending_the_points_leaves_a_visible_debt(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    earned = await till.sale({"amount": 20_000, "member_id": m})  # ¥200 → 200 points
    spent = await till.sale({"amount": 400, "member_id": m, "points": 200})  # 200 points pay ¥2 of ¥4
    assert spent["quote"]["points_cash"] == 200
    assert spent["balances"]["points"] == 2  # the ¥2 paid in cash earned 2 points
    r = await till.post(f"/sales/{earned['sale_id']}/refunds", {})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["points_clawed_back"] == 200
    assert body["sale_status"] == "refunded"
    assert body["points_debt"] == 198  # shown to staff, never hidden
    assert body["balances"]["points"] == -198
    r = await till.post("/sales", {"amount": 1_000, "member_id": m, "points": 1})
    assert r.status_code == 422  # nothing to spend while in debt
    later = await till.sale({"amount": 30_000, "member_id": m})  # 300 points: the debt is paid first
    assert later["balances"]["points"] == 102
    assert later["balances"]["points_available"] == 102


async def test_refund_gives_back_redeemed_points_and_stored_value(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    await till.post("/top-ups", {"member_id": m, "plan": "1000-1100"})
    await till.sale({"amount": 10_000, "member_id": m})  # 100 points
    s = await till.sale({"amount": 22_000, "member_id": m, "points": 100, "stored_value": 21_900})
    assert (s["quote"]["sv_principal"], s["quote"]["sv_bonus"]) == (19_909, 1_991)
    r = await till.post(f"/sales/{s['sale_id']}/refunds", {})
    body = r.json()
    assert (body["points_restored"], body["sv_principal_restored"], body["sv_bonus_restored"]) == (100, 19_909, 1_991)
    assert (body["balances"]["sv_principal"], body["balances"]["sv_bonus"]) == (100_000, 10_000)


async def test_partial_refunds_add_up_to_the_whole(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    s = await till.sale({"amount": 33_333, "member_id": m, "lines": [{"sku": "tea", "qty": 3, "unit_price": 11_111}]})
    earned = s["quote"]["points_earned"]
    parts = []
    for key, body in (("r1", {"amount": 10_000}), ("r2", {"lines": [{"line_no": 0, "qty": 1}]}), ("r3", {})):
        r = await till.post(f"/sales/{s['sale_id']}/refunds", body, key=f"{s['sale_id']}-{key}")
        assert r.status_code == 201, r.text
        parts.append(r.json())
    assert sum(p["amount"] for p in parts) == 33_333
    assert sum(p["points_clawed_back"] for p in parts) == earned
    assert parts[-1]["sale_status"] == "refunded"
    again = await till.post(f"/sales/{s['sale_id']}/refunds", {"amount": 1})
    assert again.status_code == 422
    assert again.json()["type"].endswith("/refund-exceeds-sale")


async def test_every_write_is_exactly_once(till: Till, member_factory, db: Database) -> None:
    m = str(await member_factory(till.tenant))
    body = {"amount": 10_000, "member_id": m}
    first = await till.post("/sales", body, key="till-1-0001")
    retry = await till.post("/sales", body, key="till-1-0001")
    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    changed = await till.post("/sales", {**body, "amount": 10_001}, key="till-1-0001")
    assert changed.status_code == 409
    assert changed.headers["content-type"].startswith(PROBLEM)
    missing = await till.client.post("/api/v1/pos/sales", json=body, headers=till.headers)
    assert missing.status_code == 400
    async with db.uow(till.tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM sales")) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"amount": -5},
        {"amount": "100"},
        {"amount": 10**13},
        {"amount": 1.5},
        {"amount": 100, "points": -1},
        {"amount": 100, "member_id": "not-a-uuid"},
        {"amount": 100, "surprise": 1},
    ],
)
async def test_bad_input_is_a_problem_and_changes_nothing(till: Till, body: dict[str, Any], db: Database) -> None:
    r = await till.post("/sales", body)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(PROBLEM)
    async with db.uow(till.tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM sales")) == 0


async def test_unknown_and_foreign_members_coupons_and_sales(till: Till, member_factory, tenant_factory) -> None:
    other = await tenant_factory()
    stranger = str(await member_factory(other))
    for body in ({"amount": 100, "member_id": stranger}, {"amount": 100, "member_id": str(uuid.uuid4())}):
        r = await till.post("/sales", body)
        assert r.status_code == 404
        assert r.json()["type"].endswith("/not-found")
    m = str(await member_factory(till.tenant))
    r = await till.post("/sales", {"amount": 1_000, "member_id": m, "coupons": ["AAAA-BBBB-CCCC"]})
    assert r.status_code == 422
    assert r.json()["type"].endswith("/coupon-not-applicable")
    r = await till.post("/sales", {"amount": 1_000, "member_id": m, "points": 10})
    assert r.status_code == 422
    r = await till.post(f"/sales/{uuid.uuid4()}/refunds", {})
    assert r.status_code == 404


async def test_offline_batch_skips_seen_keys_and_reports_errors(till: Till, member_factory) -> None:
    m = str(await member_factory(till.tenant))
    items = [
        {"key": "off-1", "sale": {"amount": 1_000, "member_id": m, "business_time": "2026-11-20T10:00:00+08:00"}},
        {"key": "off-2", "sale": {"amount": 2_000, "member_id": m, "business_time": "2026-11-20T11:00:00+08:00"}},
        {"key": "off-3", "sale": {"amount": 3_000, "member_id": m, "points": 99_999}},
    ]
    r = await till.client.post("/api/v1/pos/offline-batch", json={"items": items}, headers=till.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["duplicates"], r.json()["errors"]) == (2, 0, 1)
    assert r.json()["results"][2]["problem"]["status"] == 422
    r = await till.client.post("/api/v1/pos/offline-batch", json={"items": items[:2]}, headers=till.headers)
    assert (r.json()["created"], r.json()["duplicates"]) == (0, 2)


async def test_pos_routes_are_guarded(security_matrix, two_tenants, auth_kit, db: Database) -> None:
    a, b = two_tenants
    await auth_kit.branch(a)

    async def snapshot() -> int:
        async with db.uow(a) as uow:
            return int(await uow.session.scalar(text("SELECT count(*) FROM sales")) or 0)

    for url in ("/api/v1/pos/sales", "/api/v1/pos/top-ups", "/api/v1/pos/offline-batch"):
        await security_matrix.check(
            "POST",
            url,
            tenant=a,
            other=b,
            json={"amount": 100},
            denied_roles=["analyst"],
            denied_scopes=[["reports:read"], ["members:read"]],
            allowed_scopes=["pos"],
            other_tenant_status=None,
            snapshot=snapshot,
        )
    await security_matrix.check(
        "GET",
        f"/api/v1/pos/sales/{uuid.uuid4()}",
        tenant=a,
        other=b,
        denied_scopes=[["members:read"]],
        allowed_scopes=["pos"],
        other_tenant_status=None,
    )


async def test_a_stored_value_refund_with_no_principal_is_nothing_to_refund(
    till: Till, member_factory, db: Database
) -> None:
    m = str(await member_factory(till.tenant))
    for body in ({"member_id": m}, {"member_id": m, "amount": 100}):
        r = await till.post("/stored-value/refunds", body, key="sv-refund-1")
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert (r.json()["type"].split("/")[-1], r.json()["available"]) == ("nothing-to-refund", 0)
    async with db.uow(till.tenant) as uow:  # nothing booked, the key not spent
        assert (
            await uow.session.scalar(text("SELECT count(*) FROM ledger_entries WHERE kind = 'stored_value_refunded'"))
            == 0
        )
    assert (await till.post("/top-ups", {"member_id": m, "plan": "1000-1100"})).status_code == 201
    r = await till.post("/stored-value/refunds", {"member_id": m, "amount": 100_001})
    assert (r.status_code, r.json()["type"].split("/")[-1]) == (422, "insufficient-stored-value")
    r = await till.post("/stored-value/refunds", {"member_id": m}, key="sv-refund-1")
    assert r.status_code == 201, r.text
    assert (r.json()["principal_refunded"], r.json()["bonus_forfeited"]) == (100_000, 10_000)
    r = await till.post("/stored-value/refunds", {"member_id": m})  # all of it is gone now
    assert (r.status_code, r.json()["type"].split("/")[-1]) == (422, "nothing-to-refund")


class _Statements:
    """Every statement the app's asyncpg connections send (simple and extended protocol)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import asyncpg
        from asyncpg.prepared_stmt import PreparedStatement

        self.sent: list[str] = []
        for name in ("execute", "fetch", "fetchrow", "fetchval"):
            monkeypatch.setattr(asyncpg.Connection, name, self._wrap(getattr(asyncpg.Connection, name)))
        for name in ("fetch", "fetchrow", "fetchval"):
            monkeypatch.setattr(PreparedStatement, name, self._wrap_prepared(getattr(PreparedStatement, name)))

    def _wrap(self, original: Any) -> Any:
        async def call(conn: Any, query: str, *args: Any, **kw: Any) -> Any:
            self.sent.append(query)
            return await original(conn, query, *args, **kw)

        return call

    def _wrap_prepared(self, original: Any) -> Any:
        async def call(statement: Any, *args: Any, **kw: Any) -> Any:
            self.sent.append(statement.get_query())
            return await original(statement, *args, **kw)

        return call


async def test_a_member_sale_is_five_round_trips_with_its_key_claimed_and_balances_read_in_the_context_read(
    db: Database, tenant_factory, member_factory, auth_kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 0053: BEGIN with the tenant, the context read (which claims the Idempotency-Key and
    reads the member's balances and tier standing), the ledger entries, the sale row (which stores the
    response), COMMIT — and a replay of the same key reads the stored response without pricing or
    booking anything."""
    from lianka.tenants.pos import sales, schemas

    tenant, branch = await _shop(db, tenant_factory, auth_kit)
    member = await member_factory(tenant)
    basket = schemas.Basket(
        amount=20_000, member_id=member, lines=[schemas.LineIn(sku="tea", qty=1, unit_price=20_000)]
    )
    await sales.sale(db, tenant, basket, uuid.uuid4().hex, branch)  # creates the profile; the process learns the window
    watch = _Statements(monkeypatch)
    key = uuid.uuid4().hex
    out, replayed = await sales.sale(db, tenant, basket, key, branch)
    assert not replayed
    assert len(watch.sent) == 5, watch.sent
    assert watch.sent[0].startswith("BEGIN") and watch.sent[-1].startswith("COMMIT")
    assert watch.sent[1].startswith("WITH claim AS (INSERT INTO idempotency_keys")
    assert "LEFT JOIN LATERAL" in watch.sent[1] and "ledger_balances" in watch.sent[1]
    assert not [q for q in watch.sent if q.startswith("INSERT INTO idempotency_keys")]  # no trip of its own
    watch.sent.clear()
    again, replayed = await sales.sale(db, tenant, basket, key, branch)
    assert replayed and again == out
    assert not [q for q in watch.sent if "ledger_post" in q or "INSERT INTO sales" in q]
    with pytest.raises(IdempotencyConflict, match=r"different pos\.sale request"):
        await sales.sale(db, tenant, msgspec.structs.replace(basket, amount=20_001), key, branch)
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM sales")) == 2


async def test_concurrent_twins_of_a_sale_book_it_once(till: Till, member_factory, db: Database) -> None:
    """Eight tills send the same sale with the same key at once: the key's claim (inside the context
    read) makes the twins wait for the first and replay its response; one sale, one earn."""
    import asyncio

    m = str(await member_factory(till.tenant))
    body = {"amount": 10_000, "member_id": m}
    answers = await asyncio.gather(*(till.post("/sales", body, key="twin-0001") for _ in range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["sale_id"] for r in answers}) == 1
    async with db.uow(till.tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM sales")) == 1
        earned = await uow.session.scalar(
            text(
                "SELECT count(*) FROM ledger_entries WHERE kind = 'points_earned' AND idempotency_key LIKE 'twin-0001%'"
            )
        )
        assert earned == 1


async def test_a_sale_by_card_replays_after_the_card_stops_finding_the_member(
    till: Till, member_factory, db: Database, owner_engine
) -> None:
    """A retry must get the first answer whatever changed since: a card sale claims its key before the
    card lookup, so a card reissued in between does not turn the replay into a 404."""
    from lianka.platform.identity.members import new_card_number

    m = await member_factory(till.tenant)
    async with db.uow(till.tenant) as uow:
        card = await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": m})
    first = await till.post("/sales", {"amount": 10_000, "card": card}, key="card-0001")
    assert first.status_code == 201, first.text
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE members SET card_number = :c WHERE id = :m"), {"c": new_card_number(), "m": m})
    other = await till.post("/sales", {"amount": 10_000, "card": card}, key="card-0002")
    assert other.status_code == 404  # the card no longer finds anyone …
    retry = await till.post("/sales", {"amount": 10_000, "card": card}, key="card-0001")
    assert retry.status_code == 200 and retry.json() == first.json()  # … but the retry is answered


async def test_balances_read_before_a_concurrent_sale_committed_are_read_again(
    db: Database, tenant_factory, member_factory, auth_kit
) -> None:
    """The context read takes its balances from the statement's snapshot, before the profile lock it
    may wait for. While it waits, another transaction of the member (holding the lock, as a sale does)
    credits 1,000 points and updates the profile, then commits: the waiting sale must price with the
    1,100 points, not the 100 it saw — it reads them again (decision 0053)."""
    import asyncio

    from lianka.tenants.pos import sales, schemas
    from lianka.tenants.services import accounts

    tenant, branch = await _shop(db, tenant_factory, auth_kit)
    member = await member_factory(tenant)
    await sales.sale(
        db, tenant, schemas.Basket(amount=10_000, member_id=member), uuid.uuid4().hex, branch
    )  # 100 points
    redeem = schemas.Basket(amount=20_000, member_id=member, points=500)
    async with db.uow(tenant) as blocker:
        conn = await blocker.driver()
        await conn.execute("SELECT 1 FROM member_profiles WHERE member_id = $1 FOR UPDATE", member)
        await accounts.award_points(
            blocker,
            member,
            1_000,
            programme=PROGRAMME,
            reason="adjustment",
            key=f"blocker-{uuid.uuid4().hex}",
            business_time=datetime.now(UTC),
        )
        await conn.execute("UPDATE member_profiles SET updated_at = now() WHERE member_id = $1", member)
        waiting: asyncio.Future[tuple[schemas.SaleOut, bool]] = asyncio.ensure_future(
            sales.sale(db, tenant, redeem, uuid.uuid4().hex, branch)
        )
        for _ in range(1_000):  # until the sale waits for the profile's lock (20 s at most, for a busy machine)
            if waiting.done():
                break
            async with db.uow(system=True) as probe:  # a new transaction: pg_stat_activity is read once in each
                n = await probe.session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH claim%'"
                    )
                )
            if n:
                break
            await asyncio.sleep(0.02)
        assert n == 1, f"the sale never waited for the profile lock: {waiting}"
        await blocker.commit()
    out, _ = await waiting
    assert out.quote.points_redeemed == 500
    assert out.balances is not None and out.balances.points == 100 + 1_000 - 500 + out.quote.points_earned
