"""Lucky draws (抽奖) in the console, under Marketing: the list with each draw's window, cost, budget
used, draws count and per-prize stock left and wins, an on/off switch, and the form that creates one
(up to :data:`ROWS` prizes; a row without a name is left out) with field errors. Each handler calls
one use case of ``tenants.marketing.draws`` (decision 0042)."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import draws as svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_errors, go, language, page, panel_page

READ = requires(*MENU["draws"].permissions)
WRITE = requires(Permission.CAMPAIGNS_WRITE)
ROWS = 4
KINDS = {"points": N_("Points"), "coupon": N_("Coupon"), "gift": N_("Physical gift")}
DRAW_FIELDS = ("name", "starts_at", "ends_at", "cost_points", "budget")
PRIZE_FIELDS = ("name", "kind", "chance_bp", "stock", "points", "coupon_template", "gift", "value")
FIELDS = DRAW_FIELDS + tuple(f"prizes[{i}].{n}" for i in range(ROWS) for n in PRIZE_FIELDS)


def basis_points(text: str, name: str) -> int:
    """A percentage with at most two decimals (``12.5``) as basis points (1250)."""
    try:
        bp = Decimal(text) * 100
    except InvalidOperation:
        raise ValidationFailed("a percentage such as 12.5", field=name) from None
    if bp != bp.to_integral_value() or not 0 < bp <= 10_000:
        raise ValidationFailed("a percentage from 0.01 to 100 with at most two decimals", field=name)
    return int(bp)


def _prizes(form: FormMultiDict, values: dict[str, str], currency: str) -> tuple[list[svc.PrizeIn], list[int]]:
    """The filled prize rows and, for each, its row on the form (an error's ``prizes[k]`` is row ``rows[k]``)."""
    prizes, rows = [], []
    for i in range(ROWS):  # every row's text first: a refusal shows the whole form again
        for n in PRIZE_FIELDS:
            values[f"prizes[{i}].{n}"] = fv.text_of(form, f"prizes[{i}].{n}", max_length=200)
    for i in range(ROWS):

        def name(n: str, i: int = i) -> str:
            return f"prizes[{i}].{n}"

        if not values[name("name")]:
            continue
        kind = values[name("kind")]
        prizes.append(
            svc.PrizeIn(
                name=values[name("name")],
                kind=kind,
                chance_bp=basis_points(values[name("chance_bp")], name("chance_bp")),
                stock=fv.whole(values[name("stock")], name("stock")) or 0,
                points=(fv.whole(values[name("points")] or "0", name("points")) or 0) if kind == "points" else 0,
                coupon_template=(values[name("coupon_template")] or None) if kind == "coupon" else None,
                gift=values[name("gift")] if kind == "gift" else "",
                value=fv.minor_units(values[name("value")], name("value"), currency, required=False) or 0,
            )
        )
        rows.append(i)
    return prizes, rows


def _on_form(field: str, rows: list[int]) -> str:
    if field.startswith("prizes[") and "]." in field:
        k, rest = field[len("prizes[") :].split("].", 1)
        if k.isdigit() and int(k) < len(rows):
            return f"prizes[{rows[int(k)]}].{rest}"
    return field


class DrawConsolePages(Controller):
    path = "/console/draws"

    async def _form(self, request: HtmlRequest, principal: Any, ident: IdentityService, *, values: dict[str, str],
                    errors: Any = None, status: int = 200) -> Template:  # fmt: skip
        return await page(
            request,
            "console/draws/form.html",
            principal=principal,
            active="draws",
            status=status,
            templates=await svc.coupon_choices(ident.db, principal.tenant),
            kinds=KINDS,
            rows=ROWS,
            values=values,
            errors=errors,
        )

    async def _panel(self, request: HtmlRequest, principal: Any, ident: IdentityService, *,
                     flash: str | None = None) -> Template:  # fmt: skip
        found = await svc.list_draws(ident.db, principal.tenant)
        return await panel_page(request, "draws", principal=principal, flash=flash, draws=found, kinds=KINDS)

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        return await self._panel(request, principal, ident)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        values = {"cost_points": "0"} | {f"prizes[{i}].kind": "points" for i in range(ROWS)}
        return await self._form(request, principal, ident, values=values)

    @post("/", guards=[READ, WRITE], status_code=200)
    async def create(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        values = {n: fv.text_of(form, n, max_length=200) for n in DRAW_FIELDS}
        profile = await merchant_profile(ident.db, principal.tenant)
        rows: list[int] = []
        try:
            prizes, rows = _prizes(form, values, profile.currency)
            await svc.create_draw(
                ident.db,
                principal.tenant,
                svc.DrawIn(
                    name=values["name"],
                    starts_at=fv.local_time(values["starts_at"], "starts_at", profile.timezone),
                    ends_at=fv.local_time(values["ends_at"], "ends_at", profile.timezone),
                    cost_points=fv.whole(values["cost_points"] or "0", "cost_points") or 0,
                    budget=fv.minor_units(values["budget"], "budget", profile.currency, required=False),
                    prizes=prizes,
                ),
            )
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            if exc.extra.get("field"):
                exc.extra["field"] = _on_form(str(exc.extra["field"]), rows)
            errors = form_errors(exc, language(request), FIELDS)
            where = str(exc.extra.get("field") or "")
            if exc.type_slug == "bad-lucky-draw" and exc.detail:
                if where in errors.fields:
                    errors.fields[where] += f" ({exc.detail})"
                else:
                    errors.general.append(exc.detail)
            return await self._form(request, principal, ident, values=values, errors=errors, status=exc.status)
        return go(request, "/console/draws", flash="draw-saved")

    @post("/{draw_id:uuid}/active", guards=[READ, WRITE], status_code=200)
    async def toggle(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService,
                     draw_id: FromPath[uuid.UUID]) -> Template:  # fmt: skip
        form = await form_data(request)
        on = fv.text_of(form, "active", max_length=5) == "on"
        await svc.update_draw(ident.db, principal.tenant, draw_id, svc.DrawPatch(active=on))
        return await self._panel(request, principal, ident, flash="draw-on" if on else "draw-off")
