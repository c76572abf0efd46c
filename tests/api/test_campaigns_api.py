"""Campaigns through the app: create (a bad template is a 400 naming the field), send (audited), results,
another merchant's campaign is a 404, a cashier may not write, and a restricted merchant's
campaign writes wait for payment (402) while reads work."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database

from .billing_kit import put_on_plan
from .test_audit_log import rows as audit_rows

pytestmark = pytest.mark.integration
EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}


async def test_campaign_create_send_results(client: Any, db: Database, two_tenants: Any, staff_token: Any,
                                            member_factory: Any) -> None:  # fmt: skip
    a, b = two_tenants
    owner, other = (await staff_token(a)).headers, (await staff_token(b)).headers
    m = await member_factory(a)
    async with db.uow(a) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, name) VALUES (:t, :m, '韩梅梅')"), {"t": a, "m": m}
        )
        await uow.commit()
    seg = (await client.post("/api/v1/segments", json={"name": "全部", "rules": EVERYONE}, headers=owner)).json()
    body = {"name": "会员日", "segment_id": seg["id"], "channel": "portal", "template_a": "{name} 您好 {secret}"}
    r = await client.post("/api/v1/campaigns", json=body, headers=owner)
    assert r.status_code == 400 and r.json()["field"] == "template_a", r.text
    body["template_a"] = "{name} 您好"
    r = await client.post("/api/v1/campaigns", json=body, headers=owner)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await client.get(f"/api/v1/campaigns/{cid}/preview", params={"member_id": str(m)}, headers=owner)
    assert r.json() == [{"variant": "a", "text": "韩梅梅 您好"}]
    assert (await client.get(f"/api/v1/campaigns/{cid}", headers=other)).status_code == 404
    cashier = (await staff_token(a, "cashier")).headers
    assert (await client.post(f"/api/v1/campaigns/{cid}/send", headers=cashier)).status_code == 403
    r = await client.post(f"/api/v1/campaigns/{cid}/send", headers=owner)
    assert r.status_code == 200 and r.json()["status"] == "sending" and r.json()["recipients"] == 1, r.text
    assert (await client.post(f"/api/v1/campaigns/{cid}/send", headers=owner)).status_code == 409
    # the send is in the audit log, by the owner, once (the refused ones wrote nothing)
    sent = await audit_rows(db, a, "campaign.sent")
    assert [(r.actor_kind, r.object_id, r.details["recipients"], r.details["channel"]) for r in sent] == [
        ("staff", cid, 1, "portal")
    ]
    r = await client.get(f"/api/v1/campaigns/{cid}/results", headers=owner)
    assert r.status_code == 200 and r.json()["queued"] == 1 and r.json()["attribution"]["recipients"]["members"] == 1
    await put_on_plan(db, a, "chain", "restricted")
    r = await client.post(
        "/api/v1/campaigns", json=body | {"name": "欠费后"}, headers=owner
    )  # marketing waits for payment
    assert r.status_code == 402, r.text
    assert (await client.get("/api/v1/campaigns", headers=owner)).status_code == 200
