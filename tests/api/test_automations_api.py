"""Automations through the app: create (a bad trigger is a 400 naming the field), list with stats,
switch off, another merchant's automation is a 404, a cashier may not write, and a restricted
merchant's writes wait for payment (402) while reads work."""

from __future__ import annotations

from typing import Any

import pytest

from lianka.platform.db import Database

from .billing_kit import put_on_plan

pytestmark = pytest.mark.integration


async def test_automation_create_list_toggle(client: Any, db: Database, two_tenants: Any, staff_token: Any) -> None:
    a, b = two_tenants
    owner, other = (await staff_token(a)).headers, (await staff_token(b)).headers
    body = {"name": "召回", "trigger": "nope", "days": 60, "channel": "sms", "template": "{name}，好久不见"}
    r = await client.post("/api/v1/automations", json=body, headers=owner)
    assert r.status_code == 400 and r.json()["field"] == "trigger", r.text
    body["trigger"] = "win_back"
    r = await client.post("/api/v1/automations", json=body, headers=owner)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["channel"] == "sms" and made["stats"]["fired"] == 0 and made["enabled"] is True
    assert (await client.post("/api/v1/automations", json=body, headers=owner)).status_code == 409  # the name
    aid = made["id"]
    assert (await client.get(f"/api/v1/automations/{aid}", headers=other)).status_code == 404
    cashier = (await staff_token(a, "cashier")).headers
    assert (await client.put(f"/api/v1/automations/{aid}/enabled", json={"enabled": False},
                             headers=cashier)).status_code == 403  # fmt: skip
    r = await client.put(f"/api/v1/automations/{aid}/enabled", json={"enabled": False}, headers=owner)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await client.put(f"/api/v1/automations/{aid}", json=body | {"days": 90}, headers=owner)
    assert r.status_code == 200 and r.json()["days"] == 90 and r.json()["enabled"] is True
    assert [x["name"] for x in (await client.get("/api/v1/automations", headers=owner)).json()] == ["召回"]
    assert (await client.get("/api/v1/automations", headers=other)).json() == []
    await put_on_plan(db, a, "chain", "restricted")
    r = await client.post("/api/v1/automations", json=body | {"name": "欠费后"}, headers=owner)
    assert r.status_code == 402, r.text
    assert (await client.get("/api/v1/automations", headers=owner)).status_code == 200
