"""Paid membership's periodic jobs (``lianka jobs list``) and the reminder actor.

Each step does one merchant's work in one unit of work and is idempotent: revenue is booked under a
key per term and month, packs and reminders advance a counter / timestamp on the term in the same
transaction, expiry is a status change. Running a job twice, or by hand and then on schedule, does the
work once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from lianka.billing.membership import terms
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.jobs import consumer
from lianka.platform.log import get_logger
from lianka.platform.periodic import declare
from lianka.platform.scheduler import Target

log = get_logger(__name__)


async def _in_merchant(db: Database, target: Target, as_of: datetime, work: Any) -> int:
    assert target.id is not None
    async with db.uow(target.id) as uow:
        done = int(await work(uow, as_of))
        await uow.commit()
    return done


async def membership_revenue(db: Database, target: Target, as_of: datetime) -> int:
    return await _in_merchant(db, target, as_of, terms.recognise_revenue)


async def membership_coupon_packs(db: Database, target: Target, as_of: datetime) -> int:
    return await _in_merchant(db, target, as_of, terms.issue_due_packs)


async def membership_renewals(db: Database, target: Target, as_of: datetime) -> int:
    return await _in_merchant(db, target, as_of, terms.renewals)


declare(
    "membership-revenue",
    "20 2 * * *",
    step=membership_revenue,
    summary=(
        "Paid membership: each ended month of every term moves its share of the fee (1/N, the remainder "
        "in the last month) from deferred to earned membership revenue, once per term and month."
    ),
)
declare(
    "membership-coupon-packs",
    "40 2 * * *",
    step=membership_coupon_packs,
    summary="Paid membership: the monthly coupon pack of every live term, once per month of the term.",
)
declare(
    "membership-renewals",
    "0 9 * * *",
    step=membership_renewals,
    summary=(
        "Paid membership: renew through the provider where it can, else remind the member before the term "
        "ends (the merchant's lead time); end the terms that have run out."
    ),
)


@consumer(queue="default")
async def membership_expiry_reminder(uow: UnitOfWork, **payload: Any) -> None:
    """A term is about to end without renewal: the merchant's automations of trigger
    ``membership_expiring`` (by default "付费会员到期提醒", portal inbox) remind the member, once per term."""
    from lianka.tenants.marketing import automations

    log.info("membership_expiry_reminder", **{k: v for k, v in payload.items() if k != "fire_time"})
    await automations.fire_event(
        uow,
        "membership_expiring",
        uuid.UUID(str(payload["member_id"])),
        f"term:{payload['term_id']}",
        datetime.now(UTC),
    )
