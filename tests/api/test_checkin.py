"""Daily check-in (签到) in the member portal: once per local day, a streak of consecutive days, a
bonus on the 3rd day — retried, raced, and across midnight in the merchant's time zone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lianka.platform.db import Database
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind
from lianka.tenants.services import checkin
from tests.api.shop import Shop, make_shop

pytestmark = pytest.mark.integration
CHECKIN = EarningRule(code="daily", kind=RuleKind.CHECKIN, points=5, streak_bonus={"3": 20, "7": 50})
# 15:59 UTC = 23:59 in Shanghai; a minute later it is the next day there
LATE_EVENING = datetime(2026, 3, 10, 15, 59, tzinfo=UTC)


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory)
    await s.programme(Programme(rules=[CHECKIN]), since=datetime(2026, 1, 1, tzinfo=UTC))
    return s


async def test_check_in_once_a_day_from_the_portal(shop: Shop) -> None:
    me = await shop.member()
    url = f"/portal/merchants/{shop.slug}/checkin"
    before = await shop.ok("GET", url, me)
    assert (before["offered"], before["checked_in_today"], before["streak"], before["next_points"]) == (
        True,
        False,
        0,
        5,
    )
    assert before["next_bonus"] == {"streak": 3, "points": 20}
    first = await shop.call("POST", url, me)
    assert first.status_code == 201, first.text
    assert (first.json()["streak"], first.json()["points"], first.json()["already"]) == (1, 5, False)
    again = await shop.call("POST", url, me)
    assert again.status_code == 200
    assert (again.json()["already"], again.json()["points"], again.json()["points_balance"]) == (True, 5, 5)
    after = await shop.ok("GET", url, me)
    assert (after["checked_in_today"], after["streak"], after["points_today"]) == (True, 1, 5)
    by_id = await shop.ok("GET", f"/portal/merchants/{shop.tenant}/checkin", me)  # the id works as well as the slug
    assert by_id == after
    assert await shop.points(me.subject_id) == 5  # type: ignore[arg-type]


async def test_concurrent_check_ins_make_one(shop: Shop) -> None:
    me = await shop.member()
    results = await asyncio.gather(*[shop.call("POST", f"/portal/merchants/{shop.slug}/checkin", me) for _ in range(6)])
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    assert await shop.scalar("SELECT count(*) FROM member_checkins") == 1
    assert await shop.points(me.subject_id) == 5  # type: ignore[arg-type]


async def test_streaks_follow_the_merchants_days(shop: Shop) -> None:
    me = await shop.member()
    m = me.subject_id
    assert m is not None

    async def at(when: datetime) -> tuple[int, int, bool]:
        out = await checkin.check_in(shop.db, shop.tenant, m, now=when)
        return out.streak, out.points, out.already

    assert await at(LATE_EVENING) == (1, 5, False)
    assert await at(LATE_EVENING + timedelta(minutes=2)) == (2, 5, False)  # past midnight in Shanghai
    assert await at(LATE_EVENING + timedelta(hours=3)) == (2, 5, True)  # same local day
    assert await at(LATE_EVENING + timedelta(days=1, minutes=2)) == (3, 25, False)  # 3rd day: +20
    status = await checkin.status(shop.db, shop.tenant, m, now=LATE_EVENING + timedelta(days=1, hours=1))
    assert (status.streak, status.checked_in_today, status.next_points) == (3, True, 5)
    assert status.next_bonus is not None and status.next_bonus.streak == 7
    lapsed = await checkin.status(shop.db, shop.tenant, m, now=LATE_EVENING + timedelta(days=4))
    assert (lapsed.streak, lapsed.checked_in_today) == (0, False)  # a day missed
    assert await at(LATE_EVENING + timedelta(days=4)) == (1, 5, False)
    assert await shop.points(m) == 5 + 5 + 25 + 5


async def test_no_check_in_rule_or_not_a_member(shop: Shop, client, auth_kit, db: Database, tenant_factory) -> None:
    plain = await make_shop(client, auth_kit, db, tenant_factory, "无签到")
    me = await plain.member()
    r = await plain.call("POST", f"/portal/merchants/{plain.slug}/checkin", me)
    assert (r.status_code, r.json()["type"].split("/")[-1]) == (422, "checkin-not-offered")
    assert (await plain.ok("GET", f"/portal/merchants/{plain.slug}/checkin", me))["offered"] is False
    for merchant in (shop.slug, str(uuid.uuid4()), "no-such-shop"):  # not mine, unknown
        r = await plain.call("POST", f"/portal/merchants/{merchant}/checkin", me)
        assert (r.status_code, r.json()["type"].split("/")[-1]) == (404, "not-found"), merchant
    assert await shop.scalar("SELECT count(*) FROM member_checkins") == 0
    assert await plain.scalar("SELECT count(*) FROM member_checkins") == 0


async def test_portal_pages_need_a_member_session(shop: Shop) -> None:
    staff = await shop.kit.staff(shop.tenant, "owner")
    pos = await shop.kit.pos(shop.tenant, ["pos"])
    me = await shop.member()
    no_csrf = {"Cookie": me.headers["Cookie"]}
    for method, path in (
        ("GET", "checkin"),
        ("POST", "checkin"),
        ("GET", "rewards"),
        ("GET", "redemptions"),
        ("GET", "coupons"),
        ("POST", f"rewards/{uuid.uuid4()}/redeem"),
    ):
        for headers, status in (
            ({}, 401),
            (staff.headers, 401),
            (pos.headers, 401),
            ({"Cookie": "lk_member=forged"}, 401),
        ):
            shop.client.cookies.clear()
            r = await shop.client.request(method, f"/api/v1/portal/merchants/{shop.slug}/{path}", headers=headers)
            assert r.status_code == status, (method, path, headers, r.text)
        if method == "POST":
            shop.client.cookies.clear()
            r = await shop.client.post(f"/api/v1/portal/merchants/{shop.slug}/{path}", headers=no_csrf)
            assert r.status_code == 403, r.text  # a cookie without the CSRF token cannot write
    assert await shop.scalar("SELECT count(*) FROM member_checkins") == 0
