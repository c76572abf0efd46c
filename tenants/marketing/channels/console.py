"""The development backend: logs each message (SMS through the identity area's console SMS, which
keeps the last few for tests) and accepts it at once."""

from __future__ import annotations

import uuid
from collections import deque
from datetime import UTC, datetime

from lianka.platform.identity.sms import ConsoleSms
from lianka.platform.log import get_logger
from lianka.tenants.marketing.channels import Message, ProviderReceipt, with_opt_out

log = get_logger(__name__)


class ConsoleChannel:
    provider = "console"

    def __init__(self, sms: ConsoleSms | None = None) -> None:
        self.sms = sms or ConsoleSms()
        self.mail: deque[Message] = deque(maxlen=200)

    async def send(self, message: Message) -> ProviderReceipt:
        if message.channel == "sms":
            await self.sms.send(message.to, with_opt_out(message.text))
        elif message.channel == "wechat":
            log.info("wechat subscribe message (console backend)", to=message.to, text=message.text)
        else:
            self.mail.append(message)
            log.info(
                "e-mail (console backend)", to=message.to, subject=message.subject, unsubscribe=message.unsubscribe_url
            )
        return ProviderReceipt(self.provider, f"console-{uuid.uuid4().hex}", datetime.now(UTC))
