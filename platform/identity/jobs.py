"""Identity's dramatiq actors (imported by the worker through ``lianka.actors``)."""

from __future__ import annotations

from typing import Any

from lianka.platform.db import UnitOfWork
from lianka.platform.identity.mail import Mail, mailer_for
from lianka.platform.jobs import consumer
from lianka.platform.settings import get_settings


@consumer(queue="messages")
async def send_email(uow: UnitOfWork, to: str = "", subject: str = "", body: str = "", **_: Any) -> None:
    """Deliver one e-mail queued in the outbox (``enqueue(uow, "send_email", to=…, subject=…, body=…)``)."""
    await mailer_for(get_settings().identity).send(Mail(to=to, subject=subject, body=body))
