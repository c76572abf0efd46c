"""Roles, OAuth2 scopes and the permissions they grant. Pure data: no I/O.

Routes declare *permissions* (``requires(Permission.MEMBERS_WRITE)``), never roles or scopes, so a
role or scope can change what it grants in one place. A staff member's role comes from their
membership in the merchant (read on every request, so a demotion takes effect at once); a POS or
integration client's permissions come from the scopes in its token, capped by the scopes the client
was created with.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    MERCHANT_READ = "merchant:read"
    MERCHANT_WRITE = "merchant:write"
    BILLING_MANAGE = "billing:manage"
    BRANCHES_READ = "branches:read"
    BRANCHES_WRITE = "branches:write"
    STAFF_READ = "staff:read"
    STAFF_WRITE = "staff:write"
    CLIENTS_READ = "clients:read"
    CLIENTS_WRITE = "clients:write"
    PROGRAMME_READ = "programme:read"
    PROGRAMME_WRITE = "programme:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    #: full phone numbers leave the system: owners and admins only, every use logged
    MEMBERS_EXPORT = "members:export"
    #: bulk enrolment from a file (with opening points)
    MEMBERS_IMPORT = "members:import"
    #: give a member a coupon outside a sale or a rule (a gift of value)
    COUPONS_ISSUE = "coupons:issue"
    SALES_READ = "sales:read"
    SALES_WRITE = "sales:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    REPORTS_READ = "reports:read"
    SETTLEMENT_READ = "settlement:read"
    SETTLEMENT_WRITE = "settlement:write"
    #: outbound webhooks: subscriptions and their delivery log (payloads name members by id)
    WEBHOOKS_READ = "webhooks:read"
    #: subscribe, change, rotate a secret, test-send, replay
    WEBHOOKS_WRITE = "webhooks:write"
    #: the audit log of staff and operator actions: owners and admins (and admin-scope integrations)
    AUDIT_READ = "audit:read"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"  # limited to the branches of its membership
    CASHIER = "cashier"
    ANALYST = "analyst"


P = Permission
ALL = frozenset(Permission)
#: an analyst reads the business, not who did what in it: the audit log is the owners' and admins'
READ_ONLY = frozenset(p for p in Permission if p.value.endswith(":read")) - {Permission.AUDIT_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: ALL,
    Role.ADMIN: ALL - {P.BILLING_MANAGE},
    Role.MANAGER: frozenset(
        {
            P.MERCHANT_READ,
            P.BRANCHES_READ,
            P.STAFF_READ,
            P.PROGRAMME_READ,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.COUPONS_ISSUE,
            P.SALES_READ,
            P.SALES_WRITE,
            P.CAMPAIGNS_READ,
            P.REPORTS_READ,
        }
    ),
    Role.CASHIER: frozenset(
        {
            P.MERCHANT_READ,
            P.BRANCHES_READ,
            P.PROGRAMME_READ,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.SALES_READ,
            P.SALES_WRITE,
        }
    ),
    Role.ANALYST: READ_ONLY - {P.WEBHOOKS_READ},  # integrations are owners' and admins' business
}

#: roles that see and act on every branch; the others are limited to their membership's branches
#: (a cashier with no branches listed may work at any till of the merchant).
ALL_BRANCH_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.ANALYST})

#: OAuth2 scopes an API client may hold. ``admin`` is for back-office integrations; it cannot
#: create staff or API clients (a credential must not mint credentials), nor export members' full phone
#: numbers (an export is a person's decision, logged with their name).
SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "pos": frozenset(
        {
            P.MERCHANT_READ,
            P.BRANCHES_READ,
            P.PROGRAMME_READ,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.SALES_READ,
            P.SALES_WRITE,
        }
    ),
    "members:read": frozenset({P.MEMBERS_READ}),
    "reports:read": frozenset({P.MERCHANT_READ, P.REPORTS_READ}),
    "admin": ROLE_PERMISSIONS[Role.ADMIN] - {P.STAFF_WRITE, P.CLIENTS_WRITE, P.CLIENTS_READ, P.MEMBERS_EXPORT},
}
SCOPES = frozenset(SCOPE_PERMISSIONS)


def permissions_for_scopes(scopes: frozenset[str]) -> frozenset[Permission]:
    out: frozenset[Permission] = frozenset()
    for s in scopes:
        out |= SCOPE_PERMISSIONS.get(s, frozenset())
    return out
