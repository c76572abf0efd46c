"""WeChat Pay API v3 (direct merchant) through the maintained ``wechatpayv3`` SDK: JSAPI and H5
orders, the order query, refunds, and notifications verified against the platform certificate
(RSA-SHA256 over ``timestamp\\nnonce\\nbody\\n``) and decrypted (AEAD_AES_256_GCM with the APIv3 key).

The SDK is synchronous (``requests``) and hard-codes WeChat's gateway, so calls run in a worker
thread, and the gateway is set per client to ``LIANKA_WECHATPAY_API_BASE`` when given (the local
stand-in) — the one place we reach inside the SDK (``Core._gate_way``; the SDK is pinned).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core

from lianka.billing.payments.errors import NotificationInvalid, ProviderFailed
from lianka.billing.payments.providers import OrderRequest, Outcome, RefundState, RefundStatus, Started, State

GATEWAY = "https://api.mch.weixin.qq.com"
#: how old a notification's timestamp may be (seconds), against replays of old captures
TOLERANCE_SECONDS = 300
_STATES: dict[str, State] = {
    "SUCCESS": "paid",
    "REFUND": "paid",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "expired",
    "REVOKED": "expired",
    "PAYERROR": "failed",
}


@dataclass(frozen=True)
class WeChatCredentials:
    mchid: str
    serial_no: str
    private_key: str  # PEM
    apiv3_key: str  # 32 characters
    appid: str


class _Core(Core):  # type: ignore[misc]
    """The SDK's core with its gateway chosen at construction (it assigns the real one in ``__init__``,
    which this property's setter ignores)."""

    def __init__(self, gateway: str, **kw: Any) -> None:
        self._gateway = gateway
        super().__init__(**kw)

    @property
    def _gate_way(self) -> str:
        return self._gateway

    @_gate_way.setter
    def _gate_way(self, _value: str) -> None:
        pass


def _client(creds: WeChatCredentials, gateway: str, notify_url: str | None) -> WeChatPay:
    pay: WeChatPay = WeChatPay.__new__(WeChatPay)
    pay._type = WeChatPayType.H5
    pay._mchid = creds.mchid
    pay._appid = creds.appid
    pay._notify_url = notify_url
    pay._partner_mode = False
    pay._core = _Core(
        gateway,
        mchid=creds.mchid,
        cert_serial_no=creds.serial_no,
        private_key=creds.private_key,
        apiv3_key=creds.apiv3_key,
        timeout=(5, 20),
    )
    return pay


class WeChatPayments:
    name = "wechatpay"

    def __init__(self, creds: WeChatCredentials, api_base: str = "") -> None:
        self._creds = creds
        self._gateway = (api_base or GATEWAY).rstrip("/")
        self._sdk: WeChatPay | None = None

    async def _pay(self) -> WeChatPay:
        if self._sdk is None:  # fetches the platform certificates once (a network call)
            try:
                self._sdk = await asyncio.to_thread(_client, self._creds, self._gateway, None)
            except Exception as exc:
                raise ProviderFailed(f"WeChat Pay: {exc}") from None
        return self._sdk

    async def _call(self, fn: Any, **kw: Any) -> dict[str, Any]:
        try:
            code, message = await asyncio.to_thread(fn, **kw)
        except Exception as exc:
            raise ProviderFailed(f"WeChat Pay: {exc}") from None
        body: dict[str, Any] = json.loads(message) if message else {}
        if not 200 <= int(code) < 300:
            raise ProviderFailed(f"WeChat Pay answered {code}: {body.get('message', '')}", code=body.get("code"))
        return body

    async def create(self, request: OrderRequest) -> Started:
        pay = await self._pay()
        common: dict[str, Any] = {
            "description": request.description[:127],
            "out_trade_no": request.order_id.hex,
            "amount": {"total": request.amount, "currency": request.currency},
            "notify_url": request.notify_url,
            "attach": str(request.tenant_id),
        }
        if request.channel == "jsapi":
            body = await self._call(
                pay.pay, pay_type=WeChatPayType.JSAPI, payer={"openid": request.openid or ""}, **common
            )
            prepay = str(body["prepay_id"])
            ts, nonce = str(int(time.time())), uuid.uuid4().hex
            package = f"prepay_id={prepay}"
            sign = pay.sign([self._creds.appid, ts, nonce, package])
            params = {
                "appId": self._creds.appid,
                "timeStamp": ts,
                "nonceStr": nonce,
                "package": package,
                "signType": "RSA",
                "paySign": sign,
            }
            return Started(prepay, None, params)
        scene = {"payer_client_ip": request.client_ip, "h5_info": {"type": "Wap"}}
        body = await self._call(pay.pay, pay_type=WeChatPayType.H5, scene_info=scene, **common)
        h5 = str(body["h5_url"])
        sep = "&" if "?" in h5 else "?"

        return Started(request.order_id.hex, f"{h5}{sep}redirect_url={quote(request.return_url, safe='')}")

    async def query(self, order_id: uuid.UUID, checkout_ref: str | None) -> Outcome:
        pay = await self._pay()
        body = await self._call(pay.query, out_trade_no=order_id.hex)
        return transaction_outcome(body)

    async def refund(
        self,
        order_id: uuid.UUID,
        provider_ref: str,
        *,
        refund_id: uuid.UUID,
        amount: int,
        total: int,
        currency: str,
        tenant_id: uuid.UUID,
    ) -> RefundState:
        pay = await self._pay()
        body = await self._call(
            pay.refund,
            out_refund_no=refund_id.hex,
            amount={"refund": amount, "total": total, "currency": currency},
            transaction_id=provider_ref,
        )
        state = refund_state(body)
        if state.status == "failed":
            raise ProviderFailed(f"WeChat Pay refund is {body.get('status')}")
        return state

    async def refund_status(self, refund_id: uuid.UUID, provider_ref: str) -> RefundState:
        pay = await self._pay()
        return refund_state(await self._call(pay.query_refund, out_refund_no=refund_id.hex))

    async def verify(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """The notification, its ``resource`` decrypted; :class:`NotificationInvalid` for a bad or
        stale signature, an unknown certificate or a resource that does not decrypt."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            stamp = int(lowered.get("wechatpay-timestamp", "0"))
        except ValueError:
            stamp = 0
        if abs(time.time() - stamp) > TOLERANCE_SECONDS:
            raise NotificationInvalid("The notification's timestamp is missing or too old")
        pay = await self._pay()
        try:
            data = await asyncio.to_thread(pay.callback, lowered, body.decode())
        except Exception as exc:
            raise NotificationInvalid(f"WeChat Pay notification: {exc}") from None
        if not isinstance(data, dict):
            raise NotificationInvalid("The notification does not verify (Wechatpay-Signature) or decrypt (APIv3 key)")
        return data


_REFUND_STATES: dict[str, RefundStatus] = {"SUCCESS": "succeeded", "PROCESSING": "pending"}


def refund_state(refund: Mapping[str, Any]) -> RefundState:
    """A v3 refund (the refund's answer, its query, or a refund notification's resource, which calls
    the status ``refund_status``): SUCCESS, PROCESSING, or failed (ABNORMAL, CLOSED)."""
    raw = str(refund.get("status") or refund.get("refund_status") or "")
    status = _REFUND_STATES.get(raw, "failed")
    return RefundState(str(refund.get("refund_id") or ""), status, None if status != "failed" else f"WeChat Pay: {raw}")


def transaction_outcome(tx: Mapping[str, Any]) -> Outcome:
    """A v3 transaction (the query's answer, or a notification's decrypted resource) as an outcome."""
    order_id = uuid.UUID(hex=str(tx.get("out_trade_no")))
    state = _STATES.get(str(tx.get("trade_state")), "pending")
    amount = tx.get("amount") or {}
    paid_at = None
    if state == "paid" and tx.get("success_time"):
        paid_at = datetime.fromisoformat(str(tx["success_time"])).astimezone(UTC)
    return Outcome(
        order_id,
        state,
        provider_ref=str(tx.get("transaction_id")) if tx.get("transaction_id") else None,
        amount=int(amount["total"]) if "total" in amount else None,
        currency=str(amount.get("currency")) if amount.get("currency") else None,
        paid_at=paid_at,
        tenant_ref=str(tx.get("attach")) if tx.get("attach") else None,
    )
