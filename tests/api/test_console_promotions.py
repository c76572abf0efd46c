"""The promotions section of the programme editor and what the web till shows of an applied promotion
(decision 0043), through the app's test client: create, refuse bad input beside its field (nothing
written), end a promotion; the till's quote and receipt list the promotions the sale got, and the
member's history names them."""

from __future__ import annotations

import re
from typing import Any

from tests.api.test_console import sign_in_console
from tests.api.test_console_cprog import error_text, form_of, post_form, versions, with_demo_programme
from tests.api.test_console_till import key_of

MJ = {
    "promotions-0-code": "mj",
    "promotions-0-name": "满100减10",
    "promotions-0-kind": "spend_save",
    "promotions-0-steps": "100:10, 200:30",
}


async def _publish(console: Any, changes: dict[str, Any]) -> Any:
    form = form_of((await console.get("/console/programme/promotions")).text, "section-form")
    form.update(changes)
    return await post_form(console, "/console/programme/promotions", form)


async def test_a_promotion_is_created_refused_beside_its_field_and_ended(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    console = await sign_in_console(client, auth_kit, tenant)
    page = (await console.get("/console/programme/promotions")).text
    assert "促销活动" in page and "新促销" in page and "满减" in page

    refused = await _publish(console, {**MJ, "promotions-0-steps": "100:200"})
    assert refused.status_code == 400
    assert error_text(refused.text, "promotions-0-steps") == "优惠金额不能超过门槛金额。"
    refused = await _publish(console, {**MJ, "promotions-0-steps": "满一百"})
    assert error_text(refused.text, "promotions-0-steps") == "请以元填写“满:减”，例如 100:10, 200:30。"
    refused = await _publish(
        console,
        {**MJ, "promotions-0-from_time": "18:00", "promotions-0-until_time": "09:00"},
    )
    assert error_text(refused.text, "promotions-0-until_time") == "每日时段的结束时间早于开始时间。"
    assert len(await versions(db, tenant)) == 1  # nothing written

    r = await _publish(console, {**MJ, "promotions-0-min_tier": "gold", "promotions-0-from_time": "09:30"})
    assert r.status_code == 303, r.text
    newest = (await versions(db, tenant))[0]
    assert newest.document["promotions"] == [
        {
            **newest.document["promotions"][0],
            "code": "mj",
            "kind": "spend_save",
            "steps": [{"spend": 10_000, "off": 1_000}, {"spend": 20_000, "off": 3_000}],
            "min_tier": "gold",
            "from_time": "09:30:00",
            "active": True,
        }
    ]
    shown = form_of((await console.get("/console/programme/promotions")).text, "section-form")
    assert shown["promotions-0-steps"] == "100.00:10.00, 200.00:30.00"
    assert shown["promotions-0-from_time"] == "09:30"

    # ending it: untick "active" (the promotion is kept, and reads so in the diff)
    form = form_of((await console.get("/console/programme/promotions")).text, "section-form")
    del form["promotions-0-active"]
    r = await post_form(console, "/console/programme/promotions", form)
    assert r.status_code == 303, r.text
    assert (await versions(db, tenant))[0].document["promotions"][0]["active"] is False
    diff = (await console.get("/console/programme/compare?old=2&new=3")).text
    assert '<tr class="diff-changed"><th scope="row">满100减10 · 启用</th><td>是</td><td>否</td></tr>' in diff


async def test_the_till_shows_the_promotions_a_sale_got_and_the_member_history_names_them(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant = await tenant_factory()
    await with_demo_programme(db, tenant)
    owner = await sign_in_console(client, auth_kit, tenant)
    assert (await _publish(owner, MJ)).status_code == 303
    branch = await auth_kit.branch(tenant, "SH01")
    member = await member_factory(tenant)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    base = {"member_id": str(member), "branch_id": str(branch)}
    q = await cashier.post("/console/till/quote", {**base, "amount": "250"}, htmx=True)
    assert q.status_code == 200, q.text
    assert 'data-code="mj"' in q.text and "满100减10" in q.text and "−¥30.00" in q.text

    page = (await cashier.get("/console/till")).text
    sold = await cashier.post("/console/till/sale", {**base, "key": key_of(page), "amount": "250"}, htmx=True)
    assert sold.status_code == 200, sold.text
    assert 'data-testid="receipt"' in sold.text and 'data-code="mj"' in sold.text
    assert 'data-testid="receipt-due">¥220.00' in sold.text
    sale_id = re.search(r'data-sale="([^"]+)"', sold.text).group(1)  # type: ignore[union-attr]
    refund = await cashier.get(f"/console/till/sales/{sale_id}", headers={"HX-Request": "true"})
    assert 'data-testid="refund-left">¥220.00' in refund.text

    owner = await sign_in_console(client, auth_kit, tenant)  # the client holds one session at a time
    detail = (await owner.get(f"/console/members/{member}")).text
    assert 'data-testid="sale-promotions">满100减10' in detail

    # another merchant's till knows nothing of it
    other = await tenant_factory()
    await with_demo_programme(db, other)
    other_branch = await auth_kit.branch(other, "SH01")
    stranger = await sign_in_console(client, auth_kit, other, "cashier", (other_branch,))
    assert (await stranger.get(f"/console/till/sales/{sale_id}")).status_code == 404
    theirs = await stranger.post("/console/till/quote", {"branch_id": str(other_branch), "amount": "250"}, htmx=True)
    assert theirs.status_code == 200 and 'data-testid="promotion"' not in theirs.text
