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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import event, text

from lianka.alliance.ledger import contract, domain
from lianka.alliance.ledger.errors import (
    AlreadyReversed,
    InsufficientFunds,
    PeriodClosed,
    UnknownAccount,
    UnknownEntry,
)
from lianka.platform.db import COMMITTED_ROW_CACHES, UnitOfWork
from lianka.platform.errors import IdempotencyConflict, ValidationFailed
from lianka.platform.idempotency import check_key, fingerprint


@dataclass(frozen=True)
class Account:
    tenant_id: uuid.UUID
    id: uuid.UUID
    owner_kind: str
    owner_id: uuid.UUID | None
    kind: str
    unit: str
    allow_negative: bool
    tracked: bool
    lots: bool


@dataclass(frozen=True)
class Leg:
    """One side of an entry. For a credit to a lots account, the lot's terms."""

    account: Account
    amount: int
    expires_at: datetime | None = None
    available_at: datetime | None = None


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID
    kind: str
    business_time: datetime
    posted_at: datetime
    period: str
    late: bool
    reverses_id: uuid.UUID | None
    postings: tuple[domain.Posting, ...]
    replayed: bool = False
    refs: dict[str, Any] = field(default_factory=dict)

    def amount_for(self, account: Account) -> int:
        return sum(p.amount for p in self.postings if p.account_id == account.id)


_accounts: dict[tuple[uuid.UUID, uuid.UUID], Account] = {}
_by_owner: dict[tuple[uuid.UUID, str, uuid.UUID | None, str, str], Account] = {}
COMMITTED_ROW_CACHES.extend([_accounts.clear, _by_owner.clear])
_ACCOUNT_COLUMNS = "tenant_id, id, owner_kind, owner_id, kind, unit, allow_negative, tracked, lots"


def _account(row: Any) -> Account:
    a = Account(row.tenant_id, row.id, row.owner_kind, row.owner_id, row.kind, row.unit, row.allow_negative,
                row.tracked, row.lots)
    _accounts[(a.tenant_id, a.id)] = a
    return a


def _tenant(uow: UnitOfWork) -> uuid.UUID:
    if uow.tenant_id is None:
        raise ValidationFailed("ledger operations need a tenant (ledger book)")
    return uow.tenant_id


async def open_account(uow: UnitOfWork, *, owner_kind: str, owner_id: uuid.UUID | None, kind: str, unit: str,
                       allow_negative: bool = False, tracked: bool | None = None,
                       lots: bool | None = None) -> Account:
    """Get or create the account (idempotent). Member accounts are tracked by default; tracked
    points accounts keep lots by default."""
    tenant = _tenant(uow)
    domain.check_unit(unit)
    tracked = owner_kind == "member" if tracked is None else tracked
    lots = (tracked and domain.is_points(unit)) if lots is None else lots
    cache_key = (tenant, owner_kind, owner_id, kind, unit)
    pending: dict[Any, Account] = uow.session.info.setdefault("ledger_new_accounts", {})
    known = _by_owner.get(cache_key) or pending.get(cache_key)
    if known is not None:  # accounts never change once created: skip the round trips
        return known
    params = {"t": tenant, "ok": owner_kind, "oid": owner_id, "k": kind, "u": unit, "neg": allow_negative,
              "tr": tracked, "lots": lots}
    row = (await uow.session.execute(text(
        f"INSERT INTO ledger_accounts ({_ACCOUNT_COLUMNS}) VALUES (:t, gen_random_uuid(), :ok, :oid, :k, :u, :neg, "
        ":tr, :lots) ON CONFLICT (tenant_id, owner_kind, owner_id, kind, unit) DO NOTHING "
        f"RETURNING {_ACCOUNT_COLUMNS}"), params)).first()
    if row is None:  # it exists and is committed: safe to remember for good
        row = (await uow.session.execute(text(
            f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant_id = :t AND owner_kind = :ok "
            "AND owner_id IS NOT DISTINCT FROM :oid AND kind = :k AND unit = :u"), params)).one()
        account = _by_owner[cache_key] = _account(row)
        return account
    account = _account(row)
    if account.tracked:
        await uow.session.execute(text(
            "INSERT INTO ledger_balances (tenant_id, account_id, balance, floor) VALUES (:t, :a, 0, :f) "
            "ON CONFLICT DO NOTHING"), {"t": tenant, "a": account.id, "f": None if allow_negative else 0})
    # new in this transaction: remembered here, and for good only once committed
    if not pending:
        event.listen(uow.session.sync_session, "after_commit",
                     lambda session: _by_owner.update(session.info.pop("ledger_new_accounts", {})), once=True)
    pending[cache_key] = account
    return account


async def get_account(uow: UnitOfWork, account_id: uuid.UUID) -> Account:
    tenant = _tenant(uow)
    cached = _accounts.get((tenant, account_id))
    if cached is not None:
        return cached
    row = (await uow.session.execute(text(
        f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant_id = :t AND id = :a"),
        {"t": tenant, "a": account_id})).first()
    if row is None:
        raise UnknownAccount(f"no ledger account {account_id}")
    return _account(row)


# --- posting ---------------------------------------------------------------------------------------

def _leg_fingerprint(legs: Sequence[Leg]) -> list[object]:
    return [[str(leg.account.id), leg.amount, leg.expires_at.isoformat() if leg.expires_at else None,
             leg.available_at.isoformat() if leg.available_at else None] for leg in legs]


async def _existing(uow: UnitOfWork, scope: str, key: str) -> tuple[Entry, str] | None:
    row = (await uow.session.execute(text(
        "SELECT id, request_hash FROM ledger_entries WHERE tenant_id = :t AND idempotency_scope = :s "
        "AND idempotency_key = :k"), {"t": uow.tenant_id, "s": scope, "k": key})).first()
    if row is None:
        return None
    return await get_entry(uow, row.id, replayed=True), row.request_hash


async def get_entry(uow: UnitOfWork, entry_id: uuid.UUID, *, replayed: bool = False) -> Entry:
    tenant = _tenant(uow)
    e = (await uow.session.execute(text(
        "SELECT id, kind, business_time, posted_at, period, late, reverses_id, refs FROM ledger_entries "
        "WHERE tenant_id = :t AND id = :e"), {"t": tenant, "e": entry_id})).first()
    if e is None:
        raise UnknownEntry(f"no ledger entry {entry_id}")
    postings = (await uow.session.execute(text(
        "SELECT account_id, unit, amount FROM ledger_postings WHERE tenant_id = :t AND entry_id = :e ORDER BY seq"),
        {"t": tenant, "e": entry_id})).all()
    return Entry(e.id, e.kind, e.business_time, e.posted_at, e.period, e.late, e.reverses_id,
                 tuple(domain.Posting(p.account_id, p.unit, p.amount) for p in postings), replayed, e.refs)


async def post(uow: UnitOfWork, *, kind: str, legs: Sequence[Leg], business_time: datetime, key: str,
               scope: str = "ledger", timezone: str = "Asia/Shanghai", memo: str = "",
               refs: dict[str, Any] | None = None, period: str | None = None,
               overdraw: frozenset[uuid.UUID] = frozenset(),
               lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None) -> Entry:
    """Book one balanced entry (idempotent on ``(scope, key)``).

    ``lot_moves`` (internal: expiry) replaces the automatic lot handling with exactly these moves.

    ``overdraw`` names accounts that may pass their floor in this entry (a clawback the caller's
    refund policy allows); their debt is paid first by later credits.
    """
    entry = prepare(uow, kind=kind, legs=legs, business_time=business_time, key=key, scope=scope,
                    timezone=timezone, memo=memo, refs=refs, period=period, overdraw=overdraw, lot_moves=lot_moves)
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


def prepare(uow: UnitOfWork, *, kind: str, legs: Sequence[Leg], business_time: datetime, key: str,
            scope: str = "ledger", timezone: str = "Asia/Shanghai", memo: str = "",
            refs: dict[str, Any] | None = None, period: str | None = None,
            overdraw: frozenset[uuid.UUID] = frozenset(),
            lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None) -> Prepared:
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
    request_hash = fingerprint(kind, _leg_fingerprint(legs), business_time.isoformat(), memo, refs, period,
                               sorted(map(str, overdraw)))
    return _prepared(kind=kind, legs=legs, postings=postings, business_time=business_time, key=key, scope=scope,
                     tz=timezone, memo=memo, refs=refs, period=period, overdraw=overdraw,
                     request_hash=request_hash, reverses=None, lot_moves=lot_moves)


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
    return contract.PostLeg(a.id, a.unit, leg.amount, a.tracked, a.lots, a.id in overdraw, leg.expires_at,
                            leg.available_at, restore, prefer, lenient)


def _prepared(*, kind: str, legs: Sequence[Leg], postings: list[domain.Posting], business_time: datetime, key: str,
              scope: str, tz: str, memo: str, refs: dict[str, Any], period: str | None,
              overdraw: frozenset[uuid.UUID], request_hash: str, reverses: _Reversal | None,
              lot_moves: Sequence[tuple[uuid.UUID, int]] | None = None) -> Prepared:
    payload = contract.PostEntry(
        scope=scope, key=key, hash=request_hash, kind=kind, business_time=business_time, tz=tz,
        legs=[_leg(leg, overdraw, reverses) for leg in legs], memo=memo[:500], period=period, refs=refs,
        reverses=reverses.original.id if reverses else None,
        moves=None if lot_moves is None else list(lot_moves))
    return Prepared(payload, kind, business_time, tuple(postings), refs,
                    reverses.original.id if reverses else None)


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
        if len(entries) == 1:
            raws = [await driver.fetchval("SELECT ledger_post($1::jsonb)", contract.encode(entries[0].payload))]
        else:  # unnest keeps the order, and ledger_post runs once per element in that order
            raws = [r[0] for r in await driver.fetch(
                "SELECT ledger_post(e) FROM unnest($1::jsonb[]) WITH ORDINALITY AS x(e, n)",
                [contract.encode(e.payload) for e in entries])]
    except asyncpg.PostgresError as exc:
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
        raise
    out = []
    for entry, raw in zip(entries, raws, strict=True):
        result = contract.result(raw)
        if result.replayed:  # a replay carries only the id: read what was booked then
            out.append(await get_entry(uow, result.id, replayed=True))
            continue
        if result.posted_at is None or result.period is None:
            raise RuntimeError(f"ledger_post booked {result.id} without a posting time or period")
        out.append(Entry(result.id, entry.kind, entry.business_time, result.posted_at, result.period,
                         result.late, entry.reverses, entry.postings, False, entry.refs))
    return out


async def reverse(uow: UnitOfWork, entry_id: uuid.UUID, *, key: str, business_time: datetime | None = None,
                  clawback: bool = False, timezone: str = "Asia/Shanghai", memo: str = "",
                  scope: str = "ledger") -> Entry:
    """Book the exact opposite of an entry. Debits it made to lots are restored to the same lots;
    credits it made are taken back from their own lots first. When those points are already spent,
    ``clawback=True`` lets the account go negative (a debt later credits pay first); without it the
    reversal fails with InsufficientFunds."""
    check_key(key)
    tenant = _tenant(uow)
    original = await get_entry(uow, entry_id)
    business_time = business_time or datetime.now(UTC)
    request_hash = fingerprint("reversal", str(entry_id), business_time.isoformat(), clawback, memo)
    replay = await _existing(uow, scope, key)
    if replay is not None:
        if replay[1] != request_hash:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for a different ledger entry")
        return replay[0]
    if original.reverses_id is not None:
        raise AlreadyReversed("a reversal cannot itself be reversed; post a new entry")
    done = await uow.session.scalar(text(
        "SELECT id FROM ledger_entries WHERE tenant_id = :t AND reverses_id = :e"), {"t": tenant, "e": entry_id})
    if done is not None:
        raise AlreadyReversed(f"entry {entry_id} was already reversed by {done}", reversal=str(done))
    accounts = {p.account_id: await get_account(uow, p.account_id) for p in original.postings}
    moves = (await uow.session.execute(text(
        "SELECT m.lot_id, m.amount, l.account_id, l.entry_id = m.entry_id AS own FROM ledger_lot_moves m "
        "JOIN ledger_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id "
        "WHERE m.tenant_id = :t AND m.entry_id = :e"), {"t": tenant, "e": entry_id})).all()
    created = (await uow.session.execute(text(
        "SELECT id, account_id FROM ledger_lots WHERE tenant_id = :t AND entry_id = :e"),
        {"t": tenant, "e": entry_id})).all()
    restore: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for m in moves:
        if m.amount < 0 and not m.own:
            restore[m.account_id].append((m.lot_id, -m.amount))
    retract: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for lot in created:
        retract[lot.account_id].append(lot.id)
    legs = [Leg(accounts[p.account_id], -p.amount) for p in original.postings]
    overdraw = frozenset(a for a, acc in accounts.items() if clawback and acc.tracked)
    entry = _prepared(kind=f"reversal:{original.kind}"[:60], legs=legs,
                      postings=[domain.Posting(p.account_id, p.unit, -p.amount) for p in original.postings],
                      business_time=business_time, key=key, scope=scope, tz=timezone, memo=memo,
                      refs={"reverses": str(entry_id)}, period=None, overdraw=overdraw,
                      request_hash=request_hash, reverses=_Reversal(original, dict(restore), dict(retract)))
    return (await post_all(uow, [entry]))[0]


# --- balances ---------------------------------------------------------------------------------------

async def balance(uow: UnitOfWork, account: Account, as_of: datetime | None = None) -> int:
    """Current balance (the row, for tracked accounts), or as of any past posting time: the latest
    snapshot at or before ``as_of`` plus the postings after it."""
    tenant = _tenant(uow)
    if as_of is None and account.tracked:
        return int(await uow.session.scalar(text(
            "SELECT balance FROM ledger_balances WHERE tenant_id = :t AND account_id = :a"),
            {"t": tenant, "a": account.id}) or 0)
    as_of = as_of or datetime.now(UTC)
    snap = (await uow.session.execute(text(
        "SELECT as_of, balance FROM ledger_snapshots WHERE tenant_id = :t AND account_id = :a AND as_of <= :at "
        "ORDER BY as_of DESC LIMIT 1"), {"t": tenant, "a": account.id, "at": as_of})).first()
    since, base = (snap.as_of, snap.balance) if snap else (None, 0)
    total = await uow.session.scalar(text(
        "SELECT coalesce(sum(amount), 0) FROM ledger_postings WHERE tenant_id = :t AND account_id = :a "
        "AND posted_at <= :at AND (CAST(:since AS timestamptz) IS NULL OR posted_at > :since)"),
        {"t": tenant, "a": account.id, "at": as_of, "since": since})
    return int(base) + int(total or 0)


async def snapshot(uow: UnitOfWork, account: Account, as_of: datetime) -> int:
    """Record the balance of an (untracked) account as of a moment, to keep later sums short."""
    value = await balance(uow, account, as_of)
    await uow.session.execute(text(
        "INSERT INTO ledger_snapshots (tenant_id, account_id, as_of, balance) VALUES (:t, :a, :at, :b) "
        "ON CONFLICT DO NOTHING"), {"t": uow.tenant_id, "a": account.id, "at": as_of, "b": value})
    return value


@dataclass(frozen=True)
class LotView:
    id: uuid.UUID
    amount: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None


async def lots(uow: UnitOfWork, account: Account, *, open_only: bool = True) -> list[LotView]:
    rows = await uow.session.execute(text(
        "SELECT id, amount, remaining, earned_at, available_at, expires_at FROM ledger_lots "
        "WHERE tenant_id = :t AND account_id = :a AND (NOT :open OR remaining > 0) "
        "ORDER BY expires_at NULLS LAST, earned_at"), {"t": uow.tenant_id, "a": account.id, "open": open_only})
    return [LotView(r.id, r.amount, r.remaining, r.earned_at, r.available_at, r.expires_at) for r in rows]


async def available_points(uow: UnitOfWork, account: Account, at: datetime | None = None) -> int:
    at = at or datetime.now(UTC)
    return domain.available(
        [domain.LotState(x.id, x.remaining, x.expires_at, x.available_at, x.earned_at)
         for x in await lots(uow, account)], at)


# --- periods ----------------------------------------------------------------------------------------

async def set_period_status(uow: UnitOfWork, period: str, status: str) -> None:
    if status not in ("open", "closing", "closed"):
        raise ValidationFailed(f"unknown period status {status!r}")
    await uow.session.execute(text(
        "INSERT INTO ledger_periods (tenant_id, period, status) VALUES (:t, :p, :s) ON CONFLICT (tenant_id, period) "
        "DO UPDATE SET status = EXCLUDED.status, changed_at = now()"), {"t": _tenant(uow), "p": period, "s": status})


# --- expiry -----------------------------------------------------------------------------------------

async def expire_due(uow: UnitOfWork, now: datetime, *, batch_size: int = 500, timezone: str = "Asia/Shanghai",
                     breakage_kind: str = "points_breakage",
                     after: Callable[[UnitOfWork, Entry], Awaitable[None]] | None = None) -> int:
    """Expire what is left of lots due by ``now`` (one batch, one entry per account); return the number
    of lots expired. Call until it returns 0; each call is its own transaction when the caller commits.
    ``after`` runs in the same transaction after each expiry entry (an alliance returns breakage to
    the issuers of the expired points)."""
    tenant = _tenant(uow)
    due = (await uow.session.execute(text(
        "SELECT l.id, l.account_id, l.remaining, l.expires_at FROM ledger_lots l WHERE l.tenant_id = :t "
        "AND l.remaining > 0 AND l.expires_at <= :now ORDER BY l.account_id, l.expires_at, l.id LIMIT :n "
        "FOR UPDATE SKIP LOCKED"), {"t": tenant, "now": now, "n": batch_size})).all()
    by_account: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for lot in due:
        by_account[lot.account_id].append(lot)
    for account_id, account_lots in by_account.items():
        member = await get_account(uow, account_id)
        breakage = await open_account(uow, owner_kind="merchant", owner_id=tenant, kind=breakage_kind,
                                      unit=member.unit)
        total = sum(x.remaining for x in account_lots)
        first = min(x.id for x in account_lots)
        entry = await post(uow, kind="expiry", legs=[Leg(member, -total), Leg(breakage, total)],
                           business_time=max(x.expires_at for x in account_lots), timezone=timezone,
                           key=f"expiry:{account_id}:{first}:{total}", scope="ledger.expiry",
                           refs={"lots": [str(x.id) for x in account_lots]},
                           lot_moves=[(x.id, -x.remaining) for x in account_lots])
        if after is not None and not entry.replayed:
            await after(uow, entry)
    return len(due)
