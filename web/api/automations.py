"""Marketing automations (journeys): list with stats, create, change, switch on/off. Reads need
CAMPAIGNS_READ, writes CAMPAIGNS_WRITE — which the billing gate pauses for a restricted merchant
(``web/billing_gate.py``). The engine runs in the periodic jobs ``automations-daily`` and
``automations-events`` (decision 0039)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import automations as svc


class AutomationIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    #: joined, first_purchase, birthday, points_expiring, coupon_expiring, win_back, tier_up, stored_value_below
    trigger: str
    #: days ahead (birthday, points/coupon expiring) or since the last purchase (win_back)
    days: int = 0
    #: stored_value_below: the threshold in fen
    amount: int = 0
    wait_days: int = 0
    enabled: bool = True
    #: the message's channel (sms, email, portal, wechat); null for no message
    channel: str | None = None
    subject: str = ""
    template: str = ""
    coupon_template_id: uuid.UUID | None = None
    points: int = 0


class StatsOut(msgspec.Struct):
    fired: int
    waiting: int
    sent: int
    coupons: int
    points: int


class AutomationOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    code: str | None
    trigger: str
    days: int
    amount: int
    wait_days: int
    enabled: bool
    channel: str | None
    subject: str
    template: str
    coupon_template_id: uuid.UUID | None
    points: int
    created_at: datetime
    stats: StatsOut


class EnabledIn(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool


def _out(v: svc.View) -> AutomationOut:
    a, f, s = v.automation, v.form(), v.stats
    return AutomationOut(a.id, a.name, a.code, a.trigger, a.days, a.amount, a.wait_days, a.enabled, f.channel,
                         f.subject, f.template, a.coupon_template_id, a.points, a.created_at,
                         StatsOut(s.fired, s.waiting, s.sent, s.coupons, s.points))  # fmt: skip


def _spec(data: AutomationIn) -> svc.AutomationIn:
    return svc.AutomationIn(**msgspec.structs.asdict(data))


class AutomationsController(Controller):
    path = "/automations"
    tags = ("marketing",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Automations with their stats")
    async def list_automations(self, principal: CurrentPrincipal, ident: IdentityService) -> list[AutomationOut]:
        return [_out(v) for v in await svc.list_all(ident.db, principal.tenant)]

    @post("/", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Create an automation")
    async def create(
        self, data: JSONBody[AutomationIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> AutomationOut:
        a = await svc.create(ident.db, principal.tenant, _spec(data))
        return _out(await svc.get(ident.db, principal.tenant, a.id))

    @get("/{automation_id:uuid}", guards=[requires(Permission.CAMPAIGNS_READ)], summary="One automation")
    async def get_automation(
        self, automation_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> AutomationOut:
        return _out(await svc.get(ident.db, principal.tenant, automation_id))

    @put("/{automation_id:uuid}", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Change an automation")
    async def update(
        self,
        automation_id: FromPath[uuid.UUID],
        data: JSONBody[AutomationIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> AutomationOut:
        await svc.update(ident.db, principal.tenant, automation_id, _spec(data))
        return _out(await svc.get(ident.db, principal.tenant, automation_id))

    @put("/{automation_id:uuid}/enabled", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Switch on or off")
    async def set_enabled(
        self,
        automation_id: FromPath[uuid.UUID],
        data: JSONBody[EnabledIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> AutomationOut:
        await svc.set_enabled(ident.db, principal.tenant, automation_id, data.enabled)
        return _out(await svc.get(ident.db, principal.tenant, automation_id))
