"""Every SQL statement of payouts, each behind a typed function. All three tables are tenant rows of
the book (a chain's merchant, an alliance): the webhook processing switches its unit of work to the
book its event names before it reads them, so another book's rows are never seen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lianka.billing.payouts.domain import Planned
from lianka.platform.db import UnitOfWork


@dataclass(frozen=True)
class PayeeAccount:
    """A row of ``payout_accounts``: how a payee of the book can be paid."""

    payee_id: uuid.UUID
    payee_kind: str
    stripe_account_id: str | None
    payouts_enabled: bool
    details_submitted: bool
    state_at: datetime | None
    problem: str | None
    bank_account_name: str | None
    bank_name: str | None
    bank_account_number: str | None


@dataclass(frozen=True)
class PayoutRow:
    """A row of ``payouts`` with its latest attempt's method, status, transfer and reason."""

    id: uuid.UUID
    period: str
    entity_kind: str
    entity_id: uuid.UUID
    code: str
    name: str
    direction: str
    amount_minor: int
    currency: str
    statement_checksum: str
    status: str
    attempt: int
    method: str | None
    attempt_status: str | None
    destination: str | None
    stripe_transfer_id: str | None
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class AttemptRow:
    payout_id: uuid.UUID
    attempt: int
    method: str
    status: str
    destination: str | None
    stripe_transfer_id: str | None


_ACCOUNT_COLUMNS = (
    "payee_id, payee_kind, stripe_account_id, payouts_enabled, details_submitted, state_at, problem, "
    "bank_account_name, bank_name, bank_account_number"
)
_PAYOUT_COLUMNS = (
    "p.id, p.period, p.entity_kind, p.entity_id, p.code, p.name, p.direction, p.amount_minor, p.currency, "
    "p.statement_checksum, p.status, p.attempt, a.method, a.status AS attempt_status, a.destination, "
    "a.stripe_transfer_id, a.reason, p.updated_at"
)
_PAYOUTS_FROM = (
    "FROM payouts p LEFT JOIN payout_attempts a "
    "ON a.tenant_id = p.tenant_id AND a.payout_id = p.id AND a.attempt = p.attempt"
)


def _account(row: Any) -> PayeeAccount:
    return PayeeAccount(*row)


def _payout(row: Any) -> PayoutRow:
    return PayoutRow(*row)


# --- payees --------------------------------------------------------------------------------------


async def payee_accounts(uow: UnitOfWork) -> dict[uuid.UUID, PayeeAccount]:
    rows = await uow.session.execute(text(f"SELECT {_ACCOUNT_COLUMNS} FROM payout_accounts"))
    return {r.payee_id: _account(r) for r in rows}


async def payee_account(uow: UnitOfWork, payee: uuid.UUID, *, lock: bool = False) -> PayeeAccount | None:
    sql = f"SELECT {_ACCOUNT_COLUMNS} FROM payout_accounts WHERE payee_id = :p" + (" FOR UPDATE" if lock else "")
    row = (await uow.session.execute(text(sql), {"p": payee})).first()
    return _account(row) if row is not None else None


async def account_by_stripe_id(uow: UnitOfWork, stripe_account: str) -> PayeeAccount | None:
    row = (
        await uow.session.execute(
            text(f"SELECT {_ACCOUNT_COLUMNS} FROM payout_accounts WHERE stripe_account_id = :a FOR UPDATE"),
            {"a": stripe_account},
        )
    ).first()
    return _account(row) if row is not None else None


async def ensure_payee(uow: UnitOfWork, tenant: uuid.UUID, payee: uuid.UUID, kind: str) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO payout_accounts (tenant_id, payee_id, payee_kind) VALUES (:t, :p, :k) "
            "ON CONFLICT (tenant_id, payee_id) DO NOTHING"
        ),
        {"t": tenant, "p": payee, "k": kind},
    )


async def set_stripe_account(uow: UnitOfWork, payee: uuid.UUID, stripe_account: str) -> None:
    await uow.session.execute(
        text("UPDATE payout_accounts SET stripe_account_id = :a, updated_at = now() WHERE payee_id = :p"),
        {"p": payee, "a": stripe_account},
    )


async def set_account_state(
    uow: UnitOfWork, payee: uuid.UUID, *, payouts_enabled: bool, details_submitted: bool, state_at: datetime
) -> None:
    await uow.session.execute(
        text(
            "UPDATE payout_accounts SET payouts_enabled = :e, details_submitted = :d, state_at = :s, "
            "updated_at = now() WHERE payee_id = :p"
        ),
        {"p": payee, "e": payouts_enabled, "d": details_submitted, "s": state_at},
    )


async def set_problem(uow: UnitOfWork, payee: uuid.UUID, problem: str | None) -> None:
    await uow.session.execute(
        text("UPDATE payout_accounts SET problem = :r, updated_at = now() WHERE payee_id = :p"),
        {"p": payee, "r": problem},
    )


async def set_bank_details(uow: UnitOfWork, payee: uuid.UUID, name: str, bank: str, number: str) -> None:
    await uow.session.execute(
        text(
            "UPDATE payout_accounts SET bank_account_name = :n, bank_name = :b, bank_account_number = :a, "
            "updated_at = now() WHERE payee_id = :p"
        ),
        {"p": payee, "n": name, "b": bank, "a": number},
    )


# --- payouts -------------------------------------------------------------------------------------


async def covered_before(uow: UnitOfWork, period: str) -> dict[uuid.UUID, int]:
    """Per entity: what its payout lines of months before ``period`` cover (payouts +, collections −)."""
    rows = await uow.session.execute(
        text(
            "SELECT entity_id, sum(CASE direction WHEN 'payout' THEN amount_minor ELSE -amount_minor END) "
            "FROM payouts WHERE period < :p GROUP BY entity_id"
        ),
        {"p": period},
    )
    return {r[0]: int(r[1]) for r in rows}


async def insert_payouts(uow: UnitOfWork, tenant: uuid.UUID, period: str, lines: list[Planned]) -> int:
    """One payout per line; a line that already has one keeps it (the key is the statement line).
    How many were new."""
    made = 0
    for line in lines:
        result = await uow.session.execute(
            text(
                "INSERT INTO payouts (tenant_id, id, period, entity_kind, entity_id, code, name, direction, "
                "amount_minor, currency, statement_checksum) VALUES (:t, :id, :p, :k, :e, :c, :n, :d, :a, :cur, :cs) "
                "ON CONFLICT (tenant_id, period, entity_id) DO NOTHING"
            ),
            {
                "t": tenant,
                "id": uuid.uuid4(),
                "p": period,
                "k": line.entity_kind,
                "e": line.entity_id,
                "c": line.code,
                "n": line.name,
                "d": line.direction.value,
                "a": line.amount_minor,
                "cur": line.currency,
                "cs": line.statement_checksum,
            },
        )
        made += int(getattr(result, "rowcount", 0) or 0)
    return made


async def payouts(uow: UnitOfWork, period: str | None = None) -> list[PayoutRow]:
    rows = await uow.session.execute(
        text(
            f"SELECT {_PAYOUT_COLUMNS} {_PAYOUTS_FROM} WHERE CAST(:p AS text) IS NULL OR p.period = CAST(:p AS text) "
            "ORDER BY p.period DESC, p.code"
        ),
        {"p": period},
    )
    return [_payout(r) for r in rows]


async def payout(uow: UnitOfWork, payout_id: uuid.UUID, *, lock: bool = False) -> PayoutRow | None:
    if lock:
        await uow.session.execute(text("SELECT 1 FROM payouts WHERE id = :i FOR UPDATE"), {"i": payout_id})
    row = (
        await uow.session.execute(text(f"SELECT {_PAYOUT_COLUMNS} {_PAYOUTS_FROM} WHERE p.id = :i"), {"i": payout_id})
    ).first()
    return _payout(row) if row is not None else None


async def without_attempt(uow: UnitOfWork, period: str) -> list[PayoutRow]:
    """The month's payouts never tried, locked (a concurrent run waits, then sees them tried)."""
    ids = (
        await uow.session.execute(
            text("SELECT id FROM payouts WHERE period = :p AND attempt = 0 ORDER BY code FOR UPDATE"), {"p": period}
        )
    ).scalars()
    found = [await payout(uow, i) for i in list(ids)]
    return [p for p in found if p is not None]


async def add_attempt(
    uow: UnitOfWork,
    tenant: uuid.UUID,
    payout_id: uuid.UUID,
    attempt: int,
    method: str,
    status: str,
    destination: str | None,
) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO payout_attempts (tenant_id, payout_id, attempt, method, status, destination) "
            "VALUES (:t, :i, :n, :m, :s, :d)"
        ),
        {"t": tenant, "i": payout_id, "n": attempt, "m": method, "s": status, "d": destination},
    )
    await uow.session.execute(
        text("UPDATE payouts SET attempt = :n, status = 'pending', updated_at = now() WHERE id = :i"),
        {"i": payout_id, "n": attempt},
    )


async def attempts_sending(uow: UnitOfWork, period: str | None = None) -> list[AttemptRow]:
    rows = await uow.session.execute(
        text(
            "SELECT a.payout_id, a.attempt, a.method, a.status, a.destination, a.stripe_transfer_id "
            "FROM payout_attempts a JOIN payouts p ON p.tenant_id = a.tenant_id AND p.id = a.payout_id "
            "WHERE a.status = 'sending' AND (CAST(:p AS text) IS NULL OR p.period = CAST(:p AS text)) ORDER BY p.code"
        ),
        {"p": period},
    )
    return [AttemptRow(*r) for r in rows]


async def attempt(uow: UnitOfWork, payout_id: uuid.UUID, number: int, *, lock: bool = False) -> AttemptRow | None:
    sql = (
        "SELECT payout_id, attempt, method, status, destination, stripe_transfer_id FROM payout_attempts "
        "WHERE payout_id = :i AND attempt = :n" + (" FOR UPDATE" if lock else "")
    )
    row = (await uow.session.execute(text(sql), {"i": payout_id, "n": number})).first()
    return AttemptRow(*row) if row is not None else None


async def attempt_by_transfer(uow: UnitOfWork, transfer: str) -> AttemptRow | None:
    row = (
        await uow.session.execute(
            text(
                "SELECT payout_id, attempt, method, status, destination, stripe_transfer_id FROM payout_attempts "
                "WHERE stripe_transfer_id = :x FOR UPDATE"
            ),
            {"x": transfer},
        )
    ).first()
    return AttemptRow(*row) if row is not None else None


async def set_transfer(uow: UnitOfWork, payout_id: uuid.UUID, number: int, transfer: str) -> None:
    await uow.session.execute(
        text("UPDATE payout_attempts SET stripe_transfer_id = :x WHERE payout_id = :i AND attempt = :n"),
        {"i": payout_id, "n": number, "x": transfer},
    )


async def set_attempt_status(
    uow: UnitOfWork, payout_id: uuid.UUID, number: int, status: str, payout_status: str, reason: str | None
) -> None:
    """The attempt's status and, when it is the payout's latest, the payout's."""
    await uow.session.execute(
        text(
            "UPDATE payout_attempts SET status = CAST(:s AS text), reason = COALESCE(CAST(:r AS text), reason), "
            "settled_at = CASE WHEN CAST(:s AS text) IN ('paid', 'failed', 'returned') THEN now() ELSE settled_at END "
            "WHERE payout_id = :i AND attempt = :n"
        ),
        {"i": payout_id, "n": number, "s": status, "r": reason},
    )
    await uow.session.execute(
        text("UPDATE payouts SET status = :s, updated_at = now() WHERE id = :i AND attempt = :n"),
        {"i": payout_id, "n": number, "s": payout_status},
    )


async def period_progress(uow: UnitOfWork, period: str) -> tuple[int, int]:
    """(payouts of the month, those whose latest attempt has left ``sending``)."""
    row = (
        await uow.session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE p.attempt > 0 AND a.status <> 'sending') "
                f"{_PAYOUTS_FROM} WHERE p.period = :p"
            ),
            {"p": period},
        )
    ).one()
    return int(row[0]), int(row[1])


async def branch_names(uow: UnitOfWork) -> list[tuple[uuid.UUID, str, str]]:
    rows = await uow.session.execute(text("SELECT id, code, name FROM branches ORDER BY code"))
    return [(r[0], r[1], r[2]) for r in rows]


async def book_of_stripe_account(uow: UnitOfWork, stripe_account: str) -> uuid.UUID | None:
    """The book whose payee owns ``stripe_account`` (system scope: Stripe names only the account)."""
    found = await uow.session.scalar(
        text("SELECT tenant_id FROM payout_accounts WHERE stripe_account_id = :a"), {"a": stripe_account}
    )
    return found if isinstance(found, uuid.UUID) else None
