"""The member's profile, consents and privacy rights (PIPL) in the portal (decision 0029):

- ``/m/<merchant>/profile``: name, birthday (set once), e-mail, address, preferences; each marketing
  channel with its history, granted or withdrawn by the member;
- ``/m/privacy``: the data download (JSON, CSV), erasure at one merchant or everywhere (confirmed
  by re-typing the phone) and the requests made so far.

Each handler calls the use case the JSON API (``web/api/portal_privacy.py``) calls, in
``tenants/services/member_privacy.py``, for the signed-in member's own id only.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity import members, sessions
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.services import member_privacy
from lianka.web.api.cookies import clear_cookies
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_text, go, language
from lianka.web.portal.pages import portal_errors, portal_page

MEMBER = requires_member()
PROFILE_FIELDS = ("name", "birthday", "email", "address", "preference")
ERASE_FIELDS = ("scope", "phone")


def _key() -> str:
    return secrets.token_urlsafe(18)


def _download(body: bytes, media_type: str, ext: str) -> Response[bytes]:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%MZ")
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="my-data-{stamp}.{ext}"', "Cache-Control": "no-store"},
    )


class PrivacyPages(Controller):
    path = "/m"
    guards = (MEMBER,)

    # --- profile and consents at one merchant ------------------------------------------------

    async def _profile_page(
        self,
        request: HtmlRequest,
        ident: IdentityService,
        principal: CurrentPrincipal,
        merchant: str,
        *,
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        mine = await member_privacy.my_profile(ident.db, merchant, principal.subject_id)
        p = mine.profile
        shown = values or {
            "name": p["name"],
            "birthday": p["birthday"].isoformat() if p["birthday"] else "",
            "email": p["email"],
            "address": p["address"],
            "preference": str(p["preferences"].get("note", "")),
        }
        return await portal_page(
            request,
            "portal/profile.html",
            signed_in=True,
            status=status,
            mine=mine,
            merchant={"slug": mine.merchant_slug, "name": mine.merchant_name, "timezone": mine.timezone},
            values=shown,
            errors=errors or FormErrors(),
            channels=member_privacy.PORTAL_CHANNELS,
            key=_key(),
        )

    @get("/{merchant:str}/profile")
    async def profile(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        return await self._profile_page(request, ident, principal, merchant)

    @post("/{merchant:str}/profile", status_code=200)
    async def save_profile(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        form = await form_data(request)
        values = {name: form_text(form, name) for name in PROFILE_FIELDS}
        try:
            changes: dict[str, Any] = {
                "name": values["name"],
                "email": values["email"],
                "address": values["address"],
                "preferences": {"note": values["preference"]} if values["preference"] else {},
            }
            if values["birthday"]:
                changes["birthday"] = member_privacy.parse_birthday(values["birthday"])
            await member_privacy.change_my_profile(
                ident.db, merchant, principal.subject_id, changes, key=form_text(form, "_key") or None
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            errors = portal_errors(exc, language(request), (*PROFILE_FIELDS, "preferences"))
            if "preferences" in errors.fields:
                errors.fields["preference"] = errors.fields.pop("preferences")
            return await self._profile_page(
                request, ident, principal, merchant, errors=errors, values=values, status=exc.status
            )
        return go(request, f"/m/{merchant}/profile", flash="profile-saved")

    @post("/{merchant:str}/consent", status_code=200)
    async def consent(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        form = await form_data(request)
        granted = form_text(form, "granted") == "yes"
        await member_privacy.change_my_consent(
            ident.db,
            merchant,
            principal.subject_id,
            form_text(form, "channel"),
            granted,
            key=form_text(form, "_key") or None,
        )
        return go(request, f"/m/{merchant}/profile", flash="consent-granted" if granted else "consent-withdrawn")

    # --- data download and erasure -----------------------------------------------------------

    async def _privacy_page(
        self,
        request: HtmlRequest,
        ident: IdentityService,
        principal: CurrentPrincipal,
        *,
        errors: FormErrors | None = None,
        scope: str = "",
        status: int = 200,
    ) -> Template:
        view = await members.portal_view(ident, principal.subject_id)
        requests = await member_privacy.my_erasures(ident.db, principal.subject_id)
        return await portal_page(
            request,
            "portal/privacy.html",
            signed_in=True,
            status=status,
            view=view,
            requests=requests,
            errors=errors or FormErrors(),
            scope=scope,
        )

    @get("/privacy")
    async def privacy(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._privacy_page(request, ident, principal)

    @get("/privacy/data.json")
    async def data_json(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[bytes]:
        data = await member_privacy.my_data(ident.db, principal.subject_id)
        return _download(member_privacy.data_json(data), "application/json", "json")

    @get("/privacy/data.csv")
    async def data_csv(self, principal: CurrentPrincipal, ident: IdentityService) -> Response[bytes]:
        data = await member_privacy.my_data(ident.db, principal.subject_id)
        return _download(member_privacy.data_csv(data), "text/csv; charset=utf-8", "csv")

    @post("/privacy/erase", status_code=200)
    async def erase(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        scope = form_text(form, "scope")
        try:
            await member_privacy.request_erasure(
                ident,
                principal.subject_id,
                merchant_ref=None if scope == "everywhere" else scope,
                confirm_phone=form_text(form, "phone"),
            )
        except DomainError as exc:
            errors = portal_errors(exc, language(request), ERASE_FIELDS)
            if exc.status == 404:
                errors = FormErrors(fields={"scope": errors.general[0] if errors.general else ""})
            return await self._privacy_page(request, ident, principal, errors=errors, scope=scope, status=exc.status)
        if scope == "everywhere":
            response = go(request, "/m/sign-in", flash="erased-everywhere")
            clear_cookies(response, sessions.MEMBER_COOKIE)
            return response
        return go(request, "/m/privacy", flash="erased-merchant")
