"""The audit log (操作日志) under the staff settings: who did what, to which object, when — the
merchant's own log (``platform/audit.py``, decision 0051), for owners and admins (``audit:read``).

Filters (actor, action, object, a date range in the merchant's zone) travel in the address, so a
filtered page can be bookmarked; htmx swaps only the results. The export (CSV or XLSX) is a POST with
the page's token: the download is itself recorded, so another site must not make a signed-in browser
ask for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Response, get, post
from litestar.response import Template

from lianka.platform import audit, tables
from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_errors, is_htmx, language, page

READ = requires(*MENU["audit"].permissions)
PER_PAGE = 50
MAX_PAGE = 10_000
FILTERS = ("actor", "action", "object_kind", "object_id", "from", "to")
RESULTS_TARGET = "audit-results"

#: what people read for each action slug (an unknown slug is shown as it is)
ACTION_LABELS = {
    "programme.published": N_("Programme version published"),
    "tier.granted": N_("Tier granted"),
    "export.downloaded": N_("Export downloaded"),
    "staff.invited": N_("Staff invited"),
    "staff.added": N_("Staff added"),
    "staff.role_changed": N_("Staff role changed"),
    "staff.branches_changed": N_("Staff branches changed"),
    "staff.removed": N_("Staff removed"),
    "client.created": N_("API client created"),
    "client.revoked": N_("API client revoked"),
    "period.close_requested": N_("Month close requested"),
    "period.closed": N_("Month closed"),
    "alliance.terms_changed": N_("Alliance terms changed"),
    "payout.retried": N_("Payout retried"),
    "promotion.ended": N_("Promotion ended"),
    "campaign.sent": N_("Campaign sent"),
    "campaign.scheduled": N_("Campaign scheduled"),
    "webhook.switched_off": N_("Webhook switched off (its receiver kept failing)"),
}
ACTOR_KINDS = {
    "staff": N_("Staff"),
    "client": N_("API client"),
    "operator": N_("Operator"),
    "system": N_("System job"),
}


@dataclass(frozen=True)
class Filters:
    """The page's filters as the address (or the export form) carries them."""

    actor: str = ""
    action: str = ""
    object_kind: str = ""
    object_id: str = ""
    start: str = ""  # "from": a local date
    end: str = ""  # "to": a local date, inclusive
    page: str = "1"

    @classmethod
    def of(cls, source: Any) -> Filters:
        def value(name: str) -> str:
            v = source.get(name)
            return v.strip() if isinstance(v, str) else ""

        return cls(
            value("actor"),
            value("action"),
            value("object_kind"),
            value("object_id"),
            value("from"),
            value("to"),
            value("page") or "1",
        )

    def number(self) -> int:
        if not self.page.isdigit() or not 1 <= int(self.page) <= MAX_PAGE:
            raise ValidationFailed(f"page is 1 to {MAX_PAGE}", field="page")
        return int(self.page)

    def audit_filter(self, timezone: str) -> audit.Filter:
        """The log's filter: the dates are whole days in the merchant's zone."""
        zone = ZoneInfo(timezone)
        start = _day(self.start, "from")
        end = _day(self.end, "to")
        return audit.Filter(
            actor=self.actor or None,
            action=self.action or None,
            object_kind=self.object_kind or None,
            object_id=self.object_id or None,
            since=datetime.combine(start, time(), zone) if start else None,
            until=datetime.combine(end + timedelta(days=1), time(), zone) if end else None,
        )

    def values(self) -> dict[str, str]:
        pairs = zip(
            FILTERS, (self.actor, self.action, self.object_kind, self.object_id, self.start, self.end), strict=True
        )
        return {k: v for k, v in pairs if v}

    def href(self, page: int | None = None) -> str:
        values = self.values()
        if page is not None and page > 1:
            values["page"] = str(page)
        return MENU["audit"].path + (f"?{urlencode(values)}" if values else "")

    @staticmethod
    def only_actor(actor_id: str) -> str:
        """The page filtered to one actor's entries."""
        return Filters(actor=actor_id).href()

    @staticmethod
    def only_object(kind: str, object_id: str) -> str:
        """The page filtered to one object's entries."""
        return Filters(object_kind=kind, object_id=object_id).href()


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{field}: a date such as 2026-05-20", field=field) from None


class AuditPages(Controller):
    path = MENU["audit"].path

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """The log, newest first; for htmx (filters changed, another page) only the results."""
        filters = Filters.of(request.query_params)
        results_only = is_htmx(request) and request.headers.get("hx-target") == RESULTS_TARGET
        template = "console/audit/_results.html" if results_only else "console/audit/index.html"
        timezone = (await merchant_profile(ident.db, principal.tenant)).timezone
        context: dict[str, Any] = {
            "filters": filters,
            "action_labels": ACTION_LABELS,
            "actor_kinds": ACTOR_KINDS,
            "errors": FormErrors(),
            "formats": tables.FORMATS,
        }
        try:
            log = await audit.entries(
                ident.db,
                principal.tenant,
                filters.audit_filter(timezone),
                limit=PER_PAGE,
                offset=(filters.number() - 1) * PER_PAGE,
            )
        except DomainError as exc:
            if exc.status not in (400, 422):
                raise
            errors = form_errors(exc, language(request), FILTERS)
            return await page(
                request,
                template,
                principal=principal,
                active="audit",
                status=exc.status,
                log=None,
                **{**context, "errors": errors},
            )
        return await page(request, template, principal=principal, active="audit", log=log, per_page=PER_PAGE, **context)

    @post("/export", guards=[READ], status_code=200)
    async def export(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[bytes]:
        """The filtered log as a file (the same use case as ``GET /api/v1/audit/export``)."""
        form = await form_data(request)
        filters = Filters.of(form)
        fmt = form.get("format")
        timezone = (await merchant_profile(ident.db, principal.tenant)).timezone
        body, media = await audit.export(
            ident.db,
            principal.tenant,
            filters.audit_filter(timezone),
            fmt if isinstance(fmt, str) else "",
            actor=audit.by(principal),
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%MZ")
        return Response(
            body, media_type=media, headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"'}
        )
