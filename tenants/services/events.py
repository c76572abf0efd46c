"""Things members do that earning rules reward, reported by staff or the merchant's systems: a
review, or a custom event by name. One unit of work each, exactly-once under the Idempotency-Key."""

from __future__ import annotations

import uuid

import msgspec

from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, RuleViolation
from lianka.tenants import queries
from lianka.tenants.catalogue import schemas
from lianka.tenants.domain import times
from lianka.tenants.domain.programme import RuleKind
from lianka.tenants.services import accounts, rules
from lianka.tenants.services.programme import programme_at


class UnknownEvent(RuleViolation):
    type_slug = "unknown-event"
    title = "No earning rule listens to this event"


async def branch_code(uow: UnitOfWork, branch_id: uuid.UUID | None) -> str | None:
    if branch_id is None:
        return None
    code = await queries.branch_code(uow, branch_id)
    if code is None:
        raise NotFound("branch not found", field="branch_id")
    return code


async def record(
    db: Database, tenant: uuid.UUID, body: schemas.EventIn | schemas.ReviewIn, key: str, branch_id: uuid.UUID | None
) -> tuple[schemas.EventOut, bool]:
    """Apply the REVIEW rules (a :class:`ReviewIn`) or the CUSTOM rules listening to ``body.event``.
    Returns (response, replayed). A custom event no rule of the programme names is a 422 (a typo
    in an integration should not pass silently); rules that exist but do not apply now (window,
    weekday, branch, tier, caps) answer ``skipped`` with the reason."""
    review = isinstance(body, schemas.ReviewIn)
    scope = "rules.review" if review else "rules.event"
    idempotency.check_key(key)
    at = times.business_time(body.business_time)

    async def work(uow: UnitOfWork) -> schemas.EventOut:
        await rules.require_member(uow, body.member_id)
        code = await branch_code(uow, branch_id)
        _, programme = await programme_at(uow, at)
        event = body.event if isinstance(body, schemas.EventIn) else "review"
        matching = (
            rules.rules_of(programme, RuleKind.REVIEW)
            if review
            else rules.rules_of(programme, RuleKind.CUSTOM, event=event)
        )
        if not matching and not review:
            raise UnknownEvent(f"no custom rule listens to {event!r}", event=event)
        refs: dict[str, object] = {"event": event}
        if body.reference:
            refs["reference"] = body.reference
        awards = await rules.award_all(
            uow, programme, matching, body.member_id, key=f"{scope}:{key}", at=at, branch_code=code, refs=refs
        )
        balance = (await accounts.balances(uow, body.member_id, at)).points
        return schemas.EventOut(
            event=event,
            member_id=body.member_id,
            points_awarded=sum(a.points for a in awards if a.status == "awarded"),
            awards=[award_out(a) for a in awards],
            points_balance=balance,
        )

    return await idempotency.once(
        db, tenant, scope, key, (msgspec.to_builtins(body), str(branch_id)), schemas.EventOut, work
    )


def award_out(a: rules.Award) -> schemas.AwardOut:
    return schemas.AwardOut(
        rule=a.rule, kind=a.kind, status=a.status, points=a.points, coupon=a.coupon_code, reason=a.reason
    )
