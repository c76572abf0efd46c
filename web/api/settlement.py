"""Chain settlement (HQ and its branches): close a month, read statements, download them.

``POST /settlement/periods/{period}/close`` queues the close (202) — or, with ``?wait=true``, runs it
in the request and answers with the result. Statements come as JSON, CSV, XLSX and PDF, plus the
payout/collection instruction file. Alliance settlement lives under ``/alliances/{id}/settlement``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from sqlalchemy import text

from lianka.alliance.settlement import close, exports, scopes
from lianka.platform import outbox
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


class LineOut(msgspec.Struct):
    amount: int
    points: int


class LateItemOut(msgspec.Struct):
    """An entry that arrived after its own month was closed, booked into this one."""

    entry_id: uuid.UUID
    entry_kind: str
    business_time: datetime
    belongs_to: str  # the month it belonged to (YYYY-MM)
    line: str  # the statement line it affects
    amount: int
    points: int
    branch_id: uuid.UUID
    branch: str  # the branch's code ('' for a partner's own line)


class StatementOut(msgspec.Struct):
    entity_kind: str
    entity_id: uuid.UUID
    code: str  # branch code; a partner's (and an alliance operator's, the hub's) merchant slug
    name: str
    currency: str
    opening: int
    lines: dict[str, LineOut]
    late: int
    net: int
    direction: str
    closing: int
    checksum: str
    parent_id: uuid.UUID | None = None
    merchant_id: uuid.UUID | None = None
    #: the slug of the alliance partner a statement is about or belongs to (None in a chain)
    partner: str | None = None
    late_items: list[LateItemOut] = []


class PeriodOut(msgspec.Struct):
    period: str
    status: str
    step: str | None
    checksum: str | None
    summary: dict[str, Any] | None
    statements: list[StatementOut]


def statement_out(s: close.Statement, partners: dict[uuid.UUID, str] | None = None) -> StatementOut:
    """``partners``: merchant id -> slug of the statements shown with it (see ``exports.partner_codes``)."""
    return StatementOut(s.entity_kind, s.entity_id, s.code, s.name, s.currency, s.opening,
                        {k: LineOut(v["amount"], v["points"]) for k, v in s.lines.items()}, s.late, s.net,
                        s.direction, s.closing, s.checksum, s.parent_id, s.merchant_id,
                        exports.partner_of(s, partners or {}) or None,
                        [msgspec.convert(i, LateItemOut, strict=False) for i in s.late_items])


def statements_out(statements: list[close.Statement]) -> list[StatementOut]:
    codes = exports.partner_codes(statements)
    return [statement_out(s, codes) for s in statements]


def result_out(r: close.CloseResult, statements: list[close.Statement] | None = None) -> PeriodOut:
    return PeriodOut(r.period, "closed", "closed", r.checksum, r.summary,
                     statements_out(r.statements if statements is None else statements))


def download(r: close.CloseResult, fmt: str, name: str, statements: list[close.Statement] | None = None,
             hub_name: str = "HQ") -> Response[bytes]:
    if fmt == "csv":
        body = exports.to_csv(r, statements)
    elif fmt == "xlsx":
        body = exports.to_xlsx(r, statements)
    elif fmt == "pdf":
        body = exports.to_pdf(r, statements)
    elif fmt == "instructions":
        body, fmt = exports.instructions(r, hub_name), "csv"
        name = f"{name}-instructions"
    else:
        raise ValidationFailed("format is csv, xlsx, pdf or instructions", field="format")
    return Response(body, media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}-{r.period}.{fmt}"'})


async def period_status(db: Database, book: uuid.UUID, period: str) -> PeriodOut:
    close.check_period(period)
    async with db.uow(book) as uow:
        run = (await uow.session.execute(text(
            "SELECT status, step, checksum, summary FROM settlement_runs WHERE tenant_id = :b AND period = :p"),
            {"b": book, "p": period})).first()
        statements = await close.load_statements(uow, book, period) if run and run.status == "closed" else []
        # a month with no close of its own may still be closed: folded into the book's first close
        ledger_status = None if run else await uow.session.scalar(text(
            "SELECT status FROM ledger_periods WHERE tenant_id = :b AND period = :p"), {"b": book, "p": period})
    if run is None:
        return PeriodOut(period, ledger_status or "open", None, None, None, [])
    return PeriodOut(period, run.status, run.step, run.checksum, run.summary, statements_out(statements))


def _db(request: Request[Any, Any, Any]) -> Database:
    db: Database = request.app.state.db
    return db


class SettlementController(Controller):
    path = "/settlement"
    tags = ("settlement",)

    @post("/periods/{period:str}/close", guards=[requires(Permission.SETTLEMENT_WRITE)], status_code=202,
          summary="Close a month for HQ and its branches (queued; ?wait=true runs it now). Idempotent.")
    async def close_period(self, request: Request[Any, Any, Any], period: FromPath[str], principal: CurrentPrincipal,
                           wait: FromQuery[bool] = False) -> Response[PeriodOut]:
        close.check_period(period)
        db = _db(request)
        scope = await scopes.chain_scope(db, principal.tenant)
        if wait:
            return Response(result_out(await close.close(db, scope, period)), status_code=200)
        await close.check(db, scope, period)  # a month that may not be closed is refused now, not in the job
        async with db.uow(principal.tenant) as uow:  # queued once the request's transaction commits
            await outbox.enqueue(uow, "close_period", queue="settlement", kind="chain", book=str(principal.tenant),
                                 period=period)
            await uow.commit()
        return Response(await period_status(db, principal.tenant, period), status_code=202)

    @get("/periods/{period:str}", guards=[requires(Permission.SETTLEMENT_READ)],
         summary="A period's status, its summary and every statement (JSON)")
    async def get_period(self, request: Request[Any, Any, Any], period: FromPath[str],
                         principal: CurrentPrincipal) -> PeriodOut:
        return await period_status(_db(request), principal.tenant, period)

    @get("/periods/{period:str}/statements/{entity_id:uuid}", guards=[requires(Permission.SETTLEMENT_READ)],
         summary="One branch's (or HQ's) statement")
    async def get_statement(self, request: Request[Any, Any, Any], period: FromPath[str],
                            entity_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> StatementOut:
        db = _db(request)
        r = await close.result(db, await scopes.chain_scope(db, principal.tenant), period)
        found = next((s for s in r.statements if s.entity_id == entity_id), None)
        if found is None:
            raise NotFound("no statement for that entity in this period")
        return statement_out(found, exports.partner_codes(r.statements))

    @get("/periods/{period:str}/download/{fmt:str}", guards=[requires(Permission.SETTLEMENT_READ)],
         summary="Statements as csv, xlsx or pdf; or the payout/collection instructions (fmt=instructions)")
    async def download(self, request: Request[Any, Any, Any], period: FromPath[str], fmt: FromPath[str],
                       principal: CurrentPrincipal) -> Response[bytes]:
        db = _db(request)
        scope = await scopes.chain_scope(db, principal.tenant)
        return download(await close.result(db, scope, period), fmt, scope.hub_code, hub_name=scope.hub_name)
