"""Delivery channels: one protocol, ``send(message) -> ProviderReceipt``, and its implementations —
SMTP e-mail (``smtp.py``), Aliyun SMS (``aliyun.py``), Tencent Cloud SMS (``tencent.py``), WeChat subscribe messages (``wechat.py``) and the
development backend that logs (``console.py``). Local stand-ins for the SMS and WeChat APIs, which verify the
signatures like the real services and post delivery receipts back, are in ``standins.py``.

Every SMS carries the opt-out "回复TD退订" (:func:`with_opt_out`); every e-mail a ``List-Unsubscribe``
header and link. A send is at-least-once: ``Message.key`` is passed to the provider as its
client-side reference (Aliyun ``OutId``, Tencent ``SessionContext``, the e-mail's ``Message-ID``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

OPT_OUT = "回复TD退订"


@dataclass(frozen=True)
class Message:
    """One message to one recipient: ``to`` is an E.164 phone (SMS), an e-mail address, or the
    member's openid at the merchant's WeChat app (a subscribe message)."""

    channel: Literal["sms", "email", "wechat"]
    to: str
    text: str
    subject: str = ""
    html: str | None = None
    #: the portal link that withdraws this channel's consent at once (e-mail: also the header)
    unsubscribe_url: str = ""
    #: the sender's reference for this message (idempotency; echoed by providers in receipts)
    key: str = ""


@dataclass(frozen=True)
class ProviderReceipt:
    """The provider accepted the message: its id for it (receipts refer to it) and when."""

    provider: str
    message_id: str
    accepted_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)


class SendFailed(Exception):
    """The provider refused or could not be reached; ``retryable`` says whether trying later may help."""

    def __init__(self, provider: str, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{provider}: {code}: {message}")
        self.provider, self.code, self.retryable = provider, code, retryable


class Channel(Protocol):
    provider: str

    async def send(self, message: Message) -> ProviderReceipt: ...


def with_opt_out(text: str) -> str:
    """The SMS text with the opt-out instruction the rules require (added once)."""
    text = text.rstrip()
    return text if text.endswith(OPT_OUT) else f"{text} {OPT_OUT}"
