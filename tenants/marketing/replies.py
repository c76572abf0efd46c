"""Members' replies to marketing SMS ("回复TD退订"): Aliyun pushes them (SmsUp, HTTP batch push: a
JSON array of ``phone_number, send_time, content, sign_name, dest_code, sequence_id``) and Tencent
Cloud calls back (one object ``extend, mobile, nationcode, sign, text, time``) to
``POST /api/v1/webhooks/sms/{provider}/replies?token=…`` (decision 0045).

Neither push is signed, so the URL carries a token (an HMAC of the provider under the deployment's
key), like the receipts'. A reply names no merchant: it is for the merchants that sent that phone an
SMS through that provider, narrowed to those whose signature it names (both providers send the
signature the member saw; Aliyun's newer push may omit it, then the merchant that messaged the
phone last). An opt-out (TD, T, N, 退订, unsubscribe… — trimmed, any case) withdraws the member's SMS
consent at once (``crm.set_consent``, source ``sms-reply``); anything else is stored for the
merchant. Each reply is stored once per (provider, reply id, merchant) in the same transaction as
the withdrawal, so a provider's re-push changes nothing. Aliyun's id is ``sequence_id``; Tencent
sends none, so its id is a hash of the whole callback.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lianka.platform.db import Database
from lianka.platform.errors import BadRequest, NotFound, Unauthorized, ValidationFailed
from lianka.platform.identity.secrets_box import mac, same
from lianka.platform.settings import get_settings
from lianka.tenants.marketing import reply_queries as q
from lianka.tenants.services import crm

PROVIDERS = ("aliyun", "tencent")
#: replies that withdraw the SMS consent (compared trimmed, case-folded, without punctuation)
OPT_OUT_WORDS = frozenset({"td", "t", "n", "退订", "退", "取消", "取消订阅", "拒收", "unsubscribe", "stop", "tdqx"})
_PUNCT = re.compile(r"[\s\.,!?;:。，！？；：、~～\"'“”‘’()（）\[\]【】]+")
_CHINA = ZoneInfo("Asia/Shanghai")


def reply_token(provider: str) -> str:
    return mac(get_settings().secret_key, "lianka:sms-replies", provider)


def reply_url(public_url: str, provider: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/webhooks/sms/{provider}/replies?token={reply_token(provider)}"


def is_opt_out(text: str) -> bool:
    return _PUNCT.sub("", text).casefold() in OPT_OUT_WORDS


@dataclass(frozen=True)
class Reply:
    reply_id: str
    #: E.164
    phone: str
    text: str
    sign: str
    extension: str
    sent_at: datetime | None
    payload: dict[str, Any]


def _phone(number: str, nationcode: str = "86") -> str:
    digits = re.sub(r"\D", "", number)
    if number.strip().startswith("+"):
        return f"+{digits}"
    return f"+{nationcode}{digits}" if not digits.startswith(nationcode) or len(digits) <= 11 else f"+{digits}"


def _aliyun_time(value: Any) -> datetime | None:
    for shape in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(str(value), shape).replace(tzinfo=_CHINA)
        except ValueError:
            continue
    return None


def parse(provider: str, body: Any) -> list[Reply]:
    """The replies in a push, in the provider's shape; BadRequest on anything else."""
    items = body if isinstance(body, list) else [body] if provider == "tencent" and isinstance(body, dict) else None
    if items is None or not items or len(items) > 1000 or not all(isinstance(r, dict) for r in items):
        raise BadRequest("a JSON array of replies (Tencent: one object)")
    out = []
    try:
        for r in items:
            if provider == "aliyun":
                out.append(Reply(str(r["sequence_id"]), _phone(str(r["phone_number"])), str(r["content"]),
                                 str(r.get("sign_name") or ""), str(r.get("dest_code") or ""),
                                 _aliyun_time(r.get("send_time")), r))  # fmt: skip
            else:
                digest = hashlib.sha256(json.dumps(r, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
                sent = datetime.fromtimestamp(int(r["time"]), UTC) if str(r.get("time", "")).isdigit() else None
                out.append(Reply(f"tc-{digest[:40]}", _phone(str(r["mobile"]), str(r.get("nationcode") or "86")),
                                 str(r["text"]), str(r.get("sign") or ""), str(r.get("extend") or ""), sent, r))  # fmt: skip
    except KeyError as e:
        raise BadRequest(f"a reply lacks {e.args[0]}") from None
    return out


@dataclass(frozen=True)
class Outcome:
    stored: int
    unsubscribed: int


async def _merchants(db: Database, provider: str, r: Reply) -> list[uuid.UUID]:
    async with db.uow(system=True) as uow:
        candidates = await q.senders(uow, provider, r.phone)
    if not candidates:
        return []
    if not r.sign:
        return candidates[:1]  # no signature named: the merchant that messaged the phone last
    matching = []
    for tenant in candidates:
        async with db.uow(tenant) as uow:
            if await q.sign_name(uow, provider) == r.sign:
                matching.append(tenant)
    return matching


async def _one(db: Database, provider: str, r: Reply) -> Outcome:
    opt_out = is_opt_out(r.text)
    values = {"provider": provider, "reply_id": r.reply_id[:128], "phone": r.phone[:32], "sign": r.sign[:64],
              "extension": r.extension[:32], "content": r.text[:500], "sent_at": r.sent_at,
              "payload": json.dumps(r.payload, ensure_ascii=False)}  # fmt: skip
    tenants = await _merchants(db, provider, r)
    if not tenants:
        async with db.uow(system=True) as uow:
            new = await q.insert(uow, None, {**values, "member": None, "action": "unmatched"})
            await uow.commit()
        return Outcome(int(new), 0)
    stored = unsubscribed = 0
    for tenant in tenants:
        async with db.uow(tenant) as uow:
            member = await q.member_by_phone(uow, r.phone)
            action = "unsubscribe" if opt_out and member is not None else "stored"
            if not await q.insert(uow, tenant, {**values, "member": member, "action": action}):
                continue  # the provider pushed this reply before
            stored += 1
            if action == "unsubscribe" and member is not None and await q.sms_consent(uow, member):
                await crm.set_consent(uow, member, "sms", False, source="sms-reply", actor="member")
                unsubscribed += 1
            await uow.commit()
    return Outcome(stored, unsubscribed)


async def receive(db: Database, provider: str, token: str | None, body: Any) -> Outcome:
    """Verify the push's token, then take each reply (one transaction per reply and merchant)."""
    if provider not in PROVIDERS:
        raise NotFound("no such SMS provider")
    if not token or not same(token, reply_token(provider)):
        raise Unauthorized("the reply URL's token is wrong")
    stored = unsubscribed = 0
    for r in parse(provider, body):
        o = await _one(db, provider, r)
        stored, unsubscribed = stored + o.stored, unsubscribed + o.unsubscribed
    return Outcome(stored, unsubscribed)


def ack(provider: str) -> dict[str, Any]:
    """What each provider expects back from a push that was taken."""
    return {"code": 0, "msg": "接收成功"} if provider == "aliyun" else {"result": 0, "errmsg": "OK"}


async def latest(db: Database, tenant: uuid.UUID, limit: int = 100) -> list[q.ReplyRow]:
    """The merchant's latest SMS replies (opt-outs and others)."""
    async with db.uow(tenant) as uow:
        return await q.latest(uow, limit)


#: the actions a merchant's reply can have taken (``unmatched`` rows belong to no merchant)
ACTIONS = ("unsubscribe", "stored")
PAGE_SIZE = 50


@dataclass(frozen=True)
class ReplyPage:
    rows: list[q.ReplyRow]
    total: int
    page: int
    pages: int


async def listing(db: Database, tenant: uuid.UUID, action: str | None, page: int = 1) -> ReplyPage:
    """The console's page of SMS replies (newest first), of one action or all; a page past the end is
    the last one."""
    if action is not None and action not in ACTIONS:
        raise ValidationFailed(f"action: one of {', '.join(ACTIONS)}", field="action")
    page = max(1, min(page, 10**6))
    async with db.uow(tenant) as uow:
        rows, total = await q.page(uow, action, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        if total is None:
            total = await q.count(uow, action)
            page = max(1, -(-total // PAGE_SIZE))
            rows, _ = await q.page(uow, action, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return ReplyPage(rows, total, page, max(1, -(-total // PAGE_SIZE)))
