"""The alliance pages (/console/alliance…) through the test client: found an alliance, invite a partner
(the code shown once), join with the code as another merchant, partner status changes, the terms
editor (a new version per publish, every refused value beside its own input), the statements each
merchant may see with their files; roles that may not write see no form and are refused, and another
merchant's alliance answers 404 — with nothing changed."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership
from lianka.alliance.alliances import terms as versioned_terms
from lianka.web.console.i18n import Language
from tests.api.test_console import Console, menu_of, sign_in_console

pytestmark = pytest.mark.integration
ZH = Language("zh-CN")
INVITE = re.compile(r'data-testid="invite-code"[^>]*|value="(LKA-[A-Za-z0-9_-]+)"')


def invite_code(html: str) -> str:
    found = re.search(r'id="invite-code" readonly value="(LKA-[A-Za-z0-9_-]+)"', html)
    assert found, "no invitation code on the page"
    return found.group(1)


def alliance_of(response: Any) -> uuid.UUID:
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/console/alliance/([0-9a-f-]{36})", response.headers["location"])
    assert found, response.headers["location"]
    return uuid.UUID(found.group(1))


async def slug_of(db: Any, tenant: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": tenant})
    assert isinstance(slug, str)
    return slug


async def statuses(db: Any, operator: uuid.UUID, alliance: uuid.UUID) -> dict[uuid.UUID, str]:
    return {p["merchant_id"]: p["status"] for p in await membership.partners(db, operator, alliance)}


async def found(console: Console, name: str = "城市联盟") -> tuple[uuid.UUID, str]:
    code = f"city-{uuid.uuid4().hex[:8]}"
    r = await console.post("/console/alliance", {"code": code, "name": name, "currency": "", "timezone": ""})
    return alliance_of(r), code


async def invite_and_join(
    client: Any, auth_kit: Any, operator: uuid.UUID, partner: uuid.UUID, alliance: uuid.UUID
) -> None:
    owner = await sign_in_console(client, auth_kit, operator)
    code = invite_code((await owner.post(f"/console/alliance/{alliance}/invites", {"note": "", "days": "14"})).text)
    joiner = await sign_in_console(client, auth_kit, partner)
    assert alliance_of(await joiner.post("/console/alliance/join", {"invite_code": code})) == alliance


# --- found, invite, join, status ------------------------------------------------------------------


async def test_found_invite_and_join_across_two_merchants(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tea = await tenant_factory("一点茶")
    bakery = await tenant_factory("麦香烘焙")
    owner = await sign_in_console(client, auth_kit, tea)

    page = await owner.get("/console/alliance")
    assert page.status_code == 200 and "/console/alliance" in menu_of(page.text)
    assert 'id="found-form"' in page.text and 'id="join-form"' in page.text
    assert 'data-testid="no-alliances"' in page.text
    assert 'value="CNY"' in page.text and 'value="Asia/Shanghai"' in page.text  # the merchant's, as defaults

    # refused values beside their fields (htmx swaps the form), nothing written
    for data, field, status, message in [
        ({"code": "City Card", "name": "x"}, "code", 400, "Use 2 to 40 lower-case letters, digits or “-”, starting with a letter or a digit."),
        ({"code": "ok-code", "name": " "}, "name", 400, "Enter a name of 1 to 200 characters."),
        ({"code": "ok-code", "name": "x", "currency": "XXX"}, "currency", 400, "Choose a currency such as CNY."),
        ({"code": "ok-code", "name": "x", "timezone": "Mars/Base"}, "timezone", 400, "Enter a time zone such as Asia/Shanghai."),
    ]:
        r = await owner.post("/console/alliance", data, htmx=True)
        assert r.status_code == status and f'id="f-{field}-error"' in r.text, (field, r.text)
        assert ZH.gettext(message) in r.text and 'id="found-form"' in r.text
    assert await membership.my_alliances(db, tea) == []

    alliance, code = await found(owner)
    page = await owner.get(f"/console/alliance/{alliance}")
    assert page.status_code == 200 and "联盟已创建" in page.text  # the flash
    r = await owner.post("/console/alliance", {"code": code, "name": "again"}, htmx=True)
    assert r.status_code == 409 and 'id="f-code-error"' in r.text
    assert "已有其他联盟使用此代码" in r.text
    tea_slug, bakery_slug = await slug_of(db, tea), await slug_of(db, bakery)
    row = page.text.split(f'data-partner="{tea_slug}"')[1].split("</tr>")[0]
    assert "一点茶" in row and ZH.gettext("Operator (hub)") in row and "data-testid=\"status-" not in row

    # an invitation: the code shown once, beside a copy button; a reload does not show it
    r = await owner.post(f"/console/alliance/{alliance}/invites", {"note": "面包店", "days": "0"}, htmx=True)
    assert r.status_code == 400 and 'id="f-days-error"' in r.text and 'data-testid="invite-code"' not in r.text
    r = await owner.post(f"/console/alliance/{alliance}/invites", {"note": "面包店", "days": "7"}, htmx=True)
    assert r.status_code == 200 and 'id="partners-panel"' in r.text and 'data-copy="invite-code"' in r.text
    code = invite_code(r.text)
    assert code not in (await owner.get(f"/console/alliance/{alliance}")).text

    # the bakery joins with it in its own console
    baker = await sign_in_console(client, auth_kit, bakery)
    r = await baker.post("/console/alliance/join", {"invite_code": "LKA-wrong"}, htmx=True)
    assert r.status_code == 404 and 'id="f-invite_code-error"' in r.text
    assert ZH.gettext("This code is not valid: mistyped, used already, or expired.") in r.text
    assert alliance_of(await baker.post("/console/alliance/join", {"invite_code": code})) == alliance
    page = await baker.get(f"/console/alliance/{alliance}")
    assert "您已加入该联盟" in page.text and f'data-partner="{bakery_slug}" data-status="active"' in page.text
    assert f'data-partner="{tea_slug}"' in page.text  # the operator, as the hub
    assert 'data-testid="invite-partner"' not in page.text  # only the operator invites
    listed = (await baker.get("/console/alliance")).text
    assert f"/console/alliance/{alliance}" in listed and "城市联盟" in listed
    r = await baker.post("/console/alliance/join", {"invite_code": code}, htmx=True)
    assert r.status_code == 404  # a code works once

    # the operator suspends and reinstates the bakery; the bakery leaves
    owner = await sign_in_console(client, auth_kit, tea)
    page = await owner.get(f"/console/alliance/{alliance}")
    assert f'data-partner="{bakery_slug}" data-status="active"' in page.text
    r = await owner.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "suspended"}, htmx=True)
    assert r.status_code == 200 and f'data-partner="{bakery_slug}" data-status="suspended"' in r.text
    assert (await statuses(db, tea, alliance))[bakery] == "suspended"
    r = await owner.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "active"})
    assert r.status_code == 303 and (await statuses(db, tea, alliance))[bakery] == "active"
    # the operator's own row cannot change; a partner cannot change another's
    r = await owner.post(f"/console/alliance/{alliance}/partners/{tea}/status", {"status": "suspended"})
    assert r.status_code == 422
    baker = await sign_in_console(client, auth_kit, bakery)
    r = await baker.post(f"/console/alliance/{alliance}/partners/{tea}/status", {"status": "left"}, htmx=True)
    assert r.status_code == 403 and r.headers["hx-retarget"] == "#flash"
    r = await baker.post(f"/console/alliance/{alliance}/partners/{bakery}/status", {"status": "left"}, htmx=True)
    assert r.status_code == 200 and f'data-partner="{bakery_slug}" data-status="left"' in r.text
    assert await statuses(db, tea, alliance) == {tea: "active", bakery: "left"}
