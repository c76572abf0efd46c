"""Delivery receipts the SMS providers push back (``POST /api/v1/webhooks/sms/{provider}``).

Neither Aliyun nor Tencent signs its receipt pushes, so the URL configured at the provider carries
a token (an HMAC of the provider's name under the deployment's secret key, :func:`receipt_token`)
and a push without the right one is refused. Receipts are stored once per (provider, message id,
phone) — a provider's retry is a no-op — in platform scope (the push names no merchant), and the
campaign messages they name take their status (delivered / failed) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.errors import BadRequest, NotFound, Unauthorized
from lianka.platform.identity.secrets_box import mac, same
from lianka.platform.settings import get_settings
from lianka.tenants.marketing import campaign_queries

PROVIDERS = ("aliyun", "tencent")
_CHINA = ZoneInfo("Asia/Shanghai")  # both providers report local (Beijing) times


def receipt_token(provider: str) -> str:
    return mac(get_settings().secret_key, "lianka:sms-receipts", provider)


def receipt_url(public_url: str, provider: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/webhooks/sms/{provider}?token={receipt_token(provider)}"


@dataclass(frozen=True)
class Receipt:
    message_id: str
    phone: str
    delivered: bool
    code: str
    reported_at: datetime | None
    payload: dict[str, Any]


def _time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=_CHINA)
    except ValueError:
        return None


def parse(provider: str, body: Any) -> list[Receipt]:
    """The receipts in a push (a JSON array in the provider's shape); BadRequest on anything else."""
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body) or len(body) > 1000:
        raise BadRequest("a JSON array of receipts")
    try:
        if provider == "aliyun":
            return [Receipt(str(r["biz_id"]), str(r["phone_number"]), r["success"] is True, str(r.get("err_code", "")),
                            _time(r.get("report_time")), r) for r in body]  # fmt: skip
        return [Receipt(str(r["sid"]), str(r["mobile"]), r["report_status"] == "SUCCESS", str(r.get("errmsg", "")),
                        _time(r.get("user_receive_time")), r) for r in body]  # fmt: skip
    except KeyError as e:
        raise BadRequest(f"a receipt lacks {e.args[0]}") from None


_INSERT = text(
    "INSERT INTO delivery_receipts (provider, message_id, phone, status, code, reported_at, payload) "
    "VALUES (:provider, :message_id, :phone, :status, :code, :reported_at, CAST(:payload AS jsonb)) "
    "ON CONFLICT (provider, message_id, phone) DO NOTHING"
)


async def receive(db: Database, provider: str, token: str | None, body: Any) -> int:
    """Verify the push's token, then store its receipts; returns how many were new."""
    import json

    if provider not in PROVIDERS:
        raise NotFound("no such SMS provider")
    if not token or not same(token, receipt_token(provider)):
        raise Unauthorized("the receipt URL's token is wrong")
    receipts = parse(provider, body)
    new = 0
    async with db.uow(system=True) as uow:
        for r in receipts:
            result = await uow.session.execute(
                _INSERT,
                {"provider": provider, "message_id": r.message_id[:128], "phone": r.phone[:32],
                 "status": "delivered" if r.delivered else "failed", "code": r.code[:64],
                 "reported_at": r.reported_at, "payload": json.dumps(r.payload, ensure_ascii=False)},
            )  # fmt: skip
            new += int(getattr(result, "rowcount", 0) or 0)
        await campaign_queries.link_receipts(uow, provider, [r.message_id[:128] for r in receipts])
        await uow.commit()
    return new


def ack(provider: str) -> dict[str, Any]:
    """What each provider expects back from a receipt push that was taken."""
    return {"code": 0, "msg": "成功"} if provider == "aliyun" else {"result": 0, "errmsg": "OK"}
