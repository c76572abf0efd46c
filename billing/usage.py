"""Metered usage reported to Stripe once a day: messages sent and active members, per merchant.

Exactly once per merchant, meter and day: the day's value is first stored in
``billing_usage_reports`` (the first run fixes it; a rerun reads it back), then sent to Stripe's
billing meter events (``/v1/billing/meter_events``) with an ``Idempotency-Key`` *and* an
``identifier`` both derived from merchant + meter + day, then marked reported. A crash between the
call and the mark makes the next run send the same event again, which Stripe deduplicates by
``identifier`` — so Stripe counts each day once, whatever happens.

The day is the merchant's calendar day (its time zone) before ``as_of``: a day is reported when it
is over. Messages are counted from the outbox rows of the marketing engine's senders
(``queries.MESSAGE_ACTORS``; zero until messaging exists); active members are members with a sale
that day.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lianka.billing import queries as q
from lianka.billing.queries import UsageReport
from lianka.billing.services import stripe_client
from lianka.platform.db import Database
from lianka.platform.log import get_logger
from lianka.platform.settings import Settings

log = get_logger(__name__)

#: our meter → the Stripe meter's ``event_name`` (a meter with this event name is set up in Stripe)
METERS = {"messages_sent": "lianka_messages_sent", "active_members": "lianka_active_members"}


def idempotency_key(tenant: uuid.UUID, meter: str, day: date) -> str:
    return f"lianka-usage-{tenant}-{meter}-{day.isoformat()}"


@dataclass(frozen=True)
class DayReport:
    day: date
    #: meter → value, for the meters sent to Stripe in this run (a rerun sends none)
    sent: dict[str, int]


async def report_day(db: Database, settings: Settings, tenant: uuid.UUID, as_of: datetime) -> DayReport:
    """Report the merchant's previous full day (in its time zone) for every meter, once."""
    client = stripe_client(settings)
    async with db.uow(tenant) as uow:
        account = await q.account(uow, tenant)
        zone = ZoneInfo(await q.merchant_timezone(uow, tenant))
        day = as_of.astimezone(zone).date() - timedelta(days=1)
        if account is None or account.stripe_customer_id is None:
            return DayReport(day, {})
        start = datetime.combine(day, time(), zone)
        end = start + timedelta(days=1)
        values = {
            "messages_sent": await q.messages_on(uow, tenant, start, end),
            "active_members": await q.active_members_on(uow, tenant, start, end),
        }
        claimed = [
            await q.claim_usage_report(
                uow,
                tenant,
                UsageReport(meter, day, value, idempotency_key(tenant, meter, day), account.stripe_customer_id, None),
            )
            for meter, value in values.items()
        ]
        await uow.commit()
    sent: dict[str, int] = {}
    for report in claimed:
        if report.reported_at is not None:
            continue  # reported by an earlier run
        await client.v1.billing.meter_events.create_async(
            params={
                "event_name": METERS[report.meter],
                "identifier": report.idempotency_key,
                "timestamp": int(end.timestamp()) - 1,
                "payload": {"stripe_customer_id": report.stripe_customer_id, "value": str(report.value)},
            },
            options={"idempotency_key": report.idempotency_key},
        )
        async with db.uow(tenant) as uow:
            await q.mark_usage_reported(uow, tenant, report.meter, report.day)
            await uow.commit()
        sent[report.meter] = report.value
    log.info("usage reported", day=day.isoformat(), sent=sent)
    return DayReport(day, sent)
