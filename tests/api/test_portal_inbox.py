"""The member portal's inbox: a portal-channel campaign appears under Messages at its merchant, the
merchant page shows the unread count, opening a message marks it read (the campaign's "opened"),
and another merchant's messages do not appear."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.identity import members
from lianka.tenants.marketing import campaigns
from lianka.tenants.marketing import services as segments
from tests.api.test_portal_pages import a_phone, shop, sign_in

pytestmark = pytest.mark.integration
EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}


async def test_inbox_badge_and_opening(client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any) -> None:
    s, other = await shop(db, auth_kit, tenant_factory), await shop(db, auth_kit, tenant_factory, "别家")
    phone = a_phone()
    member = (await members.enrol_member(auth_kit.ident, s["tenant"], phone)).member.member_id
    await members.enrol_member(auth_kit.ident, other["tenant"], phone)
    for t, subject in ((s["tenant"], "会员日"), (other["tenant"], "别家的消息")):
        seg = await segments.create_segment(db, t, "全部", EVERYONE)
        c = await campaigns.create_campaign(db, t, campaigns.CampaignIn(
            name="站内信", segment_id=seg.id, channel="portal", subject=subject, template_a="全场九折"))  # fmt: skip
        await campaigns.send(db, t, c.id)
        if t == s["tenant"]:
            mine = c.id
            assert await campaigns.deliver_one(db, t, c.id, member) == "delivered"
    await sign_in(client, app, phone)
    page = await client.get(f"/m/{s['slug']}")
    assert page.status_code == 200 and 'data-testid="unread"' in page.text and ">1</span>" in page.text
    inbox = await client.get(f"/m/{s['slug']}/inbox")
    assert "会员日" in inbox.text and 'data-unread="true"' in inbox.text and "别家的消息" not in inbox.text
    opened = await client.get(f"/m/{s['slug']}/inbox/{mine}")
    assert opened.status_code == 200 and "全场九折" in opened.text
    assert 'data-testid="unread"' not in (await client.get(f"/m/{s['slug']}")).text
    assert (await campaigns.results(db, s["tenant"], mine)).count("opened") == 1
    assert "别家的消息" not in (await client.get(f"/m/{other['slug']}/inbox")).text  # not delivered there yet


async def test_tracked_link_records_the_open_and_redirects(
    client: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    member = (await members.enrol_member(auth_kit.ident, s["tenant"], a_phone())).member.member_id
    async with db.uow(s["tenant"]) as uow:
        await uow.session.execute(
            text("INSERT INTO member_profiles (tenant_id, member_id, email, consent) VALUES (:t, :m, 'a@example.com', "
                 "'{\"email\": {\"granted\": true}}')"),
            {"t": s["tenant"], "m": member},
        )  # fmt: skip
        await uow.commit()
    seg = await segments.create_segment(db, s["tenant"], "全部", EVERYONE)
    spec = campaigns.CampaignIn(name="邮件", segment_id=seg.id, channel="email", template_a="详情 {link}",
                                link="https://shop.example.com/sale")  # fmt: skip
    c = await campaigns.create_campaign(db, s["tenant"], spec)
    await campaigns.send(db, s["tenant"], c.id)
    assert await campaigns.deliver_one(db, s["tenant"], c.id, member) == "sent"
    async with db.uow(s["tenant"]) as uow:
        body = await uow.session.scalar(text("SELECT body FROM campaign_messages WHERE member_id = :m"), {"m": member})
    link = str(body).removeprefix("详情 ")
    assert link.startswith("http") and f"/m/{s['slug']}/go?" in link
    path = link[link.index("/m/") :]
    assert (await client.get(path.replace("&s=", "&s=x"), follow_redirects=False)).status_code == 404
    r = await client.get(path, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example.com/sale"
    assert (await campaigns.results(db, s["tenant"], c.id)).count("opened") == 1
