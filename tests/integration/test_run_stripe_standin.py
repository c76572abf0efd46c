"""`lianka run` (what `make run` calls) without a Stripe key starts the local Stripe stand-in: an
owner subscribes, the stand-in's checkout page takes the "payment", its signed webhook reaches the
running web app, the worker applies it, and the subscription is active — no Stripe account needed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from lianka.billing.devstripe import local_stripe
from lianka.billing.stripe_standin import StripeStandin
from lianka.platform.settings import Settings
from tests.integration.test_run_command import _free_port, _wait_ready

pytestmark = pytest.mark.integration


def test_without_a_key_there_is_a_stand_in_and_with_one_there_is_none(settings: Settings) -> None:
    from dataclasses import replace

    bare = replace(settings, stripe_secret_key="", host="0.0.0.0", port=8123)  # noqa: S104
    local = local_stripe(bare, ["lianka"], port=12999)
    assert local is not None and local.base_url == "http://127.0.0.1:12999"
    assert local.env["LIANKA_STRIPE_API_BASE"] == local.base_url
    assert local.env["LIANKA_STRIPE_SECRET_KEY"].startswith("sk_test_standin_")
    assert local.command[-1] == "http://127.0.0.1:8123/api/v1/billing/webhooks/stripe"
    other = local_stripe(bare, ["lianka"], port=12999)
    assert other is not None and other.env["LIANKA_STRIPE_SECRET_KEY"] != local.env["LIANKA_STRIPE_SECRET_KEY"]
    assert local_stripe(replace(bare, stripe_secret_key="sk_live_x"), ["lianka"]) is None


def test_the_stand_in_keeps_its_objects_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "stripe-standin.json"
    first = StripeStandin(api_key="sk", webhook_secret="wh", state_file=state)
    customer = first.create_customer({"metadata": {"tenant_id": "t"}})
    first.save()
    again = StripeStandin(api_key="sk2", webhook_secret="wh2", state_file=state)
    again.load()
    assert again.customers[customer["id"]]["metadata"] == {"tenant_id": "t"}
    assert again.now() > customer["created"]  # its clock never goes back


PASSWORD = "a long passphrase"


@pytest.fixture
async def owner_email(db: Any, tenant_factory: Any) -> str:
    """An owner who signs in with ``PASSWORD`` (`lianka run` serves the suite's database here)."""
    from lianka.platform.identity.passwords import hash_password

    tenant = await tenant_factory("Run 商户")
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    async with db.uow(system=True) as uow:
        uid = await uow.session.scalar(
            text(
                "INSERT INTO staff_users (email, password_hash, email_verified_at) VALUES (:e, :h, now()) RETURNING id"
            ),
            {"e": email, "h": await hash_password(PASSWORD)},
        )
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO staff_memberships (tenant_id, user_id, role, branch_ids) VALUES (:t, :u, 'owner', '{}')"),
            {"t": tenant, "u": uid},
        )
        await uow.commit()
    return email


def test_make_run_subscribe_pay_active(project_root: Path, tmp_path: Path, owner_email: str) -> None:
    port, log = _free_port(), tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANKA_STRIPE_")}
    env["LIANKA_PORT"] = str(port)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lianka.cli", "run"], cwd=project_root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(port, proc, log)
        found = re.search(r"local Stripe stand-in on (http://\S+)", log.read_text())
        assert found, log.read_text()[-3000:]
        standin = found.group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as app:
            signed = app.post("/api/v1/auth/session", json={"email": owner_email, "password": PASSWORD})
            assert signed.status_code == 200, signed.text
            headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
            checkout = None
            deadline = time.monotonic() + 30
            while checkout is None or checkout.status_code != 200:  # the stand-in may still be starting
                assert time.monotonic() < deadline, (checkout.text if checkout else "", log.read_text()[-3000:])
                checkout = app.post("/api/v1/billing/checkout", json={"plan": "shop"}, headers=headers)
                time.sleep(0.3)
            url = checkout.json()["url"]
            assert url.startswith(standin + "/checkout/")
            page = httpx.get(url)
            assert page.status_code == 200 and "Pay" in page.text
            paid = httpx.post(url + "/pay")
            assert paid.status_code == 303 and "/console/billing?billing=subscribed" in paid.headers["location"]
            deadline = time.monotonic() + 60
            while (status := app.get("/api/v1/billing/subscription", headers=headers).json())["status"] != "active":
                assert time.monotonic() < deadline, (status, log.read_text()[-3000:])
                time.sleep(0.5)
            assert status["plan"]["code"] == "shop"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
