"""Month-end close as a job: queued from the API, and for every chain once a month (the month that
has just ended, in the merchant's time zone). The close itself is idempotent and resumable, so
dramatiq's at-least-once delivery and retries are safe.

The monthly tick fires at 00:30 on the 1st in UTC−12, the last zone where a month ends: by then the
previous month is over in every zone, so each merchant's "previous month" is the one that has just
ended wherever it is (fired on Shanghai's 1st, a merchant in London would still be in the old month
and would have closed the one before). The tick catches up: a chain whose closes were missed gets
every month since its latest close, in order. A close is only ever started for an ended month
(``domain.closable``); a month the close refuses is logged, not retried.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import dramatiq

from lianka.alliance.settlement import close, domain, scopes
from lianka.alliance.settlement.errors import PeriodBeforeBook, PeriodNotEnded, PeriodOutOfOrder
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.scheduler import periodic
from lianka.tenants.services import maintenance

log = get_logger(__name__)
#: where the monthly tick is read: UTC−12 (POSIX names flip the sign)
LAST_ZONE = "Etc/GMT+12"


async def close_scope(kind: str, book: str, period: str, *, catch_up: bool = False) -> list[str]:
    """Close ``period`` (with ``catch_up``, first every earlier month still to close); the checksums."""
    db = get_database()
    book_id = uuid.UUID(book)
    scope = await (scopes.chain_scope(db, book_id) if kind == "chain" else scopes.alliance_scope(db, book_id))
    checksums = []
    for p in await close.pending(db, scope, period) if catch_up else [period]:
        try:
            done = await close.close(db, scope, p)
        except (PeriodNotEnded, PeriodBeforeBook, PeriodOutOfOrder) as exc:  # a refusal: retrying changes nothing
            log.warning("period not closed", scope=kind, book=book, period=p, reason=exc.detail)
            break
        log.info("period closed", scope=kind, book=book, period=p, checksum=done.checksum)
        checksums.append(done.checksum)
    return checksums


async def _close_period(kind: str, book: str, period: str, catch_up: bool = False, **_: Any) -> None:
    await close_scope(kind, book, period, catch_up=catch_up)


close_period: Any = dramatiq.actor(actor_name="close_period", queue_name="settlement", max_retries=10,
                                   broker=get_broker())(_close_period)


def previous_month(now: datetime, tz: str) -> str:
    """The latest month that has ended at ``now`` in ``tz``."""
    return domain.previous_period(domain.period_of(now, tz))


async def _close_chains(fire_time: str = "", **_: Any) -> None:
    now = datetime.fromisoformat(fire_time) if fire_time else datetime.now(UTC)
    async for tenant, tz in maintenance.merchants(get_database()):
        try:
            period = previous_month(now, tz)
        except (ZoneInfoNotFoundError, ValueError):  # a zone stored before zones were checked: skip, loudly
            log.error("merchant has an unknown time zone; its month is not closed", merchant=str(tenant), tz=tz)
            continue
        close_period.send("chain", str(tenant), period, catch_up=True)


dramatiq.actor(actor_name="close_chains_monthly", queue_name="settlement", max_retries=5,
               broker=get_broker())(_close_chains)
periodic("close-chains-monthly", "close_chains_monthly", "30 0 1 * *", queue="settlement", timezone=LAST_ZONE)
