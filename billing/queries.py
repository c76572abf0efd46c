"""Every SQL statement of billing, each behind a typed function (the units of work come from the
services). ``billing_accounts`` and ``billing_events`` admit system scope: the webhook processing
learns the merchant from the Stripe customer id, so it reads them before it knows the tenant."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lianka.billing.domain import Account, Limits, Plan, Status
from lianka.platform.db import UnitOfWork

_PLAN_COLUMNS = (
    "code, name, price_minor, currency, max_branches, max_members, max_staff_seats, messages_per_month, "
    "alliance_membership"
)

#: the account row, plain or locked for update (the key: ``lock``)
_ACCOUNT_SQL = {
    False: (
        "SELECT plan, status, trial_ends_at, stripe_customer_id, stripe_subscription_id, past_due_since, "
        "grace_until, current_period_end, cancel_at_period_end, canceled_at, state_at FROM billing_accounts "
        "WHERE tenant_id = :t"
    ),
    True: (
        "SELECT plan, status, trial_ends_at, stripe_customer_id, stripe_subscription_id, past_due_since, "
        "grace_until, current_period_end, cancel_at_period_end, canceled_at, state_at FROM billing_accounts "
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
            "state_at = :state_at, updated_at = now() WHERE tenant_id = :t"
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
