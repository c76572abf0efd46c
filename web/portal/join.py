"""The join link's pages: ``/join/<merchant>`` and ``/join/<merchant>/<branch code or id>``.

Step 1 asks a phone and texts a join code; step 2 asks the code, the privacy notice (required), the
marketing consents per channel and, optionally, a name and a birthday. The join is the use case of
``POST /api/v1/portal/join/<merchant>`` (``tenants.services.self_join.join``); it signs the person in
and sends them to their card. Forms post normally (a phone in WeChat needs no JavaScript for this).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import IdentityService, public
from lianka.tenants.services import referrals, self_join
from lianka.web.api.cookies import client_ip
from lianka.web.api.members_auth import member_session
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_text, go, language
from lianka.web.console.security import check_public_form
from lianka.web.portal.pages import portal_errors, portal_page

FIELDS = ("phone", "code", "privacy", "name", "birthday")
#: where a join lands, and what it says there (the flash key)
OUTCOME_FLASH = {"joined": "joined", "prospect": "prospect", "already": "already"}
#: the same, when the join carried a friend's invitation: (status, whether it was linked) → flash key
INVITED_FLASH = {
    ("joined", True): "joined-invited",
    ("joined", False): "joined-uninvited",
    ("prospect", True): "prospect-invited",
    ("prospect", False): "prospect-uninvited",
    ("already", False): "already-invited",
}


def _values(form: FormMultiDict | None = None) -> dict[str, Any]:
    if form is None:
        return {"phone": "", "name": "", "birthday": "", "privacy": False, "consents": {}, "ref": ""}
    return {
        "ref": form_text(form, "ref")[:32],
        "phone": form_text(form, "phone"),
        "name": form_text(form, "name"),
        "birthday": form_text(form, "birthday"),
        "privacy": form_text(form, "privacy") == "yes",
        "consents": {c: form_text(form, f"consent_{c}") == "yes" for c in self_join.JOIN_CHANNELS},
    }


def _birthday(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("birthday: a date such as 1990-05-31", field="birthday") from None


def _link(target: self_join.JoinTarget, ref: str) -> str:
    path = f"/join/{target.slug}" + (f"/{target.branch_id}" if target.branch_id else "")
    return f"{path}?{urlencode({'ref': ref})}" if ref else path


class JoinPages(Controller):
    path = "/join"
    guards = (public,)

    async def _page(
        self,
        request: HtmlRequest,
        target: self_join.JoinTarget,
        *,
        step: int,
        values: dict[str, Any],
        errors: FormErrors,
        status: int = 200,
        flash: str | None = None,
    ) -> Template:
        invited = await referrals.invitation(request.app.state.identity.db, target.merchant_id, values["ref"])
        return await portal_page(
            request,
            "portal/join.html",
            status=status,
            flash=flash,
            target=target,
            branch_ref=str(target.branch_id or ""),
            step=step,
            values=values,
            errors=errors,
            channels=self_join.JOIN_CHANNELS,
            invited=invited,
            # the language switch comes back to the link (with a friend's code), also from step 2's post
            path=_link(target, values["ref"]),
        )

    @get("/{merchant:str}")
    async def join_form(
        self, request: HtmlRequest, merchant: FromPath[str], ident: IdentityService, ref: FromQuery[str] = ""
    ) -> Template:
        target = await self_join.join_target(ident.db, merchant)
        values = {**_values(), "ref": ref[:32]}  # a friend's link: ?ref=<their code>
        return await self._page(request, target, step=1, values=values, errors=FormErrors())

    @get("/{merchant:str}/{branch:str}")
    async def join_branch_form(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        branch: FromPath[str],
        ident: IdentityService,
        ref: FromQuery[str] = "",
    ) -> Template:
        """A branch's link: the branch (its code or id) becomes the member's join branch."""
        target = await self_join.join_target(ident.db, merchant, branch)
        values = {**_values(), "ref": ref[:32]}
        return await self._page(request, target, step=1, values=values, errors=FormErrors())

    @post("/{merchant:str}/code")
    async def send_code(self, request: HtmlRequest, merchant: FromPath[str], ident: IdentityService) -> Template:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        target = await self_join.join_target(ident.db, merchant, form_text(form, "branch") or None)
        values = _values(form)
        try:
            await self_join.request_code(ident, target.slug, values["phone"], client_ip(request))
        except DomainError as exc:
            errors = portal_errors(exc, language(request), FIELDS)
            return await self._page(request, target, step=1, values=values, errors=errors, status=exc.status)
        return await self._page(request, target, step=2, values=values, errors=FormErrors(), flash="code-sent")

    @post("/{merchant:str}")
    async def join(self, request: HtmlRequest, merchant: FromPath[str], ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        check_public_form(request, ident, form_text(form, "_csrf"))
        branch = form_text(form, "branch") or None
        target = await self_join.join_target(ident.db, merchant, branch)
        values = _values(form)
        try:
            choices = self_join.JoinForm(
                values["privacy"], values["consents"], values["name"], _birthday(values["birthday"]), values["ref"]
            )
            done = await self_join.join(
                ident, target.slug, branch, values["phone"], form_text(form, "code"), choices, client_ip(request)
            )
        except DomainError as exc:
            errors = portal_errors(exc, language(request), FIELDS)
            return await self._page(request, target, step=2, values=values, errors=errors, status=exc.status)
        _, cookies = await member_session(request, ident, done.member_id)
        flash = OUTCOME_FLASH[done.status]
        if done.referral is not None:
            flash = INVITED_FLASH[(done.status, done.referral == referrals.Outcome.LINKED)]
        return go(request, "/m", cookies=cookies, flash=flash)
