"""Ledger service functions. They run inside the caller's unit of work and never commit: the
business transaction that books a sale commits its ledger entries together with everything else.

Design (docs/decisions/0007-ledger.md):
- member (and other *tracked*) accounts keep a balance row, changed by one conditional ``UPDATE``
  that also enforces the floor — concurrent debits serialise on that row and none can overdraw;
- hot entity accounts (liabilities, pools, float, clearing) are *untracked*: no balance row, so no
  transaction ever waits on them; their balance is the sum of postings (from the last snapshot);
- accounts with lots (member points) keep one lot per credit; debits take lots first-expiring first
  and record each take as a lot move, so a reversal restores exactly what it took.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import event

from lianka.alliance.ledger import contract, domain, queries, rows
from lianka.alliance.ledger.errors import (
    AlreadyReversed,
    InsufficientFunds,
    PeriodClosed,
    UnknownAccount,
    UnknownEntry,
)
from lianka.platform.db import COMMITTED_ROW_CACHES, Database, UnitOfWork
from lianka.platform.errors import IdempotencyConflict, ValidationFailed
from lianka.platform.idempotency import check_key, fingerprint
from lianka.platform.metrics import count_points

#: the row types callers use as ``ledger.Account`` and so on (``rows.py``)
Account = rows.Account
Entry = rows.Entry
LotView = rows.LotView


@dataclass(frozen=True)
class Leg:
    """One side of an entry. For a credit to a lots account, the lot's terms."""

    account: Account
    amount: int
    expires_at: datetime | None = None
    available_at: datetime | None = None


_accounts: dict[tuple[uuid.UUID, uuid.UUID], Account] = {}
_by_owner: dict[rows.AccountKey, Account] = {}
COMMITTED_ROW_CACHES.extend([_accounts.clear, _by_owner.clear])


def _account(a: Account) -> Account:
    _accounts[(a.tenant_id, a.id)] = a
    return a


def _tenant(uow: UnitOfWork) -> uuid.UUID:
    if uow.tenant_id is None:
        raise ValidationFailed("ledger operations need a tenant (ledger book)")
    return uow.tenant_id


async def open_account(
    uow: UnitOfWork,
    *,
    owner_kind: str,
    owner_id: uuid.UUID | None,
    kind: str,
    unit: str,
    allow_negative: bool = False,
    tracked: bool | None = None,
    lots: bool | None = None,
) -> Account:
    """Get or create the account (idempotent). Member accounts are tracked by default; tracked
    points accounts keep lots by default."""
    cache_key = rows.AccountKey(_tenant(uow), owner_kind, owner_id, kind, unit)
    known = _by_owner.get(cache_key)
    if known is not None:  # committed accounts never change: no round trip (a sale asks for nine)
        return known
    domain.check_unit(unit)
    tracked = owner_kind == "member" if tracked is None else tracked
    lots = (tracked and domain.is_points(unit)) if lots is None else lots
    pending: dict[rows.AccountKey, Account] = uow.session.info.setdefault("ledger_new_accounts", {})
    known = pending.get(cache_key)
    if known is not None:  # opened earlier in this transaction
        return known
    created = await queries.insert_account(uow, cache_key, allow_negative=allow_negative, tracked=tracked, lots=lots)
    if created is None:  # it exists and is committed: safe to remember for good
        account = _by_owner[cache_key] = _account(await queries.find_account(uow, cache_key))
        return account
    account = _account(created)
    if account.tracked:
        await queries.open_balance(uow, account, None if allow_negative else 0)
    # new in this transaction: remembered here, and for good only once committed
    if not pending:
        event.listen(
            uow.session.sync_session,
            "after_commit",
            lambda session: _by_owner.update(session.info.pop("ledger_new_accounts", {})),
            once=True,
        )
    pending[cache_key] = account
    return account


async def get_account(uow: UnitOfWork, account_id: uuid.UUID) -> Account:
    tenant = _tenant(uow)
    cached = _accounts.get((tenant, account_id))
    if cached is not None:
        return cached
    found = await queries.account_by_id(uow, tenant, account_id)
    if found is None:
        raise UnknownAccount(f"no ledger account {account_id}")
    return _account(found)


# --- posting ---------------------------------------------------------------------------------------


def _leg_fingerprint(legs: Sequence[Leg]) -> list[object]:
    return [
        [
            str(leg.account.id),
            leg.amount,
            leg.expires_at.isoformat() if leg.expires_at else None,
            leg.available_at.isoformat() if leg.available_at else None,
        ]
        for leg in legs
    ]


async def _existing(uow: UnitOfWork, tenant: uuid.UUID, scope: str, key: str) -> tuple[Entry, str] | None:
    row = await queries.entry_by_key(uow, tenant, scope, key)
    if row is None:
        return None
    return await get_entry(uow, row.id, replayed=True), row.request_hash


async def get_entry(uow: UnitOfWork, entry_id: uuid.UUID, *, replayed: bool = False) -> Entry:
    found = await queries.entry(uow, _tenant(uow), entry_id, replayed=replayed)
    if found is None:
        raise UnknownEntry(f"no ledger entry {entry_id}")
    return found


async def post(
    uow: UnitOfWork,
    *,
    kind: str,
    legs: Sequence[Leg],
    business_time: datetime,
    key: str,
    scope: str = "ledger",
    timezone: str = "Asia/Shanghai",
    memo: str = "",
    refs: dict[str, Any] | None = None,
    period: str | None = None,
    overdraw: frozenset[uuid.UUID] = frozenset(),
    lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None,
) -> Entry:
    """Book one balanced entry (idempotent on ``(scope, key)``).

    ``lot_moves`` (internal: expiry) replaces the automatic lot handling with exactly these moves.

    ``overdraw`` names accounts that may pass their floor in this entry (a clawback the caller's
    refund policy allows); their debt is paid first by later credits.
    """
    entry = prepare(
        uow,
        kind=kind,
        legs=legs,
        business_time=business_time,
        key=key,
        scope=scope,
        timezone=timezone,
        memo=memo,
        refs=refs,
        period=period,
        overdraw=overdraw,
        lot_moves=lot_moves,
    )
    return (await post_all(uow, [entry]))[0]


@dataclass(frozen=True)
class Prepared:
    """An entry checked and ready for ``ledger_post`` (:func:`prepare`), booked by :func:`post_all`."""

    payload: contract.PostEntry
    kind: str
    business_time: datetime
    postings: tuple[domain.Posting, ...]
    refs: dict[str, Any]
    reverses: uuid.UUID | None = None


def prepare(
    uow: UnitOfWork,
    *,
    kind: str,
    legs: Sequence[Leg],
    business_time: datetime,
    key: str,
    scope: str = "ledger",
    timezone: str = "Asia/Shanghai",
    memo: str = "",
    refs: dict[str, Any] | None = None,
    period: str | None = None,
    overdraw: frozenset[uuid.UUID] = frozenset(),
    lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None,
) -> Prepared:
    """Check an entry as :func:`post` would and make it ready to book (no I/O)."""
    tenant = _tenant(uow)
    check_key(key)
    refs = refs or {}
    for leg in legs:
        if leg.account.tenant_id != tenant:
            raise UnknownAccount(f"no ledger account {leg.account.id}")
    postings = [domain.Posting(leg.account.id, leg.account.unit, leg.amount) for leg in legs]
    domain.check_balanced(postings)
    if business_time.tzinfo is None:
        raise ValidationFailed("business time needs a time zone")
    request_hash = fingerprint(
        kind, _leg_fingerprint(legs), business_time.isoformat(), memo, refs, period, sorted(map(str, overdraw))
    )
    return _prepared(
        kind=kind,
        legs=legs,
        postings=postings,
        business_time=business_time,
        key=key,
        scope=scope,
        tz=timezone,
        memo=memo,
        refs=refs,
        period=period,
        overdraw=overdraw,
        request_hash=request_hash,
        reverses=None,
        lot_moves=lot_moves,
    )


@dataclass
class _Reversal:
    original: Entry
    restore: dict[uuid.UUID, list[tuple[uuid.UUID, int]]]  # account -> [(lot, +amount)] (undo takes)
    retract: dict[uuid.UUID, list[uuid.UUID]]  # account -> lots the original created (taken first)


def _leg(leg: Leg, overdraw: frozenset[uuid.UUID], reverses: _Reversal | None) -> contract.PostLeg:
    a = leg.account
    restore: list[contract.LotMove] | None = None
    prefer: list[uuid.UUID] = []
    lenient = False
    if reverses is not None and a.lots:
        if leg.amount > 0 and a.id in reverses.restore:
            restore = reverses.restore[a.id]
        elif leg.amount < 0:
            prefer, lenient = reverses.retract.get(a.id, []), True
    return contract.PostLeg(
        a.id,
        a.unit,
        leg.amount,
        a.tracked,
        a.lots,
        a.id in overdraw,
        leg.expires_at,
        leg.available_at,
        restore,
        prefer,
        lenient,
    )


def _prepared(
    *,
    kind: str,
    legs: Sequence[Leg],
    postings: list[domain.Posting],
    business_time: datetime,
    key: str,
    scope: str,
    tz: str,
    memo: str,
    refs: dict[str, Any],
    period: str | None,
    overdraw: frozenset[uuid.UUID],
    request_hash: str,
    reverses: _Reversal | None,
    lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None,
) -> Prepared:
    payload = contract.PostEntry(
        scope=scope,
        key=key,
        hash=request_hash,
        kind=kind,
        business_time=business_time,
        tz=tz,
        legs=[_leg(leg, overdraw, reverses) for leg in legs],
        memo=memo[:500],
        period=period,
        refs=refs,
        reverses=reverses.original.id if reverses else None,
        moves=None if lot_moves is None else list(lot_moves),
    )
    return Prepared(payload, kind, business_time, tuple(postings), refs, reverses.original.id if reverses else None)


async def post_all(uow: UnitOfWork, entries: Sequence[Prepared]) -> list[Entry]:
    """Book prepared entries, in order, in one round trip to ``ledger_post``
    (alliance/ledger/sql/ledger_post/, its JSON in :mod:`contract`) — the hot path of every POS write.

    Straight to the driver: the unit of work has already begun the transaction and set the tenant. An
    error aborts the caller's transaction: a business write is all or nothing.
    """
    if not entries:
        return []
    driver = await uow.driver()
    try:
        raws = await queries.ledger_post(driver, [contract.encode(e.payload) for e in entries])
    except asyncpg.PostgresError as exc:
        _refused(exc, entries)
        raise
    out = []
    for entry, raw in zip(entries, raws, strict=True):
        result = contract.result(raw)
        if result.replayed:  # a replay carries only the id: read what was booked then
            out.append(await get_entry(uow, result.id, replayed=True))
            continue
        _count_points(uow, entry)
        out.append(_booked(entry, result))
    return out


def _refused(exc: asyncpg.PostgresError, entries: Sequence[Prepared]) -> None:
    """Raise the domain error for ``ledger_post``'s own refusals (returns for any other error)."""
    code, detail = exc.sqlstate, getattr(exc, "detail", None) or ""
    message = str(exc).split("\n")[0]
    extra = contract.shortfall(detail) if detail.startswith("{") else {}
    if code == "LK001":
        raise InsufficientFunds(message.split(": ", 1)[-1], **extra) from None
    if code == "LK002":
        keys = ", ".join(repr(e.payload.key) for e in entries)
        raise IdempotencyConflict(f"idempotency key {keys} was used for a different ledger entry") from None
    if code == "LK003":
        raise PeriodClosed(message.split(": ", 1)[-1], period=entries[0].payload.period) from None


def _booked(entry: Prepared, result: contract.PostResult) -> Entry:
    if result.posted_at is None or result.period is None:
        raise RuntimeError(f"ledger_post booked {result.id} without a posting time or period")
    return Entry(
        result.id,
        entry.kind,
        entry.business_time,
        result.posted_at,
        result.period,
        result.late,
        entry.reverses,
        entry.postings,
        False,
        entry.refs,
    )


async def post_alone(
    db: Database,
    tenant: uuid.UUID,
    *,
    kind: str,
    legs: Sequence[Leg],
    business_time: datetime,
    key: str,
    scope: str = "ledger",
    timezone: str = "Asia/Shanghai",
    memo: str = "",
    refs: dict[str, Any] | None = None,
) -> Entry:
    """:func:`post` as a transaction of its own, for a write that is one ledger entry and nothing else
    (an earn from a job, a top-up's booking): the tenant setting and ``ledger_post`` go as ONE
    autocommit statement — one round trip, where a unit of work needs three (BEGIN with the scope,
    the entry, COMMIT). A single statement is atomic, ``ledger_post`` is idempotent on
    ``(scope, key)`` and RLS applies exactly as in a unit of work (decision 0053). Anything else that
    must commit with the entry needs :func:`post` inside the caller's unit of work."""
    book = db.uow(tenant)  # never entered: prepare() reads its tenant, _count_points its callbacks
    entry = prepare(
        book,
        kind=kind,
        legs=legs,
        business_time=business_time,
        key=key,
        scope=scope,
        timezone=timezone,
        memo=memo,
        refs=refs,
    )
    # the pool's connection itself, without SQLAlchemy's Connection around it (a quarter of the
    # checkout's Python); nothing is begun on it, so checking it back in sends nothing
    pooled = await db.engine.raw_connection()
    try:
        raw = await queries.ledger_post_alone(pooled.driver_connection, tenant, contract.encode(entry.payload))
    except asyncpg.PostgresError as exc:
        _refused(exc, [entry])
        raise
    finally:
        pooled.close()
    result = contract.result(raw)
    if result.replayed:
        async with db.uow(tenant) as uow:
            return await get_entry(uow, result.id, replayed=True)
    _count_points(book, entry)
    book.run_after_commit()  # committed: the statement was its own transaction
    return _booked(entry, result)


def _count_points(uow: UnitOfWork, entry: Prepared) -> None:
    """Points a new entry credits to or debits from members' point lots, for the business metrics
    (counted once the transaction commits; a replay books nothing and counts nothing)."""
    credited = debited = 0
    for leg in entry.payload.legs:
        if leg.lots and domain.is_points(leg.unit):
            if leg.amount > 0:
                credited += leg.amount
            else:
                debited -= leg.amount
    count_points(uow, entry.kind, credited, debited)


async def reverse(
    uow: UnitOfWork,
    entry_id: uuid.UUID,
    *,
    key: str,
    business_time: datetime | None = None,
    clawback: bool = False,
    timezone: str = "Asia/Shanghai",
    memo: str = "",
    scope: str = "ledger",
) -> Entry:
    """Book the exact opposite of an entry. Debits it made to lots are restored to the same lots;
    credits it made are taken back from their own lots first. When those points are already spent,
    ``clawback=True`` lets the account go negative (a debt later credits pay first); without it the
    reversal fails with InsufficientFunds."""
    check_key(key)
    tenant = _tenant(uow)
    original = await get_entry(uow, entry_id)
    business_time = business_time or datetime.now(UTC)
    request_hash = fingerprint("reversal", str(entry_id), business_time.isoformat(), clawback, memo)
    replay = await _existing(uow, tenant, scope, key)
    if replay is not None:
        if replay[1] != request_hash:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for a different ledger entry")
        return replay[0]
    if original.reverses_id is not None:
        raise AlreadyReversed("a reversal cannot itself be reversed; post a new entry")
    done = await queries.reversal_of(uow, tenant, entry_id)
    if done is not None:
        raise AlreadyReversed(f"entry {entry_id} was already reversed by {done}", reversal=str(done))
    accounts = {p.account_id: await get_account(uow, p.account_id) for p in original.postings}
    moves = await queries.lot_takes(uow, tenant, entry_id)
    created = await queries.lots_created(uow, tenant, entry_id)
    restore: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for m in moves:
        if m.amount < 0 and not m.own:
            restore[m.account_id].append((m.lot_id, -m.amount))
    retract: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for lot in created:
        retract[lot.account_id].append(lot.id)
    legs = [Leg(accounts[p.account_id], -p.amount) for p in original.postings]
    overdraw = frozenset(a for a, acc in accounts.items() if clawback and acc.tracked)
    entry = _prepared(
        kind=f"reversal:{original.kind}"[:60],
        legs=legs,
        postings=[domain.Posting(p.account_id, p.unit, -p.amount) for p in original.postings],
        business_time=business_time,
        key=key,
        scope=scope,
        tz=timezone,
        memo=memo,
        refs={"reverses": str(entry_id)},
        period=None,
        overdraw=overdraw,
        request_hash=request_hash,
        reverses=_Reversal(original, dict(restore), dict(retract)),
    )
    return (await post_all(uow, [entry]))[0]


# --- balances ---------------------------------------------------------------------------------------


async def balance(uow: UnitOfWork, account: Account, as_of: datetime | None = None) -> int:
    """Current balance (the row, for tracked accounts), or as of any past posting time: the latest
    snapshot at or before ``as_of`` plus the postings after it."""
    tenant = _tenant(uow)
    if as_of is None and account.tracked:
        return await queries.tracked_balance(uow, tenant, account.id)
    as_of = as_of or datetime.now(UTC)
    snap = await queries.latest_snapshot(uow, tenant, account.id, as_of)
    since, base = (snap.as_of, snap.balance) if snap else (None, 0)
    return int(base) + await queries.posted_sum(uow, tenant, account.id, as_of, since)


async def snapshot(uow: UnitOfWork, account: Account, as_of: datetime) -> int:
    """Record the balance of an (untracked) account as of a moment, to keep later sums short."""
    value = await balance(uow, account, as_of)
    await queries.insert_snapshot(uow, uow.tenant_id, account.id, rows.Snapshot(as_of, value))
    return value


async def lots(uow: UnitOfWork, account: Account, *, open_only: bool = True) -> list[LotView]:
    return await queries.lots(uow, uow.tenant_id, account.id, open_only=open_only)


async def available_points(uow: UnitOfWork, account: Account, at: datetime | None = None) -> int:
    at = at or datetime.now(UTC)
    return domain.available(
        [
            domain.LotState(x.id, x.remaining, x.expires_at, x.available_at, x.earned_at)
            for x in await lots(uow, account)
        ],
        at,
    )


# --- periods ----------------------------------------------------------------------------------------


async def set_period_status(uow: UnitOfWork, period: str, status: str) -> None:
    if status not in ("open", "closing", "closed"):
        raise ValidationFailed(f"unknown period status {status!r}")
    await queries.set_period_status(uow, _tenant(uow), period, status)


# --- expiry -----------------------------------------------------------------------------------------


async def expire_due(
    uow: UnitOfWork,
    now: datetime,
    *,
    batch_size: int = 500,
    timezone: str = "Asia/Shanghai",
    breakage_kind: str = "points_breakage",
    after: Callable[[UnitOfWork, Entry], Awaitable[None]] | None = None,
) -> int:
    """Expire what is left of lots due by ``now`` (one batch, one entry per account); return the number
    of lots expired. Call until it returns 0; each call is its own transaction when the caller commits.
    ``after`` runs in the same transaction after each expiry entry (an alliance returns breakage to
    the issuers of the expired points)."""
    tenant = _tenant(uow)
    due = await queries.due_lots(uow, tenant, now, batch_size)
    by_account: dict[uuid.UUID, list[rows.DueLot]] = defaultdict(list)
    for lot in due:
        by_account[lot.account_id].append(lot)
    for account_id, account_lots in by_account.items():
        member = await get_account(uow, account_id)
        breakage = await open_account(uow, owner_kind="merchant", owner_id=tenant, kind=breakage_kind, unit=member.unit)
        total = sum(x.remaining for x in account_lots)
        first = min(x.id for x in account_lots)
        entry = await post(
            uow,
            kind="expiry",
            legs=[Leg(member, -total), Leg(breakage, total)],
            business_time=max(x.expires_at for x in account_lots),
            timezone=timezone,
            key=f"expiry:{account_id}:{first}:{total}",
            scope="ledger.expiry",
            refs={"lots": [str(x.id) for x in account_lots]},
            lot_moves=[(x.id, -x.remaining) for x in account_lots],
        )
        if after is not None and not entry.replayed:
            await after(uow, entry)
    return len(due)
