"""Mail backends (console, SMTP through smtplib against a local fake server) and the SMS console."""

from __future__ import annotations

import dataclasses
import inspect
import socket
import threading

from lianka.platform.identity.config import IdentitySettings
from lianka.platform.identity.mail import ConsoleMailer, Mail, SmtpMailer, mailer_for
from lianka.platform.identity.sms import ConsoleSms


class FakeSmtp:
    """Just enough SMTP (no TLS, no auth) to accept one message on a loopback port."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages: list[str] = []
        self.commands: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        f = conn.makefile("rwb")

        def say(line: str) -> None:
            f.write((line + "\r\n").encode())
            f.flush()

        say("220 fake ESMTP")
        while True:
            line = f.readline().decode().rstrip("\r\n")
            if not line:
                break
            self.commands.append(line.split(" ")[0].upper())
            cmd = line.upper()
            if cmd.startswith(("EHLO", "HELO")):
                say("250 fake")
            elif cmd.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                say("250 ok")
            elif cmd == "DATA":
                say("354 go ahead")
                data = []
                while (chunk := f.readline().decode()) not in (".\r\n", ""):
                    data.append(chunk)
                self.messages.append("".join(data))
                say("250 queued")
            elif cmd == "QUIT":
                say("221 bye")
                break
        conn.close()


async def test_smtp_backend_sends_a_real_smtp_conversation() -> None:
    server = FakeSmtp()
    cfg = dataclasses.replace(
        IdentitySettings(),
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_starttls=False,
        mail_from="Lianka <no-reply@lianka.test>",
    )
    mailer = mailer_for(cfg)
    assert isinstance(mailer, SmtpMailer)
    await mailer.send(Mail("owner@example.com", "Confirm your e-mail", "Token: abc"))
    assert server.commands[:4] == ["EHLO", "MAIL", "RCPT", "DATA"]
    msg = server.messages[0]
    assert "To: owner@example.com" in msg and "Subject: Confirm your e-mail" in msg and "Token: abc" in msg


async def test_console_backends_keep_what_they_sent() -> None:
    mailer = mailer_for(IdentitySettings())
    assert isinstance(mailer, ConsoleMailer)
    await mailer.send(Mail("a@example.com", "hi", "body"))
    assert mailer.sent[-1].to == "a@example.com"
    sms = ConsoleSms()
    await sms.send("+8613800138000", "code 123456")
    last = sms.last_to("+8613800138000")
    assert last is not None and last.text == "code 123456"
    assert sms.last_to("+8613800138001") is None


async def test_send_email_actor_uses_the_configured_backend() -> None:
    from lianka.platform.identity import jobs

    handler = inspect.unwrap(jobs.send_email.fn)
    await handler(None, to="job@example.com", subject="s", body="b")
    assert ConsoleMailer.sent[-1] == Mail("job@example.com", "s", "b")
