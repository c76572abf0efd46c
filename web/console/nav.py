"""The console's menu: one entry per page, with the permissions that page's route requires.

The side menu shows an entry only when the principal holds *all* its permissions, and the page's
route is guarded by the very same tuple (``requires(*MENU["branches"].permissions)``), so what the
menu hides the server refuses too. The permissions are those of the API the page calls; back-office
pages add ``reports:read`` — a cashier's console is the till — (decision 0018).

A new page is a controller (registered in ``__init__.py``) plus its entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lianka.platform.identity.permissions import Permission as P
from lianka.platform.identity.principal import Principal
from lianka.web.console.i18n import N_

#: what makes a page "back office" rather than the till
BACK_OFFICE = P.REPORTS_READ


@dataclass(frozen=True)
class MenuItem:
    key: str
    label: str
    permissions: tuple[P, ...]
    #: the page
    path: str
    #: the menu's heading this entry sits under ("" for none)
    group: str = ""

    @property
    def href(self) -> str:
        return self.path

    def visible_to(self, principal: Principal | None) -> bool:
        return principal is not None and principal.tenant_id is not None and principal.has(*self.permissions)


_ITEMS = (
    # the HQ dashboard (概览): first in the menu, not the landing page (NOT_LANDING)
    MenuItem("dashboard", N_("Dashboard"), (P.REPORTS_READ,), "/console/dashboard"),
    # the checklist reveals whether staff and POS clients exist: for those who may see them
    MenuItem("start", N_("Getting started"), (P.STAFF_READ, P.CLIENTS_READ), "/console/start"),
    MenuItem("till", N_("Till"), (P.SALES_WRITE, P.MEMBERS_READ), "/console/till"),
    MenuItem("members", N_("Members"), (P.MEMBERS_READ, BACK_OFFICE), "/console/members"),
    MenuItem("programme", N_("Programme"), (P.PROGRAMME_READ, BACK_OFFICE), "/console/programme"),
    MenuItem("coupons", N_("Coupons"), (P.PROGRAMME_READ, BACK_OFFICE), "/console/coupons"),
    MenuItem("rewards", N_("Rewards"), (P.PROGRAMME_READ, BACK_OFFICE), "/console/rewards"),
    MenuItem("membership", N_("Paid membership"), (P.PROGRAMME_READ, BACK_OFFICE), "/console/membership"),
    MenuItem("branches", N_("Branches"), (P.BRANCHES_READ, BACK_OFFICE), "/console/branches"),
    MenuItem("join", N_("Join posters"), (P.BRANCHES_READ, BACK_OFFICE), "/console/join-posters"),
    MenuItem("staff", N_("Staff"), (P.STAFF_READ,), "/console/staff"),
    MenuItem("clients", N_("POS clients"), (P.CLIENTS_READ,), "/console/clients"),
    MenuItem("audit", N_("Audit log"), (P.AUDIT_READ,), "/console/settings/audit"),
    MenuItem("settlement", N_("Settlement"), (P.SETTLEMENT_READ,), "/console/settlement"),
    MenuItem("alliance", N_("Alliance"), (P.MERCHANT_READ, BACK_OFFICE), "/console/alliance"),
    MenuItem("payments", N_("Payments"), (P.BILLING_MANAGE,), "/console/settings/payments"),
    # outbound webhooks for integrators: owners and admins (decision 0052)
    MenuItem("webhooks", N_("Webhooks"), (P.WEBHOOKS_READ,), "/console/settings/webhooks"),
    # the plan, usage and invoices: the owner's (the only role that may pay)
    MenuItem("billing", N_("Billing"), (P.BILLING_MANAGE,), "/console/billing"),
    MenuItem(
        "liability", N_("Liability and breakage"), (P.SETTLEMENT_READ,), "/console/reports/liability", N_("Reports")
    ),
    MenuItem("vouchers", N_("Accounting vouchers"), (P.SETTLEMENT_READ,), "/console/reports/vouchers", N_("Reports")),
    MenuItem(
        "simulator",
        N_("Bonus-funding simulator"),
        (P.SETTLEMENT_READ,),
        "/console/reports/bonus-simulator",
        N_("Reports"),
    ),
    MenuItem("campaigns", N_("Campaigns"), (P.CAMPAIGNS_READ, BACK_OFFICE), "/console/campaigns", N_("Marketing")),
    MenuItem(
        "automations", N_("Automations"), (P.CAMPAIGNS_READ, BACK_OFFICE), "/console/automations", N_("Marketing")
    ),
    MenuItem("draws", N_("Lucky draws"), (P.CAMPAIGNS_READ, BACK_OFFICE), "/console/draws", N_("Marketing")),
    MenuItem(
        "alliance_offers",
        N_("Alliance offers"),
        (P.CAMPAIGNS_READ, BACK_OFFICE),
        "/console/alliance-offers",
        N_("Marketing"),
    ),
    MenuItem("segments", N_("Segments"), (P.CAMPAIGNS_READ, BACK_OFFICE), "/console/segments", N_("Marketing")),
    MenuItem("messaging", N_("SMS and e-mail"), (P.MERCHANT_WRITE, BACK_OFFICE), "/console/messaging", N_("Marketing")),
    MenuItem(
        "sms_replies", N_("SMS replies"), (P.CAMPAIGNS_READ, BACK_OFFICE), "/console/messaging/replies", N_("Marketing")
    ),
)
MENU: dict[str, MenuItem] = {item.key: item for item in _ITEMS}


def menu_for(principal: Principal | None) -> list[MenuItem]:
    return [item for item in _ITEMS if item.visible_to(principal)]


#: first in the menu but not where ``/console`` lands: a new merchant's first stop is the checklist,
#: a cashier's the till (the dashboard is one click away)
NOT_LANDING = frozenset({"dashboard"})


def landing(principal: Principal) -> str:
    """Where ``/console`` takes this principal: the first page of its menu (the dashboard aside)."""
    items = [item for item in menu_for(principal) if item.key not in NOT_LANDING]
    return items[0].href if items else "/console/merchants"
