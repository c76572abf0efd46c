"""Tencent Cloud SMS (腾讯云短信) through API 3.0: ``SendSms``, version 2021-01-11, signed with
TC3-HMAC-SHA256.

Canonical request: ``POST\\n/\\n\\n`` + the signed headers (``content-type``, ``host``,
``x-tc-action``, lower-case, ``name:value\\n`` each) + ``\\n`` + their names joined by ``;`` + ``\\n``
+ hex SHA-256 of the body. String to sign: ``TC3-HMAC-SHA256\\n<timestamp>\\n<date>/sms/tc3_request\\n``
+ hex SHA-256 of the canonical request. Key: HMAC-SHA256 chain ``"TC3"+SecretKey`` → date → ``sms`` →
``tc3_request``; the signature is the hex HMAC of the string to sign. Errors come back as HTTP 200
with ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from lianka.tenants.marketing.channels import Message, ProviderReceipt, SendFailed, with_opt_out

API_VERSION = "2021-01-11"
SERVICE = "sms"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(
    secret_key: str, *, host: str, action: str, body: bytes, timestamp: int, content_type: str = CONTENT_TYPE
) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\nx-tc-action:{action.lower()}\n\n"
        f"{SIGNED_HEADERS}\n{hashlib.sha256(body).hexdigest()}"
    )
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{SERVICE}/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), SERVICE), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(secret_id: str, secret_key: str, *, host: str, action: str, body: bytes, timestamp: int) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    sig = signature(secret_key, host=host, action=action, body=body, timestamp=timestamp)
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{day}/{SERVICE}/tc3_request, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={sig}"
    )


@dataclass(frozen=True)
class TencentSettings:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    endpoint: str = DEFAULT_ENDPOINT
    region: str = "ap-guangzhou"
    timeout: float = 15.0


def request(s: TencentSettings, message: Message, *, timestamp: int) -> tuple[bytes, Mapping[str, str]]:
    """The body and headers of one signed ``SendSms`` call."""
    body = json.dumps(
        {
            "PhoneNumberSet": [message.to],
            "SmsSdkAppId": s.sdk_app_id,
            "SignName": s.sign_name,
            "TemplateId": s.template_id,
            "TemplateParamSet": [with_opt_out(message.text)],
            "SessionContext": message.key[:512],
        },
        ensure_ascii=False,
    ).encode()
    host = httpx.URL(s.endpoint).netloc.decode()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": "SendSms",
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": API_VERSION,
        "X-TC-Region": s.region,
        "Authorization": authorization(
            s.secret_id, s.secret_key, host=host, action="SendSms", body=body, timestamp=timestamp
        ),
    }
    return body, headers


RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded", "LimitExceeded.PhoneNumberThirtySecondLimit")


class TencentSms:
    provider = "tencent"

    def __init__(self, settings: TencentSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client

    async def send(self, message: Message) -> ProviderReceipt:
        now = datetime.now(UTC)
        body, headers = request(self.settings, message, timestamp=int(now.timestamp()))
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout) as owned:
                client = self.client or owned
                response = await client.post(self.settings.endpoint.rstrip("/") + "/", content=body, headers=headers)
            reply = response.json()["Response"]
        except (httpx.HTTPError, ValueError, KeyError) as e:
            raise SendFailed(self.provider, "unavailable", str(e), retryable=True) from e
        if "Error" in reply:
            code = str(reply["Error"].get("Code", ""))
            raise SendFailed(self.provider, code, str(reply["Error"].get("Message", "")),
                             retryable=code.startswith(RETRYABLE_PREFIXES))  # fmt: skip
        status = reply["SendStatusSet"][0]
        if status.get("Code") != "Ok":
            code = str(status.get("Code"))
            raise SendFailed(self.provider, code, str(status.get("Message", "")),
                             retryable=code.startswith(RETRYABLE_PREFIXES))  # fmt: skip
        return ProviderReceipt(self.provider, str(status["SerialNo"]), now, reply)
