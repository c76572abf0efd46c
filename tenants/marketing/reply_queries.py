"""SMS replies' SQL (migration 0029w): which merchants sent a phone an SMS through a provider (the
candidates a reply is for), the member behind a phone, the reply rows and the SMS consent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

_SENDERS = text(
    """
SELECT cm.tenant_id, max(cm.sent_at) AS last_sent
FROM campaign_messages cm JOIN members m ON m.id = cm.member_id
WHERE m.phone = :phone AND cm.provider = :provider AND cm.channel = 'sms' AND cm.sent_at IS NOT NULL
GROUP BY cm.tenant_id ORDER BY last_sent DESC
"""
)


async def senders(uow: UnitOfWork, provider: str, phone: str) -> list[uuid.UUID]:
    """(System scope) the merchants that sent this phone an SMS through the provider, latest first."""
    rows = await uow.session.execute(_SENDERS, {"phone": phone, "provider": provider})
    return [uuid.UUID(str(t)) for t, _ in rows]


async def sign_name(uow: UnitOfWork, provider: str) -> str | None:
    """(Tenant scope) the merchant's SMS signature at this provider (None: another provider)."""
    row = (
        await uow.session.execute(
            text("SELECT provider, settings ->> 'sign_name' FROM messaging_providers WHERE channel = 'sms'")
        )
    ).first()
    return None if row is None or row[0] != provider else str(row[1] or "")


async def member_by_phone(uow: UnitOfWork, phone: str) -> uuid.UUID | None:
    """(Tenant scope) the merchant's member with this phone."""
    out = await uow.session.scalar(
        text("SELECT ms.member_id FROM memberships ms JOIN members m ON m.id = ms.member_id WHERE m.phone = :phone"),
        {"phone": phone},
    )
    return None if out is None else uuid.UUID(str(out))


async def sms_consent(uow: UnitOfWork, member: uuid.UUID) -> bool:
    out = await uow.session.scalar(
        text(
            "SELECT coalesce(consent -> 'sms' ->> 'granted', 'false') = 'true' FROM member_profiles WHERE member_id = :m"
        ),
        {"m": member},
    )
    return bool(out)


_INSERT = text(
    """
INSERT INTO sms_replies (tenant_id, provider, reply_id, phone, member_id, sign, extension, content, action,
                         sent_at, payload)
VALUES (:tenant, :provider, :reply_id, :phone, :member, :sign, :extension, :content, :action, :sent_at,
        CAST(:payload AS jsonb))
ON CONFLICT ON CONSTRAINT uq_sms_replies_reply DO NOTHING
RETURNING id
"""
)


async def insert(uow: UnitOfWork, tenant: uuid.UUID | None, values: dict[str, Any]) -> bool:
    """Store a reply for a merchant (None: for none); False when this reply id was stored already."""
    return await uow.session.scalar(_INSERT, {"tenant": tenant, **values}) is not None


@dataclass(frozen=True)
class ReplyRow:
    received_at: datetime
    phone: str
    member_id: uuid.UUID | None
    content: str
    action: str
    provider: str


async def latest(uow: UnitOfWork, limit: int = 100) -> list[ReplyRow]:
    rows = await uow.session.execute(
        text(
            "SELECT received_at, phone, member_id, content, action, provider FROM sms_replies "
            "WHERE tenant_id = :t ORDER BY received_at DESC, id DESC LIMIT :n"
        ),
        {"t": uow.tenant_id, "n": limit},
    )
    return [ReplyRow(*r) for r in rows]


_PAGE = text(
    "SELECT received_at, phone, member_id, content, action, provider, count(*) OVER () FROM sms_replies "
    "WHERE tenant_id = :t AND (CAST(:a AS text) IS NULL OR action = CAST(:a AS text)) "
    "ORDER BY received_at DESC, id DESC LIMIT :n OFFSET :o"
)


async def page(uow: UnitOfWork, action: str | None, limit: int, offset: int) -> tuple[list[ReplyRow], int | None]:
    """A page of the merchant's replies, newest first, of one ``action`` (None: all), and how many
    there are in all (None when the page is past the end)."""
    rows = (await uow.session.execute(_PAGE, {"t": uow.tenant_id, "a": action, "n": limit, "o": offset})).all()
    return [ReplyRow(*r[:6]) for r in rows], (int(rows[0][6]) if rows else None)


_COUNT = text(
    "SELECT count(*) FROM sms_replies WHERE tenant_id = :t AND (CAST(:a AS text) IS NULL OR action = CAST(:a AS text))"
)


async def count(uow: UnitOfWork, action: str | None) -> int:
    return int(await uow.session.scalar(_COUNT, {"t": uow.tenant_id, "a": action}) or 0)
