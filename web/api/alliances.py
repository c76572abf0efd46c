"""Alliances: found one, invite merchants, join, suspend or leave, versioned terms; the till's alliance
moves (earn, pay with points, card balance); and the alliance's month-end settlement, where the
operator sees every partner and a partner sees its own statement (and its branches') only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.alliance.alliances import membership, month_end, till
from lianka.alliance.alliances import terms as versioned_terms
from lianka.alliance.alliances.domain import Terms
from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.web.api.deps import Db, IdempotencyKey, acting_branch, created
from lianka.web.api.settlement import PeriodOut, file_response, period_out, result_out
from lianka.web.billing_gate import PLAN_LIMIT

#: every string the alliance endpoints accept is bounded here; currencies and time zones are then
#: checked by ``platform.validate`` in the service (an ISO 4217 code the ledger books, an IANA zone)
AllianceCode = Annotated[str, msgspec.Meta(pattern=membership.CODE_PATTERN)]
Text200 = Annotated[str, msgspec.Meta(max_length=200)]


class NewAlliance(msgspec.Struct, forbid_unknown_fields=True):
    code: AllianceCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    currency: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    terms: Terms | None = None  # default terms when omitted


class InviteIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Text200 = ""
    days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 14


class InviteOut(msgspec.Struct):
    code: str
    expires_at: datetime


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    status: Annotated[str, msgspec.Meta(max_length=16)]


class EarnIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID
    amount: int
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class SvTopUpIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    branch_id: uuid.UUID | None = None
    payment_method: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{2,32}$")] = "cash"
    business_time: datetime | None = None


class SvSpendIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID
    amount: int
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class RedeemIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID
    points: int
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class AlliancesController(Controller):
    path = "/alliances"
    tags = ("alliances",)

    @post(
        "/",
        guards=[requires(Permission.MERCHANT_WRITE)],
        opt={PLAN_LIMIT: "alliance_membership"},
        summary="Found an alliance (you operate it)",
    )
    async def create(self, db: Db, data: JSONBody[NewAlliance], principal: CurrentPrincipal) -> membership.Alliance:
        return await membership.create(
            db,
            principal.tenant,
            code=data.code,
            name=data.name,
            terms=data.terms or Terms(),
            currency=data.currency,
            timezone=data.timezone,
        )

    @get("/", guards=[requires(Permission.MERCHANT_READ)], summary="The alliances this merchant belongs to")
    async def mine(self, db: Db, principal: CurrentPrincipal) -> list[membership.Alliance]:
        return await membership.my_alliances(db, principal.tenant)

    @get("/{alliance_id:uuid}", guards=[requires(Permission.MERCHANT_READ)])
    async def get_alliance(
        self, db: Db, alliance_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> membership.Alliance:
        return await membership.get(db, principal.tenant, alliance_id)

    @post(
        "/{alliance_id:uuid}/invites",
        guards=[requires(Permission.MERCHANT_WRITE)],
        summary="Invite a merchant (operator): the code is shown once",
    )
    async def invite(
        self, db: Db, alliance_id: FromPath[uuid.UUID], data: JSONBody[InviteIn], principal: CurrentPrincipal
    ) -> InviteOut:
        code, expires = await membership.invite(db, principal.tenant, alliance_id, note=data.note, days=data.days)
        return InviteOut(code, expires)

    @post(
        "/join",
        guards=[requires(Permission.MERCHANT_WRITE)],
        opt={PLAN_LIMIT: "alliance_membership"},
        summary="Accept an invitation",
    )
    async def join(self, db: Db, data: JSONBody[JoinIn], principal: CurrentPrincipal) -> membership.Alliance:
        return await membership.accept(db, principal.tenant, data.code)

    @get("/{alliance_id:uuid}/partners", guards=[requires(Permission.MERCHANT_READ)])
    async def partners(
        self, db: Db, alliance_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> list[dict[str, Any]]:
        return await membership.partners(db, principal.tenant, alliance_id)

    @put(
        "/{alliance_id:uuid}/partners/{merchant_id:uuid}/status",
        guards=[requires(Permission.MERCHANT_WRITE)],
        summary="Suspend or reinstate a partner (operator), or leave (the partner itself)",
    )
    async def set_status(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        merchant_id: FromPath[uuid.UUID],
        data: JSONBody[StatusIn],
        principal: CurrentPrincipal,
    ) -> Response[None]:
        await membership.set_status(db, principal.tenant, alliance_id, merchant_id, data.status)
        return Response(None, status_code=204)

    @get("/{alliance_id:uuid}/terms", guards=[requires(Permission.MERCHANT_READ)], summary="Terms, newest first")
    async def terms(
        self, db: Db, alliance_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> list[dict[str, Any]]:
        return await versioned_terms.terms_history(db, principal.tenant, alliance_id)

    @put(
        "/{alliance_id:uuid}/terms",
        guards=[requires(Permission.MERCHANT_WRITE)],
        summary="Publish new terms (operator) from effective_from (default now; never back-dated)",
    )
    async def publish_terms(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[dict[str, Any]],
        principal: CurrentPrincipal,
        effective_from: FromQuery[datetime | None] = None,
        note: FromQuery[str] = "",
    ) -> dict[str, int]:
        version = await versioned_terms.publish_terms(
            db, principal.tenant, alliance_id, data, effective_from=effective_from, note=note, actor=audit.by(principal)
        )
        return {"version": version}

    # --- settlement ---------------------------------------------------------------------------

    @post(
        "/{alliance_id:uuid}/settlement/periods/{period:str}/close",
        guards=[requires(Permission.SETTLEMENT_WRITE)],
        status_code=200,
        summary="Close the alliance's month (operator); idempotent",
    )
    async def close_period(
        self, db: Db, alliance_id: FromPath[uuid.UUID], period: FromPath[str], principal: CurrentPrincipal
    ) -> PeriodOut:
        return result_out(
            await month_end.close_period(db, principal.tenant, alliance_id, period, actor=audit.by(principal))
        )

    @get(
        "/{alliance_id:uuid}/settlement/periods/{period:str}",
        guards=[requires(Permission.SETTLEMENT_READ)],
        summary="Statements: all for the operator; a partner's own (and its branches') for a partner",
    )
    async def get_period(
        self, db: Db, alliance_id: FromPath[uuid.UUID], period: FromPath[str], principal: CurrentPrincipal
    ) -> PeriodOut:
        return period_out(await month_end.period_status(db, principal.tenant, alliance_id, period))

    @get(
        "/{alliance_id:uuid}/settlement/periods/{period:str}/download/{fmt:str}",
        guards=[requires(Permission.SETTLEMENT_READ)],
        summary="csv, xlsx, pdf, or instructions (operator)",
    )
    async def download(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        period: FromPath[str],
        fmt: FromPath[str],
        principal: CurrentPrincipal,
    ) -> Response[bytes]:
        return file_response(
            await month_end.statement_file(db, principal.tenant, alliance_id, period, fmt, actor=audit.by(principal))
        )


class AllianceTillController(Controller):
    path = "/pos/alliances/{alliance_id:uuid}"
    tags = ("pos",)

    @post(
        "/earn",
        guards=[requires(Permission.SALES_WRITE)],
        summary="A purchase earns alliance points at this partner's rate (Idempotency-Key)",
    )
    async def earn(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[EarnIn],
        principal: CurrentPrincipal,
    ) -> Response[dict[str, Any]]:
        return created(
            *await till.earn(
                db,
                principal.tenant,
                alliance_id,
                member_id=data.member_id,
                amount=data.amount,
                branch_id=acting_branch(principal, data.branch_id),
                key=idempotency_key,
                business_time=data.business_time,
            )
        )

    @post(
        "/redeem",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Pay with alliance points: the discount to apply and the partner's reimbursement",
    )
    async def redeem(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[RedeemIn],
        principal: CurrentPrincipal,
    ) -> Response[dict[str, Any]]:
        return created(
            *await till.redeem(
                db,
                principal.tenant,
                alliance_id,
                member_id=data.member_id,
                points=data.points,
                branch_id=acting_branch(principal, data.branch_id),
                key=idempotency_key,
                business_time=data.business_time,
            )
        )

    @post(
        "/stored-value/top-ups",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Buy an alliance stored-value plan at this partner (Idempotency-Key)",
    )
    async def sv_top_up(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[SvTopUpIn],
        principal: CurrentPrincipal,
    ) -> Response[dict[str, Any]]:
        return created(
            *await till.sv_top_up(
                db,
                principal.tenant,
                alliance_id,
                member_id=data.member_id,
                plan=data.plan,
                branch_id=acting_branch(principal, data.branch_id),
                key=idempotency_key,
                business_time=data.business_time,
                payment_method=data.payment_method,
            )
        )

    @post(
        "/stored-value/spend",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Pay with alliance stored value at this partner (Idempotency-Key)",
    )
    async def sv_spend(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[SvSpendIn],
        principal: CurrentPrincipal,
    ) -> Response[dict[str, Any]]:
        return created(
            *await till.sv_spend(
                db,
                principal.tenant,
                alliance_id,
                member_id=data.member_id,
                amount=data.amount,
                branch_id=acting_branch(principal, data.branch_id),
                key=idempotency_key,
                business_time=data.business_time,
            )
        )

    @get(
        "/cards",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="Find an alliance card by card number, QR token or phone (any partner's member who lets this "
        "partner recognise the card): id and balances only",
    )
    async def find_card(
        self,
        db: Db,
        alliance_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        card: FromQuery[str | None] = None,
        qr: FromQuery[str | None] = None,
        phone: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        return await till.find_card(db, principal.tenant, alliance_id, card=card, qr=qr, phone=phone)

    @get(
        "/cards/{member_id:uuid}",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="An alliance card's balance (nothing else about the member)",
    )
    async def card(
        self, db: Db, alliance_id: FromPath[uuid.UUID], member_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> dict[str, Any]:
        return await till.card_balance(db, principal.tenant, alliance_id, member_id)
