"""Outgoing e-mail: a console backend for development and tests, SMTP (stdlib ``smtplib``) when
``LIANKA_SMTP_HOST`` is set. Messages are queued through the outbox (actor ``send_email``), so a
rolled-back transaction sends nothing."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import ClassVar, Protocol

from lianka.platform.identity.config import IdentitySettings
from lianka.platform.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class ConsoleMailer:
    """Logs each message (and keeps the last few, for tests and the dev console)."""

    sent: ClassVar[deque[Mail]] = deque(maxlen=200)

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)
        log.info("mail (console backend)", to=mail.to, subject=mail.subject, body=mail.body)


class SmtpMailer:
    def __init__(self, cfg: IdentitySettings) -> None:
        self.cfg = cfg

    def _build(self, mail: Mail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.cfg.mail_from
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg.set_content(mail.body)
        return msg

    def _send_sync(self, mail: Mail) -> None:
        with smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            if self.cfg.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.cfg.smtp_user:
                smtp.login(self.cfg.smtp_user, self.cfg.smtp_password)
            smtp.send_message(self._build(mail))

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send_sync, mail)


def mailer_for(cfg: IdentitySettings) -> Mailer:
    if cfg.mail_backend == "smtp":
        if not cfg.smtp_host:
            raise RuntimeError("LIANKA_MAIL_BACKEND=smtp needs LIANKA_SMTP_HOST")
        return SmtpMailer(cfg)
    return ConsoleMailer()
