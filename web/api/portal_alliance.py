"""The member portal's alliance card and monthly value statements as JSON (the pages in
``web/portal/alliance.py`` call the same use cases): the alliances whose card the member holds, the
per-partner recognition choice, and the statements of each merchant, by month."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from lianka.alliance.alliances import recognition
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.services import member_statements


class RecognitionIn(msgspec.Struct, forbid_unknown_fields=True):
    recognised: bool


class PortalAllianceController(Controller):
    path = "/portal/alliances"
    tags = ("member portal",)

    @get("/", guards=[requires_member()], summary="My alliance cards: partners, balances, my recognition choices")
    async def cards(self, principal: CurrentPrincipal, ident: IdentityService) -> list[recognition.AllianceCard]:
        return await recognition.my_cards(ident.db, principal.subject_id)

    @get("/{alliance_id:uuid}", guards=[requires_member()], summary="One of my alliance cards (404 for another)")
    async def card(
        self, alliance_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> recognition.AllianceCard:
        return await recognition.my_card(ident.db, principal.subject_id, alliance_id)

    @put(
        "/{alliance_id:uuid}/partners/{merchant_id:uuid}/recognition",
        guards=[requires_member()],
        summary="Let a partner recognise my card, or not (a partner switched off finds nothing at its till)",
    )
    async def set_recognition(
        self,
        alliance_id: FromPath[uuid.UUID],
        merchant_id: FromPath[uuid.UUID],
        data: JSONBody[RecognitionIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> recognition.Partner:
        return await recognition.set_recognition(
            ident.db, principal.subject_id, alliance_id, merchant_id, data.recognised
        )


class PortalStatementsController(Controller):
    path = "/portal/merchants/{merchant:str}/statements"
    tags = ("member portal",)

    @get("/", guards=[requires_member()], summary="My monthly value statements at a merchant, newest first")
    async def statements(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[member_statements.Statement]:
        return await member_statements.my_statements(ident.db, merchant, principal.subject_id)

    @get("/{month:str}", guards=[requires_member()], summary="One month's statement (YYYY-MM; 404 when none)")
    async def statement(
        self, merchant: FromPath[str], month: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> member_statements.Statement:
        return await member_statements.my_statement(ident.db, merchant, principal.subject_id, month)
