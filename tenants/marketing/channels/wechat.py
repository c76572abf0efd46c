"""WeChat subscribe messages (订阅消息) through the WeChat server API.

An access token comes from ``POST /cgi-bin/stable_token`` (``grant_type=client_credential``, the
app's ``appid`` and ``secret``) and is cached per (base URL, appid) until shortly before
``expires_in``; a send answered ``40001`` (invalid credential) or ``42001`` (token expired) drops it,
fetches a fresh one (``force_refresh``) and tries once more. A message is
``POST /cgi-bin/message/subscribe/send?access_token=…`` with ``touser`` (the member's openid at this
app), ``template_id``, ``page`` and ``data`` ``{"thing1": {"value": …}}``: the text goes into the
template's one text field, cut to WeChat's limit for that field type (``thing`` ≤ 20 characters).

A subscribe message needs a one-time subscription the member granted in the mini-program
(``wx.requestSubscribeMessage``); the campaign spends one per message before calling this (decision
0045). ``43101`` (the member refused / has no subscription left) is final; ``-1`` (system busy) and
``45009`` (rate limit) are worth retrying.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from lianka.tenants.marketing.channels import Message, ProviderReceipt, SendFailed

DEFAULT_BASE = "https://api.weixin.qq.com"
#: the longest value WeChat accepts per data field type (the type is the key without its number)
LIMITS = {"thing": 20, "character_string": 32, "number": 32, "letter": 32, "symbol": 5, "phrase": 5,
          "name": 10, "amount": 32, "car_number": 8, "phone_number": 17, "date": 32, "time": 32}  # fmt: skip
TOKEN_ERRORS = frozenset({40001, 42001})
RETRYABLE = frozenset({-1, 45009})


def field_type(key: str) -> str:
    return key.rstrip("0123456789")


def fit(key: str, value: str) -> str:
    """The value cut to the field type's limit (an ellipsis marks a cut)."""
    limit = LIMITS.get(field_type(key), 20)
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class WechatSettings:
    appid: str
    secret: str
    template_id: str
    page: str = ""
    #: the template's text field the message goes into
    field: str = "thing1"
    base_url: str = DEFAULT_BASE
    timeout: float = 15.0


#: (base URL, appid) → (token, monotonic expiry)
_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}


def forget_tokens() -> None:
    _TOKENS.clear()


class WechatSubscribe:
    provider = "wechat"

    def __init__(self, settings: WechatSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client

    @property
    def _base(self) -> str:
        return self.settings.base_url.rstrip("/")

    async def _post(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout) as owned:
                client = self.client or owned
                response = await client.post(self._base + path, json=body, params=params)
            out = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise SendFailed(self.provider, "unavailable", str(e), retryable=True) from e
        if not isinstance(out, dict):
            raise SendFailed(self.provider, "unavailable", "not a JSON object", retryable=True)
        return out

    async def token(self, *, refresh: bool = False) -> str:
        key = (self._base, self.settings.appid)
        cached = _TOKENS.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
        body = {"grant_type": "client_credential", "appid": self.settings.appid, "secret": self.settings.secret,
                "force_refresh": refresh}  # fmt: skip
        out = await self._post("/cgi-bin/stable_token", body)
        if "access_token" not in out:
            code = int(out.get("errcode", -1))
            raise SendFailed(self.provider, str(code), str(out.get("errmsg", "")), retryable=code in RETRYABLE)
        expires = int(out.get("expires_in", 7200))
        _TOKENS[key] = (str(out["access_token"]), time.monotonic() + max(expires - 300, expires // 2))
        return str(out["access_token"])

    def payload(self, message: Message) -> dict[str, Any]:
        body: dict[str, Any] = {
            "touser": message.to,
            "template_id": self.settings.template_id,
            "data": {self.settings.field: {"value": fit(self.settings.field, message.text)}},
            "lang": "zh_CN",
        }
        if self.settings.page:
            body["page"] = self.settings.page
        return body

    async def send(self, message: Message) -> ProviderReceipt:
        now = datetime.now(UTC)
        body = self.payload(message)
        out: dict[str, Any] = {}
        for attempt in range(2):
            token = await self.token(refresh=attempt > 0)
            out = await self._post("/cgi-bin/message/subscribe/send", body, {"access_token": token})
            code = int(out.get("errcode", 0))
            if code not in TOKEN_ERRORS:
                break
            _TOKENS.pop((self._base, self.settings.appid), None)
        code = int(out.get("errcode", 0))
        if code != 0:
            raise SendFailed(self.provider, str(code), str(out.get("errmsg", "")), retryable=code in RETRYABLE)
        return ProviderReceipt(self.provider, str(out.get("msgid", "")), now, out)
