"""Unsubscribe links: a signed link per (merchant, member, channel) that withdraws that channel's
marketing consent at once, with no sign-in (RFC 8058 one-click for e-mail clients, a plain link in
the body). The signature is an HMAC under the deployment's secret key, so a link cannot be made for
another member or channel. Withdrawing goes through ``crm.change_consent`` (history kept, source
``unsubscribe``); following a link twice changes nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from lianka.platform.db import Database
from lianka.platform.identity.secrets_box import mac, same
from lianka.platform.settings import get_settings
from lianka.tenants import queries as tenant_queries
from lianka.tenants import statement_queries
from lianka.tenants.marketing.errors import BadUnsubscribeLink
from lianka.tenants.services import crm

#: the channels a link can withdraw (those ``crm.set_consent`` records)
CHANNELS = ("sms", "email", "wechat")


def signature(tenant: uuid.UUID, member: uuid.UUID, channel: str) -> str:
    return mac(get_settings().secret_key, "lianka:unsubscribe", f"{tenant}:{member}:{channel}")


def link(public_url: str, slug: str, tenant: uuid.UUID, member: uuid.UUID, channel: str) -> str:
    query = urlencode({"m": str(member), "c": channel, "s": signature(tenant, member, channel)})
    return f"{public_url.rstrip('/')}/m/{slug}/unsubscribe?{query}"


@dataclass(frozen=True)
class Unsubscribed:
    merchant: str
    channel: str


async def withdraw(db: Database, slug: str, member: str, channel: str, sig: str) -> Unsubscribed:
    """Withdraw the consent the link names; an unknown merchant or a bad signature is a 404."""
    try:
        member_id = uuid.UUID(member)
    except ValueError:
        raise BadUnsubscribeLink() from None
    async with db.uow(system=True) as uow:
        tenant = await tenant_queries.merchant_id_by_slug(uow, slug)
    if tenant is None or channel not in CHANNELS or not same(sig, signature(tenant, member_id, channel)):
        raise BadUnsubscribeLink()
    async with db.uow(tenant) as uow:
        _, name = await statement_queries.slug_and_name(uow, tenant)
    await crm.change_consent(db, tenant, member_id, channel, False, source="unsubscribe", actor="member")
    return Unsubscribed(name, channel)
