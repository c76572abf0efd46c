"""``lianka run`` without Stripe keys: a local Stripe stand-in, so a newcomer can click Subscribe →
the stand-in's checkout page → Pay → the console shows Active, with no Stripe account.

:func:`local_stripe` picks a free port and generates a secret key and a webhook secret (fresh each
run: nothing real can be reached with them), and answers the environment the web app and the
worker inherit (``LIANKA_STRIPE_*``) and the command that serves the stand-in, which POSTs its
signed events to the running web app's webhook endpoint. Its objects (customers, subscriptions,
invoices) are kept in ``<data dir>/stripe-standin.json``, so a merchant's Stripe customer survives a
restart; ``make clean-data`` forgets them with the database. With ``LIANKA_STRIPE_SECRET_KEY`` set,
``run`` starts none of this and talks to Stripe (or whatever ``LIANKA_STRIPE_API_BASE`` names).
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass

from lianka.platform.settings import Settings

WEBHOOK_PATH = "/api/v1/billing/webhooks/stripe"


@dataclass(frozen=True)
class LocalStripe:
    base_url: str
    env: dict[str, str]
    command: list[str]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def local_stripe(settings: Settings, exe: list[str], *, port: int | None = None) -> LocalStripe | None:
    """The stand-in to start for ``settings``, or ``None`` when a real Stripe key is configured."""
    if settings.stripe_secret_key:
        return None
    host = "127.0.0.1"
    port = port or free_port(host)
    key = "sk_test_standin_" + secrets.token_hex(16)
    whsec = "whsec_standin_" + secrets.token_hex(16)
    base = f"http://{host}:{port}"
    app_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    webhook_url = f"http://{app_host}:{settings.port}{WEBHOOK_PATH}"
    env = {"LIANKA_STRIPE_SECRET_KEY": key, "LIANKA_STRIPE_WEBHOOK_SECRET": whsec, "LIANKA_STRIPE_API_BASE": base}
    state = settings.data_dir / "stripe-standin.json"  # Stripe's side survives a restart of `lianka run`
    command = [
        *exe,
        "billing",
        "standin",
        "--host",
        host,
        "--port",
        str(port),
        "--state-file",
        str(state),
        "--webhook-url",
        webhook_url,
    ]
    return LocalStripe(base, env, command)
