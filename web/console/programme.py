"""The programme editor (会员方案): the versions, one form per section, a preview, and a diff.

- ``/console/programme``: the version in force, every version (in force, scheduled, superseded)
  and a comparison of any two of them, field by field (``/console/programme/compare``).
- ``/console/programme/<section>``: the section's form, filled from the newest version written
  (what a change builds on). Publishing writes a new version now or from a chosen time, with a
  note — :func:`programme.publish_section`, the use case of ``PUT /api/v1/programme/<section>``.
- The form's *Preview* prices a sample basket for a sample member (tier, birthday, points paid)
  with the version in force and with the unsaved edit, through the POS's pricing
  (:func:`programme.preview`), and lists what the edit changes.

Readers (``programme:read`` and the back office) see the forms read-only; writing needs
``programme:write``. Amounts are typed in yuan and read exactly in fen; times are the merchant's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.platform import audit
from lianka.platform.errors import DomainError, NotFound, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.domain.programme import Programme
from lianka.tenants.services import programme as svc
from lianka.tenants.services.onboarding import MerchantProfile, merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console import programme_form as pf
from lianka.web.console import programme_text as texts
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, go, is_htmx, language, page

READ = requires(*MENU["programme"].permissions)
WRITE = requires(Permission.PROGRAMME_WRITE)
FORM = {"HX-Retarget": "#section-form", "HX-Reswap": "outerHTML"}
CONTROLS = (
    "effective",
    "effective_at",
    "note",
    "sample-amount",
    "sample-tier",
    "sample-birthday",
    "sample-points",
    "sample-day",
    "sample-branch",
)


@dataclass(frozen=True)
class VersionRow:
    """A version as the history lists it."""

    version: int
    effective_from: datetime
    note: str
    created_at: datetime
    status: str  # in_force | scheduled | superseded


def _section(key: str) -> pf.Section:
    found = pf.SECTIONS.get(key)
    if found is None:
        raise NotFound("no such programme section")
    return found


async def _merchant(request: HtmlRequest, principal: Principal) -> MerchantProfile:
    """The merchant's currency and time zone, to read amounts and times typed into a form (the same
    profile the page's layout shows)."""
    return await merchant_profile(request.app.state.identity.db, principal.tenant)


def _controls(post: Any) -> dict[str, str]:
    return {name: fv.text_of(post, name, max_length=400) if name in post else "" for name in CONTROLS}


def _effective(controls: dict[str, str], timezone: str) -> datetime | None:
    """When the new version starts: None (now) or the chosen local time in the merchant's zone."""
    if controls["effective"] != "later":
        return None
    if not controls["effective_at"]:
        raise ValidationFailed("effective_at: required", field="effective_at", reason="required")
    return fv.local_time(controls["effective_at"], "effective_at", timezone)


def _sample(controls: dict[str, str], currency: str) -> svc.SampleSale:
    amount = fv.minor_units(controls["sample-amount"], "sample-amount", currency) or 0
    if amount <= 0:
        raise ValidationFailed("sample-amount: positive", field="sample-amount", reason="positive")
    return svc.SampleSale(
        amount=amount,
        tier=controls["sample-tier"] or None,
        birthday=bool(controls["sample-birthday"]),
        points=fv.whole(controls["sample-points"], "sample-points", required=False) or 0,
        day=fv.day(controls["sample-day"], "sample-day"),
        branch_code=controls["sample-branch"],
    )


def _default_controls(programme: Programme) -> dict[str, str]:
    top = programme.tiers_by_rank()[-1].code if programme.tiers else ""
    return {**dict.fromkeys(CONTROLS, ""), "effective": "now", "sample-amount": "100.00", "sample-tier": top}


def _errors(exc: DomainError, request: HtmlRequest, form: pf.SectionForm) -> FormErrors:
    placed = {"effective_from": "effective_at"}
    return fv.field_errors(
        exc,
        language(request),
        form.names() | set(CONTROLS),
        texts.ERROR_TEXTS,
        placed=lambda field: placed.get(field) or form.input_for(field),
    )


class ProgrammePages(Controller):
    path = "/console/programme"

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        in_force, rows = await svc.versions(ident.db, principal.tenant)
        now = datetime.now(UTC)
        history = [
            VersionRow(
                r.version,
                r.effective_from,
                r.note,
                r.created_at,
                "in_force" if r.version == in_force else "scheduled" if r.effective_from > now else "superseded",
            )
            for r in rows
        ]
        return await page(
            request,
            "console/programme/index.html",
            principal=principal,
            active="programme",
            history=history,
            in_force=in_force,
            sections=texts.SECTION_TITLES,
        )

    @get("/compare", guards=[READ])
    async def compare(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        old: FromQuery[int],
        new: FromQuery[int],
    ) -> Template:
        comparison = await svc.compare_versions(ident.db, principal.tenant, old, new)
        merchant = await _merchant(request, principal)
        lang = language(request)
        lines = [texts.describe(c, lang, merchant.currency) for c in comparison.changes]
        template = "console/programme/_comparison.html" if is_htmx(request) else "console/programme/compare.html"
        return await page(
            request,
            template,
            principal=principal,
            active="programme",
            comparison=comparison,
            lines=lines,
            sections=texts.SECTION_TITLES,
            history=[{"version": n} for n in comparison.versions if n],
        )

    @get("/{section:str}", guards=[READ])
    async def edit(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, section: FromPath[str]
    ) -> Template:
        _section(section)
        editor = await svc.editor(ident.db, principal.tenant)
        merchant = await _merchant(request, principal)
        return await self._page(
            request,
            principal,
            editor,
            section,
            pf.from_programme(editor.base, section, merchant.currency),
            _default_controls(editor.base),
            FormErrors(),
        )

    async def _page(
        self,
        request: HtmlRequest,
        principal: Principal,
        editor: svc.Editor,
        section: str,
        form: pf.SectionForm,
        controls: dict[str, str],
        errors: FormErrors,
        *,
        status: int = 200,
        preview: svc.Preview | None = None,
        headers: dict[str, str] | None = None,
        fragment: str | None = None,
    ) -> Template:
        lang = language(request)
        lines = (
            [texts.describe(c, lang, (await _merchant(request, principal)).currency) for c in preview.changes]
            if preview
            else []
        )
        tiers = (preview.programme if preview else editor.base).tiers_by_rank()
        return await page(
            request,
            fragment or "console/programme/section.html",
            principal=principal,
            active="programme",
            status=status,
            headers=headers,
            editor=editor,
            section=section,
            sections=texts.SECTION_TITLES,
            form=form,
            controls=controls,
            errors=errors,
            preview=preview,
            lines=lines,
            tier_options={t.code: t.name for t in tiers},
            branch_options={b.code: f"{b.code} {b.name}" for b in editor.branches},
            weekday_options={k: lang.gettext(v) for k, v in texts.CHOICES[("rules", "weekdays")].items()},
            label=lambda group, path: texts.label(group, path, lang),
            choices=lambda group, path: texts.CHOICES[(group, path)],
            problem_text=lambda exc: texts.problem(exc, lang),
            can_write=principal.has(Permission.PROGRAMME_WRITE),
        )

    @post("/{section:str}", guards=[READ, WRITE])
    async def publish(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, section: FromPath[str]
    ) -> Response[Any]:
        form, controls, merchant = await self._posted(request, principal, section)
        try:
            controls.update(_controls(await form_data(request)))
            effective_from = _effective(controls, merchant.timezone)
            await svc.publish_section(
                ident.db,
                principal.tenant,
                section,
                pf.to_value(form, merchant.currency),
                effective_from=effective_from,
                note=controls["note"],
                actor=audit.by(principal),
            )
        except DomainError as exc:
            return await self._refused(request, principal, ident, section, form, controls, exc)
        return go(
            request,
            "/console/programme",
            flash="programme-scheduled" if effective_from is not None else "programme-published",
        )

    @post("/{section:str}/preview", guards=[READ, WRITE])
    async def preview(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, section: FromPath[str]
    ) -> Response[Any]:
        """Price the sample with the edit as typed; nothing is written."""
        form, controls, merchant = await self._posted(request, principal, section)
        try:
            controls.update(_controls(await form_data(request)))
            result = await svc.preview(
                ident.db,
                principal.tenant,
                section,
                pf.to_value(form, merchant.currency),
                _sample(controls, merchant.currency),
            )
        except DomainError as exc:
            return await self._refused(request, principal, ident, section, form, controls, exc)
        fragment = "console/programme/_preview.html" if is_htmx(request) else None
        return await self._page(
            request, principal, result.editor, section, form, controls, FormErrors(), preview=result, fragment=fragment
        )

    async def _posted(
        self, request: HtmlRequest, principal: Principal, section: str
    ) -> tuple[pf.SectionForm, dict[str, str], MerchantProfile]:
        """What a section's form posted (kept to show again), its controls (read in the ``try`` that shows
        their errors) and the merchant whose currency and time zone read them."""
        _section(section)
        form = pf.from_post(await form_data(request), section)
        return form, _default_controls(Programme()), await _merchant(request, principal)

    async def _refused(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        section: str,
        form: pf.SectionForm,
        controls: dict[str, str],
        exc: DomainError,
    ) -> Template:
        """The form again with the problem beside its input (htmx: the form alone, in its place)."""
        if exc.status in (401, 403, 404):
            raise exc
        editor = await svc.editor(ident.db, principal.tenant)
        fragment = "console/programme/_section_form.html" if is_htmx(request) else None
        return await self._page(
            request,
            principal,
            editor,
            section,
            form,
            controls,
            _errors(exc, request, form),
            status=exc.status,
            headers=FORM if is_htmx(request) else None,
            fragment=fragment,
        )
