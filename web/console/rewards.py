"""Rewards (积分兑换): the catalogue with its stock, adding, editing and withdrawing an item, and the
gifts awaiting pickup with deliver and cancel.

- Guards are the API's: the catalogue needs ``programme:read`` (and the back office), changing it
  ``programme:write``; the gifts awaiting pickup need ``sales:read``, handing one out or calling it
  off ``sales:write`` — and a manager sees and acts on its own branches' gifts only (the use cases
  refuse the others too). Each handler calls the use case the API calls (:mod:`tenants.services.rewards`).
- Cancelling a gift gives the points back (a ledger reversal) and the unit back to stock.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, NotFound
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import rewards as svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.api.deps import actor_of
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, go, is_htmx, language, page, panel_page

READ = requires(*MENU["rewards"].permissions)
WRITE = requires(Permission.PROGRAMME_WRITE)
HAND_OUT = requires(Permission.SALES_WRITE)
PANEL = {"HX-Retarget": "#rewards-panel", "HX-Reswap": "outerHTML"}
FIELDS = (
    "code",
    "name",
    "kind",
    "points_cost",
    "stock_total",
    "pickup_branch_id",
    "coupon_template",
    "sv_amount",
    "per_member_limit",
    "active",
)
KINDS = {"gift": N_("Gift to pick up"), "coupon": N_("Coupon"), "stored_value": N_("Stored value")}
TEXTS: dict[str, str] = {
    **fv.CODE_AND_NAME,
    "code:conflict": N_("Another reward uses this code."),
    "kind": N_("Choose what the member gets."),
    "points_cost": N_("Enter a whole number of points above zero."),
    "stock_total": N_("Enter a whole number, at least the number already redeemed, or leave it empty."),
    "pickup_branch_id": N_("Only gifts are picked up, at one of your branches."),
    "coupon_template": N_("A coupon reward needs the template it issues; other kinds none."),
    "sv_amount": N_("A stored-value reward needs an amount above zero; other kinds none."),
    "tiers": N_("Choose tiers of your programme."),
    "per_member_limit": N_("Enter a whole number above zero, or leave it empty for no limit."),
}


def blank() -> dict[str, Any]:
    return {**dict.fromkeys(FIELDS, ""), "kind": "gift", "active": "on", "tiers": []}


def shown(r: schemas.RewardOut, currency: str) -> dict[str, Any]:
    """An item as its edit form shows it."""
    return {
        "code": r.code,
        "name": r.name,
        "kind": r.kind,
        "points_cost": str(r.points_cost),
        "stock_total": "" if r.stock_total is None else str(r.stock_total),
        "pickup_branch_id": str(r.pickup_branch_id or ""),
        "coupon_template": r.coupon_template or "",
        "sv_amount": fv.major_units(r.sv_amount, currency) if r.sv_amount else "",
        "per_member_limit": "" if r.per_member_limit is None else str(r.per_member_limit),
        "active": "on" if r.active else "",
        "tiers": list(r.tiers),
    }


def posted(post: FormMultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {name: post.get(name) if isinstance(post.get(name), str) else "" for name in FIELDS}
    values["tiers"] = fv.all_of(post, "tiers")
    return values


def _branch(text: str) -> str | None:
    return text or None


def reward_in(post: FormMultiDict, currency: str) -> schemas.RewardIn:
    v = {name: fv.text_of(post, name) for name in FIELDS}
    return fv.struct(
        schemas.RewardIn,
        {
            "code": v["code"],
            "name": v["name"],
            "kind": v["kind"],
            "points_cost": fv.whole(v["points_cost"], "points_cost"),
            "stock_total": fv.whole(v["stock_total"], "stock_total", required=False),
            "pickup_branch_id": _branch(v["pickup_branch_id"]),
            "coupon_template": v["coupon_template"] or None,
            "sv_amount": fv.minor_units(v["sv_amount"], "sv_amount", currency, required=False) or 0,
            "tiers": fv.all_of(post, "tiers"),
            "per_member_limit": fv.whole(v["per_member_limit"], "per_member_limit", required=False),
            "active": bool(v["active"]),
        },
    )


def reward_patch(post: FormMultiDict, kind: str, currency: str) -> schemas.RewardPatch:
    """The edit form as the API's patch: every field it shows (an empty stock or limit clears it)."""
    v = {name: fv.text_of(post, name) for name in FIELDS}
    data: dict[str, Any] = {
        "name": v["name"],
        "points_cost": fv.whole(v["points_cost"], "points_cost"),
        "stock_total": fv.whole(v["stock_total"], "stock_total", required=False),
        "tiers": fv.all_of(post, "tiers"),
        "per_member_limit": fv.whole(v["per_member_limit"], "per_member_limit", required=False),
        "active": bool(v["active"]),
    }
    if kind == "gift":
        data["pickup_branch_id"] = _branch(v["pickup_branch_id"])
    if kind == "stored_value":
        data["sv_amount"] = fv.minor_units(v["sv_amount"], "sv_amount", currency)
    return fv.struct(schemas.RewardPatch, data)


class RewardPages(Controller):
    path = "/console/rewards"

    async def _panel(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        status: int = 200,
        editor: dict[str, Any] | None = None,
        flash: str | None = None,
        headers: dict[str, str] | None = None,
        desk: svc.Desk | None = None,
    ) -> Template:
        desk = desk or await self._desk(ident, principal)
        return await panel_page(
            request,
            "rewards",
            principal=principal,
            status=status,
            headers=headers,
            desk=desk,
            editor=editor,
            kinds=KINDS,
            **_options(desk),
            flash=flash,
        )

    @staticmethod
    async def _desk(ident: IdentityService, principal: Principal) -> svc.Desk:
        return await svc.desk(
            ident.db, principal.tenant, pickups=principal.has(Permission.SALES_READ), branch_ids=principal.branch_ids
        )

    async def _form(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        reward_id: uuid.UUID | None,
        values: dict[str, Any],
        errors: FormErrors,
        status: int = 200,
        desk: svc.Desk | None = None,
    ) -> Template:
        desk = desk or await self._desk(ident, principal)
        editor: dict[str, Any] = {"reward_id": reward_id, "values": values, "errors": errors}
        if is_htmx(request):
            return await page(
                request,
                "console/rewards/_form.html",
                principal=principal,
                status=status,
                kinds=KINDS,
                **editor,
                **_options(desk),
            )
        return await self._panel(request, principal, ident, status=status, editor=editor, desk=desk)

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._form(request, principal, ident, reward_id=None, values=blank(), errors=FormErrors())

    @post("/", guards=[READ, WRITE])
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        post_ = await form_data(request)
        try:
            merchant = await merchant_profile(ident.db, principal.tenant)
            await svc.create(ident.db, principal.tenant, reward_in(post_, merchant.currency))
        except DomainError as exc:
            return await self._refused(request, principal, ident, None, posted(post_), exc)
        return await self._done(request, principal, ident, "reward-created")

    @get("/{reward_id:uuid}/edit", guards=[READ, WRITE])
    async def edit(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, reward_id: FromPath[uuid.UUID]
    ) -> Template:
        desk = await self._desk(ident, principal)
        found = next((r for r in desk.rewards if r.id == reward_id), None)
        if found is None:
            raise NotFound("reward not found")
        merchant = await merchant_profile(ident.db, principal.tenant)
        return await self._form(
            request,
            principal,
            ident,
            reward_id=reward_id,
            values=shown(found, merchant.currency),
            errors=FormErrors(),
            desk=desk,
        )

    @post("/{reward_id:uuid}", guards=[READ, WRITE])
    async def update(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, reward_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        post_ = await form_data(request)
        try:
            merchant = await merchant_profile(ident.db, principal.tenant)
            kind = fv.text_of(post_, "kind", max_length=20)
            await svc.update_reward(ident.db, principal.tenant, reward_id, reward_patch(post_, kind, merchant.currency))
        except DomainError as exc:
            return await self._refused(request, principal, ident, reward_id, posted(post_), exc)
        return await self._done(request, principal, ident, "reward-saved")

    @post("/{reward_id:uuid}/withdraw", guards=[READ, WRITE])
    async def withdraw(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, reward_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        """Off the catalogue (members can no longer redeem it); gifts already redeemed stay as they are."""
        await svc.update_reward(ident.db, principal.tenant, reward_id, schemas.RewardPatch(active=False))
        return await self._done(request, principal, ident, "reward-withdrawn")

    @post("/redemptions/{redemption_id:uuid}/deliver", guards=[READ, HAND_OUT])
    async def deliver(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        redemption_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await svc.deliver(
            ident.db, principal.tenant, redemption_id, actor=actor_of(principal), branches=principal.branch_ids
        )
        return await self._done(request, principal, ident, "gift-delivered")

    @post("/redemptions/{redemption_id:uuid}/cancel", guards=[READ, HAND_OUT])
    async def cancel(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        redemption_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await svc.cancel(
            ident.db, principal.tenant, redemption_id, actor=actor_of(principal), branches=principal.branch_ids
        )
        return await self._done(request, principal, ident, "gift-cancelled")

    async def _refused(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        reward_id: uuid.UUID | None,
        values: dict[str, Any],
        exc: DomainError,
    ) -> Template:
        if exc.status in (401, 403) or (exc.status == 404 and not exc.extra.get("field")):
            raise exc
        return await self._form(
            request,
            principal,
            ident,
            reward_id=reward_id,
            values=values,
            status=exc.status,
            errors=fv.field_errors(exc, language(request), (*FIELDS, "tiers"), TEXTS),
        )

    async def _done(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, flash: str
    ) -> Response[Any]:
        if is_htmx(request):
            return await self._panel(request, principal, ident, flash=flash, headers=PANEL)
        return go(request, "/console/rewards", flash=flash)


def _options(desk: svc.Desk) -> dict[str, Any]:
    """What the forms offer to choose, and how the lists name branches."""
    return {
        "branch_options": {str(b.id): f"{b.code} {b.name}" for b in desk.branches},
        "template_options": {t.code: f"{t.code} {t.name}" for t in desk.coupon_templates},
        "tier_options": dict(desk.tiers),
    }
