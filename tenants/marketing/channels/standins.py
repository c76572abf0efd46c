"""Local stand-ins for Aliyun SMS, Tencent Cloud SMS and the WeChat subscribe-message API, for tests
and local runs: each VERIFIES the request (signature, access token) the way the real service does
(and refuses a bad one with the real error shape), records what it accepted, and — for SMS — posts
delivery receipts (:meth:`deliver_receipts`) and member replies such as "TD" (:meth:`send_reply`)
in the shapes the real services push them.

Served with uvicorn in the caller's event loop (``async with standin.serve() as url``), like the
Stripe stand-in (``billing/stripe_standin``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import httpx
from litestar import Litestar, Request, Response, post

from lianka.tenants.marketing.channels import aliyun, tencent, wechat

Obj = dict[str, Any]
_CHINA = ZoneInfo("Asia/Shanghai")


@dataclass
class Accepted:
    """A message the stand-in accepted: its id, phone and text."""

    message_id: str
    phone: str
    text: str
    reference: str
    sign: str = ""


@dataclass
class _Served(abc.ABC):
    """A stand-in served locally: its HTTP face (:meth:`app`) and what it refused."""

    refused: list[str] = field(default_factory=list)
    base: str = ""

    @abc.abstractmethod
    def app(self) -> Litestar:
        """The provider's HTTP face."""

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(self.app(), host=host, port=port, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        self.base = f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            yield self.base
        finally:
            server.should_exit = True
            await task


@dataclass
class _Standin(_Served):
    """What both SMS stand-ins share (the accepted list, receipts and replies pushed back); each
    provider's subclass speaks its own protocol (:meth:`app`), receipt and reply shapes."""

    receipt_url: str = ""
    reply_url: str = ""
    accepted: list[Accepted] = field(default_factory=list)
    replies_sent: int = 0

    def sign_for(self, phone: str) -> str:
        """The signature of the last message this phone was sent ('' when none)."""
        digits = phone.removeprefix("+86")
        return next((a.sign for a in reversed(self.accepted) if a.phone.removeprefix("+86") == digits), "")

    @abc.abstractmethod
    def reply(self, phone: str, text: str, *, sign: str, extension: str, reply_id: int) -> Any:
        """The push of one member's reply, in the provider's shape."""

    async def send_reply(self, phone: str, text: str, *, sign: str | None = None, extension: str = "",
                         reply_id: int | None = None) -> httpx.Response:  # fmt: skip
        """POST a member's reply to ``reply_url`` (the sign defaults to that of the last message the
        phone got); ``reply_id`` repeats an earlier push (the provider's retry)."""
        if reply_id is None:
            self.replies_sent += 1
            reply_id = int(time.time()) * 1000 + self.replies_sent
        body = self.reply(phone, text, sign=self.sign_for(phone) if sign is None else sign, extension=extension,
                          reply_id=reply_id)  # fmt: skip
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(self.reply_url, json=body)

    @abc.abstractmethod
    def receipts(self, *, failed: frozenset[str] = frozenset()) -> list[Obj]:
        """The delivery receipts for what was accepted, in the provider's shape."""

    async def deliver_receipts(self, *, failed: frozenset[str] = frozenset()) -> httpx.Response:
        """POST a receipt for every accepted message (those in ``failed`` as undelivered)."""
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(self.receipt_url, json=self.receipts(failed=failed))


@dataclass
class AliyunStandin(_Standin):
    """``POST /`` with ``Action=SendSms``: signature v1 checked against ``keys`` (id → secret)."""

    keys: dict[str, str] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    #: refuse the next ``throttle`` sends with the flow-control error (retryable)
    throttle: int = 0

    def _error(self, status: int, code: str, message: str) -> Response[Obj]:
        self.refused.append(code)
        return Response({"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message, "HostId":
                         "dysmsapi.aliyuncs.com"}, status_code=status)  # fmt: skip

    def app(self) -> Litestar:
        @post("/", status_code=200)
        async def rpc(request: Request[Any, Any, Any]) -> Response[Obj]:
            params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            secret = self.keys.get(params.get("AccessKeyId", ""))
            if secret is None:
                return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
            expected = aliyun.signature(params, secret)
            if not hmac.compare_digest(expected, params.get("Signature", "")):
                return self._error(
                    400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
                )
            try:
                stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                return self._error(400, "MissingTimestamp", "Timestamp is mandatory for this action.")
            if abs((datetime.now(UTC) - stamp).total_seconds()) > 900:
                return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
            if params.get("SignatureNonce", "") in self.nonces:
                return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces.add(params.get("SignatureNonce", ""))
            if params.get("Action") != "SendSms" or params.get("Version") != aliyun.API_VERSION:
                return self._error(400, "InvalidAction.NotFound", "Specified api is not found.")
            if not re.fullmatch(r"1[0-9]{10}", params.get("PhoneNumbers", "")):
                return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
            if self.throttle > 0:  # the account's flow control (what a burst past the quota gets)
                self.throttle -= 1
                return self._error(200, "isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10")
            text = json.loads(params.get("TemplateParam", "{}")).get("content", "")
            biz_id = f"{int(time.time() * 1000)}^{len(self.accepted) + 1}"
            self.accepted.append(
                Accepted(biz_id, params["PhoneNumbers"], text, params.get("OutId", ""), params.get("SignName", ""))
            )
            return Response({"RequestId": str(uuid.uuid4()).upper(), "Code": "OK", "Message": "OK", "BizId": biz_id})

        return Litestar([rpc], debug=False)

    def reply(self, phone: str, text: str, *, sign: str, extension: str, reply_id: int) -> Any:
        """SmsUp, HTTP batch push: a JSON array; Beijing time; ``sequence_id`` identifies the reply."""
        now = datetime.now(UTC).astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S")
        return [{"phone_number": phone.removeprefix("+86"), "send_time": now, "content": text, "sign_name": sign,
                 "dest_code": extension, "sequence_id": reply_id}]  # fmt: skip

    def receipts(self, *, failed: frozenset[str] = frozenset()) -> list[Obj]:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": a.phone,
                "send_time": now,
                "report_time": now,
                "success": a.message_id not in failed,
                "err_code": "DELIVERED" if a.message_id not in failed else "MK:0001",
                "err_msg": "用户接收成功" if a.message_id not in failed else "用户终端异常",
                "sms_size": "1",
                "biz_id": a.message_id,
                "out_id": a.reference,
            }
            for a in self.accepted
        ]


_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/sms/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


@dataclass
class TencentStandin(_Standin):
    """``POST /`` with ``X-TC-Action: SendSms``: TC3-HMAC-SHA256 checked against ``keys`` (id → key)."""

    keys: dict[str, str] = field(default_factory=dict)

    def _error(self, code: str, message: str) -> Response[Obj]:
        self.refused.append(code)
        return Response({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}})

    def app(self) -> Litestar:
        @post("/", status_code=200)
        async def api(request: Request[Any, Any, Any]) -> Response[Obj]:
            body = await request.body()
            h = request.headers
            found = _AUTH.fullmatch(h.get("authorization", ""))
            if found is None:
                return self._error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
            secret = self.keys.get(found["id"])
            if secret is None:
                return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
            try:
                stamp = int(h.get("x-tc-timestamp", ""))
            except ValueError:
                return self._error("MissingParameter", "The request is missing a required parameter `Timestamp`.")
            if abs(time.time() - stamp) > 300:
                return self._error("AuthFailure.SignatureExpire", "Request has expired.")
            expected = tencent.signature(
                secret,
                host=h.get("host", ""),
                action=h.get("x-tc-action", ""),
                body=body,
                timestamp=stamp,
                content_type=h.get("content-type", ""),
            )
            if found["headers"] != tencent.SIGNED_HEADERS or not hmac.compare_digest(expected, found["sig"]):
                return self._error(
                    "AuthFailure.SignatureFailure",
                    "The provided credentials could not be validated. Please check your signature is correct.",
                )
            if h.get("x-tc-action") != "SendSms" or h.get("x-tc-version") != tencent.API_VERSION:
                return self._error("InvalidAction", "The action requested is not supported.")
            req = json.loads(body)
            statuses = []
            for phone in req.get("PhoneNumberSet", []):
                serial = f"2433:{uuid.uuid4().int % 10**20}"
                self.accepted.append(
                    Accepted(
                        serial,
                        phone,
                        (req.get("TemplateParamSet") or [""])[0],
                        req.get("SessionContext", ""),
                        req.get("SignName", ""),
                    )
                )
                statuses.append({"SerialNo": serial, "PhoneNumber": phone, "Fee": 1, "SessionContext":
                                 req.get("SessionContext", ""), "Code": "Ok", "Message": "send success",
                                 "IsoCode": "CN"})  # fmt: skip
            return Response({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

        return Litestar([api], debug=False)

    def reply(self, phone: str, text: str, *, sign: str, extension: str, reply_id: int) -> Any:
        """The reply callback: one JSON object, ``time`` in Unix seconds (Tencent sends no reply id)."""
        del reply_id
        return {"extend": extension, "mobile": phone.removeprefix("+86"), "nationcode": "86", "sign": sign,
                "text": text, "time": int(time.time())}  # fmt: skip

    def receipts(self, *, failed: frozenset[str] = frozenset()) -> list[Obj]:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "user_receive_time": now,
                "nationcode": "86",
                "mobile": a.phone.removeprefix("+86"),
                "report_status": "SUCCESS" if a.message_id not in failed else "FAIL",
                "errmsg": "DELIVRD" if a.message_id not in failed else "MK:0001",
                "description": "用户短信送达成功" if a.message_id not in failed else "用户终端异常",
                "sid": a.message_id,
                "ext": {"session_context": a.reference},
            }
            for a in self.accepted
        ]


@dataclass
class WechatAccepted:
    msgid: int
    openid: str
    template_id: str
    page: str
    data: dict[str, Any]


@dataclass
class WechatStandin(_Served):
    """``POST /cgi-bin/stable_token`` and ``POST /cgi-bin/message/subscribe/send``: the app's secret
    (``apps``: appid → secret), the access token, the template and its fields (``templates``: id →
    field keys), each value's length for its field type, and the member's one-time subscriptions
    (``subscriptions``: (openid, template) → count; none left is ``43101``) are checked."""

    apps: dict[str, str] = field(default_factory=dict)
    templates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)
    accepted: list[WechatAccepted] = field(default_factory=list)
    #: token → (appid, expiry in time.time())
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    token_requests: int = 0
    #: how long a token lives (seconds)
    expires_in: int = 7200

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (the next send gets ``42001``)."""
        self.tokens = {t: (app, 0.0) for t, (app, _) in self.tokens.items()}

    def subscribe(self, openid: str, template_id: str, n: int = 1) -> None:
        key = (openid, template_id)
        self.subscriptions[key] = self.subscriptions.get(key, 0) + n

    def _error(self, code: int, message: str) -> Response[Obj]:
        self.refused.append(str(code))
        return Response({"errcode": code, "errmsg": f"{message} rid: {uuid.uuid4().hex[:24]}"})

    def app(self) -> Litestar:
        @post("/cgi-bin/stable_token", status_code=200)
        async def stable_token(request: Request[Any, Any, Any]) -> Response[Obj]:
            body = json.loads(await request.body() or b"{}")
            if body.get("grant_type") != "client_credential":
                return self._error(40002, "invalid grant_type")
            secret = self.apps.get(str(body.get("appid", "")))
            if secret is None:
                return self._error(40013, "invalid appid")
            if not hmac.compare_digest(secret, str(body.get("secret", ""))):
                return self._error(40125, "invalid appsecret")
            self.token_requests += 1
            token = f"{body['appid']}.{uuid.uuid4().hex}"
            self.tokens[token] = (str(body["appid"]), time.time() + self.expires_in)
            return Response({"access_token": token, "expires_in": self.expires_in})

        @post("/cgi-bin/message/subscribe/send", status_code=200)
        async def send(request: Request[Any, Any, Any]) -> Response[Obj]:
            token = request.query_params.get("access_token", "")
            held = self.tokens.get(token)
            if held is None:
                return self._error(40001, "invalid credential, access_token is invalid or not latest")
            if held[1] <= time.time():
                return self._error(42001, "access_token expired")
            body = json.loads(await request.body() or b"{}")
            openid, template = str(body.get("touser", "")), str(body.get("template_id", ""))
            if not openid:
                return self._error(40003, "invalid openid")
            fields = self.templates.get(template)
            if fields is None:
                return self._error(40037, "invalid template_id")
            data = body.get("data")
            if not isinstance(data, dict) or set(data) - set(fields):
                return self._error(47003, "argument invalid! data.keys invalid")
            for key, value in data.items():
                text = value.get("value") if isinstance(value, dict) else None
                limit = wechat.LIMITS.get(wechat.field_type(key), 20)
                if not isinstance(text, str) or not text or len(text) > limit:
                    return self._error(47003, f"argument invalid! data.{key}.value invalid")
            if self.subscriptions.get((openid, template), 0) <= 0:
                return self._error(43101, "user refuse to accept the msg")
            self.subscriptions[(openid, template)] -= 1
            msgid = 2_000_000_000 + len(self.accepted) + 1
            self.accepted.append(WechatAccepted(msgid, openid, template, str(body.get("page", "")), data))
            return Response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

        return Litestar([stable_token, send], debug=False)
