"""Settings → Webhooks in the console, in zh-CN and English, end to end: the owner subscribes a local
receiver (the served app runs in development settings, where a loopback receiver is allowed), copies
the secret shown once, sends a test — the served relay and worker post it, signed — and finds it in the
delivery log with its attempt; a replay sends the same event id again.

Screenshots land in tests/browser/artifacts/<language>/console-webhooks-*.png."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from playwright.async_api import expect

from lianka.platform.webhooks import domain
from lianka.web.console.i18n import Language
from tests.api import webhook_receiver
from tests.browser.conftest import make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in


async def _received(receiver: webhook_receiver.Receiver, count: int) -> None:
    deadline = time.monotonic() + 30  # the relay and the worker are separate processes on shared cores
    while len(receiver.requests) < count:
        assert time.monotonic() < deadline, f"the receiver got {len(receiver.requests)} of {count} requests"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("lang", LANGS)
async def test_the_owner_subscribes_sends_a_test_and_replays(open_page: OpenPage, browser_db: Any, lang: str) -> None:
    tenant, _ = await make_merchant(browser_db, "一点茶 Yidian Tea")
    email = await make_staff(browser_db, tenant, "owner")
    receiver = webhook_receiver.start()
    try:
        visit = await open_page(lang)
        page, t = visit.page, Language(lang).gettext
        await sign_in(visit, email)
        await visit.goto("/console/settings/webhooks")
        await expect(page.get_by_role("heading", name=t("Webhooks"), exact=True)).to_be_visible()
        await visit.check("console-webhooks-empty")

        await page.get_by_test_id("new-webhook").click()
        await page.fill("#f-url", "http://10.0.0.8/hooks")
        await page.get_by_test_id("create-webhook").click()
        await expect(page.locator("#f-url-error")).to_be_visible()  # a private address: refused beside the field
        await visit.check("console-webhooks-refused")

        await page.fill("#f-url", receiver.url)
        await page.fill("#f-description", "ERP")
        await page.get_by_label(t("A member joins")).check()
        await page.get_by_test_id("create-webhook").click()
        secret = await page.get_by_test_id("webhook-secret").input_value()
        assert secret.startswith("whsec_")
        await visit.check("console-webhooks-secret")

        await page.get_by_test_id("webhook-test").click()
        await expect(page.get_by_role("status")).to_have_text(
            t("Test event queued: it appears in the delivery log below.")
        )
        await _received(receiver, 1)
        got = receiver.requests[0]
        assert domain.verify(secret, got.headers["lianka-signature"], got.body, int(time.time()))
        assert json.loads(got.body)["type"] == "webhook.test"
        await visit.goto("/console/settings/webhooks")
        await expect(page.locator("tr[data-status=delivered]")).to_have_count(1)
        assert secret not in await page.content()  # shown once
        await visit.check("console-webhooks-log")

        await page.get_by_test_id("delivery-details").first.click()
        await expect(page.get_by_test_id("webhook-attempts")).to_contain_text("answer 200")
        await expect(page.get_by_test_id("event-id")).to_have_text(got.headers["lianka-event-id"])
        await visit.check("console-webhooks-delivery")

        await visit.goto("/console/settings/webhooks")
        await page.get_by_test_id("delivery-replay").first.click()
        await expect(page.get_by_role("status")).to_have_text(
            t("The event is being sent again, with the same event id.")
        )
        await _received(receiver, 2)
        assert receiver.requests[1].headers["lianka-event-id"] == got.headers["lianka-event-id"]
        assert receiver.requests[1].body == got.body
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
