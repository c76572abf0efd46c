"""Payout use cases: turn a closed month's statements into payouts (one per owed or owing line), send
the Stripe Connect transfers, retry a failed payout without paying twice, and let an operator mark
a bank-file line paid or returned. Connected accounts and their onboarding links are in
``connect.py``; the Stripe events that settle payouts in ``webhooks.py``.

**Exactly once.** A payout is unique per (book, month, statement entity). Each try is an attempt,
recorded as ``sending`` in its own transaction *before* Stripe is called, with the Idempotency-Key
``lianka-payout-<payout id>-<attempt>``: a crash or a lost answer leaves the attempt ``sending``, and
sending it again (any run, the job's retry) asks Stripe with the same key, which answers with the
same transfer. A new attempt — a new key — is only made once the previous one is definitively over
(failed, or returned/reversed), so a payout is never paid twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import stripe

from lianka.alliance.ledger.domain import check_period
from lianka.alliance.settlement import close, scopes
from lianka.alliance.settlement.statements import Scope
from lianka.billing.payouts import domain
from lianka.billing.payouts import queries as q
from lianka.billing.payouts.domain import Method, Status
from lianka.billing.payouts.errors import PayoutNotBank, PayoutNotRetryable, PayoutStatusConflict
from lianka.billing.payouts.queries import AttemptRow, PayoutRow
from lianka.billing.services import stripe_client
from lianka.platform import audit, outbox
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.log import get_logger
from lianka.platform.settings import Settings

log = get_logger(__name__)
SEND_ACTOR = "payouts_send"
QUEUE = "settlement"  # the worker consumes it (lianka.cli.WORKER_QUEUES)
#: what an operator may mark a bank-file line as
MARKS = (Status.PAID, Status.RETURNED)


@dataclass(frozen=True)
class RunResult:
    period: str
    created: int
    payouts: list[PayoutRow]


@dataclass(frozen=True)
class Progress:
    total: int
    sent: int

    @property
    def done(self) -> bool:
        return self.sent >= self.total

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else (100 * self.sent) // self.total


async def scope_of(db: Database, book: uuid.UUID, kind: str = "chain") -> Scope:
    return await (scopes.alliance_scope(db, book) if kind == "alliance" else scopes.chain_scope(db, book))


def idempotency_key(payout_id: uuid.UUID, attempt: int) -> str:
    return f"lianka-payout-{payout_id}-{attempt}"


def transfer_group(book: uuid.UUID, period: str) -> str:
    """One group per book and month: the platform's Stripe account serves every merchant."""
    return f"{period}:{book}"


# --- building blocks (take the unit of work; never commit) ------------------------------------------


async def _first_attempts(uow: UnitOfWork, book: uuid.UUID, period: str, payee_kind: str) -> None:
    accounts = await q.payee_accounts(uow)
    for p in await q.without_attempt(uow, period):
        await _add_attempt(uow, book, p, 1, accounts.get(p.entity_id), payee_kind)


async def _add_attempt(
    uow: UnitOfWork, book: uuid.UUID, p: PayoutRow, number: int, account: q.PayeeAccount | None, payee_kind: str
) -> Method:
    connected = account is not None and account.stripe_account_id is not None and account.payouts_enabled
    method = domain.method_for(p.direction, connected)
    destination = account.stripe_account_id if method is Method.STRIPE and account is not None else None
    status = domain.SENDING if method is Method.STRIPE else Status.PENDING.value
    await q.ensure_payee(uow, book, p.entity_id, payee_kind)
    await q.add_attempt(uow, book, p.id, number, method.value, status, destination)
    return method


# --- use cases --------------------------------------------------------------------------------------


async def prepare(db: Database, scope: Scope, period: str) -> int:
    """The month's payouts (one per owed or owing line) and each one's first attempt, in one
    transaction; how many payouts are new (0 on a second run). 404 while the month is not closed."""
    check_period(period)
    result = await close.result(db, scope, period)
    async with db.uow(scope.book) as uow:
        covered = await q.covered_before(uow, period)
        made = await q.insert_payouts(uow, scope.book, period, domain.plan(scope.kind, result.statements, covered))
        await _first_attempts(uow, scope.book, period, domain.payee_kind(scope.kind))
        await uow.commit()
    return made


async def run(db: Database, settings: Settings | None, scope: Scope, period: str) -> RunResult:
    """Pay everything owed for the month now: :func:`prepare`, then send every attempt still
    ``sending`` (idempotent: a second run creates and pays nothing new)."""
    made = await prepare(db, scope, period)
    await send_pending(db, settings, scope.book, period)
    return RunResult(period, made, await list_payouts(db, scope.book, period))


async def queue_run(db: Database, scope: Scope, period: str) -> Progress:
    """The console's "pay all owed": the payouts are made now, their transfers sent by the worker
    (``payouts_send``, queued in the same transaction as the attempts)."""
    await prepare(db, scope, period)
    async with db.uow(scope.book) as uow:
        await outbox.enqueue(uow, SEND_ACTOR, queue=QUEUE, book=str(scope.book), period=period)
        await uow.commit()
    return await progress(db, scope.book, period)


async def progress(db: Database, book: uuid.UUID, period: str) -> Progress:
    check_period(period)
    async with db.uow(book) as uow:
        total, sent = await q.period_progress(uow, period)
    return Progress(total, sent)


async def send_pending(db: Database, settings: Settings | None, book: uuid.UUID, period: str | None = None) -> int:
    """Send every Stripe attempt of the book (of ``period``) still ``sending``; how many were sent."""
    async with db.uow(book) as uow:
        waiting = await q.attempts_sending(uow, period)
    if not waiting:
        return 0
    if settings is None:
        raise ValidationFailed("Stripe is not configured: the Stripe payouts cannot be sent")
    client = stripe_client(settings)
    for a in waiting:
        await _send(db, client, book, a)
    return len(waiting)


async def _send(db: Database, client: stripe.StripeClient, book: uuid.UUID, a: AttemptRow) -> None:
    """One transfer, asked with the attempt's key; its answer recorded in its own transaction."""
    async with db.uow(book) as uow:
        p = await q.payout(uow, a.payout_id)
    assert p is not None and a.destination is not None
    transfer: str | None = None
    failure: str | None = None
    try:
        created = await client.v1.transfers.create_async(
            params={
                "amount": p.amount_minor,
                "currency": p.currency.lower(),
                "destination": a.destination,
                "transfer_group": transfer_group(book, p.period),
                "description": f"Lianka settlement {p.period} {p.code}",
                "metadata": {
                    "tenant_id": str(book),
                    "payout_id": str(p.id),
                    "attempt": str(a.attempt),
                    "period": p.period,
                },
            },
            options={"idempotency_key": idempotency_key(p.id, a.attempt)},
        )
        transfer = created.id
    except (stripe.InvalidRequestError, stripe.PermissionError, stripe.CardError) as exc:
        failure = f"{exc.code or type(exc).__name__}: {exc.user_message or exc}"[:1000]
    except stripe.StripeError as exc:  # network, rate limit, Stripe's 5xx: unknown outcome, stays sending
        log.warning("payout transfer not sent", payout=str(p.id), attempt=a.attempt, error=str(exc))
        return
    async with db.uow(book) as uow:
        now = await q.attempt(uow, a.payout_id, a.attempt, lock=True)
        assert now is not None
        if transfer is not None and now.stripe_transfer_id is None:
            await q.set_transfer(uow, a.payout_id, a.attempt, transfer)
        if now.status == domain.SENDING:  # a webhook may already have settled it
            to = Status.PENDING if transfer is not None else Status.FAILED
            await q.set_attempt_status(uow, a.payout_id, a.attempt, to.value, to.value, failure)
        await uow.commit()
    log.info("payout transfer", payout=str(p.id), attempt=a.attempt, transfer=transfer, failure=failure)


async def retry(
    db: Database, settings: Settings | None, scope: Scope, payout_id: uuid.UUID, *, actor: audit.Actor
) -> PayoutRow:
    """A new attempt for a payout whose latest attempt failed or was returned (409 otherwise: a
    pending or paid payout is never tried again), sent at once when it goes by Stripe. Audited
    (``payout.retried``) in the log of the chain, or of the alliance's operator, in the same commit."""
    async with db.uow(scope.book) as uow:
        p = await q.payout(uow, payout_id, lock=True)
        if p is None:
            raise NotFound("No such payout")
        if p.status not in domain.RETRYABLE:
            raise PayoutNotRetryable(f"The payout is {p.status}", status_now=p.status, attempt=p.attempt)
        account = await q.payee_account(uow, p.entity_id)
        method = await _add_attempt(uow, scope.book, p, p.attempt + 1, account, domain.payee_kind(scope.kind))
        merchant = scope.book if scope.kind == "chain" else scope.operator.id if scope.operator else None
        if merchant is not None:
            if merchant != scope.book:
                await uow.set_tenant(merchant)
            await audit.record(
                uow,
                actor,
                "payout.retried",
                object_kind="payout",
                object_id=payout_id,
                details={"period": p.period, "attempt": p.attempt + 1, "was": p.status, "method": str(method)},
            )
        await uow.commit()
    if method is Method.STRIPE:
        await send_pending(db, settings, scope.book, p.period)
    return await get(db, scope.book, payout_id)


async def mark(db: Database, book: uuid.UUID, payout_id: uuid.UUID, status: str, note: str | None = None) -> PayoutRow:
    """An operator records what the bank did with a bank-file line: paid (for a collection: received)
    or returned. Marking it again as it already is changes nothing."""
    if status not in MARKS:
        raise ValidationFailed("status is paid or returned", field="status")
    async with db.uow(book) as uow:
        p = await q.payout(uow, payout_id, lock=True)
        if p is None:
            raise NotFound("No such payout")
        if p.method != Method.BANK:
            raise PayoutNotBank()
        assert p.attempt_status is not None
        if p.attempt_status != status:
            if not domain.may_move(p.attempt_status, status):
                raise PayoutStatusConflict(f"A {p.attempt_status} payout cannot become {status}", status_now=p.status)
            await q.set_attempt_status(uow, p.id, p.attempt, status, status, (note or "")[:1000] or None)
            await uow.commit()
    return await get(db, book, payout_id)


async def get(db: Database, book: uuid.UUID, payout_id: uuid.UUID) -> PayoutRow:
    async with db.uow(book) as uow:
        p = await q.payout(uow, payout_id)
    if p is None:
        raise NotFound("No such payout")
    return p


async def list_payouts(db: Database, book: uuid.UUID, period: str | None = None) -> list[PayoutRow]:
    if period is not None:
        check_period(period)
    async with db.uow(book) as uow:
        return await q.payouts(uow, period)
