"""Onboarding: "choose a programme template for your trade" (``/console/start/programme``).

The page shows every template (``tenants/domain/templates.py``) as the programme it would publish —
tiers, earn rate, expiry, points as cash, stored-value plans, the welcome coupon — with the one for
the merchant's trade first. Choosing one calls one use case
(:func:`lianka.tenants.services.programme_templates.apply_template`): a new programme version and
its welcome coupon, in the reader's language, once per form (its Idempotency-Key). Then the
checklist shows the step done.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from litestar import Controller, Response, get, post
from litestar.response import Template

from lianka.platform import audit
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.domain import templates
from lianka.tenants.domain.programme import ExpiryKind, Programme
from lianka.tenants.services import programme_templates as svc
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_errors, form_text, go, language, page
from lianka.web.console.till import new_key

READ = requires(*MENU["start"].permissions, Permission.PROGRAMME_READ)
WRITE = requires(Permission.PROGRAMME_WRITE)


@dataclass(frozen=True)
class Preview:
    """A template as the programme it publishes, for the reader (language, currency)."""

    key: str
    title: str
    summary: str
    recommended: bool
    chosen: bool
    programme: Programme
    welcome: templates.WelcomeTerms
    signup_points: int
    referral_points: int
    checkin_points: int
    #: how many points make one major unit (¥1) when paying with points
    points_per_major: int
    expiry: ExpiryKind
    expiry_months: int


def previews(status: svc.TemplateStatus, language: str) -> list[Preview]:
    """Every template, the merchant's trade's first."""
    best = templates.recommended(status.trade)
    ordered = [best, *(t for t in templates.TEMPLATES if t is not best)]
    out = []
    for t in ordered:
        p = t.programme(language, status.currency)
        out.append(
            Preview(
                t.key,
                t.title.in_(language),
                t.summary.in_(language),
                t is best,
                t.key == status.template,
                p,
                t.welcome_terms(language, status.currency),
                t.signup_points,
                t.referral_points,
                t.checkin_points,
                int(Decimal(1) / p.points.cash_value_per_point),
                p.points.expiry.kind,
                p.points.expiry.months,
            )
        )
    return out


class ProgrammeStartPages(Controller):
    path = "/console/start/programme"

    async def _page(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        errors: FormErrors | None = None,
    ) -> Template:
        current = await svc.template_status(ident.db, principal.tenant)
        return await page(
            request,
            "console/start_programme/index.html",
            principal=principal,
            active="start",
            status=status,
            current=current,
            previews=previews(current, language(request).tag),
            key=new_key("template"),
            errors=errors or FormErrors(),
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._page(request, principal, ident)

    @post("/", guards=[READ, WRITE])
    async def choose(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Publish the chosen template, then back to the checklist (post/redirect/get)."""
        form = await form_data(request)
        try:
            await svc.apply_template(
                ident.db,
                principal.tenant,
                form_text(form, "template"),
                language=language(request).tag,
                idempotency_key=form_text(form, "key"),
                actor=audit.by(principal),
            )
        except DomainError as exc:
            return await self._page(
                request, principal, ident, status=exc.status, errors=form_errors(exc, language(request), ("template",))
            )
        return go(request, "/console/start", flash="template-published")
