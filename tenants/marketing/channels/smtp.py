"""Marketing e-mail over SMTP (aiosmtplib): plain text (and HTML when given), a ``List-Unsubscribe``
header with the portal link plus RFC 8058 one-click, and the link in the body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from lianka.tenants.marketing.channels import Message, ProviderReceipt, SendFailed

#: CRLF line ends; headers unfolded up to RFC 5322's 998 characters (a long unsubscribe URL stays whole)
_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    #: "starttls" (submission, 587), "tls" (implicit, 465) or "none" (a local relay or test server)
    security: str = "starttls"
    timeout: float = 30.0


def build(message: Message, sender: str) -> EmailMessage:
    mail = EmailMessage(policy=_POLICY)
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "lianka.local"
    mail["Message-ID"] = make_msgid(idstring=message.key or uuid.uuid4().hex, domain=domain)
    text = message.text
    if message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = f"{text}\n\n退订 / Unsubscribe: {message.unsubscribe_url}\n"
    mail.set_content(text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    return mail


class SmtpChannel:
    provider = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: Message) -> ProviderReceipt:
        s = self.settings
        mail = build(message, s.sender)
        try:
            response = await aiosmtplib.send(
                mail.as_bytes(),
                sender=parseaddr(s.sender)[1],
                recipients=[parseaddr(message.to)[1]],
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            raise SendFailed(self.provider, "recipient-refused", str(e), retryable=False) from e
        except aiosmtplib.SMTPAuthenticationError as e:
            raise SendFailed(self.provider, "auth", str(e), retryable=False) from e
        except (aiosmtplib.SMTPException, OSError) as e:
            raise SendFailed(self.provider, "unavailable", str(e), retryable=True) from e
        return ProviderReceipt(self.provider, str(mail["Message-ID"]), datetime.now(UTC), {"smtp": str(response[1])})
