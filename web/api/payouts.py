"""Settlement payouts (issue 15 §3) of a chain — the month's payouts, paying them (queued, or now
with ``?wait=true``), retrying a failed one, marking a bank-file line, the bank payment file; and the
branches as payees (Stripe Connect onboarding link, bank details) — and the same calls for an
alliance's book under ``/alliances/{id}/settlement`` (the alliance's settlement endpoints' shape):
the operator pays its partners; a partner sees its own payout line and payee row only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.billing.payouts import alliances, bankfile, connect, services
from lianka.billing.payouts.queries import PayoutRow
from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.settings import Settings
from lianka.web.api.deps import Db

READ = requires(Permission.SETTLEMENT_READ)
WRITE = requires(Permission.SETTLEMENT_WRITE)


class PayoutOut(msgspec.Struct):
    id: uuid.UUID
    period: str
    entity_kind: str
    entity_id: uuid.UUID
    code: str
    name: str
    direction: str  # payout (HQ pays) | collection (the branch pays HQ)
    amount_minor: int
    currency: str
    status: str  # pending | paid | failed | returned
    attempt: int
    method: str | None  # stripe | bank
    stripe_transfer_id: str | None
    reason: str | None
    updated_at: datetime


class PayoutsOut(msgspec.Struct):
    period: str
    total: int
    sent: int
    payouts: list[PayoutOut]


class MarkBody(msgspec.Struct, forbid_unknown_fields=True):
    status: str  # paid | returned
    note: str | None = None


class PayeeOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    connection: str  # connected | onboarding | none
    stripe_account_id: str | None
    payouts_enabled: bool
    problem: str | None
    bank_account_name: str | None
    bank_name: str | None
    bank_account_masked: str


class BankBody(msgspec.Struct, forbid_unknown_fields=True):
    account_name: str
    bank_name: str
    account_number: str


class LinkBody(msgspec.Struct, forbid_unknown_fields=True):
    return_url: str
    refresh_url: str


class LinkOut(msgspec.Struct):
    url: str


def payout_out(p: PayoutRow) -> PayoutOut:
    return PayoutOut(
        p.id,
        p.period,
        p.entity_kind,
        p.entity_id,
        p.code,
        p.name,
        p.direction,
        p.amount_minor,
        p.currency,
        p.status,
        p.attempt,
        p.method,
        p.stripe_transfer_id,
        p.reason,
        p.updated_at,
    )


def payee_out(p: connect.Payee) -> PayeeOut:
    return PayeeOut(
        p.id,
        p.code,
        p.name,
        p.connection,
        p.stripe_account_id,
        p.payouts_enabled,
        p.problem,
        p.bank_account_name,
        p.bank_name,
        p.bank_account_masked,
    )


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def payouts_out(db: Any, book: uuid.UUID, period: str) -> PayoutsOut:
    progress = await services.progress(db, book, period)
    rows = await services.list_payouts(db, book, period)
    return PayoutsOut(period, progress.total, progress.sent, [payout_out(p) for p in rows])


class PayoutsController(Controller):
    path = "/settlement"
    tags = ("settlement",)

    @get("/periods/{period:str}/payouts", guards=[READ], summary="A closed month's payouts and collections")
    async def list_payouts(self, db: Db, period: FromPath[str], principal: CurrentPrincipal) -> PayoutsOut:
        return await payouts_out(db, principal.tenant, period)

    @post(
        "/periods/{period:str}/payouts/run",
        guards=[WRITE],
        status_code=202,
        summary="Pay everything owed for a closed month: one payout per statement line (queued; ?wait=true "
        "pays now). Idempotent.",
    )
    async def run(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        period: FromPath[str],
        principal: CurrentPrincipal,
        wait: FromQuery[bool] = False,
    ) -> Response[PayoutsOut]:
        scope = await services.scope_of(db, principal.tenant)
        if wait:
            await services.run(db, _settings(request), scope, period)
        else:
            await services.queue_run(db, scope, period)
        return Response(await payouts_out(db, principal.tenant, period), status_code=200 if wait else 202)

    @get(
        "/periods/{period:str}/payouts/bank-file",
        guards=[READ],
        media_type="text/csv",
        summary="The bank payment file (CSV)",
    )
    async def bank_file(self, db: Db, period: FromPath[str], principal: CurrentPrincipal) -> Response[bytes]:
        scope = await services.scope_of(db, principal.tenant)
        body = await bankfile.bank_file(
            db, principal.tenant, period, scope.hub_name, merchant=principal.tenant, actor=audit.by(principal)
        )
        name = f"{scope.hub_code}-payouts-{period}.csv"
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @post(
        "/payouts/{payout_id:uuid}/retry",
        guards=[WRITE],
        status_code=200,
        summary="Try a failed or returned payout again (409 for any other: it never pays twice)",
    )
    async def retry(
        self, request: Request[Any, Any, Any], db: Db, payout_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> PayoutOut:
        scope = await services.scope_of(db, principal.tenant)
        return payout_out(await services.retry(db, _settings(request), scope, payout_id, actor=audit.by(principal)))

    @post(
        "/payouts/{payout_id:uuid}/mark",
        guards=[WRITE],
        status_code=200,
        summary="Record what the bank did with a bank-file line: paid or returned",
    )
    async def mark(
        self, db: Db, payout_id: FromPath[uuid.UUID], principal: CurrentPrincipal, data: JSONBody[MarkBody]
    ) -> PayoutOut:
        return payout_out(await services.mark(db, principal.tenant, payout_id, data.status, data.note))

    @get("/payees", guards=[READ], summary="The branches as payees: Stripe Connect status and bank details")
    async def payees(self, db: Db, principal: CurrentPrincipal) -> list[PayeeOut]:
        return [payee_out(p) for p in await connect.payees(db, principal.tenant)]

    @post(
        "/payees/{payee_id:uuid}/onboarding-link",
        guards=[WRITE],
        status_code=200,
        summary="A Stripe Connect onboarding link for the branch (its connected account is made once)",
    )
    async def onboarding_link(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        payee_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        data: JSONBody[LinkBody],
    ) -> LinkOut:
        url = await connect.onboarding_link(
            db, _settings(request), principal.tenant, payee_id, return_url=data.return_url, refresh_url=data.refresh_url
        )
        return LinkOut(url)

    @put("/payees/{payee_id:uuid}/bank", guards=[WRITE], summary="The branch's bank account for the bank file")
    async def bank(
        self, db: Db, payee_id: FromPath[uuid.UUID], principal: CurrentPrincipal, data: JSONBody[BankBody]
    ) -> PayeeOut:
        p = await connect.set_bank_details(
            db, principal.tenant, payee_id, data.account_name, data.bank_name, data.account_number
        )
        return payee_out(p)


class AlliancePayoutsController(Controller):
    """An alliance's payouts: the operator's (``settlement:write`` and the alliance's operator role
    to pay, retry, mark and onboard); a partner reads its own line (``settlement:read``)."""

    path = "/alliances/{alliance_id:uuid}/settlement"
    tags = ("alliances",)

    @get(
        "/periods/{period:str}/payouts",
        guards=[READ],
        summary="An alliance's closed month's payouts: all for the operator, a partner's own line for a partner",
    )
    async def list_payouts(
        self, db: Db, alliance_id: FromPath[uuid.UUID], period: FromPath[str], principal: CurrentPrincipal
    ) -> PayoutsOut:
        v = await alliances.view(db, principal.tenant, alliance_id, period)
        return PayoutsOut(period, v.progress.total, v.progress.sent, [payout_out(p) for p in v.rows])

    @post(
        "/periods/{period:str}/payouts/run",
        guards=[WRITE],
        status_code=202,
        summary="Pay every partner owed for a closed month (operator): queued, or now with ?wait=true. Idempotent.",
    )
    async def run(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
        principal: CurrentPrincipal,
        wait: FromQuery[bool] = False,
    ) -> Response[PayoutsOut]:
        await alliances.run(db, _settings(request), principal.tenant, alliance_id, period, wait=wait)
        v = await alliances.view(db, principal.tenant, alliance_id, period)
        out = PayoutsOut(period, v.progress.total, v.progress.sent, [payout_out(p) for p in v.rows])
        return Response(out, status_code=200 if wait else 202)

    @get(
        "/periods/{period:str}/payouts/bank-file",
        guards=[READ],
        media_type="text/csv",
        summary="The alliance's bank payment file (operator)",
    )
    async def bank_file(
        self, db: Db, alliance_id: FromPath[uuid.UUID], period: FromPath[str], principal: CurrentPrincipal
    ) -> Response[bytes]:
        name, body = await alliances.bank_file(db, principal.tenant, alliance_id, period, actor=audit.by(principal))
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @get("/payouts/{payout_id:uuid}", guards=[READ], summary="One payout (a partner: only its own)")
    async def get_payout(
        self, db: Db, alliance_id: FromPath[uuid.UUID], payout_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> PayoutOut:
        return payout_out(await alliances.payout(db, principal.tenant, alliance_id, payout_id))

    @post(
        "/payouts/{payout_id:uuid}/retry",
        guards=[WRITE],
        status_code=200,
        summary="Try a failed or returned payout again (operator; 409 for any other)",
    )
    async def retry(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        payout_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
    ) -> PayoutOut:
        return payout_out(
            await alliances.retry(
                db, _settings(request), principal.tenant, alliance_id, payout_id, actor=audit.by(principal)
            )
        )

    @post(
        "/payouts/{payout_id:uuid}/mark",
        guards=[WRITE],
        status_code=200,
        summary="Record what the bank did with a bank-file line (operator)",
    )
    async def mark(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        payout_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        data: JSONBody[MarkBody],
    ) -> PayoutOut:
        row = await alliances.mark(db, principal.tenant, alliance_id, payout_id, data.status, data.note)
        return payout_out(row)

    @get("/payees", guards=[READ], summary="The partners as payees (a partner: its own row)")
    async def payees(self, db: Db, alliance_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> list[PayeeOut]:
        return [payee_out(p) for p in await alliances.payees(db, principal.tenant, alliance_id)]

    @post(
        "/payees/{payee_id:uuid}/onboarding-link",
        guards=[WRITE],
        status_code=200,
        summary="A Stripe Connect onboarding link for a partner (operator)",
    )
    async def onboarding_link(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        payee_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        data: JSONBody[LinkBody],
    ) -> LinkOut:
        url = await alliances.onboarding_link(
            db,
            _settings(request),
            principal.tenant,
            alliance_id,
            payee_id,
            return_url=data.return_url,
            refresh_url=data.refresh_url,
        )
        return LinkOut(url)

    @put(
        "/payees/{payee_id:uuid}/bank", guards=[WRITE], summary="A partner's bank account for the bank file (operator)"
    )
    async def bank(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        payee_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        data: JSONBody[BankBody],
    ) -> PayeeOut:
        p = await alliances.set_bank_details(
            db, principal.tenant, alliance_id, payee_id, data.account_name, data.bank_name, data.account_number
        )
        return payee_out(p)
