"""Identity's dramatiq actors (imported by the worker through ``lianka.actors``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.platform.identity.mail import Mail, mailer_for
from lianka.platform.jobs import consumer
from lianka.platform.scheduler import periodic
from lianka.platform.settings import get_settings


@consumer(queue="messages")
async def send_email(uow: UnitOfWork, to: str = "", subject: str = "", body: str = "", **_: Any) -> None:
    """Deliver one e-mail queued in the outbox (``enqueue(uow, "send_email", to=…, subject=…, body=…)``)."""
    await mailer_for(get_settings().identity).send(Mail(to=to, subject=subject, body=body))


@consumer(queue="maintenance")
async def prune_identity(uow: UnitOfWork, fire_time: str = "", keep_days: int = 30, **_: Any) -> None:
    """Drop sessions that ended more than ``keep_days`` ago (every staff bearer token has one) and
    revocation entries whose tokens have expired anyway. Runs in system scope."""
    await uow.session.execute(
        text("DELETE FROM auth_sessions WHERE coalesce(revoked_at, expires_at) < now() - make_interval(days => :d)"),
        {"d": keep_days},
    )
    await uow.session.execute(text("DELETE FROM revoked_tokens WHERE expires_at < now()"))


periodic("prune-identity", "prune_identity", "37 4 * * *", queue="maintenance")
