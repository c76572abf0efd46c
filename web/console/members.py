"""Members (会员): the masked list with its filters, paging and charts; a member's page; editing the
profile and tags, consent per channel and a granted tier; the logged full export.

- Guards are the API's (``web/api/crm.py``): reading needs ``members:read`` (plus the back office),
  editing ``members:write``, granting a tier ``programme:write``, exporting ``members:export``. The
  buttons show only to those who may use them; the routes refuse the others anyway.
- Each handler calls one use case: the API's (``crm.change_profile``, ``change_consent``,
  ``grant_tier``, ``export_members``) for writes, and for a page the read use case that gathers it
  (``member_views``), built from the same CRM building blocks as the API's reads.
- The filters update the list with htmx as they change (and the address, so a filtered list can be
  bookmarked); without JavaScript the filter form is an ordinary GET.
- Writes that add a record (a consent change, a granted tier) carry a key made when their form was
  rendered (``_key``): a double click or a retry records once (``crm.write_once``).
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.payments import services as payments
from lianka.platform import audit
from lianka.platform.errors import BadRequest, DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.crm_queries import ListFilter
from lianka.tenants.services import crm, member_views
from lianka.web.api.deps import actor_of
from lianka.web.console import member_texts
from lianka.web.console.member_texts import member_form_errors
from lianka.web.console.nav import MENU
from lianka.web.console.pages import (
    FormErrors,
    HtmlRequest,
    form_data,
    form_text,
    go,
    is_htmx,
    language,
    page,
    panel_page,
)

READ = requires(*MENU["members"].permissions)
WRITE = requires(Permission.MEMBERS_WRITE)
GRANT_TIER = requires(Permission.PROGRAMME_WRITE)
EXPORT = requires(Permission.MEMBERS_EXPORT)
PER_PAGE = 20
#: the deepest page: the list's offset stays within what the CRM accepts (``crm.MAX_OFFSET``)
MAX_PAGE = crm.MAX_OFFSET // PER_PAGE
FILTERS = ("q", "tier", "tag", "stage", "branch_id")
PROFILE_FIELDS = ("name", "gender", "birthday", "email", "address", "tags")
TIER_FIELDS = ("tier", "reason", "until")
PANEL = {"HX-Retarget": "#member-panel", "HX-Reswap": "outerHTML"}
RESULTS_TARGET = "member-results"
_TAG_SEPARATORS = re.compile(r"[,，;；、\n]")


def new_key() -> str:
    """An idempotency key for one rendered form (``_key``)."""
    return secrets.token_urlsafe(18)


def form_key(form: FormMultiDict) -> str:
    """The form's ``_key``: forms that add a record must carry the one their page made."""
    key = form_text(form, "_key")
    if not key or len(key) > 200 or not key.isprintable():
        raise BadRequest("This form needs its _key field (reload the page)", field="key")
    return key


def parse_date(value: str, field: str) -> date | None:
    """A date field (``YYYY-MM-DD``, what ``<input type=date>`` sends); '' is none."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{field}: a date such as 2026-05-20", field=field) from None


# --- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The list's filters and page as the address (or the export form) carries them."""

    q: str = ""
    tier: str = ""
    tag: str = ""
    stage: str = ""
    branch_id: str = ""
    page: str = "1"

    @classmethod
    def of(cls, source: Any) -> Filters:
        values = {name: source.get(name) for name in (*FILTERS, "page")}
        return cls(**{k: v.strip() for k, v in values.items() if isinstance(v, str)})

    def number(self) -> int:
        if not self.page.isdigit() or not 1 <= int(self.page) <= MAX_PAGE:
            raise ValidationFailed(f"page is 1 to {MAX_PAGE}", field="page")
        return int(self.page)

    def list_filter(self) -> ListFilter:
        """The CRM's filter (it checks the stage); a branch that is not an id is refused here."""
        try:
            branch = uuid.UUID(self.branch_id) if self.branch_id else None
        except ValueError:
            raise ValidationFailed("branch_id: not a branch", field="branch_id") from None
        return ListFilter(
            q=self.q[:64], tier=self.tier or None, tag=self.tag or None, stage=self.stage or None, branch_id=branch
        )

    def href(self, page: int | None = None) -> str:
        """The list's address with these filters (and ``page``)."""
        values = {name: getattr(self, name) for name in FILTERS if getattr(self, name)}
        if page is not None and page > 1:
            values["page"] = str(page)
        return "/console/members" + (f"?{urlencode(values)}" if values else "")


def _wants_results(request: HtmlRequest) -> bool:
    """htmx asking for the results only (filters changed, another page), not restoring a page from
    history (that needs the whole page)."""
    return (
        is_htmx(request)
        and request.headers.get("hx-target") == RESULTS_TARGET
        and request.headers.get("hx-history-restore-request") != "true"
    )


def filter_options(overview: member_views.MembersOverview | None, lang: Any) -> dict[str, list[tuple[str, str]]]:
    """The filters' choices as (value, text): the programme's tiers, the tags in use, the stages and
    the branches (an error page without the list still offers the stages)."""
    stages = [(key, lang.gettext(label)) for key, label in member_texts.STAGES.items()]
    if overview is None:
        return {"tier": [], "tag": [], "stage": stages, "branch_id": []}
    return {
        "tier": [(t.code, t.name) for t in overview.tiers],
        "tag": [(t, t) for t in overview.tags],
        "stage": stages,
        "branch_id": [(str(b.id), f"{b.code} · {b.name}") for b in overview.branches],
    }


def stage_chart(overview: member_views.MembersOverview, lang: Any) -> dict[str, Any]:
    """What ``members.js`` draws: members per lifecycle stage (a bar each, in the stages' order)."""
    return {
        "kind": "bar",
        "labels": [lang.gettext(label) for label in member_texts.STAGES.values()],
        "values": [overview.stages.get(stage, 0) for stage in member_texts.STAGES],
    }


def tier_chart(overview: member_views.MembersOverview, lang: Any) -> dict[str, Any]:
    names = {t.code: t.name for t in overview.tiers}
    labels = [
        names.get(c.tier_code or "", c.tier_code) if c.tier_code else lang.gettext("No tier")
        for c in overview.tier_counts
    ]
    return {"kind": "pie", "labels": labels, "values": [c.members for c in overview.tier_counts]}


# --- a member's page -----------------------------------------------------------------------------


def profile_values(profile: dict[str, Any]) -> dict[str, str]:
    birthday = profile.get("birthday")
    return {
        "name": profile.get("name") or "",
        "gender": profile.get("gender") or "unknown",
        "birthday": birthday.isoformat() if isinstance(birthday, date) else str(birthday or ""),
        "email": profile.get("email") or "",
        "address": profile.get("address") or "",
        "tags": ", ".join(profile.get("tags") or []),
    }


def profile_changes(values: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the CRM's profile change (the whole form: every field is sent)."""
    tags = [t.strip() for t in _TAG_SEPARATORS.split(values["tags"]) if t.strip()]
    return {
        "name": values["name"],
        "gender": values["gender"] or "unknown",
        "birthday": parse_date(values["birthday"], "birthday"),
        "email": values["email"],
        "address": values["address"],
        "tags": tags,
    }


@dataclass(frozen=True)
class ConsentChange:
    granted: bool
    at: datetime | None
    source: str
    actor: str


@dataclass(frozen=True)
class ConsentRow:
    """One channel of a member's marketing consent: the state (None: never asked) and every change,
    newest first."""

    channel: str
    granted: bool | None
    at: datetime | None
    history: list[ConsentChange]


def _time(value: object) -> datetime | None:
    """A time the consent record keeps as ISO text (JSON)."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def consent_rows(consent: dict[str, Any]) -> list[ConsentRow]:
    rows = []
    for channel in member_texts.CHANNELS:
        entry = consent.get(channel) or {}
        history = [
            ConsentChange(
                bool(h.get("granted")), _time(h.get("at")), str(h.get("source") or ""), str(h.get("actor") or "")
            )
            for h in reversed(entry.get("history") or [])
        ]
        rows.append(
            ConsentRow(channel, bool(entry["granted"]) if "granted" in entry else None, _time(entry.get("at")), history)
        )
    return rows


@dataclass(frozen=True)
class Editor:
    """A form on the member's page: what it shows, its errors, and the key it posts."""

    values: dict[str, str]
    errors: FormErrors
    key: str = ""


def tier_editor(m: member_views.MemberPage) -> Editor:
    current = m.detail["tier"]["code"] or (m.tiers[0].code if m.tiers else "")
    return Editor({"tier": current, "reason": "", "until": ""}, FormErrors(), new_key())


class MemberPages(Controller):
    path = "/console/members"

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """The list; for htmx (filters changed, another page) only the results."""
        filters = Filters.of(request.query_params)
        results_only = _wants_results(request)
        lang = language(request)
        try:
            overview = await member_views.members_overview(
                ident.db,
                principal.tenant,
                filters.list_filter(),
                limit=PER_PAGE,
                offset=(filters.number() - 1) * PER_PAGE,
                counts=not results_only,
            )
        except DomainError as exc:
            if exc.status not in (400, 422):
                raise
            template = "console/members/_results.html" if results_only else "console/members/index.html"
            return await page(
                request,
                template,
                principal=principal,
                active="members",
                status=exc.status,
                filters=filters,
                overview=None,
                labels=member_texts,
                tier_names={},
                options=filter_options(None, lang),
                errors=member_form_errors(exc, lang, (*FILTERS, "page")),
            )
        template = "console/members/_results.html" if results_only else "console/members/index.html"
        return await page(
            request,
            template,
            principal=principal,
            active="members",
            filters=filters,
            overview=overview,
            labels=member_texts,
            errors=FormErrors(),
            tier_names={t.code: t.name for t in overview.tiers},
            options=filter_options(overview, lang),
            stage_chart=stage_chart(overview, lang),
            tier_chart=tier_chart(overview, lang),
        )

    @post("/export", guards=[READ, EXPORT], status_code=200)
    async def export(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[bytes]:
        """The full list with phone numbers, as the API's export (same use case: logged in the same
        transaction). A POST with the page's token: an export is recorded, so another site must not
        be able to make a signed-in browser ask for one."""
        filters = Filters.of(await form_data(request))
        body = await crm.export_members(
            ident.db, principal.tenant, filters.list_filter(), actor=actor_of(principal), who=audit.by(principal)
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%MZ")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="members-{stamp}.csv"'},
        )

    # --- one member --------------------------------------------------------------------------

    async def _member(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        member_id: uuid.UUID,
        *,
        status: int = 200,
        flash: str | None = None,
        headers: dict[str, str] | None = None,
        profile: Editor | None = None,
        tier: Editor | None = None,
        consent_errors: FormErrors | None = None,
        open_profile: bool = False,
    ) -> Template:
        """The member's page, or for htmx its panel (``_panel.html``), with the forms as given
        (``open_profile``: the profile form open with the member's values)."""
        m = await member_views.member_page(ident.db, principal.tenant, member_id)
        paid_online = await payments.member_history(ident.db, principal.tenant, member_id)
        if open_profile and profile is None:
            profile = Editor(profile_values(m.detail["profile"]), FormErrors())
        return await panel_page(
            request,
            "members",
            whole="detail.html",
            principal=principal,
            status=status,
            headers=headers,
            m=m,
            labels=member_texts,
            tier_names={t.code: t.name for t in m.tiers},
            profile_form=profile,
            tier_form=tier or tier_editor(m),
            consents=consent_rows(m.detail["profile"]["consent"]),
            now=datetime.now(UTC),
            consent_keys={channel: new_key() for channel in member_texts.CHANNELS},
            consent_errors=consent_errors or FormErrors(),
            payments=paid_online,
            refund_key=new_key(),
            flash=flash,
        )

    async def _saved(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, member_id: uuid.UUID, flash: str
    ) -> Response[Any]:
        """htmx: the refreshed panel replaces the old one; a plain form: post/redirect/get."""
        if is_htmx(request):
            return await self._member(request, principal, ident, member_id, flash=flash, headers=PANEL)
        return go(request, f"/console/members/{member_id}", flash=flash)

    @get("/{member_id:uuid}", guards=[READ])
    async def detail(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Template:
        return await self._member(request, principal, ident, member_id)

    @get("/{member_id:uuid}/profile", guards=[READ, WRITE])
    async def edit_profile(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Template:
        """The profile form: for htmx alone (into the page), else the page with the form open."""
        if is_htmx(request):
            profile = await crm.member_profile(ident.db, principal.tenant, member_id)
            return await page(
                request,
                "console/members/_profile_form.html",
                principal=principal,
                member_id=member_id,
                form=Editor(profile_values(profile), FormErrors()),
                labels=member_texts,
            )
        return await self._member(request, principal, ident, member_id, open_profile=True)

    @post("/{member_id:uuid}/profile", guards=[READ, WRITE])
    async def save_profile(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        form = await form_data(request)
        values = {name: form_text(form, name) for name in PROFILE_FIELDS}
        try:
            await crm.change_profile(ident.db, principal.tenant, member_id, profile_changes(values))
        except DomainError as exc:
            if exc.status == 404:
                raise
            editor = Editor(values, member_form_errors(exc, language(request), PROFILE_FIELDS))
            if is_htmx(request):
                return await page(
                    request,
                    "console/members/_profile_form.html",
                    principal=principal,
                    status=exc.status,
                    member_id=member_id,
                    form=editor,
                    labels=member_texts,
                )
            return await self._member(request, principal, ident, member_id, status=exc.status, profile=editor)
        return await self._saved(request, principal, ident, member_id, "member-saved")

    @post("/{member_id:uuid}/consent/{channel:str}", guards=[READ, WRITE])
    async def consent(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        member_id: FromPath[uuid.UUID],
        channel: FromPath[str],
    ) -> Response[Any]:
        form = await form_data(request)
        try:
            granted = {"true": True, "false": False}.get(form_text(form, "granted"))
            if granted is None:
                raise ValidationFailed("granted is true or false", field="granted")
            await crm.change_consent(
                ident.db,
                principal.tenant,
                member_id,
                channel,
                granted,
                source="console",
                actor=actor_of(principal),
                key=form_key(form),
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            errors = member_form_errors(exc, language(request), ())
            return await self._member(
                request,
                principal,
                ident,
                member_id,
                status=exc.status,
                headers=PANEL if is_htmx(request) else None,
                consent_errors=errors,
            )
        return await self._saved(request, principal, ident, member_id, "consent-saved")

    @post("/{member_id:uuid}/tier", guards=[READ, GRANT_TIER])
    async def grant_tier(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, member_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        form = await form_data(request)
        values = {name: form_text(form, name) for name in TIER_FIELDS}
        try:
            await crm.grant_tier(
                ident.db,
                principal.tenant,
                member_id,
                values["tier"],
                until=parse_date(values["until"], "until"),
                reason=values["reason"],
                actor=actor_of(principal),
                who=audit.by(principal),
                key=form_key(form),
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            # the form lives in the panel (its tier choices are the programme's): the panel comes back
            editor = Editor(values, member_form_errors(exc, language(request), TIER_FIELDS), new_key())
            return await self._member(
                request,
                principal,
                ident,
                member_id,
                status=exc.status,
                headers=PANEL if is_htmx(request) else None,
                tier=editor,
            )
        return await self._saved(request, principal, ident, member_id, "tier-granted")
