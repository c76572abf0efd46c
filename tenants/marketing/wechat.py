"""WeChat subscribe messages, the member's side (decision 0045): the portal / mini-program reports
the member's openid and what ``wx.requestSubscribeMessage`` answered, and every template answered
``accept`` becomes one grant — WeChat allows one message per accepted one-time subscription. A
subscribe message spends one (``campaigns.deliver``); without one it is skipped, not sent. Accepting
is an explicit opt-in, so it also grants the member's WeChat marketing consent (source
``wechat-subscribe``) when it was not granted; withdrawing it (portal, unsubscribe link) stops the
campaigns again whatever grants are left.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.idempotency import once
from lianka.tenants.marketing import wechat_queries as q
from lianka.tenants.marketing.errors import BadSubscription
from lianka.tenants.services import crm

#: what ``wx.requestSubscribeMessage`` answers per template id
ANSWERS = frozenset({"accept", "reject", "ban", "filter"})
_OPENID = re.compile(r"[A-Za-z0-9_-]{6,128}")
_TEMPLATE = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Subscriptions:
    #: open grants per template id
    grants: dict[str, int]
    #: how many this report added
    added: int


def _check(openid: str, results: dict[str, Any]) -> list[str]:
    if not _OPENID.fullmatch(openid):
        raise BadSubscription("openid: 6-128 letters, digits, - or _", field="openid")
    if not results or len(results) > 20:
        raise BadSubscription("results: 1-20 templates", field="results")
    accepted = []
    for template, answer in results.items():
        if template == "errMsg":
            continue
        if not _TEMPLATE.fullmatch(template) or answer not in ANSWERS:
            raise BadSubscription(f"results.{template[:40]}: accept, reject, ban or filter", field="results")
        if answer == "accept":
            accepted.append(template)
    return accepted


async def report(db: Database, tenant: uuid.UUID, member: uuid.UUID, openid: str, results: dict[str, Any],
                 *, key: str, now: datetime | None = None) -> Subscriptions:  # fmt: skip
    """Record the member's openid and one grant per accepted template, once per Idempotency-Key."""
    accepted = _check(openid, results)
    now = now or datetime.now(UTC)

    async def work(uow: UnitOfWork) -> Subscriptions:
        owner = await q.openid_owner(uow, openid)
        if owner is not None and owner != member:
            raise BadSubscription("this openid belongs to another member", field="openid")
        await q.set_openid(uow, member, openid, now)
        await q.add_grants(uow, member, accepted, now)
        if accepted and not await q.wechat_consent(uow, member):
            await crm.set_consent(uow, member, "wechat", True, source="wechat-subscribe", actor="member")
        return Subscriptions(await q.open_grants(uow, member), len(accepted))

    out, _ = await once(db, tenant, "wechat.subscriptions", key, (str(member), openid, sorted(results.items())),
                        Subscriptions, work)  # fmt: skip
    return out


async def grants(db: Database, tenant: uuid.UUID, member: uuid.UUID) -> dict[str, int]:
    async with db.uow(tenant) as uow:
        return await q.open_grants(uow, member)
