"""Branch limits cover a sale after it is made: a manager, cashier or till bound to one branch can
neither read nor refund another branch's sale (404, exactly as for another merchant's sale) — unless
the programme says ``refunds.anywhere``, and then the refund is booked at the selling branch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity.testing import Creds
from lianka.tenants.domain.programme import Programme, RefundPolicy, StoredValueConfig, StoredValuePlan
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration

PROGRAMME = Programme(
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="500", name="储值500", pay=50_000, get=55_000)])
)


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    shop = await make_shop(client, auth_kit, db, tenant_factory)
    await shop.programme(PROGRAMME, since=datetime.now(UTC) - timedelta(hours=1))
    return shop


async def _sale_at_sh02(shop: Shop) -> str:
    """A member's sale at SH02, paid partly with stored value (so it has clearing to undo)."""
    member = str((await shop.kit.member(shop.tenant)).subject_id)
    await shop.ok(
        "POST",
        "/pos/top-ups",
        json={"member_id": member, "plan": "500", "branch_id": str(shop.sh02)},
        status=201,
        idempotent=True,
    )
    sale = await shop.ok(
        "POST",
        "/pos/sales",
        json={"amount": 20_000, "member_id": member, "stored_value": 11_000, "branch_id": str(shop.sh02)},
        status=201,
        idempotent=True,
    )
    return str(sale["sale_id"])


async def _bound_to_sh01(shop: Shop) -> dict[str, Creds]:
    return {
        "manager": await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh01]),
        "cashier": await shop.kit.staff(shop.tenant, "cashier", branches=[shop.sh01]),
        "till": await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh01),
    }


def _problem(r: Any) -> tuple[int, str, str]:
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    return r.status_code, body["type"], body["detail"]


async def _refunds(shop: Shop) -> list[tuple[uuid.UUID, int]]:
    async with shop.db.uow(shop.tenant) as uow:
        rows = await uow.session.execute(text("SELECT branch_id, amount FROM refunds ORDER BY created_at"))
        return [(r.branch_id, r.amount) for r in rows]


async def test_branch_bound_callers_cannot_see_or_refund_another_branchs_sale(
    shop: Shop, client, auth_kit, db, tenant_factory
) -> None:
    sale = await _sale_at_sh02(shop)
    stranger = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    unknown = {
        "read": _problem(await shop.call("GET", f"/pos/sales/{uuid.uuid4()}")),
        "refund": _problem(await shop.call("POST", f"/pos/sales/{uuid.uuid4()}/refunds", json={}, idempotent=True)),
    }
    assert unknown["read"][0] == unknown["refund"][0] == 404
    callers = {**await _bound_to_sh01(shop), "another merchant": stranger.owner}
    for name, creds in callers.items():
        read = await shop.call("GET", f"/pos/sales/{sale}", creds)
        assert _problem(read) == unknown["read"], name
        for body in ({}, {"amount": 100}, {"lines": [{"line_no": 0, "qty": 1}]}):
            refund = await shop.call("POST", f"/pos/sales/{sale}/refunds", creds, body, idempotent=True)
            assert _problem(refund) == unknown["refund"], (name, body)
    assert await _refunds(shop) == []
    assert (await shop.ok("GET", f"/pos/sales/{sale}"))["refunded"] == 0


async def test_unbound_callers_and_the_selling_branch_refund_it_at_the_selling_branch(shop: Shop) -> None:
    sale = await _sale_at_sh02(shop)
    allowed = {
        "owner": shop.owner,
        "admin": await shop.kit.staff(shop.tenant, "admin"),
        "cashier of every till": await shop.kit.staff(shop.tenant, "cashier"),
        "manager of both": await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh01, shop.sh02]),
        "unbound client": await shop.kit.pos(shop.tenant, ["pos"]),
        "SH02's till": await shop.kit.pos(shop.tenant, ["pos"], branch=shop.sh02),
    }
    for name, creds in allowed.items():
        assert (await shop.ok("GET", f"/pos/sales/{sale}", creds))["id"] == sale, name
        r = await shop.call("POST", f"/pos/sales/{sale}/refunds", creds, {"amount": 100}, idempotent=True)
        assert r.status_code == 201, (name, r.text)
    assert await _refunds(shop) == [(shop.sh02, 100)] * len(allowed)


async def test_refunds_anywhere_lets_any_branch_refund_booked_at_the_selling_branch(shop: Shop) -> None:
    sale = await _sale_at_sh02(shop)
    await shop.programme(Programme(stored_value=PROGRAMME.stored_value, refunds=RefundPolicy(anywhere=True)))
    for name, creds in (await _bound_to_sh01(shop)).items():
        assert (await shop.ok("GET", f"/pos/sales/{sale}", creds))["id"] == sale, name
        r = await shop.call("POST", f"/pos/sales/{sale}/refunds", creds, {"amount": 1_000}, idempotent=True)
        assert r.status_code == 201, (name, r.text)
        assert r.json()["sv_principal_restored"] > 0
    assert await _refunds(shop) == [(shop.sh02, 1_000)] * 3
    async with shop.db.uow(shop.tenant) as uow:
        clearing = list(
            await uow.session.execute(
                text(
                    "SELECT e.refs->>'branch' AS branch, (SELECT array_agg(DISTINCT a.owner_id) FROM ledger_postings p "
                    "JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id "
                    "WHERE p.entry_id = e.id AND a.owner_kind = 'branch') AS spokes "
                    "FROM refunds r JOIN ledger_entries e ON e.id = (r.entries->>'clearing')::uuid"
                )
            )
        )
    assert len(clearing) == 3
    assert all((c.branch, c.spokes) == (str(shop.sh02), [shop.sh02]) for c in clearing), clearing


async def test_an_offline_batch_sells_only_at_the_callers_branches(shop: Shop) -> None:
    member = str((await shop.kit.member(shop.tenant)).subject_id)

    def batch(*branches: uuid.UUID | None) -> dict[str, Any]:
        return {
            "items": [
                {
                    "key": uuid.uuid4().hex,
                    "sale": {"amount": 100, "member_id": member, **({"branch_id": str(b)} if b else {})},
                }
                for b in branches
            ]
        }

    bound = await _bound_to_sh01(shop)
    for name, creds in bound.items():  # one item at another branch refuses the whole batch, as a sale would
        r = await shop.call("POST", "/pos/offline-batch", creds, batch(shop.sh01, shop.sh02))
        assert (r.status_code, r.json()["type"].split("/")[-1]) == (403, "forbidden"), (name, r.text)
    assert await shop.scalar("SELECT count(*) FROM sales") == 0
    out = await shop.ok("POST", "/pos/offline-batch", bound["till"], batch(None, shop.sh01))
    assert out["created"] == 2
    both = await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh01, shop.sh02])
    out = await shop.ok("POST", "/pos/offline-batch", both, batch(shop.sh01, shop.sh02))
    assert out["created"] == 2
    assert await shop.scalar("SELECT count(*) FROM sales WHERE branch_id = :b", b=shop.sh02) == 1
