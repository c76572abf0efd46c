"""Marketing through the app: segment CRUD and the live preview (problems name the field), who may
use them, the messaging providers (secret sealed at rest, shown masked), delivery receipts posted
by the SMS stand-ins to the served app, and the unsubscribe link."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import uvicorn
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.settings import Settings
from lianka.tenants.marketing import providers, receipts, unsubscribe
from lianka.tenants.marketing.channels import Message
from lianka.tenants.marketing.channels.standins import AliyunStandin, TencentStandin
from lianka.web.app import create_app

pytestmark = pytest.mark.integration

GOLD = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": [{"kind": "tier", "tiers": ["gold"]}]}}


async def _gold(db: Database, tenant: uuid.UUID, member: uuid.UUID) -> None:
    async with db.uow(tenant) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, tier_code, name) VALUES (:t, :m, 'gold', '金')"),
            {"t": tenant, "m": member},
        )
        await uow.commit()


async def test_segments_crud_and_preview(client, db, two_tenants, staff_token, member_factory) -> None:
    a, b = two_tenants
    owner = (await staff_token(a)).headers
    m = await member_factory(a)
    await _gold(db, a, m)
    await _gold(db, b, await member_factory(b))

    r = await client.post("/api/v1/segments/preview", json={"rules": GOLD}, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 1 and r.json()["sample"][0]["member_id"] == str(m)

    r = await client.post("/api/v1/segments", json={"name": "Gold", "rules": GOLD}, headers=owner)
    assert r.status_code == 201, r.text
    seg = r.json()
    assert seg["last_count"] == 1
    r = await client.get("/api/v1/segments", headers=owner)
    assert [s["name"] for s in r.json()] == ["Gold"]

    bad = {"version": 1, "root": {"kind": "group", "conditions": [{"kind": "rfm", "score": "recency", "min": "4"}]}}
    r = await client.post("/api/v1/segments", json={"name": "Bad", "rules": bad}, headers=owner)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("bad-segment-rules") and r.json()["field"] == "$.root.conditions[0].min"
    unknown = {
        "version": 1,
        "root": {"kind": "group", "conditions": [{"kind": "branch", "branches": [str(uuid.uuid4())]}]},
    }
    r = await client.post("/api/v1/segments/preview", json={"rules": unknown}, headers=owner)
    assert r.status_code == 422 and r.json()["field"] == "branches"

    r = await client.patch(f"/api/v1/segments/{seg['id']}", json={"name": "Golden"}, headers=owner)
    assert r.status_code == 200 and r.json()["name"] == "Golden"
    r = await client.post("/api/v1/segments", json={"name": "Golden", "rules": GOLD}, headers=owner)
    assert r.status_code == 409
    other = (await staff_token(b)).headers
    assert (await client.get(f"/api/v1/segments/{seg['id']}", headers=other)).status_code == 404
    assert (await client.delete(f"/api/v1/segments/{seg['id']}", headers=other)).status_code == 404
    assert (await client.delete(f"/api/v1/segments/{seg['id']}", headers=owner)).status_code == 204
    assert (await client.get("/api/v1/segments", headers=owner)).json() == []


async def test_who_may_use_segments(security_matrix, two_tenants, staff_token) -> None:
    a, b = two_tenants
    r = await security_matrix.client.post(
        "/api/v1/segments", json={"name": "Gold", "rules": GOLD}, headers=(await staff_token(a)).headers
    )
    seg = r.json()["id"]
    await security_matrix.check(
        "GET", f"/api/v1/segments/{seg}", tenant=a, other=b, denied_roles=["cashier"], denied_scopes=[["pos"]],
        missing_url=f"/api/v1/segments/{uuid.uuid4()}",
    )  # fmt: skip
    await security_matrix.check(
        "POST", "/api/v1/segments", tenant=a, other=b, json={"name": "X", "rules": GOLD},
        denied_roles=["cashier", "manager", "analyst"], denied_scopes=[["pos"]], other_tenant_status=None,
    )  # fmt: skip
    await security_matrix.check(
        "PUT", "/api/v1/messaging/providers/sms", tenant=a, other=b, json={"provider": "console"},
        denied_roles=["cashier", "manager", "analyst"], denied_scopes=[["pos"]], other_tenant_status=None,
    )  # fmt: skip


async def test_providers_seal_the_secret_and_show_it_masked(client, db, two_tenants, staff_token, owner_engine) -> None:
    a, b = two_tenants
    owner = (await staff_token(a)).headers
    secret = "AliyunSecret-" + uuid.uuid4().hex
    settings = {"access_key_id": "LTAI5t", "sign_name": "链卡", "template_code": "SMS_1"}
    body = {"provider": "aliyun", "settings": settings, "secret": secret}
    r = await client.put("/api/v1/messaging/providers/sms", json=body, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["secret_hint"] == "••••" + secret[-4:] and secret not in r.text
    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT settings::text, secret_sealed FROM messaging_providers"
                                          " WHERE tenant_id = :t"), {"t": a})).one()  # fmt: skip
    assert secret not in stored[0] and secret not in stored[1] and stored[1].startswith("v1.")
    # a change without the secret keeps it; the channel built from the row opens it
    body2 = {"provider": "aliyun", "settings": {**settings, "sign_name": "新签名"}}
    assert (await client.put("/api/v1/messaging/providers/sms", json=body2, headers=owner)).status_code == 200
    async with db.uow(a) as uow:
        ch = await providers.channel_for(uow, "sms")
    assert ch.provider == "aliyun" and ch.settings.access_key_secret == secret  # type: ignore[attr-defined]
    assert ch.settings.sign_name == "新签名"  # type: ignore[attr-defined]
    # bad settings are problems naming the field
    r = await client.put("/api/v1/messaging/providers/sms", json={"provider": "tencent", "settings": {}}, headers=owner)
    assert r.status_code == 400 and r.json()["field"] == "secret_id"
    r = await client.put("/api/v1/messaging/providers/fax", json={"provider": "console"}, headers=owner)
    assert r.status_code == 400 and r.json()["field"] == "channel"
    r = await client.get("/api/v1/messaging/providers", headers=(await staff_token(b)).headers)
    assert [p["provider"] for p in r.json()] == ["console", "console", "console"]  # sms, email, wechat


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await task


@pytest.mark.parametrize("which", ["aliyun", "tencent"])
async def test_receipts_posted_back_are_stored_once(db, served: str, owner_engine, which: str) -> None:
    standin: AliyunStandin | TencentStandin
    standin = AliyunStandin(keys={"LTAI": "s3cret"}) if which == "aliyun" else TencentStandin(keys={"AKID": "s3cret"})
    async with standin.serve() as url:
        if which == "aliyun":
            ch = providers.build_channel("aliyun", {"access_key_id": "LTAI", "sign_name": "S", "template_code": "T",
                                                    "endpoint": url}, "s3cret")  # fmt: skip
        else:
            ch = providers.build_channel("tencent", {"secret_id": "AKID", "sdk_app_id": "1400", "sign_name": "S",
                                                     "template_id": "1", "endpoint": url}, "s3cret")  # fmt: skip
        phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
        sent = [await ch.send(Message("sms", phone, f"hello {i}", key=f"k{i}")) for i in range(2)]
        standin.receipt_url = receipts.receipt_url(served, which)
        r = await standin.deliver_receipts(failed=frozenset({sent[1].message_id}))
        assert r.status_code == 200, r.text
        assert r.json() == receipts.ack(which)
        assert (await standin.deliver_receipts()).status_code == 200  # a retried push adds nothing
        standin.receipt_url = receipts.receipt_url(served, which).replace("token=", "token=x")
        r = await standin.deliver_receipts()
        assert r.status_code == 401
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT message_id, status FROM delivery_receipts WHERE provider = :p AND "
                                        "message_id = ANY(:ids) ORDER BY message_id"),
                                   {"p": which, "ids": [s.message_id for s in sent]})).all()  # fmt: skip
    assert {(r.message_id, r.status) for r in rows} == {
        (sent[0].message_id, "delivered"),
        (sent[1].message_id, "failed"),
    }


async def test_unsubscribe_link_withdraws_consent_at_once(client, db, tenant_factory, member_factory, settings) -> None:
    from lianka.tenants.services import crm

    t = await tenant_factory()
    m = await member_factory(t)
    await _gold(db, t, m)
    await crm.change_consent(db, t, m, "email", True, source="test", actor="test")
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": t})
    link = unsubscribe.link("http://x", slug, t, m, "email").removeprefix("http://x")
    forged = unsubscribe.link("http://x", slug, t, m, "sms").removeprefix("http://x").replace("c=sms", "c=email")
    other = unsubscribe.link("http://x", slug, t, uuid.uuid4(), "email").removeprefix("http://x")
    assert (await client.get(forged.replace("c=email", "c=sms").replace("s=", "s=0"))).status_code == 404
    assert (await client.get(other.replace(str(m), str(uuid.uuid4())))).status_code == 404
    r = await client.get(link)
    assert r.status_code == 200 and 'data-testid="unsubscribed"' in r.text
    profile = await crm.member_profile(db, t, m)
    assert profile["consent"]["email"]["granted"] is False
    assert profile["consent"]["email"]["history"][-1]["source"] == "unsubscribe"
    # RFC 8058 one-click POST, as a mail client sends it
    r = await client.post(link, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200, r.text


async def test_sms_td_reply_posted_by_the_stand_in_withdraws_consent(
    client, db, served: str, tenant_factory, member_factory, staff_token
) -> None:
    """Aliyun's SmsUp push, over HTTP to the served app: TD withdraws the SMS consent; the same
    push again (same ``sequence_id``) changes nothing; a wrong token is 401."""
    from lianka.tenants.marketing import campaigns, replies
    from lianka.tenants.marketing import services as segments
    from lianka.tenants.services import crm

    t = await tenant_factory("回复店")
    m = await member_factory(t)
    await _gold(db, t, m)
    await crm.change_consent(db, t, m, "sms", True, source="test", actor="test")
    standin = AliyunStandin(keys={"LTAIreply": "s3cret"})
    async with standin.serve() as url:
        await providers.save_provider(db, t, "sms", "aliyun", {"access_key_id": "LTAIreply", "sign_name": "回复店",
                                      "template_code": "SMS_1", "endpoint": url}, "s3cret")  # fmt: skip
        seg = await segments.create_segment(db, t, "金", GOLD)
        c = await campaigns.create_campaign(db, t, campaigns.CampaignIn("回复测试", seg.id, "sms", "{name}您好"))
        await campaigns.send(db, t, c.id)
        assert await campaigns.deliver_one(db, t, c.id, m) in ("sent", "pending")  # pending: quiet hours
        if not standin.accepted:  # at night the message waits for 09:00: send it as the morning would
            from datetime import UTC, datetime, timedelta

            later = datetime.now(UTC) + timedelta(hours=12)
            assert await campaigns.deliver_one(db, t, c.id, m, now=later) == "sent"
        phone = standin.accepted[0].phone
        standin.reply_url = replies.reply_url(served, "aliyun")
        r = await standin.send_reply(phone, "TD", reply_id=4242)
        assert r.status_code == 200, r.text
        assert r.json() == {"code": 0, "msg": "接收成功"}
        assert (await crm.member_profile(db, t, m))["consent"]["sms"]["granted"] is False
        assert (await standin.send_reply(phone, "TD", reply_id=4242)).status_code == 200  # a re-push
        history = (await crm.member_profile(db, t, m))["consent"]["sms"]["history"]
        assert [h["source"] for h in history] == ["test", "sms-reply"]
        standin.reply_url = replies.reply_url(served, "aliyun").replace("token=", "token=x")
        assert (await standin.send_reply(phone, "TD")).status_code == 401
        standin.reply_url = replies.reply_url(served, "aliyun")
        assert (await standin.send_reply(phone, "周末营业吗？")).status_code == 200
    r = await client.get("/api/v1/marketing/sms-replies", headers=(await staff_token(t)).headers)
    assert r.status_code == 200, r.text
    assert [(x["content"], x["action"], x["member_id"]) for x in r.json()] == [
        ("周末营业吗？", "stored", str(m)),
        ("TD", "unsubscribe", str(m)),
    ]


async def test_portal_reports_wechat_subscriptions(client, db, tenant_factory, member_session) -> None:
    from lianka.tenants.services import crm

    t = await tenant_factory("订阅店")
    me = await member_session(t)
    url = f"/api/v1/portal/merchants/{t}/wechat/subscriptions"
    body = {"openid": "oAbc123456", "results": {"errMsg": "requestSubscribeMessage:ok", "tmplA": "accept",
                                                "tmplB": "reject"}}  # fmt: skip
    headers = {**me.headers, "Idempotency-Key": f"sub-{uuid.uuid4()}"}
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json() == {"grants": {"tmplA": 1}, "added": 1}
    assert (await client.post(url, json=body, headers=headers)).json() == {"grants": {"tmplA": 1}, "added": 1}
    r = await client.post(url, json={**body, "results": {"tmplA": "maybe"}},
                          headers={**me.headers, "Idempotency-Key": f"sub-{uuid.uuid4()}"})  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "results"
    assert (await client.get(url, headers=me.headers)).json() == {"grants": {"tmplA": 1}, "added": 0}
    # accepting is an opt-in: the WeChat marketing consent is granted, once
    consent = (await crm.member_profile(db, t, me.subject_id))["consent"]["wechat"]
    assert consent["granted"] is True and [h["source"] for h in consent["history"]] == ["wechat-subscribe"]
    other = await tenant_factory("别家")
    r = await client.get(f"/api/v1/portal/merchants/{other}/wechat/subscriptions", headers=me.headers)
    assert r.status_code == 404
