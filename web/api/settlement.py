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
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery

from lianka.alliance.settlement import exports, services
from lianka.alliance.settlement.statements import CloseResult, PeriodStatus, Statement
from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.web.api.deps import Db


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


def statement_out(s: Statement, partners: dict[uuid.UUID, str] | None = None) -> StatementOut:
    """``partners``: merchant id -> slug of the statements shown with it (see ``exports.partner_codes``)."""
    return StatementOut(
        s.entity_kind,
        s.entity_id,
        s.code,
        s.name,
        s.currency,
        s.opening,
        {k: LineOut(v["amount"], v["points"]) for k, v in s.lines.items()},
        s.late,
        s.net,
        s.direction,
        s.closing,
        s.checksum,
        s.parent_id,
        s.merchant_id,
        exports.partner_of(s, partners or {}) or None,
        [msgspec.convert(i, LateItemOut, strict=False) for i in s.late_items],
    )


def period_out(p: PeriodStatus) -> PeriodOut:
    codes = exports.partner_codes(p.statements)
    return PeriodOut(p.period, p.status, p.step, p.checksum, p.summary, [statement_out(s, codes) for s in p.statements])


def result_out(r: CloseResult) -> PeriodOut:
    return period_out(PeriodStatus.closed(r))


def file_response(f: exports.StatementFile) -> Response[bytes]:
    return Response(
        f.body, media_type=f.media_type, headers={"Content-Disposition": f'attachment; filename="{f.filename}"'}
    )


class SettlementController(Controller):
    path = "/settlement"
    tags = ("settlement",)

    @post(
        "/periods/{period:str}/close",
        guards=[requires(Permission.SETTLEMENT_WRITE)],
        status_code=202,
        summary="Close a month for HQ and its branches (queued; ?wait=true runs it now). Idempotent.",
    )
    async def close_period(
        self, db: Db, period: FromPath[str], principal: CurrentPrincipal, wait: FromQuery[bool] = False
    ) -> Response[PeriodOut]:
        if wait:
            return Response(
                result_out(await services.close_now(db, principal.tenant, period, actor=audit.by(principal))),
                status_code=200,
            )
        return Response(
            period_out(await services.queue_close(db, principal.tenant, period, actor=audit.by(principal))),
            status_code=202,
        )

    @get(
        "/periods/{period:str}",
        guards=[requires(Permission.SETTLEMENT_READ)],
        summary="A period's status, its summary and every statement (JSON)",
    )
    async def get_period(self, db: Db, period: FromPath[str], principal: CurrentPrincipal) -> PeriodOut:
        return period_out(await services.period_status(db, principal.tenant, period))

    @get(
        "/periods/{period:str}/statements/{entity_id:uuid}",
        guards=[requires(Permission.SETTLEMENT_READ)],
        summary="One branch's (or HQ's) statement",
    )
    async def get_statement(
        self, db: Db, period: FromPath[str], entity_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> StatementOut:
        return statement_out(await services.statement(db, principal.tenant, period, entity_id))

    @get(
        "/periods/{period:str}/download/{fmt:str}",
        guards=[requires(Permission.SETTLEMENT_READ)],
        summary="Statements as csv, xlsx or pdf; or the payout/collection instructions (fmt=instructions)",
    )
    async def download(
        self, db: Db, period: FromPath[str], fmt: FromPath[str], principal: CurrentPrincipal
    ) -> Response[bytes]:
        return file_response(
            await services.statement_file(db, principal.tenant, period, fmt, actor=audit.by(principal))
        )
