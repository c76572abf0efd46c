"""WeChat subscribe messages' SQL: members' openids and the one-time subscription grants they
spend (migration 0029w). Grants are taken oldest first with ``FOR UPDATE SKIP LOCKED``, so two
deliveries at once never spend the same one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

_SET_OPENID = text(
    "INSERT INTO wechat_openids (tenant_id, member_id, openid, updated_at) VALUES (:tenant, :member, :openid, :now) "
    "ON CONFLICT (tenant_id, member_id) DO UPDATE SET openid = excluded.openid, updated_at = excluded.updated_at"
)


async def openid_owner(uow: UnitOfWork, openid: str) -> uuid.UUID | None:
    row = await uow.session.scalar(text("SELECT member_id FROM wechat_openids WHERE openid = :o"), {"o": openid})
    return row if row is None else uuid.UUID(str(row))


async def set_openid(uow: UnitOfWork, member: uuid.UUID, openid: str, now: datetime) -> None:
    await uow.session.execute(_SET_OPENID, {"tenant": uow.tenant_id, "member": member, "openid": openid, "now": now})


async def openid(uow: UnitOfWork, member: uuid.UUID) -> str | None:
    out = await uow.session.scalar(text("SELECT openid FROM wechat_openids WHERE member_id = :m"), {"m": member})
    return None if out is None else str(out)


async def wechat_consent(uow: UnitOfWork, member: uuid.UUID) -> bool:
    out = await uow.session.scalar(
        text(
            "SELECT coalesce(consent -> 'wechat' ->> 'granted', 'false') = 'true' FROM member_profiles "
            "WHERE member_id = :m"
        ),
        {"m": member},
    )
    return bool(out)


async def add_grants(uow: UnitOfWork, member: uuid.UUID, templates: list[str], now: datetime) -> None:
    for template in templates:
        await uow.session.execute(
            text(
                "INSERT INTO wechat_grants (tenant_id, member_id, template_id, granted_at) VALUES (:t, :m, :tpl, :now)"
            ),
            {"t": uow.tenant_id, "m": member, "tpl": template, "now": now},
        )


async def open_grants(uow: UnitOfWork, member: uuid.UUID) -> dict[str, int]:
    rows = await uow.session.execute(
        text(
            "SELECT template_id, count(*) FROM wechat_grants WHERE member_id = :m AND spent_at IS NULL "
            "GROUP BY template_id ORDER BY template_id"
        ),
        {"m": member},
    )
    return {str(t): int(n) for t, n in rows}


_SPEND = text(
    """
UPDATE wechat_grants SET spent_at = :now, spent_for = :key
WHERE tenant_id = :tenant AND id = (
    SELECT id FROM wechat_grants
    WHERE member_id = :member AND template_id = :template AND spent_at IS NULL
    ORDER BY granted_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id
"""
)


async def spend_grant(uow: UnitOfWork, member: uuid.UUID, template: str, key: str, now: datetime) -> int | None:
    """Spend the member's oldest open grant for the template; None when there is none."""
    params = {"tenant": uow.tenant_id, "member": member, "template": template, "key": key[:200], "now": now}
    out = await uow.session.scalar(_SPEND, params)
    return None if out is None else int(out)


async def restore_grant(uow: UnitOfWork, grant: int) -> None:
    """Give back a grant whose message could not be sent for a reason worth retrying."""
    await uow.session.execute(
        text("UPDATE wechat_grants SET spent_at = NULL, spent_for = NULL WHERE tenant_id = :t AND id = :id"),
        {"t": uow.tenant_id, "id": grant},
    )
