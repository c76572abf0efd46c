"""The bank payment file: the month's payouts paid by bank transfer and the collections, as a CSV a
treasurer works from (layout in ``docs/payouts-bank-file.md``). Made from the stored payouts, never
recomputed; banks send no webhooks, so an operator marks each line paid or returned afterwards."""

from __future__ import annotations

import csv
import io
import uuid

from lianka.alliance.ledger.domain import check_period
from lianka.billing.payouts import domain
from lianka.billing.payouts import queries as q
from lianka.billing.payouts.domain import Direction, Method, Status
from lianka.platform import audit
from lianka.platform.cells import safe_row
from lianka.platform.db import Database
from lianka.platform.money import Money, minor_digits

COLUMNS = [
    "reference",
    "period",
    "action",
    "payer",
    "payee",
    "branch_code",
    "account_name",
    "bank_name",
    "account_number",
    "amount",
    "amount_minor",
    "currency",
    "attempt",
]


def amount_text(minor: int, currency: str) -> str:
    """``1234.50``: major units with the currency's decimals, exact (no float, no grouping)."""
    return f"{Money(minor, currency).major:.{minor_digits(currency)}f}"


async def bank_file(
    db: Database, book: uuid.UUID, period: str, hub_name: str, *, merchant: uuid.UUID, actor: audit.Actor
) -> bytes:
    """The month's open bank lines: payouts to make (``pay``) and collections to receive
    (``collect``), UTF-8 with a byte-order mark so Excel reads the Chinese names. The file carries
    bank account numbers: every download is audited in ``merchant``'s log."""
    check_period(period)
    async with db.uow(book) as uow:
        rows = await q.payouts(uow, period)
        accounts = await q.payee_accounts(uow)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for p in rows:
        if p.method != Method.BANK or p.status != Status.PENDING:
            continue
        a = accounts.get(p.entity_id)
        payee = f"{p.code} {p.name}"
        paying = p.direction == Direction.PAYOUT
        w.writerow(
            safe_row(
                [
                    str(p.id),
                    p.period,
                    "pay" if paying else "collect",
                    hub_name if paying else payee,
                    payee if paying else hub_name,
                    p.code,
                    (a.bank_account_name if a else None) or "",
                    (a.bank_name if a else None) or "",
                    domain.mask(a.bank_account_number if a else None),
                    amount_text(p.amount_minor, p.currency),
                    p.amount_minor,
                    p.currency,
                    p.attempt,
                ]
            )
        )
    await audit.downloaded(
        db, merchant, actor, "bank_file", period, {"book": book, "period": period, "lines": len(rows)}
    )
    return ("\ufeff" + buf.getvalue()).encode()
