"""Every SQL statement of member payments, each behind a typed function. ``payment_orders`` and
``payment_credentials`` admit system scope (the reconciliation poll; verifying a WeChat Pay
notification before the merchant is known); ``payment_refunds`` is tenant-only."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork


@dataclass(frozen=True)
class Order:
    tenant_id: uuid.UUID
    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    purpose: dict[str, Any]
    description: str
    amount: int
    currency: str
    provider: str
    provider_ref: str | None
    checkout_ref: str | None
    status: str
    refunded_amount: int
    result: dict[str, Any] | None
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True)
class Refund:
    id: uuid.UUID
    order_id: uuid.UUID
    key: str
    amount: int
    bonus_forfeited: int
    status: str
    provider_ref: str | None
    reason: str | None
    created_at: datetime


_ORDER = (
    "tenant_id, id, member_id, kind, purpose, description, amount, currency, provider, provider_ref, checkout_ref, "
    "status, refunded_amount, result, created_at, paid_at"
)
_REFUND = "id, order_id, key, amount, bonus_forfeited, status, provider_ref, reason, created_at"
_ORDER_SQL = {
    False: f"SELECT {_ORDER} FROM payment_orders WHERE id = :id",
    True: f"SELECT {_ORDER} FROM payment_orders WHERE id = :id FOR UPDATE",
}


def _order(row: Any) -> Order:
    return Order(**{k: getattr(row, k) for k in Order.__dataclass_fields__})


def _refund(row: Any) -> Refund:
    return Refund(**{k: getattr(row, k) for k in Refund.__dataclass_fields__})


async def insert_order(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    member_id: uuid.UUID,
    kind: str,
    purpose: dict[str, Any],
    description: str,
    amount: int,
    currency: str,
    provider: str,
) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO payment_orders (tenant_id, id, member_id, kind, purpose, description, amount, currency, "
            "provider) VALUES (:t, :id, :m, :k, CAST(:p AS jsonb), :d, :a, :c, :pr)"
        ),
        {
            "t": uow.tenant_id,
            "id": order_id,
            "m": member_id,
            "k": kind,
            "p": json.dumps(purpose),
            "d": description[:200],
            "a": amount,
            "c": currency,
            "pr": provider,
        },
    )


async def order(uow: UnitOfWork, order_id: uuid.UUID, *, lock: bool = False) -> Order | None:
    """The order in the unit of work's scope (another merchant's is None, like a missing one)."""
    row = (await uow.session.execute(text(_ORDER_SQL[lock]), {"id": order_id})).first()
    return _order(row) if row is not None else None


async def set_checkout(uow: UnitOfWork, order_id: uuid.UUID, checkout_ref: str, result: dict[str, Any]) -> None:
    await uow.session.execute(
        text(
            "UPDATE payment_orders SET checkout_ref = :c, result = CAST(:r AS jsonb), updated_at = now() WHERE id = :id"
        ),
        {"id": order_id, "c": checkout_ref, "r": json.dumps(result)},
    )


async def mark_paid(uow: UnitOfWork, order_id: uuid.UUID, provider_ref: str, paid_at: datetime) -> bool:
    """``pending`` (or a lapsed ``expired``/``failed``) → ``paid``, conditionally: True for the one
    caller that moved it. A concurrent caller blocks on the row lock, re-reads the status after the
    first commits, and gets False — the heart of exactly-once confirmation."""
    row = (
        await uow.session.execute(
            text(
                "UPDATE payment_orders SET status = 'paid', provider_ref = :ref, paid_at = :at, updated_at = now() "
                "WHERE id = :id AND status IN ('pending', 'expired', 'failed') RETURNING id"
            ),
            {"id": order_id, "ref": provider_ref, "at": paid_at},
        )
    ).first()
    return row is not None


async def mark_unpaid(uow: UnitOfWork, order_id: uuid.UUID, status: str) -> bool:
    row = (
        await uow.session.execute(
            text(
                "UPDATE payment_orders SET status = :s, updated_at = now() WHERE id = :id AND status = 'pending' "
                "RETURNING id"
            ),
            {"id": order_id, "s": status},
        )
    ).first()
    return row is not None


async def add_refunded(uow: UnitOfWork, order_id: uuid.UUID, amount: int) -> None:
    """Count a refund against the order (negative: release a refund that failed)."""
    await uow.session.execute(
        text(
            "UPDATE payment_orders SET refunded_amount = refunded_amount + :a, status = CASE "
            "WHEN refunded_amount + :a = 0 THEN 'paid' WHEN refunded_amount + :a >= amount THEN 'refunded' "
            "ELSE 'partially_refunded' END, updated_at = now() WHERE id = :id"
        ),
        {"id": order_id, "a": amount},
    )


async def member_orders(uow: UnitOfWork, member_id: uuid.UUID, limit: int = 50) -> list[Order]:
    rows = await uow.session.execute(
        text(f"SELECT {_ORDER} FROM payment_orders WHERE member_id = :m ORDER BY created_at DESC LIMIT :n"),
        {"m": member_id, "n": limit},
    )
    return [_order(r) for r in rows]


async def pending_older_than(
    uow: UnitOfWork, cutoff: datetime, merchant: uuid.UUID | None = None, limit: int = 500
) -> list[Order]:
    """Pending orders created before ``cutoff`` (system scope: every merchant's)."""
    rows = await uow.session.execute(
        text(
            f"SELECT {_ORDER} FROM payment_orders WHERE status = 'pending' AND created_at < :c "
            "AND (CAST(:m AS uuid) IS NULL OR tenant_id = :m) ORDER BY created_at LIMIT :n"
        ),
        {"c": cutoff, "m": merchant, "n": limit},
    )
    return [_order(r) for r in rows]


async def merchants_with_pending(
    uow: UnitOfWork, cutoff: datetime, merchant: uuid.UUID | None
) -> list[tuple[uuid.UUID, str]]:
    """Merchants with an order pending, or a refund in flight, since before ``cutoff`` (the poll's)."""
    rows = await uow.session.execute(
        text(
            "SELECT m.id, m.slug FROM merchants m WHERE (CAST(:m AS uuid) IS NULL OR m.id = :m) AND ("
            "EXISTS (SELECT 1 FROM payment_orders o WHERE o.tenant_id = m.id AND o.status = 'pending' "
            "AND o.created_at < :c) OR EXISTS (SELECT 1 FROM payment_refunds r WHERE r.tenant_id = m.id "
            "AND r.status = 'pending' AND r.provider_ref IS NOT NULL AND r.created_at < :c)) ORDER BY m.id"
        ),
        {"c": cutoff, "m": merchant},
    )
    return [(r.id, r.slug) for r in rows]


# --- refunds ------------------------------------------------------------------------------------------


async def refund_by_key(uow: UnitOfWork, order_id: uuid.UUID, key: str) -> Refund | None:
    row = (
        await uow.session.execute(
            text(f"SELECT {_REFUND} FROM payment_refunds WHERE order_id = :o AND key = :k"), {"o": order_id, "k": key}
        )
    ).first()
    return _refund(row) if row is not None else None


async def insert_refund(
    uow: UnitOfWork, refund_id: uuid.UUID, order_id: uuid.UUID, key: str, amount: int, bonus_forfeited: int
) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO payment_refunds (tenant_id, id, order_id, key, amount, bonus_forfeited, status) "
            "VALUES (:t, :id, :o, :k, :a, :b, 'pending')"
        ),
        {"t": uow.tenant_id, "id": refund_id, "o": order_id, "k": key, "a": amount, "b": bonus_forfeited},
    )


async def finish_refund(
    uow: UnitOfWork, refund_id: uuid.UUID, status: str, provider_ref: str | None, reason: str | None
) -> None:
    await uow.session.execute(
        text("UPDATE payment_refunds SET status = :s, provider_ref = :p, reason = :r WHERE id = :id"),
        {"id": refund_id, "s": status, "p": provider_ref, "r": reason},
    )


async def refunds_of(uow: UnitOfWork, order_ids: list[uuid.UUID]) -> list[Refund]:
    rows = await uow.session.execute(
        text(f"SELECT {_REFUND} FROM payment_refunds WHERE order_id = ANY(:o) ORDER BY created_at"),
        {"o": order_ids},
    )
    return [_refund(r) for r in rows]


async def refund(uow: UnitOfWork, refund_id: uuid.UUID, *, lock: bool = False) -> Refund | None:
    row = (
        await uow.session.execute(
            text(f"SELECT {_REFUND} FROM payment_refunds WHERE id = :id" + (" FOR UPDATE" if lock else "")),
            {"id": refund_id},
        )
    ).first()
    return _refund(row) if row is not None else None


async def refunds_in_flight(uow: UnitOfWork, older_than: datetime) -> list[Refund]:
    """Refunds the provider accepted but has not finished (pending, with its reference), for the poll."""
    rows = await uow.session.execute(
        text(
            f"SELECT {_REFUND} FROM payment_refunds WHERE status = 'pending' AND provider_ref IS NOT NULL "
            "AND created_at < :c ORDER BY created_at LIMIT 500"
        ),
        {"c": older_than},
    )
    return [_refund(r) for r in rows]


async def pending_refund(uow: UnitOfWork, order_id: uuid.UUID) -> bool:
    found = await uow.session.scalar(
        text("SELECT 1 FROM payment_refunds WHERE order_id = :o AND status = 'pending' LIMIT 1"), {"o": order_id}
    )
    return found is not None


# --- credentials --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialRow:
    provider: str
    secret: bytes
    hints: dict[str, str]
    updated_at: datetime


async def credentials(uow: UnitOfWork, tenant: uuid.UUID) -> CredentialRow | None:
    row = (
        await uow.session.execute(
            text("SELECT provider, secret, hints, updated_at FROM payment_credentials WHERE tenant_id = :t"),
            {"t": tenant},
        )
    ).first()
    return CredentialRow(row.provider, bytes(row.secret), dict(row.hints), row.updated_at) if row else None


async def save_credentials(uow: UnitOfWork, provider: str, secret: bytes, hints: dict[str, str]) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO payment_credentials (tenant_id, provider, secret, hints) VALUES (:t, :p, :s, CAST(:h AS jsonb)) "
            "ON CONFLICT (tenant_id) DO UPDATE SET provider = EXCLUDED.provider, secret = EXCLUDED.secret, "
            "hints = EXCLUDED.hints, updated_at = now()"
        ),
        {"t": uow.tenant_id, "p": provider, "s": secret, "h": json.dumps(hints)},
    )


async def online_branch(uow: UnitOfWork) -> uuid.UUID | None:
    """The merchant's branch marked for online sales: the one whose code is ``ONLINE``."""
    found = await uow.session.scalar(text("SELECT id FROM branches WHERE upper(code) = 'ONLINE' LIMIT 1"))
    return found if isinstance(found, uuid.UUID) else None


async def merchant_currency(uow: UnitOfWork) -> str:
    return str(await uow.session.scalar(text("SELECT currency FROM merchants WHERE id = :t"), {"t": uow.tenant_id}))
