"""The members' monthly value statements as a periodic job (``lianka jobs run member-statements-monthly``)
and the consumer that texts a statement's link to a member who consented to text messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.identity.sms import sms_channel_for
from lianka.platform.jobs import consumer
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target
from lianka.platform.settings import get_settings
from lianka.tenants import statement_queries as q
from lianka.tenants.services import member_statements

log = get_logger(__name__)


async def make_statements(db: Database, target: Target, as_of: datetime) -> int:
    assert target.id is not None  # every_merchant's targets are merchants
    return await member_statements.monthly(db, target.id, as_of)


declare(
    "member-statements-monthly",
    "0 6 1 * *",
    step=make_statements,
    summary="Monthly value statements: for every member whose points or stored value moved in the month "
    "that has just ended (the merchant's time zone), one statement, texted when the member consented "
    "(once per member and month: a rerun makes and sends nothing).",
)


@consumer(queue="messages")
async def send_member_statement(uow: UnitOfWork, member_id: str = "", month: str = "", **_: Any) -> None:
    """Text the statement's link (the SMS channel the sign-in codes use); runs in the merchant's scope."""
    tenant = uow.tenant_id
    assert tenant is not None
    phone = await q.phone(uow, uuid.UUID(member_id))
    if phone is None:
        log.info("statement not texted: no phone", member_id=member_id)
        return
    slug, name = await q.slug_and_name(uow, tenant)
    cfg = get_settings().identity
    link = f"{cfg.public_url}/m/{slug}/statements/{month}"
    await sms_channel_for(cfg).send(phone, member_statements.statement_text(name, month, link))
