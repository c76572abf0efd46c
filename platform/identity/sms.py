"""SMS: the channel interface and the development backend that logs messages.

A production gateway (Aliyun SMS, Tencent Cloud SMS, Twilio …) implements :class:`SmsChannel`.
One-time codes are sent directly, not through the outbox: they live in Redis for minutes, belong to
no database transaction, and a user waiting at a login screen should not wait for a relay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from lianka.platform.identity.config import IdentitySettings
from lianka.platform.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Sms:
    phone: str
    text: str


class SmsChannel(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class ConsoleSms:
    """Logs each message and keeps the last few (tests read codes from ``sent``)."""

    def __init__(self) -> None:
        self.sent: deque[Sms] = deque(maxlen=200)

    async def send(self, phone: str, text: str) -> None:
        self.sent.append(Sms(phone, text))
        log.info("sms (console backend)", phone=phone, text=text)

    def last_to(self, phone: str) -> Sms | None:
        return next((m for m in reversed(self.sent) if m.phone == phone), None)


def sms_channel_for(cfg: IdentitySettings) -> SmsChannel:
    if cfg.sms_backend != "console":
        raise RuntimeError(f"unknown SMS backend {cfg.sms_backend!r}; only 'console' ships with Lianka")
    return ConsoleSms()
