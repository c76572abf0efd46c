"""Month-end close of one book (a chain's merchant book or an alliance's book) for one period.

Three steps, each its own transaction, recorded on ``settlement_runs`` so a crash anywhere resumes
where it stopped and a second run returns what the first wrote (same statements, same checksum):

1. ``closing`` — the period stops taking entries. The close takes the period's advisory lock
   exclusively (``ledger_post`` holds it shared), so it waits for every entry already on its way
   into the period; later entries see ``closing`` and land in the next open period as late items.
2. ``statements`` — one aggregate over the period's postings on clearing accounts (``clearing.py``),
   grouped by spoke, line and lateness, in the database: memory does not grow with volume. One
   statement per spoke (and per partner in an alliance), plus the hub's own, written at once.
3. ``closed`` — the period is closed and the run's checksum is recorded.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import text

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import domain
from lianka.alliance.settlement.clearing import QTY_PREFIX, SPOKE_PREFIX
from lianka.alliance.settlement.domain import LineKind
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.faults import fault_point

PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
STEPS = ("closing", "statements", "closed")

Progress = Callable[[str, int, int], None]

#: one aggregate over the period's clearing postings, as one would write it: what the close reads,
#: and what the benchmark's raw baseline runs on its own (as the owner, without row-level security)
AGGREGATE = """
SELECT a.owner_id AS spoke, a.kind, e.late, sum(p.amount) AS amount
  FROM ledger_postings p
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
  JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE p.tenant_id = :book AND e.period {op} :period AND a.owner_kind = 'branch'
   AND (a.kind LIKE 'clr\\_%' OR a.kind LIKE 'qty\\_%')
 GROUP BY 1, 2, 3
"""


@dataclass(frozen=True)
class Spoke:
    id: uuid.UUID
    code: str
    name: str
    merchant_id: uuid.UUID


@dataclass(frozen=True)
class Party:
    """A merchant of an alliance, named on statements by its slug and name (never by its id alone)."""

    id: uuid.UUID
    slug: str
    name: str


@dataclass(frozen=True)
class Scope:
    """What a book settles: its hub, its spokes, and (alliances) which merchant each spoke belongs to.

    ``hub_code``/``hub_name`` name the book (the merchant of a chain, the alliance); the hub's own
    statement of an alliance names its ``operator``, who is the hub and no partner.
    """

    kind: str  # "chain" | "alliance"
    book: uuid.UUID
    hub_code: str
    hub_name: str
    currency: str
    timezone: str  # months of the book are months in this zone
    created_at: datetime
    spokes: tuple[Spoke, ...]
    #: every merchant of an alliance, operator included (merchant id -> party); empty for a chain
    partners: dict[uuid.UUID, Party] = field(default_factory=dict)
    operator: Party | None = None


@dataclass
class _Lines:
    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    late: int = 0
    #: one per (late entry, spoke, line): what ``late`` is the sum of
    late_items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: _Lines, sign: int = 1) -> None:
        for k, v in other.amounts.items():
            self.amounts[k] += sign * v
        for k, v in other.points.items():
            self.points[k] += sign * v
        self.late += sign * other.late
        self.late_items += [{**i, "amount": sign * i["amount"], "points": sign * i["points"]}
                            for i in other.late_items]

    @property
    def net(self) -> int:
        return sum(self.amounts.values())

    def as_json(self) -> dict[str, dict[str, int]]:
        kinds = sorted(set(self.amounts) | set(self.points))
        return {k: {"amount": self.amounts.get(k, 0), "points": self.points.get(k, 0)} for k in kinds}


@dataclass(frozen=True)
class Statement:
    entity_kind: str  # hub | branch | partner
    entity_id: uuid.UUID
    merchant_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    code: str
    name: str
    currency: str
    opening: int
    lines: dict[str, dict[str, int]]
    late: int
    net: int
    checksum: str
    #: the late items ``late`` sums: entry, business time, the month it belonged to, line, amount
    late_items: tuple[dict[str, Any], ...] = ()

    @property
    def closing(self) -> int:
        return self.opening + self.net

    @property
    def direction(self) -> str:
        if self.entity_kind == "hub":
            return "hub"
        return "receives" if self.net > 0 else "pays" if self.net < 0 else "nil"


@dataclass(frozen=True)
class CloseResult:
    scope: str
    book: uuid.UUID
    period: str
    checksum: str
    statements: list[Statement]
    summary: dict[str, Any]


def check_period(period: str) -> str:
    if not PERIOD.match(period):
        raise ValidationFailed("period is YYYY-MM", field="period")
    return period


def _canonical(value: object) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def statement_checksum(period: str, entity_id: uuid.UUID, opening: int, lines: dict[str, Any], late: int,
                       net: int, late_items: tuple[dict[str, Any], ...] = ()) -> str:
    payload: dict[str, Any] = {"period": period, "entity": str(entity_id), "opening": opening, "lines": lines,
                               "late": late, "net": net}
    if late_items:  # a statement without late items keeps the checksum it always had
        payload["late_items"] = list(late_items)
    return hashlib.sha256(_canonical(payload)).hexdigest()


def run_checksum(statements: list[Statement]) -> str:
    h = hashlib.sha256()
    for s in sorted(statements, key=lambda s: (s.entity_kind, str(s.entity_id))):
        h.update(f"{s.entity_kind}:{s.entity_id}:{s.checksum}\n".encode())
    return h.hexdigest()


#: the close's own form of it: the book's few clearing accounts first, then the period's postings
#: on exactly those accounts — a plan PostgreSQL gets right under row-level security too (with the
#: join form it nests loops over the postings, several times slower at volume)
CLEARING_ACCOUNTS = """
SELECT id, owner_id, kind FROM ledger_accounts
 WHERE tenant_id = :book AND owner_kind IN ('branch', 'partner') AND (kind LIKE 'clr\\_%' OR kind LIKE 'qty\\_%')
"""
BY_ACCOUNT = """
SELECT p.account_id, e.late, sum(p.amount) AS amount
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period {op} :period AND p.account_id = ANY(:accounts)
 GROUP BY 1, 2
"""


#: the late entries of the period on the same accounts, one row per entry and account: the items a
#: statement lists under its late total (run only when the aggregate saw late postings)
LATE_ITEMS = """
SELECT e.id AS entry_id, e.kind, e.business_time, p.account_id, sum(p.amount) AS amount
  FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :book AND e.period = :period AND e.late AND p.account_id = ANY(:accounts)
 GROUP BY 1, 2, 3, 4
"""


def _line_of(kind: str) -> tuple[str, bool]:
    """(line, is money) of a clearing account kind: ``clr_<line>`` money, ``qty_<line>`` points."""
    if kind.startswith(SPOKE_PREFIX):
        return LineKind(kind.removeprefix(SPOKE_PREFIX)).value, True
    return LineKind(kind.removeprefix(QTY_PREFIX)).value, False


async def _aggregate(uow: UnitOfWork, book: uuid.UUID, period: str, op: str,
                     tz: str | None = None) -> dict[uuid.UUID, _Lines]:
    """Each owner's lines over the period (``op`` "=") or every earlier one ("<"); with ``tz``, also
    the late items of the period, their business month read in that zone."""
    out: dict[uuid.UUID, _Lines] = defaultdict(_Lines)
    accounts = {r.id: (r.owner_id, r.kind) for r in await uow.session.execute(text(CLEARING_ACCOUNTS), {"book": book})}
    if not accounts:
        return out
    rows = await uow.session.execute(text(BY_ACCOUNT.format(op=op)),
                                     {"book": book, "period": period, "accounts": list(accounts)})
    any_late = False
    for r in rows:
        spoke, kind = accounts[r.account_id]
        lines = out[spoke]
        amount = int(r.amount)
        line, is_money = _line_of(kind)
        if is_money:
            lines.amounts[line] += amount
            if r.late:
                lines.late += amount
        else:
            lines.points[line] += amount
        any_late = any_late or bool(r.late)
    if tz is not None and any_late:
        await _late_items(uow, book, period, accounts, tz, out)
    return out


async def _late_items(uow: UnitOfWork, book: uuid.UUID, period: str, accounts: dict[uuid.UUID, tuple[uuid.UUID, str]],
                      tz: str, out: dict[uuid.UUID, _Lines]) -> None:
    """One item per (late entry, owner, line), in business-time order, amounts and points together."""
    items: dict[tuple[uuid.UUID, uuid.UUID, str], dict[str, Any]] = {}
    rows = await uow.session.execute(text(LATE_ITEMS), {"book": book, "period": period, "accounts": list(accounts)})
    for r in rows:
        owner, kind = accounts[r.account_id]
        line, is_money = _line_of(kind)
        item = items.setdefault((r.entry_id, owner, line), {
            "entry_id": str(r.entry_id), "entry_kind": r.kind,
            "business_time": r.business_time.astimezone(ZoneInfo(tz)).isoformat(),
            "belongs_to": domain.period_of(r.business_time, tz), "line": line, "amount": 0, "points": 0,
            "branch_id": str(owner), "branch": ""})
        item["amount" if is_money else "points"] += int(r.amount)
    for (_, owner, _), item in sorted(items.items(), key=lambda kv: (kv[1]["business_time"], kv[1]["entry_id"],
                                                                     kv[1]["line"])):
        if item["amount"] or item["points"]:
            out[owner].late_items.append(item)


async def _openings(uow: UnitOfWork, scope: Scope, period: str) -> dict[uuid.UUID, int]:
    """Each entity's position before the period: the previous close's closing position, or (first
    close of the book) everything posted to it in earlier periods."""
    prior = await uow.session.scalar(text(
        "SELECT max(period) FROM settlement_runs WHERE tenant_id = :b AND period < :p AND status = 'closed'"),
        {"b": scope.book, "p": period})
    if prior is not None:
        rows = await uow.session.execute(text(
            "SELECT entity_id, opening + net AS closing FROM settlement_statements "
            "WHERE tenant_id = :b AND period = :p"), {"b": scope.book, "p": prior})
        return {r.entity_id: int(r.closing) for r in rows}
    earlier = await _aggregate(uow, scope.book, period, "<")
    out = {owner: lines.net for owner, lines in earlier.items()}
    by_partner: dict[uuid.UUID, int] = defaultdict(int)
    for s in scope.spokes:
        by_partner[s.merchant_id] += out.get(s.id, 0)
    if scope.kind == "alliance":
        for merchant in scope.partners:  # a partner's own lines (its monthly fee) besides its branches'
            by_partner[merchant] += out.get(merchant, 0)
        out.update(by_partner)
    out[scope.book] = -sum(v for m, v in by_partner.items() if m not in _hub_merchants(scope))
    return out


def _hub_merchants(scope: Scope) -> set[uuid.UUID]:
    """The merchant that is the hub of an alliance (its operator): its branches' lines are its own."""
    return {scope.operator.id} if scope.kind == "alliance" and scope.operator is not None else set()


def _statement(period: str, kind: str, entity: uuid.UUID, merchant: uuid.UUID | None, parent: uuid.UUID | None,
               code: str, name: str, currency: str, opening: int, lines: _Lines) -> Statement:
    body = lines.as_json()
    items = tuple(lines.late_items)
    return Statement(kind, entity, merchant, parent, code, name, currency, opening, body, lines.late, lines.net,
                     statement_checksum(period, entity, opening, body, lines.late, lines.net, items), items)


async def _compute(uow: UnitOfWork, scope: Scope, period: str) -> list[Statement]:
    moved = await _aggregate(uow, scope.book, period, "=", scope.timezone)
    opening = await _openings(uow, scope, period)
    known = {s.id for s in scope.spokes} | set(scope.partners)
    unknown = set(moved) - known
    if unknown:  # a clearing account whose owner is not a spoke of this book: refuse rather than drop money
        raise ValidationFailed(f"clearing postings for unknown spokes {sorted(map(str, unknown))}")
    out: list[Statement] = []
    by_partner: dict[uuid.UUID, _Lines] = defaultdict(_Lines)
    for s in scope.spokes:
        lines = moved.get(s.id, _Lines())
        for item in lines.late_items:
            item["branch"] = s.code
        by_partner[s.merchant_id].add(lines)
        out.append(_statement(period, "branch", s.id, s.merchant_id, s.merchant_id if scope.kind == "alliance"
                              else None, s.code, s.name, scope.currency, opening.get(s.id, 0), lines))
    hub_lines = _Lines()
    if scope.kind == "alliance":
        for merchant, party in sorted(scope.partners.items(), key=lambda kv: (kv[1].slug, str(kv[0]))):
            if merchant in moved:  # the partner's own lines (its monthly fee), not any branch's
                by_partner[merchant].add(moved[merchant])
            if merchant in _hub_merchants(scope):
                continue  # the operator is the hub: its own branches settle with itself
            lines = by_partner.get(merchant, _Lines())
            hub_lines.add(lines, -1)
            out.append(_statement(period, "partner", merchant, merchant, None, party.slug, party.name, scope.currency,
                                  opening.get(merchant, 0), lines))
        hub = scope.operator or Party(scope.book, scope.hub_code, scope.hub_name)
        out.append(_statement(period, "hub", scope.book, hub.id if scope.operator else None, None, hub.slug,
                              hub.name, scope.currency, opening.get(scope.book, 0), hub_lines))
    else:
        for lines in by_partner.values():
            hub_lines.add(lines, -1)
        out.append(_statement(period, "hub", scope.book, scope.book, None, scope.hub_code, scope.hub_name,
                              scope.currency, opening.get(scope.book, 0), hub_lines))
    return out


def summary(scope: Scope, statements: list[Statement]) -> dict[str, Any]:
    """The scope's proof: every spoke's net plus the hub's own line is exactly zero.

    The totals (lines, float, bonus expense) cover every participant: the spokes that settle with the
    hub and, in an alliance, the operator's own branches (which settle with the operator itself)."""
    top = [s for s in statements if s.entity_kind == ("partner" if scope.kind == "alliance" else "branch")]
    hub = next(s for s in statements if s.entity_kind == "hub")
    own = [s for s in statements if scope.kind == "alliance" and s.entity_kind == "branch"
           and hub.merchant_id is not None and s.parent_id == hub.merchant_id]
    totals: dict[str, int] = defaultdict(int)
    for s in top + own:
        for k, v in s.lines.items():
            totals[k] += v["amount"]
    collected = -totals.get(LineKind.SV_COLLECTED.value, 0)
    consumed = totals.get(LineKind.SV_CONSUMED.value, 0)
    refunded = totals.get(LineKind.SV_REFUNDED.value, 0)
    return {
        "spokes": len(top), "spokes_net": sum(s.net for s in top), "hub_net": hub.net,
        "sum_with_hub": sum(s.net for s in top) + hub.net,
        "receive": sum(s.net for s in top if s.net > 0), "pay": -sum(s.net for s in top if s.net < 0),
        "float_change": collected - consumed - refunded,
        "bonus_expense": totals.get(LineKind.SV_BONUS_FUNDED.value, 0)
        + totals.get(LineKind.SV_BONUS_CHARGED.value, 0),
        "late": sum(s.late for s in top + own), "late_items": sum(len(s.late_items) for s in top + own),
        "lines": dict(sorted(totals.items())),
    }


async def _monthly_fees(uow: UnitOfWork, scope: Scope, period: str) -> None:
    """Each active partner's monthly fee (terms in force at the month's end), booked into the month
    being closed on the partner's own clearing account — once: the key is the month and the partner."""
    from lianka.alliance.settlement import clearing
    from lianka.alliance.settlement.domain import fee

    end = domain.period_end(period, scope.timezone) - timedelta(microseconds=1)
    doc = await uow.session.scalar(text(
        "SELECT document FROM alliance_terms WHERE alliance_id = :a AND effective_from <= :at "
        "ORDER BY version DESC LIMIT 1"), {"a": scope.book, "at": end})
    amount = int((doc or {}).get("fee_monthly", 0))
    if not amount:
        return
    payers = await uow.session.execute(text(
        "SELECT merchant_id FROM alliance_partners WHERE alliance_id = :a AND role = 'partner' "
        "AND status = 'active' ORDER BY merchant_id"), {"a": scope.book})
    hub = clearing.Hub("alliance", scope.book, scope.currency)
    for (merchant,) in payers:
        legs = await clearing.legs(uow, hub, fee(str(merchant), amount), owner_kind="partner")
        await ledger.post(uow, kind="alliance_monthly_fee", business_time=end, key=f"monthly-fee:{period}:{merchant}",
                          scope="settlement", timezone=scope.timezone, period=period, legs=legs,
                          refs={"merchant": str(merchant)})


async def _run(uow: UnitOfWork, book: uuid.UUID, period: str, *, lock: bool = False) -> Any:
    return (await uow.session.execute(text(
        "SELECT status, step, checksum, summary FROM settlement_runs WHERE tenant_id = :b AND period = :p"
        + (" FOR UPDATE" if lock else "")), {"b": book, "p": period})).first()


async def _calendar(uow: UnitOfWork, scope: Scope) -> tuple[str, dict[str, bool]]:
    """(the book's first month, every close it has: month -> finished). The first month is the one
    the book was created in, or its earliest entry's when that is earlier (an import, an offline till)."""
    first_entry = await uow.session.scalar(text("SELECT min(period) FROM ledger_entries WHERE tenant_id = :b"),
                                           {"b": scope.book})
    runs = {r.period: r.status == "closed" for r in await uow.session.execute(text(
        "SELECT period, status FROM settlement_runs WHERE tenant_id = :b"), {"b": scope.book})}
    first = min(p for p in (domain.period_of(scope.created_at, scope.timezone), first_entry, *runs) if p)
    return first, runs


async def check(db: Database, scope: Scope, period: str, *, now: datetime | None = None) -> None:
    """Refuse now what :func:`close` would refuse (the API checks before it queues a close)."""
    check_period(period)
    async with db.uow(scope.book) as uow:
        if await _run(uow, scope.book, period) is None:
            first, runs = await _calendar(uow, scope)
            domain.closable(period, tz=scope.timezone, now=now or datetime.now(UTC), first=first, runs=runs)


async def pending(db: Database, scope: Scope, through: str, *, now: datetime | None = None) -> list[str]:
    """The months a catch-up closes, oldest first, up to ``through``: an unfinished close first, then
    every month after the latest close (only ``through`` for a book never closed: earlier months fold
    into it). Empty when ``through`` is before the book or not over."""
    check_period(through)
    async with db.uow(scope.book) as uow:
        first, runs = await _calendar(uow, scope)
    if through < first or (now or datetime.now(UTC)) < domain.period_end(through, scope.timezone):
        return []
    unfinished = sorted(p for p, done in runs.items() if not done)
    if unfinished:
        return [*unfinished, *domain.months(domain.next_period(unfinished[-1]), through)]
    start = domain.next_period(max(runs)) if runs else through
    return domain.months(start, through)


async def load_statements(uow: UnitOfWork, book: uuid.UUID, period: str) -> list[Statement]:
    rows = await uow.session.execute(text(
        "SELECT entity_kind, entity_id, merchant_id, parent_id, code, name, currency, opening, lines, late, net, "
        "checksum, late_items FROM settlement_statements WHERE tenant_id = :b AND period = :p "
        "ORDER BY CASE entity_kind WHEN 'partner' THEN 0 WHEN 'branch' THEN 1 ELSE 2 END, code, entity_id"),
        {"b": book, "p": period})
    return [Statement(r.entity_kind, r.entity_id, r.merchant_id, r.parent_id, r.code, r.name, r.currency,
                      int(r.opening), dict(r.lines), int(r.late), int(r.net), r.checksum,
                      tuple(dict(i) for i in r.late_items)) for r in rows]


async def _period_lock(uow: UnitOfWork, book: uuid.UUID, period: str) -> None:
    """Exclusive (book, month) lock: waits for every entry already heading into the month
    (``ledger_post`` holds it shared while it reads the month's status)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                              {"k": f"ledger-period:{book}:{period}"})


async def close(db: Database, scope: Scope, period: str, *, progress: Progress | None = None,
                now: datetime | None = None) -> CloseResult:
    """Close ``period`` of ``scope``'s book (idempotent, resumable); return its statements.

    A new close is refused (422) for a month that has not ended in the book's time zone, one before
    the book, or one out of order (:func:`domain.closable`); closing again a month already closed, or
    resuming one, is always allowed."""
    check_period(period)
    report = progress or (lambda _step, _done, _total: None)
    book = scope.book
    async with db.uow(book) as uow:
        # one close of a book at a time: the order checks below read what earlier closes wrote
        await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                  {"k": f"settlement-close:{book}"})
        run = await _run(uow, book, period, lock=True)
        if run is None:
            first, runs = await _calendar(uow, scope)
            folded = domain.closable(period, tz=scope.timezone, now=now or datetime.now(UTC), first=first, runs=runs)
            if scope.kind == "alliance":
                await _monthly_fees(uow, scope, period)
            # wait for entries already heading into the months, then turn new ones away
            for p in (*folded, period):
                await _period_lock(uow, book, p)
            for p in folded:
                await ledger.set_period_status(uow, p, "closed")
            await ledger.set_period_status(uow, period, "closing")
            await uow.session.execute(text(
                "INSERT INTO settlement_runs (tenant_id, period, scope, status, step) "
                "VALUES (:b, :p, :s, 'running', 'closing')"), {"b": book, "p": period, "s": scope.kind})
            await uow.commit()
            step = "closing"
        else:
            step = run.step
    report("closing", 1, len(STEPS))
    fault_point("settlement.close.after_closing")
    if step == "closing":
        async with db.uow(book) as uow:
            statements = await _compute(uow, scope, period)
            fault_point("settlement.close.computed")
            await uow.session.execute(text(
                "INSERT INTO settlement_statements (tenant_id, period, entity_kind, entity_id, merchant_id, parent_id, "
                "code, name, currency, opening, lines, late, net, checksum, late_items) VALUES (:b, :p, :k, :e, :m, "
                ":parent, :c, :n, :cur, :o, CAST(:l AS jsonb), :late, :net, :sum, CAST(:items AS jsonb))"),
                [{"b": book, "p": period, "k": s.entity_kind, "e": s.entity_id, "m": s.merchant_id,
                  "parent": s.parent_id, "c": s.code, "n": s.name, "cur": s.currency, "o": s.opening,
                  "l": _canonical(s.lines).decode(), "late": s.late, "net": s.net, "sum": s.checksum,
                  "items": _canonical(list(s.late_items)).decode()}
                 for s in statements])
            fault_point("settlement.close.before_statements_commit")
            await uow.session.execute(text(
                "UPDATE settlement_runs SET step = 'statements', entities = :n WHERE tenant_id = :b AND period = :p"),
                {"n": len(statements), "b": book, "p": period})
            await uow.commit()
            step = "statements"
    report("statements", 2, len(STEPS))
    fault_point("settlement.close.after_statements")
    async with db.uow(book) as uow:
        statements = await load_statements(uow, book, period)
        if step == "statements":
            checksum = run_checksum(statements)
            facts = summary(scope, statements)
            await ledger.set_period_status(uow, period, "closed")
            await uow.session.execute(text(
                "UPDATE settlement_runs SET step = 'closed', status = 'closed', checksum = :c, "
                "summary = CAST(:s AS jsonb), finished_at = now() WHERE tenant_id = :b AND period = :p"),
                {"c": checksum, "s": _canonical(facts).decode(), "b": book, "p": period})
            await uow.commit()
        else:
            run = await _run(uow, book, period)
            checksum, facts = run.checksum, dict(run.summary)
    report("closed", 3, len(STEPS))
    return CloseResult(scope.kind, book, period, checksum, statements, facts)


async def result(db: Database, scope: Scope, period: str) -> CloseResult:
    """The statements of a closed period (404 while it is open or closing)."""
    check_period(period)
    async with db.uow(scope.book) as uow:
        run = await _run(uow, scope.book, period)
        if run is None or run.status != "closed":
            raise NotFound(f"period {period} is not closed")
        statements = await load_statements(uow, scope.book, period)
    return CloseResult(scope.kind, scope.book, period, run.checksum, statements, dict(run.summary))
