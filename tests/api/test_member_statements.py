"""The monthly value statement (issue 14): made by the ``member-statements-monthly`` job after the month
ends, for every member whose points or stored value moved in it — points earned, spent and expired
with their yuan value, stored value topped up, what expires next month and what the member can claim
now; none without activity; a rerun changes nothing; texted only with the member's SMS consent; read
by the member through the portal's JSON routes (the pages call the same use cases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.alliance.ledger import services as ledger
from lianka.platform import periodic
from lianka.platform.errors import ValidationFailed
from lianka.platform.scheduler import REGISTRY
from lianka.tenants.domain.programme import (
    ExpiryPolicy,
    PointsConfig,
    Programme,
    StoredValueConfig,
    StoredValuePlan,
)
from lianka.tenants.services import accounts, crm, member_statements
from lianka.tenants.services.programme import programme_at
from tests.api.shop import Shop, make_shop

pytestmark = pytest.mark.integration
SH = ZoneInfo("Asia/Shanghai")
PROGRAMME = Programme(
    points=PointsConfig(
        name="茶豆", expiry=ExpiryPolicy(months=1), cash_value_per_point=Decimal("0.02")
    ),  # 1 point = ¥0.02
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="100-110", name="充100送10", pay=10_000, get=11_000)]),
)


@pytest.fixture
async def shop(client, auth_kit, db, tenant_factory) -> Shop:
    import lianka.tenants.statement_jobs  # noqa: F401  (declares the job)

    s = await make_shop(client, auth_kit, db, tenant_factory)
    await s.programme(PROGRAMME, since=datetime.now(UTC) - timedelta(days=400))
    return s


def this_month() -> str:
    now = datetime.now(SH)
    return f"{now.year:04d}-{now.month:02d}"


def after_this_month() -> datetime:
    """An hour into next month (Shanghai): this month has ended."""
    now = datetime.now(SH)
    first = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, 1, tzinfo=SH)
    return first.astimezone(UTC)


async def award(shop: Shop, member: uuid.UUID, points: int, at: datetime) -> None:
    async with shop.db.uow(shop.tenant) as uow:
        _, programme = await programme_at(uow)
        await accounts.award_points(
            uow, member, points, programme=programme, reason="purchase", key=uuid.uuid4().hex, business_time=at
        )
        await uow.commit()


async def spend(shop: Shop, member: uuid.UUID, points: int) -> None:
    async with shop.db.uow(shop.tenant) as uow:
        await accounts.spend_points(
            uow, member, points, reason="points_redeemed", key=uuid.uuid4().hex, business_time=datetime.now(UTC)
        )
        await uow.commit()


async def expire(shop: Shop) -> None:
    async with shop.db.uow(shop.tenant) as uow:
        while await ledger.expire_due(uow, datetime.now(UTC), timezone="Asia/Shanghai"):
            pass
        await uow.commit()


async def sms_consent(shop: Shop, member: uuid.UUID, granted: bool) -> None:
    async with shop.db.uow(shop.tenant) as uow:
        await crm.set_consent(uow, member, "sms", granted, source="portal", actor=f"member:{member}")
        await uow.commit()


async def texts_queued(shop: Shop) -> list[dict[str, Any]]:
    async with shop.db.uow(system=True) as uow:
        rows = await uow.session.execute(
            text("SELECT payload FROM outbox WHERE tenant_id = :t AND actor = 'send_member_statement' ORDER BY id"),
            {"t": shop.tenant},
        )
        return [dict(r.payload) for r in rows]


async def stored(shop: Shop) -> list[tuple[Any, ...]]:
    async with shop.db.uow(shop.tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT member_id, month, figures, created_at, sent_channel FROM member_statements ORDER BY member_id")
        )
        return [tuple(r) for r in rows]


async def run_job(shop: Shop, as_of: datetime) -> int:
    report = await periodic.run(REGISTRY["member-statements-monthly"], shop.db, as_of=as_of, merchant=shop.tenant)
    assert not report.failed, report.failed
    return report.total


async def test_the_figures_of_a_month_with_earn_spend_expiry_and_top_up(shop: Shop, auth_kit: Any) -> None:
    a = await shop.member()
    b = await shop.member()
    idle = await shop.member()
    assert a.subject_id and b.subject_id and idle.subject_id
    # A: 300 points earned long ago expire now, 1,000 earned now, 400 spent, a ¥100 plan bought
    await award(shop, a.subject_id, 300, datetime.now(UTC) - timedelta(days=75))
    await expire(shop)
    await award(shop, a.subject_id, 1_000, datetime.now(UTC))
    await spend(shop, a.subject_id, 400)
    till = await auth_kit.pos(shop.tenant, ["pos"], branch=shop.sh01)
    shop.client.cookies.clear()
    r = await shop.client.post(
        "/api/v1/pos/top-ups",
        json={"member_id": str(a.subject_id), "plan": "100-110"},
        headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    for body in (
        {"code": "cup", "name": "随行杯", "kind": "gift", "points_cost": 500, "pickup_branch_id": str(shop.sh01)},
        {"code": "pot", "name": "茶壶", "kind": "gift", "points_cost": 5_000, "pickup_branch_id": str(shop.sh01)},
    ):
        await shop.ok("POST", "/rewards", json=body, status=201)
    await sms_consent(shop, a.subject_id, True)
    await award(shop, b.subject_id, 10, datetime.now(UTC))  # B: activity, but texts refused
    await sms_consent(shop, b.subject_id, False)

    # not before the month has ended
    with pytest.raises(ValidationFailed):
        await member_statements.make_for_month(shop.db, shop.tenant, this_month())
    assert await run_job(shop, after_this_month()) == 2  # A and B; the idle member gets none
    rows = {r[0]: r for r in await stored(shop)}
    assert set(rows) == {a.subject_id, b.subject_id}
    f = rows[a.subject_id][2]
    assert rows[a.subject_id][1] == this_month()
    assert f["points"] == {"earned": 1_300, "spent": 400, "expired": 300, "reversed": 0, "restored": 0}
    # at ¥0.02 a point: 1,300 points ¥26.00, 400 ¥8.00, 300 ¥6.00
    assert f["points_value"] == {"earned": 2_600, "spent": 800, "expired": 600, "reversed": 0, "restored": 0}
    assert f["stored_value"]["top_up_principal"] == 10_000 and f["stored_value"]["top_up_bonus"] == 1_000
    assert f["stored_value"]["spent_principal"] == f["stored_value"]["spent_bonus"] == 0
    assert f["balances"] == {"points_available": 600, "sv_principal": 10_000, "sv_bonus": 1_000}
    # the 600 left of the 1,000 expire next month (rolling one month), worth ¥12.00
    assert (f["expiring_next_month"]["points"], f["expiring_next_month"]["value"]) == (600, 1_200)
    assert f["claimable"]["rewards"] == [{"name": "随行杯", "points_cost": 500}]  # not the 5,000-point pot
    assert f["points_name"] == "茶豆"
    assert rows[b.subject_id][2]["points"]["earned"] == 10

    # texted to A only (who consented), with the month; B refused texts
    assert rows[a.subject_id][4] == "sms" and rows[b.subject_id][4] is None
    assert await texts_queued(shop) == [{"member_id": str(a.subject_id), "month": this_month()}]

    # a rerun (or a second tick) changes nothing and sends nothing
    before = await stored(shop)
    assert await run_job(shop, after_this_month() + timedelta(hours=5)) == 0
    assert await stored(shop) == before
    assert len(await texts_queued(shop)) == 1

    # the member reads it: the list of months, one month, 404 for a month without one
    mine = await shop.ok("GET", f"/portal/merchants/{shop.slug}/statements", a)
    assert [s["month"] for s in mine] == [this_month()] and mine[0]["figures"] == f
    one = await shop.ok("GET", f"/portal/merchants/{shop.slug}/statements/{this_month()}", a)
    assert one["figures"]["points"]["earned"] == 1_300 and one["merchant_slug"] == shop.slug
    assert await shop.ok("GET", f"/portal/merchants/{shop.slug}/statements", idle) == []
    for month in ("2020-01", "2020-13", "x"):
        r = await shop.call("GET", f"/portal/merchants/{shop.slug}/statements/{month}", a)
        assert r.status_code == 404, (month, r.text)
    r = await shop.call("GET", f"/portal/merchants/{shop.slug}/statements/{this_month()}", idle)
    assert r.status_code == 404  # another member's statement is not yours

    # the pages: the list of months and the month's page, in both languages
    for lang, words in (("zh-CN", ("月度账单", "获得", "¥26.00", "随行杯")), ("en", ("Monthly statements", "Earned"))):
        shop.client.cookies.clear()
        cookie = {"Cookie": f"{a.headers['Cookie']}; lk_lang={lang}"}
        page = await shop.client.get(f"/m/{shop.slug}/statements", headers=cookie)
        assert page.status_code == 200 and f'data-month="{this_month()}"' in page.text and words[0] in page.text
        page = await shop.client.get(f"/m/{shop.slug}/statements/{this_month()}", headers=cookie)
        assert page.status_code == 200 and all(w in page.text for w in words), page.text
        assert 'data-figure="points-expired">300' in page.text and "¥12.00" in page.text  # expiring next month
    shop.client.cookies.clear()
    page = await shop.client.get(f"/m/{shop.slug}/statements", headers={"Cookie": idle.headers["Cookie"]})
    assert 'data-testid="no-statements"' in page.text
    page = await shop.client.get(f"/m/{shop.slug}/statements/2020-01", headers={"Cookie": a.headers["Cookie"]})
    assert page.status_code == 404


async def test_the_text_sent_and_the_statement_of_another_merchant(
    shop: Shop, client: Any, auth_kit: Any, db: Any, tenant_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lianka.platform.identity.sms import ConsoleSms, Sms
    from lianka.platform.jobs import HANDLERS
    from lianka.tenants import statement_jobs

    a = await shop.member()
    assert a.subject_id
    await award(shop, a.subject_id, 100, datetime.now(UTC))
    await sms_consent(shop, a.subject_id, True)
    assert await run_job(shop, after_this_month()) == 1
    # the consumer texts the link of the statement's page (console backend: the message is kept)
    sent: list[Sms] = []

    class Keep(ConsoleSms):
        async def send(self, phone: str, text: str) -> None:
            sent.append(Sms(phone, text))

    monkeypatch.setattr(statement_jobs, "sms_channel_for", lambda cfg: Keep())
    async with db.uow(shop.tenant) as uow:
        handler = HANDLERS["send_member_statement"]  # the consumer's body, as the worker runs it
        await handler(uow, member_id=str(a.subject_id), month=this_month())
    assert len(sent) == 1 and sent[0].phone == a.extra["phone"]
    assert f"/m/{shop.slug}/statements/{this_month()}" in sent[0].text and "月度权益账单" in sent[0].text
    # another merchant's statements are the same 404 as an unknown merchant's
    other = await make_shop(client, auth_kit, db, tenant_factory, name="别家")
    r = await shop.call("GET", f"/portal/merchants/{other.slug}/statements", a)
    assert r.status_code == 404
