"""Month-end close as a job: queued from the API, and for every chain once a month (the month that
has just ended, in the merchant's time zone; ``lianka jobs run close-chains-monthly`` by hand). The
close itself is idempotent and resumable, so dramatiq's at-least-once delivery and retries are safe.

The monthly tick fires at 00:30 on the 1st in UTC−12, the last zone where a month ends: by then the
previous month is over in every zone, so each merchant's "previous month" is the one that has just
ended wherever it is (fired on Shanghai's 1st, a merchant in London would still be in the old month
and would have closed the one before). The tick catches up: a chain whose closes were missed gets
every month since its latest close, in order. A close is only ever started for an ended month
(``domain.closable``); a month the close refuses is logged, not retried.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import dramatiq

from lianka.alliance.settlement import close, domain, scopes
from lianka.alliance.settlement.errors import PeriodBeforeBook, PeriodNotEnded, PeriodOutOfOrder
from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.jobs import get_broker, get_database
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target

log = get_logger(__name__)
#: where the monthly tick is read: UTC−12 (POSIX names flip the sign)
LAST_ZONE = "Etc/GMT+12"


async def close_scope(
    kind: str,
    book: str,
    period: str,
    db: Database | None = None,
    *,
    catch_up: bool = False,
    now: datetime | None = None,
    actor: audit.Actor = audit.SCHEDULED,
) -> list[str]:
    """Close ``period`` (with ``catch_up``, first every earlier month still to close, as seen at
    ``now``); the checksums of the months this closed or re-read."""
    db = db or get_database()
    book_id = uuid.UUID(book)
    scope = await (scopes.chain_scope(db, book_id) if kind == "chain" else scopes.alliance_scope(db, book_id))
    checksums = []
    for p in await close.pending(db, scope, period, now=now) if catch_up else [period]:
        try:
            done = await close.close(db, scope, p, actor=actor)
        except (PeriodNotEnded, PeriodBeforeBook, PeriodOutOfOrder) as exc:  # a refusal: retrying changes nothing
            log.warning("period not closed", scope=kind, book=book, period=p, reason=exc.detail)
            break
        log.info("period closed", scope=kind, book=book, period=p, checksum=done.checksum)
        checksums.append(done.checksum)
    return checksums


async def _close_period(kind: str, book: str, period: str, catch_up: bool = False, **fields: Any) -> None:
    await close_scope(kind, book, period, catch_up=catch_up, actor=audit.decode(fields))


close_period: Any = dramatiq.actor(
    actor_name="close_period", queue_name="settlement", max_retries=10, broker=get_broker()
)(_close_period)


def previous_month(now: datetime, tz: str) -> str:
    """The latest month that has ended at ``now`` in ``tz``."""
    return domain.previous_period(domain.period_of(now, tz))


async def close_ended_months(db: Database, target: Target, as_of: datetime) -> int:
    """Close every month of the chain that has ended by ``as_of`` (its time zone) and is still open,
    oldest first; how many this closed (0 when all were closed already)."""
    assert target.id is not None  # every_merchant's targets are merchants
    scope = await scopes.chain_scope(db, target.id)
    period = previous_month(as_of, scope.timezone)
    return len(await close_scope("chain", str(target.id), period, db, catch_up=True, now=as_of))


declare(
    "close-chains-monthly",
    "30 0 1 * *",
    step=close_ended_months,
    queue="settlement",
    timezone=LAST_ZONE,
    summary="Close every chain's ended months (its time zone), catching up missed ones in order: "
    "statements per branch, one net each (idempotent, resumes after a crash).",
)
