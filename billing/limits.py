"""The plan's limits, enforced: what a merchant uses against what its plan allows.

Building blocks (they take the unit of work and never commit) that the web layer's billing guard
(``web/billing_gate.py``), the plan change (a downgrade that would not fit is refused before Stripe
is called) and, later, the marketing engine (:func:`check_messages`) call. Pure comparisons are
:func:`over` and :func:`fits`; the counts come from ``queries``.

Decision 0032: a limit is a commercial boundary, not an invariant of the data. The till never stops
for one (a member enrolled at the till over the member limit is still enrolled); a merchant over a
limit is shown so in the console and its next configuration write is refused until it upgrades.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lianka.billing import domain
from lianka.billing import queries as q
from lianka.billing.domain import Limit, Plan, Usage, allowed, fits, over
from lianka.billing.errors import UPGRADE_PATH, PlanLimitReached, PlanRestricted
from lianka.platform.db import UnitOfWork


def reached(plan: Plan, limit: Limit, used: int, *, adding: int = 1) -> PlanLimitReached:
    value = allowed(plan.limits, limit)
    return PlanLimitReached(
        f"The {plan.name} plan allows {value if value is not None else 'unlimited'} {limit.value.replace('_', ' ')}; "
        f"{used} in use",
        limit=limit.value,
        plan=plan.code,
        plan_value=value,
        current=used,
        adding=adding,
        upgrade_url=UPGRADE_PATH,
    )


async def usage(uow: UnitOfWork, tenant: uuid.UUID, now: datetime | None = None) -> Usage:
    return await q.usage(uow, tenant, now)


async def effective_plan(uow: UnitOfWork, tenant: uuid.UUID) -> tuple[domain.Account, Plan]:
    """The merchant's account and the plan whose limits apply now."""
    from lianka.billing.services import ensure_account  # the account is created lazily there

    account = await ensure_account(uow, tenant)
    plan = await q.plan(uow, domain.effective_plan(account))
    assert plan is not None
    return account, plan


async def check_config_write(uow: UnitOfWork, tenant: uuid.UUID, adding: Limit | None = None) -> None:
    """May this merchant change its set-up now? Refused (402) when its subscription is restricted
    or canceled, when it is over a limit already (members enrolled at the till past the plan), or —
    ``adding`` — when one more of that would not fit."""
    account, plan = await effective_plan(uow, tenant)
    if domain.is_restricted(account):
        raise PlanRestricted(
            "Configuration and marketing changes are paused until the subscription is paid; the till, "
            "the member portal, reports and exports work as usual",
            status_now=account.status.value,
            upgrade_url=UPGRADE_PATH,
        )
    if adding is Limit.ALLIANCE_MEMBERSHIP and account.status is domain.Status.TRIALING:
        adding = None  # a trial is for trying everything, alliances included (decision 0032)
    used = await usage(uow, tenant)
    if adding is not None and not fits(plan.limits, adding, used.of(adding), 1):
        raise reached(plan, adding, used.of(adding))
    if exceeded := over(plan.limits, used):
        raise reached(plan, exceeded[0], used.of(exceeded[0]), adding=0)


async def check_messages(uow: UnitOfWork, tenant: uuid.UUID, n: int) -> None:
    """The marketing engine asks before queueing ``n`` messages: refused (402 ``plan-limit-reached``,
    ``messages_per_month``) when this month's count plus ``n`` would pass the plan's allowance, or
    when the subscription is restricted (marketing waits for payment)."""
    account, plan = await effective_plan(uow, tenant)
    if domain.is_restricted(account):
        raise PlanRestricted(status_now=account.status.value, upgrade_url=UPGRADE_PATH)
    sent = await q.messages_this_month(uow, tenant)
    if not fits(plan.limits, Limit.MESSAGES_PER_MONTH, sent, n):
        raise reached(plan, Limit.MESSAGES_PER_MONTH, sent, adding=n)


async def check_plan_fits(uow: UnitOfWork, tenant: uuid.UUID, plan: Plan) -> None:
    """A subscription or a downgrade: refused when what the merchant has today would not fit ``plan``."""
    used = await usage(uow, tenant)
    if exceeded := over(plan.limits, used):
        raise reached(plan, exceeded[0], used.of(exceeded[0]), adding=0)
    if used.alliances and not plan.limits.alliance_membership:
        raise reached(plan, Limit.ALLIANCE_MEMBERSHIP, used.alliances, adding=0)
