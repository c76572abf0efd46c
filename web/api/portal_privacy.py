"""The member's profile, consents and privacy rights (PIPL) as JSON, for an app: the same use cases
as the portal's pages (``tenants/services/member_privacy.py``, decision 0029), for the signed-in
member's own id only. ``{merchant}`` is a slug or id; a merchant the member has not joined is 404."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.params import FromPath, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.services import member_privacy


class MyProfilePatch(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    birthday: date | None = None
    email: str | None = None
    address: str | None = None
    preferences: dict[str, str] | None = None


class MyConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    granted: bool


class ErasureIn(msgspec.Struct, forbid_unknown_fields=True):
    #: the phone number re-typed, to confirm
    phone: str
    #: a merchant's slug or id; omitted: everywhere
    merchant: str | None = None


class PortalPrivacyController(Controller):
    path = "/portal"
    tags = ("member portal",)
    guards = (requires_member(),)

    @get("/merchants/{merchant:str}/profile", summary="My profile and consents (with their history) at a merchant")
    async def profile(
        self, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> dict[str, Any]:
        return (await member_privacy.my_profile(ident.db, merchant, principal.subject_id)).profile

    @patch(
        "/merchants/{merchant:str}/profile",
        summary="Change my name, birthday (once), e-mail, address or preferences (only the fields sent)",
    )
    async def change_profile(
        self,
        request: Request[Any, Any, Any],
        merchant: FromPath[str],
        data: JSONBody[MyProfilePatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> dict[str, Any]:
        sent = msgspec.json.decode(await request.body())
        changes = {k: getattr(data, k) for k in sent if k in member_privacy.MEMBER_FIELDS}
        return await member_privacy.change_my_profile(ident.db, merchant, principal.subject_id, changes)

    @put(
        "/merchants/{merchant:str}/consent/{channel:str}",
        summary="Give or withdraw my marketing consent on a channel (kept in its history with the time)",
    )
    async def consent(
        self,
        merchant: FromPath[str],
        channel: FromPath[str],
        data: JSONBody[MyConsentIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> dict[str, Any]:
        return await member_privacy.change_my_consent(ident.db, merchant, principal.subject_id, channel, data.granted)

    @get("/data", summary="Download my data (JSON): my card and everything each merchant I belong to keeps")
    async def data(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[bytes]:
        body = member_privacy.data_json(await member_privacy.my_data(ident.db, principal.subject_id))
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    @get("/data.csv", media_type="text/csv", summary="Download my data (CSV: merchant, section, field, value)")
    async def data_csv(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[bytes]:
        body = member_privacy.data_csv(await member_privacy.my_data(ident.db, principal.subject_id))
        return Response(
            body,
            media_type="text/csv",
            headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="my-data.csv"'},
        )

    @post(
        "/erasure",
        status_code=200,
        summary="Erase my personal data at a merchant, or everywhere (confirm with my phone); "
        "409 stored-value-left while stored value is left (everywhere)",
    )
    async def erase(
        self, data: JSONBody[ErasureIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> list[member_privacy.Erasure]:
        return await member_privacy.request_erasure(
            ident, principal.subject_id, merchant_ref=data.merchant, confirm_phone=data.phone
        )

    @get("/erasure", summary="My erasure requests with their times and status")
    async def erasures(self, principal: CurrentPrincipal, ident: IdentityService) -> list[member_privacy.Erasure]:
        return await member_privacy.my_erasures(ident.db, principal.subject_id)
