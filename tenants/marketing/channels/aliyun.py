"""Aliyun SMS (阿里云短信服务) through its signed RPC API: ``SendSms``, version 2017-05-25.

Signature version 1.0 (HMAC-SHA1): sort every parameter but ``Signature`` by name, percent-encode
names and values per RFC 3986 (space ``%20``, ``*`` ``%2A``, ``~`` kept), join as ``k=v&…``; the
string to sign is ``POST&%2F&`` + the encoded query; the signature is base64(HMAC-SHA1 with
``AccessKeySecret + "&"``). The text travels as the template parameter ``content`` of a template
whose body is ``${content}`` (marketing SMS in China go through an approved template and signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from lianka.tenants.marketing.channels import Message, ProviderReceipt, SendFailed, with_opt_out

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"


def percent_encode(value: str) -> str:
    return quote(value, safe="~").replace("+", "%20").replace("*", "%2A")


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(query)}"


def signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class AliyunSettings:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    endpoint: str = DEFAULT_ENDPOINT
    region: str = "cn-hangzhou"
    timeout: float = 15.0


def signed_params(s: AliyunSettings, message: Message, *, now: datetime, nonce: str) -> dict[str, str]:
    phone = message.to.removeprefix("+86") if message.to.startswith("+86") else message.to.lstrip("+")
    params = {
        "AccessKeyId": s.access_key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": s.region,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": API_VERSION,
        "PhoneNumbers": phone,
        "SignName": s.sign_name,
        "TemplateCode": s.template_code,
        "TemplateParam": json.dumps({"content": with_opt_out(message.text)}, ensure_ascii=False),
    }
    if message.key:
        params["OutId"] = message.key[:64]
    params["Signature"] = signature(params, s.access_key_secret)
    return params


#: Aliyun's error codes a later attempt may get past (flow control, its own trouble)
RETRYABLE = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "Throttling.User", "ServiceUnavailable"})


class AliyunSms:
    provider = "aliyun"

    def __init__(self, settings: AliyunSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client

    async def send(self, message: Message) -> ProviderReceipt:
        now = datetime.now(UTC)
        params = signed_params(self.settings, message, now=now, nonce=uuid.uuid4().hex)
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout) as owned:
                client = self.client or owned
                response = await client.post(self.settings.endpoint.rstrip("/") + "/", data=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise SendFailed(self.provider, "unavailable", str(e), retryable=True) from e
        code = str(body.get("Code", ""))
        if code != "OK":
            raise SendFailed(self.provider, code or str(response.status_code), str(body.get("Message", "")),
                             retryable=code in RETRYABLE or response.status_code >= 500)  # fmt: skip
        return ProviderReceipt(self.provider, str(body["BizId"]), now, body)
