"""Alliance offers in the console, under Marketing (decision 0044): the offers this merchant funds
and those proposed to its members; the form that proposes one to a partner (audience by tier and
lifecycle stage only, with a suppressed live count); an offer's page — for the funder its results,
for the target what its members get and the accept / decline buttons. Each handler calls one use
case of ``tenants.marketing.offers``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.alliances import membership
from lianka.platform.db import Database
from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import offers as svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_errors, go, language, page, panel_page

READ = requires(*MENU["alliance_offers"].permissions)
WRITE = requires(Permission.CAMPAIGNS_WRITE)
STAGES = {"new": N_("New"), "active": N_("Active"), "at_risk": N_("At risk"), "dormant": N_("Dormant")}
CHANNELS = {"sms": N_("SMS"), "email": N_("E-mail")}
STATUSES = {"proposed": N_("Waiting for the partner"), "accepted": N_("Accepted and sent"), "declined": N_("Declined")}
FIELDS = ("target", "name", "message", "discount", "min_spend", "fee", "valid_until", "tiers", "stages", "channels")


@dataclass(frozen=True)
class Target:
    value: str  # "<alliance id>:<merchant id>"
    label: str


async def _partners(db: Database, merchant: uuid.UUID) -> tuple[list[Target], dict[uuid.UUID, str]]:
    """The partners this merchant may fund an offer for (other active partners of its active alliances),
    and every partner's name by merchant id."""
    targets, names = [], {}
    for a in await membership.my_alliances(db, merchant):
        if a.status != "active":
            continue
        for p in await membership.partners(db, merchant, a.id):
            names[p["merchant_id"]] = p["name"]
            if p["merchant_id"] != merchant and p["status"] == "active" and p["role"] == "partner":
                targets.append(Target(f"{a.id}:{p['merchant_id']}", f"{a.name} · {p['name']}"))
    return targets, names


def _target(value: str) -> tuple[uuid.UUID, uuid.UUID]:
    try:
        alliance, merchant = value.split(":", 1)
        return uuid.UUID(alliance), uuid.UUID(merchant)
    except ValueError:
        raise ValidationFailed("choose a partner", field="target") from None


class AllianceOfferPages(Controller):
    path = "/console/alliance-offers"

    async def _panel(self, request: HtmlRequest, principal: Any, ident: IdentityService) -> Template:
        found = await svc.list_offers(ident.db, principal.tenant)
        _, names = await _partners(ident.db, principal.tenant)
        return await panel_page(
            request, "alliance_offers", principal=principal, offers=found, names=names, statuses=STATUSES
        )

    async def _form(self, request: HtmlRequest, principal: Any, ident: IdentityService, *, values: dict[str, Any],
                    errors: Any = None, status: int = 200, estimate: Any = None) -> Template:  # fmt: skip
        targets, _ = await _partners(ident.db, principal.tenant)
        return await page(
            request,
            "console/alliance_offers/form.html",
            principal=principal,
            active="alliance_offers",
            status=status,
            targets=targets,
            stages=STAGES,
            channels=CHANNELS,
            values=values,
            errors=errors,
            estimate=estimate,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._form(request, principal, ident, values={"stages": [], "channels": []})

    @post("/", guards=[READ, WRITE], status_code=200)
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        values: dict[str, Any] = {
            n: fv.text_of(form, n, max_length=300)
            for n in ("target", "name", "message", "discount", "min_spend", "fee", "valid_until", "tiers")
        }
        values["stages"] = [s for s in form.getall("stages", []) if s in STAGES]
        values["channels"] = [c for c in form.getall("channels", []) if c in CHANNELS]
        tiers = tuple(t.strip() for t in values["tiers"].replace("，", ",").split(",") if t.strip())
        profile = await merchant_profile(ident.db, principal.tenant)
        try:
            alliance, target = _target(values["target"])
            if fv.text_of(form, "action", max_length=20) == "estimate":
                estimate = await svc.estimate(
                    ident.db, principal.tenant, alliance, target, tiers, tuple(values["stages"])
                )
                return await self._form(request, principal, ident, values=values, estimate=estimate)
            view = await svc.create_offer(
                ident.db,
                principal.tenant,
                alliance,
                svc.OfferIn(
                    target_merchant_id=target,
                    name=values["name"],
                    message=values["message"],
                    discount=fv.minor_units(values["discount"], "discount", profile.currency) or 0,
                    min_spend=fv.minor_units(values["min_spend"], "min_spend", profile.currency, required=False) or 0,
                    fee=fv.minor_units(values["fee"], "fee", profile.currency, required=False) or 0,
                    valid_until=fv.local_time(values["valid_until"], "valid_until", profile.timezone),
                    tiers=tiers,
                    stages=tuple(values["stages"]),
                    channels=("portal", *values["channels"]),
                ),
            )
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            errors = form_errors(exc, language(request), FIELDS)
            if exc.type_slug == "bad-alliance-offer" and exc.detail:
                where = str(exc.extra.get("field") or "")
                if where in errors.fields:
                    errors.fields[where] += f" ({exc.detail})"
                else:
                    errors.general.append(exc.detail)
            return await self._form(request, principal, ident, values=values, errors=errors, status=exc.status)
        return go(request, f"/console/alliance-offers/{alliance}/{view.offer.id}", flash="offer-proposed")

    @get("/{alliance_id:uuid}/{offer_id:uuid}", guards=[READ])
    async def detail(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                     alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID]) -> Template:  # fmt: skip
        view = await svc.get_offer(ident.db, principal.tenant, alliance_id, offer_id)
        results = (
            await svc.results(ident.db, principal.tenant, alliance_id, offer_id) if view.role == "funder" else None
        )
        _, names = await _partners(ident.db, principal.tenant)
        return await page(
            request,
            "console/alliance_offers/detail.html",
            principal=principal,
            active="alliance_offers",
            view=view,
            o=view.offer,
            results=results,
            names=names,
            stages=STAGES,
            statuses=STATUSES,
        )

    @post("/{alliance_id:uuid}/{offer_id:uuid}/decision", guards=[READ, WRITE], status_code=200)
    async def decide(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                     alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID]) -> Response[Any]:  # fmt: skip
        form = await form_data(request)
        accept = fv.text_of(form, "decision", max_length=10) == "accept"
        await svc.decide(ident.db, principal.tenant, alliance_id, offer_id, accept=accept)
        return go(
            request,
            f"/console/alliance-offers/{alliance_id}/{offer_id}",
            flash="offer-accepted" if accept else "offer-declined",
        )
