"""The member tops up stored value online on a phone (390 x 844), in zh-CN and English: the plans,
*Pay*, the WeChat Pay stand-in's H5 page, back to "paying…", which turns into the credit; the
history lists the payment. The app runs in this process (beside the package's served one, on its
database) with a WeChat Pay stand-in, the merchant configured for it.

Screenshots land in tests/browser/artifacts/<language>/portal-top-up-*.png; axe-core and the CSP
checks run on each of our pages (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import uvicorn
from playwright.async_api import expect
from redis.asyncio import Redis

from lianka.billing.membership import products as membership_products
from lianka.billing.membership import schemas as membership_schemas
from lianka.billing.membership import terms as membership_terms
from lianka.billing.payments import services as payments
from lianka.billing.wechatpay_standin import WeChatPayStandin
from lianka.platform.identity import sessions
from lianka.platform.identity.testing import AuthKit
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.services.programme import set_programme
from lianka.web.app import create_app
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant
from tests.browser.test_portal import LANGS, PHONE_SIZE, OpenPage

PLANS = [
    StoredValuePlan(code="100", name="充100送10", pay=10_000, get=11_000),
    StoredValuePlan(code="300", name="充300送40", pay=30_000, get=34_000),
]


@pytest.fixture(scope="module")
async def online(served: Served) -> AsyncIterator[tuple[str, WeChatPayStandin, Settings]]:
    """(base URL, stand-in, settings) of an app served here with the WeChat Pay stand-in."""
    wechat = WeChatPayStandin()
    async with wechat.serve() as wechat_url:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        base = f"http://127.0.0.1:{port}"
        settings = Settings.from_env({**served.env, "LIANKA_PORT": str(port), "LIANKA_PUBLIC_URL": base})
        settings = replace(settings, wechatpay_api_base=wechat_url)
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        yield base, wechat, settings
        server.should_exit = True
        await task


async def member_on_a_phone(
    open_page: OpenPage, browser_db: Any, online: tuple[str, WeChatPayStandin, Settings], tenant: Any, lang: str
) -> tuple[Any, Any]:
    """The merchant takes WeChat Pay (the stand-in's test merchant); a member of it, signed in, on a
    phone-sized page of the app served here. Returns (visit, member id)."""
    base, wechat, settings = online
    creds = wechat.new_merchant()
    await payments.save_credentials(browser_db, settings, tenant, "wechatpay", dict(creds.__dict__))
    redis = Redis.from_url(settings.redis_url)
    try:
        member = await AuthKit(browser_db, settings, redis).member(tenant)
    finally:
        await redis.aclose()
    assert member.token and member.subject_id
    visit = await open_page(lang)
    visit.base = base
    await visit.page.set_viewport_size(PHONE_SIZE)
    await visit.page.context.add_cookies([{"name": sessions.MEMBER_COOKIE, "value": member.token, "url": base}])
    return visit, member.subject_id


@pytest.mark.parametrize("lang", LANGS)
async def test_a_member_tops_up_online_and_sees_the_credit(
    open_page: OpenPage, browser_db: Any, online: tuple[str, WeChatPayStandin, Settings], lang: str
) -> None:
    tenant, slug = await make_merchant(browser_db, "一点茶 Yidian Tea")
    async with browser_db.uow(tenant) as uow:
        await set_programme(uow, Programme(stored_value=StoredValueConfig(plans=PLANS)))
        await uow.commit()
    visit, _ = await member_on_a_phone(open_page, browser_db, online, tenant, lang)
    page, t = visit.page, Language(lang).gettext

    await visit.goto(f"/m/{slug}")
    await page.get_by_test_id("top-up-link").click()
    await page.wait_for_url(f"**/m/{slug}/top-up")
    await expect(page.get_by_test_id("pay-300")).to_be_visible()
    await visit.check("portal-top-up-plans")
    await page.get_by_test_id("pay-300").click()

    # the stand-in's H5 page (not ours: no axe/CSP check), then back to ours
    await page.wait_for_url("**/h5/**")
    await page.screenshot(path=str(visit_folder(lang) / "portal-top-up-wechat-h5.png"), full_page=True)
    await page.get_by_role("button").click()
    await page.wait_for_url(f"**/m/{slug}/top-up/*")
    await expect(page.get_by_test_id("paid")).to_have_text(t("Thank you: your payment is confirmed."))
    await expect(page.get_by_test_id("stored-value")).to_contain_text("¥340.00")
    await visit.check("portal-top-up-paid")

    await visit.goto(f"/m/{slug}/history")
    await expect(page.get_by_test_id("payments")).to_contain_text("¥300.00")
    await visit.check("portal-top-up-history")


def visit_folder(lang: str) -> Any:
    from tests.browser.conftest import ARTIFACTS

    folder = ARTIFACTS / lang
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("lang", LANGS)
async def test_a_member_buys_a_paid_membership_online(
    open_page: OpenPage, browser_db: Any, online: tuple[str, WeChatPayStandin, Settings], lang: str
) -> None:
    tenant, slug = await make_merchant(browser_db, "一点茶 Yidian Tea")
    await membership_products.create_product(
        browser_db, tenant, membership_schemas.ProductIn(code="plus", name="PLUS 年卡", period="yearly", price=9_900)
    )
    visit, member_id = await member_on_a_phone(open_page, browser_db, online, tenant, lang)
    page, t = visit.page, Language(lang).gettext

    await visit.goto(f"/m/{slug}")
    await page.get_by_test_id("buy-membership").click()
    await page.wait_for_url("**/h5/**")
    await page.get_by_role("button").click()
    await page.wait_for_url(f"**/m/{slug}/top-up/*")
    await expect(page.get_by_test_id("paid")).to_have_text(t("Thank you: your payment is confirmed."))
    await expect(page.get_by_test_id("membership-active")).to_be_visible()
    await visit.check("portal-membership-paid")
    mine = await membership_terms.member_membership(browser_db, tenant, member_id)
    assert mine.current is not None and (mine.current.product, mine.current.price) == ("plus", 9_900)
