"""Settings → Webhooks in the console: the owner subscribes (the secret is shown once, sealed at rest),
a refused URL is explained beside its field, a test send and a replay land in the delivery log with
each attempt; an admin may manage them, a manager and an analyst may not see them; another merchant's
delivery is a 404."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from tests.api import webhook_receiver
from tests.api.test_console import menu_of, sign_in_console
from tests.api.test_webhooks import deliver_queued

pytestmark = pytest.mark.integration


async def test_the_owner_subscribes_tests_and_replays(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Database
) -> None:
    tenant, other = await tenant_factory(), await tenant_factory()
    receiver = webhook_receiver.start()
    try:
        owner = await sign_in_console(client, auth_kit, tenant, "owner")
        page = await owner.get("/console/settings/webhooks")
        assert page.status_code == 200 and "/console/settings/webhooks" in menu_of(page.text)
        r = await owner.post(
            "/console/settings/webhooks", {"url": "ftp://127.0.0.1/x", "events": ["sale.recorded"]}, htmx=True
        )
        assert r.status_code == 400 and 'id="f-url-error"' in r.text, r.text
        r = await owner.post(
            "/console/settings/webhooks", {"url": receiver.url, "events": [], "description": "ERP"}, htmx=True
        )
        assert r.status_code == 400 and 'id="f-events-error"' in r.text
        r = await owner.post(
            "/console/settings/webhooks",
            {"url": receiver.url, "events": ["sale.recorded", "member.joined"], "description": "ERP"},
            htmx=True,
        )
        assert r.status_code == 200 and 'data-testid="webhook-secret"' in r.text
        secret = re.search(r'value="(whsec_[^"]+)" data-testid="webhook-secret"', r.text)
        assert secret is not None
        page = (await owner.get("/console/settings/webhooks")).text
        assert secret.group(1) not in page and receiver.url in page  # shown once
        sub = re.search(r'data-subscription="([0-9a-f-]+)"', page)
        assert sub is not None

        r = await owner.post(f"/console/settings/webhooks/{sub.group(1)}/test", {}, htmx=True)
        assert r.status_code == 200 and "webhook.test" in r.text
        assert await deliver_queued(db, tenant) == 1 and len(receiver.requests) == 1
        page = (await owner.get("/console/settings/webhooks")).text
        delivery = re.search(r'data-delivery="([0-9a-f-]+)" data-status="delivered"', page)
        assert delivery is not None
        detail = await owner.get(f"/console/settings/webhooks/deliveries/{delivery.group(1)}")
        assert detail.status_code == 200 and "answer 200" in detail.text
        r = await owner.post(f"/console/settings/webhooks/deliveries/{delivery.group(1)}/replay", {}, htmx=True)
        assert r.status_code == 200
        assert await deliver_queued(db, tenant) == 1
        first, again = receiver.requests
        assert first.body == again.body and first.headers["lianka-event-id"] == again.headers["lianka-event-id"]

        r = await owner.post(f"/console/settings/webhooks/{sub.group(1)}/active", {"active": "off"}, htmx=True)
        assert r.status_code == 200 and 'data-testid="webhook-status">关' in r.text, r.text
        async with db.uow(tenant) as uow:
            assert await uow.session.scalar(text("SELECT active FROM webhook_subscriptions")) is False

        # roles: an admin manages; a manager and an analyst neither see nor change
        admin = await sign_in_console(client, auth_kit, tenant, "admin")
        assert (await admin.get("/console/settings/webhooks")).status_code == 200
        for role in ("manager", "analyst"):
            staff = await sign_in_console(
                client, auth_kit, tenant, role, (await auth_kit.branch(tenant),) if role == "manager" else ()
            )
            page = await staff.get("/console/settings/webhooks")
            assert page.status_code == 403
            assert (await staff.post(f"/console/settings/webhooks/{sub.group(1)}/test", {})).status_code == 403
        stranger = await sign_in_console(client, auth_kit, other, "owner")
        assert (await stranger.get(f"/console/settings/webhooks/deliveries/{delivery.group(1)}")).status_code == 404
        r = await stranger.post(f"/console/settings/webhooks/deliveries/{delivery.group(1)}/replay", {})
        assert r.status_code == 404
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
