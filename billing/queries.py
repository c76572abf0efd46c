"""Every SQL statement of billing, each behind a typed function (the units of work come from the
services). ``billing_accounts`` and ``billing_events`` admit system scope: the webhook processing
learns the merchant from the Stripe customer id, so it reads them before it knows the tenant."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from lianka.billing.domain import Account, Limits, Plan, Status, Usage
from lianka.platform.db import UnitOfWork

_PLAN_COLUMNS = (
    "code, name, price_minor, currency, max_branches, max_members, max_staff_seats, messages_per_month, "
    "alliance_membership"
)

#: the account row, plain or locked for update (the key: ``lock``)
_ACCOUNT_SQL = {
    False: (
        "SELECT plan, status, trial_ends_at, stripe_customer_id, stripe_subscription_id, past_due_since, "
        "grace_until, current_period_end, cancel_at_period_end, canceled_at, state_at, subscription_at FROM billing_accounts "
        "WHERE tenant_id = :t"
    ),
    True: (
        "SELECT plan, status, trial_ends_at, stripe_customer_id, stripe_subscription_id, past_due_since, "
        "grace_until, current_period_end, cancel_at_period_end, canceled_at, state_at, subscription_at FROM billing_accounts "
        "WHERE tenant_id = :t FOR UPDATE"
    ),
}


def _plan(row: Any) -> Plan:
    return Plan(
        row.code,
        row.name,
        int(row.price_minor),
        row.currency,
        Limits(row.max_branches, row.max_members, row.max_staff_seats, row.messages_per_month, row.alliance_membership),
    )


async def plans(uow: UnitOfWork) -> list[Plan]:
    rows = await uow.session.execute(text(f"SELECT {_PLAN_COLUMNS} FROM billing_plans ORDER BY sort, code"))
    return [_plan(r) for r in rows]


async def plan(uow: UnitOfWork, code: str) -> Plan | None:
    row = (
        await uow.session.execute(text(f"SELECT {_PLAN_COLUMNS} FROM billing_plans WHERE code = :c"), {"c": code})
    ).first()
    return _plan(row) if row is not None else None


async def merchant_created_at(uow: UnitOfWork, tenant: uuid.UUID) -> datetime | None:
    found = await uow.session.scalar(text("SELECT created_at FROM merchants WHERE id = :t"), {"t": tenant})
    return found if isinstance(found, datetime) else None


def _account(row: Any) -> Account:
    return Account(
        plan=row.plan,
        status=Status(row.status),
        trial_ends_at=row.trial_ends_at,
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        past_due_since=row.past_due_since,
        grace_until=row.grace_until,
        current_period_end=row.current_period_end,
        cancel_at_period_end=row.cancel_at_period_end,
        canceled_at=row.canceled_at,
        state_at=row.state_at,
        subscription_at=row.subscription_at,
    )


async def account(uow: UnitOfWork, tenant: uuid.UUID, *, lock: bool = False) -> Account | None:
    row = (await uow.session.execute(text(_ACCOUNT_SQL[lock]), {"t": tenant})).first()
    return _account(row) if row is not None else None


async def insert_account(uow: UnitOfWork, tenant: uuid.UUID, new: Account) -> None:
    """The merchant's first account row; a concurrent first read inserting it too is harmless."""
    await uow.session.execute(
        text(
            "INSERT INTO billing_accounts (tenant_id, plan, status, trial_ends_at) VALUES (:t, :p, :s, :e) "
            "ON CONFLICT (tenant_id) DO NOTHING"
        ),
        {"t": tenant, "p": new.plan, "s": new.status.value, "e": new.trial_ends_at},
    )


async def save_account(uow: UnitOfWork, tenant: uuid.UUID, a: Account) -> None:
    await uow.session.execute(
        text(
            "UPDATE billing_accounts SET plan = :plan, status = :status, stripe_customer_id = :customer, "
            "stripe_subscription_id = :subscription, past_due_since = :since, grace_until = :grace, "
            "current_period_end = :period_end, cancel_at_period_end = :cancel_end, canceled_at = :canceled, "
            "state_at = :state_at, subscription_at = :subscription_at, updated_at = now() WHERE tenant_id = :t"
        ),
        {
            "t": tenant,
            "plan": a.plan,
            "status": a.status.value,
            "customer": a.stripe_customer_id,
            "subscription": a.stripe_subscription_id,
            "since": a.past_due_since,
            "grace": a.grace_until,
            "period_end": a.current_period_end,
            "cancel_end": a.cancel_at_period_end,
            "canceled": a.canceled_at,
            "state_at": a.state_at,
            "subscription_at": a.subscription_at,
        },
    )


async def tenant_of_customer(uow: UnitOfWork, customer: str) -> uuid.UUID | None:
    """The merchant whose Stripe customer this is (system scope: any merchant)."""
    found = await uow.session.scalar(
        text("SELECT tenant_id FROM billing_accounts WHERE stripe_customer_id = :c"), {"c": customer}
    )
    return found if isinstance(found, uuid.UUID) else None


async def merchants_due(
    uow: UnitOfWork, now: datetime, trial_days: int, merchant: uuid.UUID | None
) -> list[tuple[uuid.UUID, str]]:
    """(id, slug) of the merchants whose trial or grace has run out by ``now`` — including those
    whose account row was never created (system scope)."""
    rows = await uow.session.execute(
        text(
            "SELECT m.id, m.slug FROM merchants m LEFT JOIN billing_accounts a ON a.tenant_id = m.id "
            "WHERE (CAST(:m AS uuid) IS NULL OR m.id = :m) AND ("
            "(a.tenant_id IS NULL AND m.created_at + make_interval(days => :d) <= :now) "
            "OR (a.status = 'trialing' AND a.stripe_subscription_id IS NULL AND a.trial_ends_at <= :now) "
            "OR (a.status = 'past_due' AND a.grace_until <= :now)) ORDER BY m.id"
        ),
        {"now": now, "d": trial_days, "m": merchant},
    )
    return [(r.id, r.slug) for r in rows]


# --- the webhook inbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    id: int
    provider: str
    event_id: str | None
    type: str
    created: datetime | None
    payload: dict[str, Any] | None
    status: str
    tenant_id: uuid.UUID | None
    reason: str | None
    attempts: int
    deliveries: int
    received_at: datetime
    processed_at: datetime | None


_EVENT_COLUMNS = (
    "id, provider, event_id, type, created, payload, status, tenant_id, reason, attempts, deliveries, "
    "received_at, processed_at"
)

_EVENT_SQL = {
    False: (
        "SELECT id, provider, event_id, type, created, payload, status, tenant_id, reason, attempts, "
        "deliveries, received_at, processed_at FROM billing_events WHERE id = :id"
    ),
    True: (
        "SELECT id, provider, event_id, type, created, payload, status, tenant_id, reason, attempts, "
        "deliveries, received_at, processed_at FROM billing_events WHERE id = :id FOR UPDATE"
    ),
}


def _event(row: Any) -> EventRow:
    return EventRow(**{k: getattr(row, k) for k in EventRow.__dataclass_fields__})


async def store_event(
    uow: UnitOfWork, provider: str, event_id: str, type_: str, created: datetime, payload: dict[str, Any]
) -> tuple[int, bool]:
    """Store a verified event once: ``(row id, True)`` the first time; a redelivery counts itself on
    the existing row and answers ``(row id, False)``."""
    row = (
        await uow.session.execute(
            text(
                "INSERT INTO billing_events (provider, event_id, type, created, payload, status) "
                "VALUES (:p, :e, :t, :c, CAST(:payload AS jsonb), 'received') "
                "ON CONFLICT (provider, event_id) DO UPDATE SET deliveries = billing_events.deliveries + 1 "
                "RETURNING id, (xmax = 0) AS inserted"
            ),
            {"p": provider, "e": event_id, "t": type_, "c": created, "payload": json.dumps(payload)},
        )
    ).one()
    return int(row.id), bool(row.inserted)


async def record_refusal(uow: UnitOfWork, provider: str, reason: str) -> int:
    return int(
        await uow.session.scalar(
            text(
                "INSERT INTO billing_events (provider, status, reason, attempts) VALUES (:p, 'refused', :r, 0) "
                "RETURNING id"
            ),
            {"p": provider, "r": reason[:1000]},
        )
        or 0
    )


async def event(uow: UnitOfWork, row_id: int, *, lock: bool = False) -> EventRow | None:
    row = (await uow.session.execute(text(_EVENT_SQL[lock]), {"id": row_id})).first()
    return _event(row) if row is not None else None


async def finish_event(
    uow: UnitOfWork, row_id: int, status: str, *, tenant: uuid.UUID | None, reason: str | None
) -> None:
    await uow.session.execute(
        text(
            "UPDATE billing_events SET status = :s, tenant_id = COALESCE(:t, tenant_id), reason = :r, "
            "attempts = attempts + 1, processed_at = now() WHERE id = :id"
        ),
        {"id": row_id, "s": status, "t": tenant, "r": reason},
    )


async def events(uow: UnitOfWork, *, statuses: tuple[str, ...] | None = None, limit: int = 100) -> list[EventRow]:
    """The newest events first (system scope: all; a merchant: its own)."""
    rows = await uow.session.execute(
        text(
            f"SELECT {_EVENT_COLUMNS} FROM billing_events "
            "WHERE CAST(:s AS text[]) IS NULL OR status = ANY(CAST(:s AS text[])) ORDER BY id DESC LIMIT :n"
        ),
        {"s": list(statuses) if statuses else None, "n": limit},
    )
    return [_event(r) for r in rows]


# --- usage against the plan's limits -----------------------------------------------------------------

#: the outbox actors that send one message to a member each (the marketing engine's senders). Until
#: messaging exists nothing is queued under these names and the count is 0 (decision 0032).
MESSAGE_ACTORS = ("marketing_send_message", "marketing_send_sms")

_MESSAGES_SQL = (
    "SELECT count(*) FROM outbox o WHERE o.tenant_id = :t AND o.actor = ANY(CAST(:actors AS text[])) "
    "AND o.created_at >= (date_trunc('month', COALESCE(CAST(:now AS timestamptz), now()) AT TIME ZONE "
    "(SELECT timezone FROM merchants WHERE id = :t)) AT TIME ZONE (SELECT timezone FROM merchants WHERE id = :t))"
)


async def messages_this_month(uow: UnitOfWork, tenant: uuid.UUID, now: datetime | None = None) -> int:
    """Messages queued for sending this calendar month (the merchant's time zone), counted from
    the outbox rows of :data:`MESSAGE_ACTORS`."""
    found = await uow.session.scalar(text(_MESSAGES_SQL), {"t": tenant, "actors": list(MESSAGE_ACTORS), "now": now})
    return int(found or 0)


async def messages_on(uow: UnitOfWork, tenant: uuid.UUID, start: datetime, end: datetime) -> int:
    """Messages queued in ``[start, end)`` (a day, for the metered report)."""
    found = await uow.session.scalar(
        text(
            "SELECT count(*) FROM outbox WHERE tenant_id = :t AND actor = ANY(CAST(:actors AS text[])) "
            "AND created_at >= :s AND created_at < :e"
        ),
        {"t": tenant, "actors": list(MESSAGE_ACTORS), "s": start, "e": end},
    )
    return int(found or 0)


async def usage(uow: UnitOfWork, tenant: uuid.UUID, now: datetime | None = None) -> Usage:
    """What the merchant uses: branches, members (memberships, erased ones included: their points
    and history stay), staff seats (every staff membership; POS clients take none), this month's
    messages, and alliances it is an active partner of."""
    row = (
        await uow.session.execute(
            text(
                "SELECT (SELECT count(*) FROM branches WHERE tenant_id = :t) AS branches, "
                "(SELECT count(*) FROM memberships WHERE tenant_id = :t) AS members, "
                "(SELECT count(*) FROM staff_memberships WHERE tenant_id = :t) AS seats, "
                "(SELECT count(*) FROM lianka_my_alliances() WHERE status = 'active') AS alliances"
            ),
            {"t": tenant},
        )
    ).one()
    messages = await messages_this_month(uow, tenant, now)
    return Usage(int(row.branches), int(row.members), int(row.seats), messages, int(row.alliances))


async def active_members_on(uow: UnitOfWork, tenant: uuid.UUID, start: datetime, end: datetime) -> int:
    """Members with a sale at the merchant in ``[start, end)`` (the ``active_members`` meter)."""
    found = await uow.session.scalar(
        text(
            "SELECT count(DISTINCT member_id) FROM sales WHERE tenant_id = :t AND member_id IS NOT NULL "
            "AND created_at >= :s AND created_at < :e"
        ),
        {"t": tenant, "s": start, "e": end},
    )
    return int(found or 0)


# --- billing e-mail, invoices --------------------------------------------------------------------------


async def billing_email(uow: UnitOfWork, tenant: uuid.UUID) -> str | None:
    found = await uow.session.scalar(
        text("SELECT billing_email FROM billing_accounts WHERE tenant_id = :t"), {"t": tenant}
    )
    return str(found) if found else None


async def set_billing_email(uow: UnitOfWork, tenant: uuid.UUID, email: str | None) -> None:
    await uow.session.execute(
        text("UPDATE billing_accounts SET billing_email = :e, updated_at = now() WHERE tenant_id = :t"),
        {"t": tenant, "e": email},
    )


@dataclass(frozen=True)
class InvoiceRow:
    stripe_invoice_id: str
    number: str | None
    currency: str
    amount_due: int
    amount_paid: int
    status: str
    hosted_invoice_url: str | None
    period_start: datetime | None
    period_end: datetime | None
    created: datetime
    event_at: datetime


_INVOICE_COLUMNS = (
    "stripe_invoice_id, number, currency, amount_due, amount_paid, status, hosted_invoice_url, period_start, "
    "period_end, created, event_at"
)


async def upsert_invoice(uow: UnitOfWork, tenant: uuid.UUID, inv: InvoiceRow) -> None:
    """Store what an invoice event says; an older event than the stored one changes nothing."""
    await uow.session.execute(
        text(
            f"INSERT INTO billing_invoices (tenant_id, {_INVOICE_COLUMNS}) VALUES (:t, :stripe_invoice_id, :number, "
            ":currency, :amount_due, :amount_paid, :status, :hosted_invoice_url, :period_start, :period_end, "
            ":created, :event_at) ON CONFLICT (tenant_id, stripe_invoice_id) DO UPDATE SET "
            "number = EXCLUDED.number, amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid, "
            "status = EXCLUDED.status, hosted_invoice_url = EXCLUDED.hosted_invoice_url, "
            "period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end, event_at = EXCLUDED.event_at "
            "WHERE billing_invoices.event_at <= EXCLUDED.event_at"
        ),
        {"t": tenant, **{k: getattr(inv, k) for k in InvoiceRow.__dataclass_fields__}},
    )


async def invoices(uow: UnitOfWork, tenant: uuid.UUID, limit: int = 24) -> list[InvoiceRow]:
    rows = await uow.session.execute(
        text(
            f"SELECT {_INVOICE_COLUMNS} FROM billing_invoices WHERE tenant_id = :t "
            "ORDER BY created DESC, stripe_invoice_id DESC LIMIT :n"
        ),
        {"t": tenant, "n": limit},
    )
    return [InvoiceRow(**{k: getattr(r, k) for k in InvoiceRow.__dataclass_fields__}) for r in rows]


# --- metered usage reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageReport:
    meter: str
    day: date
    value: int
    idempotency_key: str
    stripe_customer_id: str
    reported_at: datetime | None


async def claim_usage_report(uow: UnitOfWork, tenant: uuid.UUID, report: UsageReport) -> UsageReport:
    """The day's report for this meter: created with ``report``'s value the first time; a rerun gets
    the stored one back (same value, same key), so Stripe is told one number per day, once."""
    await uow.session.execute(
        text(
            "INSERT INTO billing_usage_reports (tenant_id, meter, day, value, idempotency_key, stripe_customer_id) "
            "VALUES (:t, :m, :d, :v, :k, :c) ON CONFLICT (tenant_id, meter, day) DO NOTHING"
        ),
        {
            "t": tenant,
            "m": report.meter,
            "d": report.day,
            "v": report.value,
            "k": report.idempotency_key,
            "c": report.stripe_customer_id,
        },
    )
    row = (
        await uow.session.execute(
            text(
                "SELECT meter, day, value, idempotency_key, stripe_customer_id, reported_at FROM billing_usage_reports "
                "WHERE tenant_id = :t AND meter = :m AND day = :d FOR UPDATE"
            ),
            {"t": tenant, "m": report.meter, "d": report.day},
        )
    ).one()
    return UsageReport(row.meter, row.day, int(row.value), row.idempotency_key, row.stripe_customer_id, row.reported_at)


async def mark_usage_reported(uow: UnitOfWork, tenant: uuid.UUID, meter: str, day: date) -> None:
    await uow.session.execute(
        text(
            "UPDATE billing_usage_reports SET reported_at = now() WHERE tenant_id = :t AND meter = :m AND day = :d "
            "AND reported_at IS NULL"
        ),
        {"t": tenant, "m": meter, "d": day},
    )


async def usage_reports(uow: UnitOfWork, tenant: uuid.UUID) -> list[UsageReport]:
    rows = await uow.session.execute(
        text(
            "SELECT meter, day, value, idempotency_key, stripe_customer_id, reported_at FROM billing_usage_reports "
            "WHERE tenant_id = :t ORDER BY day, meter"
        ),
        {"t": tenant},
    )
    return [
        UsageReport(r.meter, r.day, int(r.value), r.idempotency_key, r.stripe_customer_id, r.reported_at) for r in rows
    ]


async def merchants_with_customer(uow: UnitOfWork, merchant: uuid.UUID | None) -> list[tuple[uuid.UUID, str]]:
    """(id, slug) of merchants that have a Stripe customer (system scope): those usage is reported for."""
    rows = await uow.session.execute(
        text(
            "SELECT m.id, m.slug FROM merchants m JOIN billing_accounts a ON a.tenant_id = m.id "
            "WHERE a.stripe_customer_id IS NOT NULL AND (CAST(:m AS uuid) IS NULL OR m.id = :m) ORDER BY m.id"
        ),
        {"m": merchant},
    )
    return [(r.id, r.slug) for r in rows]


async def merchant_timezone(uow: UnitOfWork, tenant: uuid.UUID) -> str:
    found = await uow.session.scalar(text("SELECT timezone FROM merchants WHERE id = :t"), {"t": tenant})
    return str(found or "Asia/Shanghai")
