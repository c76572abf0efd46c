"""WeChat subscribe messages against the local WeChat stand-in (token fetched once and cached,
refreshed on 42001, the thing field cut to 20 characters, a grant spent per message, skipped without
one, 43101 when WeChat has no subscription) and SMS replies through the Aliyun and Tencent stand-ins
(TD withdraws the SMS consent once, a re-push of the same reply changes nothing, another reply is
stored, another merchant's member with the same phone is untouched)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.marketing import campaigns as svc
from lianka.tenants.marketing import providers, replies, wechat
from lianka.tenants.marketing import services as segments
from lianka.tenants.marketing.channels import Message, SendFailed
from lianka.tenants.marketing.channels import wechat as wechat_channel
from lianka.tenants.marketing.channels.standins import AliyunStandin, TencentStandin, WechatStandin
from lianka.tenants.marketing.errors import BadSubscription

from . import kit

pytestmark = pytest.mark.integration
DAY_TIME = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}
CONSENT = {"sms": {"granted": True}, "wechat": {"granted": True}}
TEMPLATE = "tmplPointsExpiring01"


@dataclass
class Shop:
    tenant: uuid.UUID
    segment: uuid.UUID
    members: list[uuid.UUID]


async def _shop(db: Database, tenant_factory: Any, member_factory: Any, phones: list[str], name: str) -> Shop:
    t = await tenant_factory(name)
    members = [await member_factory(t, p) for p in phones]
    for i, m in enumerate(members):
        await kit.profile(db, t, m, joined=DAY_TIME - timedelta(days=30), branch=None, name=f"会员{i}",
                          tier_code="gold", consent=CONSENT)  # fmt: skip
    seg = await segments.create_segment(db, t, "所有人", EVERYONE)
    return Shop(t, seg.id, members)


async def _campaign(db: Database, shop: Shop, channel: str, template: str) -> uuid.UUID:
    data = svc.CampaignIn(name=f"c-{uuid.uuid4().hex[:6]}", segment_id=shop.segment, channel=channel,
                          template_a=template)  # fmt: skip
    c = (await svc.create_campaign(db, shop.tenant, data)).id
    await svc.send(db, shop.tenant, c, now=DAY_TIME)
    return c


async def _message(db: Database, tenant: uuid.UUID, campaign: uuid.UUID, member: uuid.UUID) -> dict[str, Any]:
    async with db.uow(tenant) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT status, error, provider_message_id FROM campaign_messages "
                    "WHERE campaign_id = :c AND member_id = :m"
                ),
                {"c": campaign, "m": member},
            )
        ).one()
        return dict(row._mapping)


def _phones(n: int) -> list[str]:
    base = uuid.uuid4().int % 10**7
    return [f"+86137{(base + i) % 10**8:08d}" for i in range(n)]


async def test_wechat_subscribe_messages_token_grants_and_refusals(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    wechat_channel.forget_tokens()
    shop = await _shop(db, tenant_factory, member_factory, _phones(4), "微信店")
    standin = WechatStandin(apps={"wxa1b2c3": "app-secret-1"}, templates={TEMPLATE: ("thing1", "time2")})
    ok, refused_at_wechat, no_grant, no_openid = shop.members
    async with standin.serve() as url:
        await providers.save_provider(db, shop.tenant, "wechat", "wechat",
                                      {"appid": "wxa1b2c3", "template_id": TEMPLATE, "page": "pages/card/index",
                                       "endpoint": url}, "app-secret-1")  # fmt: skip
        for i, m in enumerate((ok, refused_at_wechat, no_grant)):
            results = {"errMsg": "requestSubscribeMessage:ok", TEMPLATE: "accept" if m != no_grant else "reject"}
            out = await wechat.report(db, shop.tenant, m, f"oOpenid{i:04d}abc", results, key=f"sub-{m}")
            assert out.grants == ({TEMPLATE: 1} if m != no_grant else {})
        # a retry of the same report adds nothing; another member cannot claim an openid
        ok_results = {"errMsg": "requestSubscribeMessage:ok", TEMPLATE: "accept"}
        again = await wechat.report(db, shop.tenant, ok, "oOpenid0000abc", ok_results, key=f"sub-{ok}")
        assert again.grants == {TEMPLATE: 1}
        with pytest.raises(BadSubscription):
            await wechat.report(db, shop.tenant, no_openid, "oOpenid0000abc", {TEMPLATE: "accept"}, key="steal")
        standin.subscribe("oOpenid0000abc", TEMPLATE, 2)  # WeChat knows ok's subscriptions, not the other's

        c = await _campaign(db, shop, "wechat", "{name}，您的积分本月底到期，快来兑换礼品吧！会员日全场九折")
        assert await svc.deliver_one(db, shop.tenant, c, ok, now=DAY_TIME) == "sent"
        assert await svc.deliver_one(db, shop.tenant, c, refused_at_wechat, now=DAY_TIME) == "failed"
        assert await svc.deliver_one(db, shop.tenant, c, no_grant, now=DAY_TIME) == "skipped"
        assert await svc.deliver_one(db, shop.tenant, c, no_openid, now=DAY_TIME) == "skipped"

        [sent] = standin.accepted
        assert (sent.openid, sent.template_id, sent.page) == ("oOpenid0000abc", TEMPLATE, "pages/card/index")
        value = sent.data["thing1"]["value"]
        assert len(value) == 20 and value.startswith("会员0，您的积分本月底到期") and value.endswith("…")
        assert standin.refused == ["43101"]
        assert "43101" in (await _message(db, shop.tenant, c, refused_at_wechat))["error"]
        assert (await _message(db, shop.tenant, c, no_grant))["error"] == "no WeChat subscription left for the template"
        assert (await _message(db, shop.tenant, c, no_openid))["error"] == "no WeChat openid for this member"
        assert (await _message(db, shop.tenant, c, ok))["provider_message_id"] == str(sent.msgid)
        assert await wechat.grants(db, shop.tenant, ok) == {}  # spent
        assert await wechat.grants(db, shop.tenant, refused_at_wechat) == {}  # a refusal is final
        result = await svc.results(db, shop.tenant, c)
        assert (result.count("sent"), result.count("failed"), result.count("skipped")) == (1, 1, 2)
        assert standin.token_requests == 1  # one token, cached

        # the token expires at WeChat: the next send is answered 42001, refreshes, and goes
        await wechat.report(db, shop.tenant, ok, "oOpenid0000abc", {TEMPLATE: "accept"}, key=f"sub2-{ok}")
        standin.expire_tokens()
        c2 = await _campaign(db, shop, "wechat", "积分提醒")
        assert await svc.deliver_one(db, shop.tenant, c2, ok, now=DAY_TIME) == "sent"
        assert standin.refused == ["43101", "42001"]
        assert standin.token_requests == 2
        assert [a.data["thing1"]["value"] for a in standin.accepted] == [value, "积分提醒"]

    # a skipped message was never sent: it does not count against the weekly cap
    for m in (refused_at_wechat, no_grant, no_openid):
        assert await svc.deliver_one(db, shop.tenant, c2, m, now=DAY_TIME) == "skipped"
    await svc.set_frequency_cap(db, shop.tenant, 1)
    c3 = await _campaign(db, shop, "wechat", "第三条")
    async with db.uow(shop.tenant) as uow:
        written = set(
            await uow.session.scalars(text("SELECT member_id FROM campaign_messages WHERE campaign_id = :c"), {"c": c3})
        )
    assert written == {no_grant, no_openid}  # ok was sent twice, refused_at_wechat failed once and skipped


async def test_wechat_stand_in_checks_the_secret_and_the_payload(db: Database) -> None:
    del db
    wechat_channel.forget_tokens()
    standin = WechatStandin(apps={"wxapp": "right"}, templates={TEMPLATE: ("thing1",)})
    async with standin.serve() as url:
        wrong = wechat_channel.WechatSubscribe(wechat_channel.WechatSettings("wxapp", "wrong", TEMPLATE, base_url=url))
        with pytest.raises(SendFailed) as e:
            await wrong.token()
        assert e.value.code == "40125" and not e.value.retryable
        standin.subscribe("oSomeone123", TEMPLATE)
        # a field the template does not have is refused (47003); a long thing is cut by the adapter
        odd = wechat_channel.WechatSubscribe(
            wechat_channel.WechatSettings("wxapp", "right", TEMPLATE, field="thing9", base_url=url)
        )
        msg = Message(channel="wechat", to="oSomeone123", text="x" * 50)
        with pytest.raises(SendFailed) as e:
            await odd.send(msg)
        assert e.value.code == "47003"
        good = wechat_channel.WechatSubscribe(wechat_channel.WechatSettings("wxapp", "right", TEMPLATE, base_url=url))
        await good.send(msg)
        assert standin.accepted[0].data == {"thing1": {"value": "x" * 19 + "…"}}


async def _consent(db: Database, tenant: uuid.UUID, member: uuid.UUID) -> dict[str, Any]:
    async with db.uow(tenant) as uow:
        out = await uow.session.scalar(text("SELECT consent FROM member_profiles WHERE member_id = :m"), {"m": member})
        assert isinstance(out, dict)
        return out


async def _replies(db: Database, tenant: uuid.UUID) -> list[tuple[str, str]]:
    return [(r.content, r.action) for r in await replies.latest(db, tenant)]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_td_reply_withdraws_sms_consent_once_and_only_at_that_merchant(
    db: Database, tenant_factory: Any, member_factory: Any, provider: str
) -> None:
    phones = _phones(2)
    a = await _shop(db, tenant_factory, member_factory, phones, "甲店")
    b = await _shop(db, tenant_factory, member_factory, phones, "乙店")  # the same people at another merchant
    standin: AliyunStandin | TencentStandin
    if provider == "aliyun":
        standin = AliyunStandin(keys={"LTAIreply": "k"})
        settings = {"access_key_id": "LTAIreply", "template_code": "SMS_1"}
    else:
        standin = TencentStandin(keys={"AKIDreply": "k"})
        settings = {"secret_id": "AKIDreply", "sdk_app_id": "1400000001", "template_id": "1001"}
    async with standin.serve() as url:
        for shop, sign in ((a, "甲店"), (b, "乙店")):
            await providers.save_provider(db, shop.tenant, "sms", provider, {**settings, "sign_name": sign,
                                          "endpoint": url}, "k")  # fmt: skip
            c = await _campaign(db, shop, "sms", "{name}，双十二会员日")
            for m in shop.members:
                assert await svc.deliver_one(db, shop.tenant, c, m, now=DAY_TIME) == "sent"
        # the member replies: the stand-in's push body (posted over HTTP to the app in tests/api)
        assert standin.sign_for(phones[0]) == "乙店"  # the last message the phone got
        td = standin.reply(phones[0], " td ", sign="甲店", extension="", reply_id=77)
        token = replies.reply_token(provider)
        out = await replies.receive(db, provider, token, td)
        assert (out.stored, out.unsubscribed) == (1, 1)
        consent = await _consent(db, a.tenant, a.members[0])
        assert consent["sms"]["granted"] is False
        assert consent["sms"]["history"][-1]["source"] == "sms-reply"
        assert (await _consent(db, b.tenant, b.members[0]))["sms"]["granted"] is True  # 乙店 untouched
        assert (await _consent(db, a.tenant, a.members[1]))["sms"]["granted"] is True  # another member untouched
        # the provider pushes the same reply again: nothing changes
        again = await replies.receive(db, provider, token, td)
        assert (again.stored, again.unsubscribed) == (0, 0)
        assert len((await _consent(db, a.tenant, a.members[0]))["sms"]["history"]) == 1
        # a second opt-out (another reply) is stored but does not withdraw twice
        second = standin.reply(phones[0], "退订。", sign="甲店", extension="", reply_id=78)
        assert (await replies.receive(db, provider, token, second)).unsubscribed == 0
        assert len((await _consent(db, a.tenant, a.members[0]))["sms"]["history"]) == 1
        # any other reply is stored for the merchant the signature names
        other = standin.reply(phones[1], "请问周末营业吗", sign=standin.sign_for(phones[1]), extension="", reply_id=79)
        assert (await replies.receive(db, provider, token, other)).unsubscribed == 0
        assert (await _consent(db, b.tenant, b.members[1]))["sms"]["granted"] is True
        assert await _replies(db, b.tenant) == [("请问周末营业吗", "stored")]
        assert await _replies(db, a.tenant) == [("退订。", "unsubscribe"), (" td ", "unsubscribe")]
        # the push's token is checked
        from lianka.platform.errors import Unauthorized

        with pytest.raises(Unauthorized):
            await replies.receive(db, provider, "wrong", td)


def test_opt_out_words() -> None:
    for words in ("TD", " td ", "T", "n", "退订", "退订。", "Unsubscribe", "STOP!"):
        assert replies.is_opt_out(words), words
    for words in ("谢谢", "TDD", "no thanks", "", "请退订我"):
        assert not replies.is_opt_out(words), words
