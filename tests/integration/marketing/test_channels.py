"""Each channel against its local stand-in: Aliyun (signature v1) and Tencent (TC3-HMAC-SHA256)
accept a correctly signed SendSms and refuse a bad signature with the real error shape; SMTP
delivers to an aiosmtpd server with List-Unsubscribe and the link, and a wrong password is refused.
Sealed secrets open only under their key."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from dataclasses import replace
from email.message import Message as EmailMsg
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from lianka.platform import secrets
from lianka.tenants.marketing.channels import OPT_OUT, Message, SendFailed, aliyun, tencent
from lianka.tenants.marketing.channels.aliyun import AliyunSettings, AliyunSms
from lianka.tenants.marketing.channels.console import ConsoleChannel
from lianka.tenants.marketing.channels.smtp import SmtpChannel, SmtpSettings
from lianka.tenants.marketing.channels.standins import AliyunStandin, TencentStandin
from lianka.tenants.marketing.channels.tencent import TencentSettings, TencentSms

pytestmark = pytest.mark.integration
PHONE = "+8613912345678"


async def test_aliyun_signed_request_accepted_and_bad_signature_refused() -> None:
    standin = AliyunStandin(keys={"LTAI5tKey": "right-secret"})
    async with standin.serve() as url:
        good = AliyunSms(AliyunSettings("LTAI5tKey", "right-secret", "链卡", "SMS_100", endpoint=url))
        receipt = await good.send(Message("sms", PHONE, "周末双倍积分", key="camp-1:m-1"))
        assert receipt.provider == "aliyun" and receipt.raw["Code"] == "OK"
        [accepted] = standin.accepted
        assert (accepted.message_id, accepted.phone) == (receipt.message_id, "13912345678")
        assert accepted.text == f"周末双倍积分 {OPT_OUT}" and accepted.reference == "camp-1:m-1"
        bad = AliyunSms(AliyunSettings("LTAI5tKey", "wrong-secret", "链卡", "SMS_100", endpoint=url))
        with pytest.raises(SendFailed) as e:
            await bad.send(Message("sms", PHONE, "x"))
        assert (e.value.code, e.value.retryable) == ("SignatureDoesNotMatch", False)
        unknown = AliyunSms(AliyunSettings("nobody", "right-secret", "链卡", "SMS_100", endpoint=url))
        with pytest.raises(SendFailed) as e:
            await unknown.send(Message("sms", PHONE, "x"))
        assert e.value.code == "InvalidAccessKeyId.NotFound"
    assert standin.refused == ["SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound"]
    assert len(standin.accepted) == 1


def test_aliyun_signature_matches_the_documented_example() -> None:
    """The worked example of Aliyun's RPC signature documentation (secret ``testsecret``)."""
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert aliyun.signature(params, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


async def test_tencent_signed_request_accepted_and_bad_signature_refused() -> None:
    standin = TencentStandin(keys={"AKIDexample": "right-key"})
    async with standin.serve() as url:
        good = TencentSms(TencentSettings("AKIDexample", "right-key", "1400006666", "链卡", "449739", endpoint=url))
        receipt = await good.send(Message("sms", PHONE, "会员日", key="k-7"))
        [accepted] = standin.accepted
        assert receipt.message_id == accepted.message_id and accepted.phone == PHONE
        assert accepted.text == f"会员日 {OPT_OUT}" and accepted.reference == "k-7"
        bad = TencentSms(TencentSettings("AKIDexample", "wrong-key", "1400006666", "链卡", "449739", endpoint=url))
        with pytest.raises(SendFailed) as e:
            await bad.send(Message("sms", PHONE, "x"))
        assert e.value.code == "AuthFailure.SignatureFailure" and not e.value.retryable
    assert standin.refused == ["AuthFailure.SignatureFailure"] and len(standin.accepted) == 1


def test_tencent_signature_is_the_tc3_chain() -> None:
    """Independent of our helper: the TC3 chain written out for one fixed request."""
    import hashlib
    import hmac

    body = b'{"a":1}'
    canonical = (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:sms.tencentcloudapi.com\n"
        "x-tc-action:sendsms\n\ncontent-type;host;x-tc-action\n" + hashlib.sha256(body).hexdigest()
    )
    to_sign = (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/sms/tc3_request\n" + hashlib.sha256(canonical.encode()).hexdigest()
    )

    def h(k: bytes, m: str) -> bytes:
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    key = h(h(h(b"TC3secret", "2019-02-25"), "sms"), "tc3_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    got = tencent.signature("secret", host="sms.tencentcloudapi.com", action="SendSms", body=body, timestamp=1551113065)
    assert got == expected


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMsg] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"right-password")
    return AuthResult(success=ok, handled=False)


async def test_smtp_delivers_with_unsubscribe_and_refuses_a_bad_password() -> None:
    inbox, port = _Inbox(), _free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False)
    await asyncio.to_thread(server.start)
    try:
        settings = SmtpSettings("127.0.0.1", port, "店铺 <shop@example.com>", "shop", "right-password", security="none")
        link = "https://lianka.example/m/shop/unsubscribe?m=1&c=email&s=sig"
        receipt = await SmtpChannel(settings).send(
            Message("email", "member@example.com", "本周会员日", subject="会员日", unsubscribe_url=link, key="c1-m1")
        )
        [got] = inbox.messages
        assert got["List-Unsubscribe"] == f"<{link}>"
        assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got["Message-ID"] == receipt.message_id and "c1-m1" in receipt.message_id
        body = got.get_payload(decode=True)
        assert isinstance(body, bytes) and link in body.decode() and "本周会员日" in body.decode()
        wrong = SmtpSettings("127.0.0.1", port, "shop@example.com", "shop", "wrong", security="none")
        with pytest.raises(SendFailed) as e:
            await SmtpChannel(wrong).send(Message("email", "member@example.com", "x", subject="x"))
        assert e.value.code == "auth" and len(inbox.messages) == 1
    finally:
        await asyncio.to_thread(server.stop)


async def test_console_backend_logs_with_opt_out() -> None:
    ch = ConsoleChannel()
    await ch.send(Message("sms", PHONE, "hi"))
    sms = ch.sms.last_to(PHONE)
    assert sms is not None and sms.text == f"hi {OPT_OUT}"


def test_sealed_secrets_open_only_under_their_key(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr(secrets, "get_settings", lambda: replace(settings, secrets_key="key-one-" + "x" * 32))
    token = secrets.seal("AccessKeySecret")
    assert token.startswith("v1.") and "AccessKeySecret" not in token
    assert secrets.open_sealed(token) == "AccessKeySecret"
    assert secrets.seal("AccessKeySecret") != token  # a fresh nonce each time
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(secrets.SealError):
        secrets.open_sealed(tampered)
    monkeypatch.setattr(secrets, "get_settings", lambda: replace(settings, secrets_key="key-two-" + "y" * 32))
    with pytest.raises(secrets.SealError):
        secrets.open_sealed(token)
