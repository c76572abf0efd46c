"""The one place a merchant's subscription stops a request (decision 0032).

``billing_gate`` is an app-wide Litestar guard. It looks at what the route already declares — the
permissions of its ``requires(...)`` guards and, for routes that add something a plan counts, the
``opt`` marker ``plan_limit`` — so the API and the console's POST forms (which share those guards)
are gated by the same rule, and a new configuration route is gated without anyone remembering to:

* a write (not GET/HEAD/OPTIONS) needing a **configuration or marketing** permission
  (:data:`GATED`) is refused with 402 ``plan-restricted`` while the subscription is restricted or
  canceled, and with 402 ``plan-limit-reached`` while the merchant is over a limit of its plan;
* a route marked ``opt={PLAN_LIMIT: Limit.X}`` (open a branch, add a staff member, found or join an
  alliance) is refused when one more would not fit;
* a route marked ``opt={PLAN_FREES: True}`` (taking a staff member off, revoking a POS client) only
  lowers use or closes a door: never gated.

Never gated, because their permissions are not in :data:`GATED`: the till and POS (``sales:write``,
``members:write`` — sales, quotes, refunds, top-ups, enrolment), the member portal, every read and
export, settlement closes, billing itself and sign-in. The guard runs before the route's own guards,
so it lets a request without the route's permissions through untouched: the route's guard refuses
it with the usual 401/403.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from lianka.billing import services as billing
from lianka.billing.domain import Limit
from lianka.platform.identity.guards import SAFE_METHODS, authenticate, identity_of
from lianka.platform.identity.permissions import Permission as P

#: route ``opt`` key: the counted thing this route adds one of (a :class:`Limit`)
PLAN_LIMIT = "plan_limit"
#: route ``opt`` key: this write only lowers what the plan counts (never refused)
PLAN_FREES = "plan_frees"

#: route ``opt`` key: billing's plan change, which refuses a downgrade that does not fit (documented 402)
PLAN_CHANGE = "plan_change"

#: configuration and marketing: what waits for payment
GATED = frozenset(
    {
        P.MERCHANT_WRITE,
        P.BRANCHES_WRITE,
        P.STAFF_WRITE,
        P.CLIENTS_WRITE,
        P.PROGRAMME_WRITE,
        P.CAMPAIGNS_WRITE,
        P.COUPONS_ISSUE,
        P.MEMBERS_IMPORT,
        P.WEBHOOKS_WRITE,
    }
)
#: what never stops (listed so that a new permission is a conscious choice: a test checks the two
#: sets cover every permission)
NEVER_GATED = frozenset(
    {
        P.MERCHANT_READ,
        P.BILLING_MANAGE,
        P.BRANCHES_READ,
        P.STAFF_READ,
        P.CLIENTS_READ,
        P.PROGRAMME_READ,
        P.MEMBERS_READ,
        P.MEMBERS_WRITE,
        P.MEMBERS_EXPORT,
        P.SALES_READ,
        P.SALES_WRITE,
        P.CAMPAIGNS_READ,
        P.REPORTS_READ,
        P.SETTLEMENT_READ,
        P.SETTLEMENT_WRITE,
        P.WEBHOOKS_READ,
        P.AUDIT_READ,
    }
)


def declared_permissions(handler: BaseRouteHandler) -> frozenset[P]:
    """Every permission the route's ``requires(...)`` guards ask for."""
    found: set[P] = set()
    for guard in handler.resolve_guards():
        for p in getattr(guard, "lianka_permissions", ()):
            if isinstance(p, P):
                found.add(p)
    return frozenset(found)


def gated(handler: BaseRouteHandler) -> bool:
    """Whether the subscription can refuse this route (402): a configuration write, a route that
    adds something a plan counts, or billing's own plan change."""
    if handler.opt.get(PLAN_FREES):
        return False
    return (
        bool(declared_permissions(handler) & GATED) or PLAN_LIMIT in handler.opt or bool(handler.opt.get(PLAN_CHANGE))
    )


async def billing_gate(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if connection.scope.get("method", "GET") in SAFE_METHODS or handler.opt.get(PLAN_FREES):
        return
    needed = declared_permissions(handler)
    raw_limit = handler.opt.get(PLAN_LIMIT)
    if not needed & GATED and raw_limit is None:
        return
    principal = await authenticate(connection)
    if principal is None or principal.tenant_id is None or not principal.has(*needed):
        return  # the route's own guard answers 401/403
    await billing.may_configure(
        identity_of(connection).db, principal.tenant_id, Limit(raw_limit) if raw_limit else None
    )
