"""The merchant's Lianka subscription, as pure rules: plans and their limits, the trial, and the state
machine ``trialing → active → past_due → (grace) → restricted → canceled`` driven by Stripe's events
and by time (the grace and trial expiry job).

No I/O here: the services load an :class:`Account`, turn a verified Stripe event into a
:class:`Signal` with :func:`signal_from_event`, and store what :func:`apply` or :func:`tick` decide.

Ordering. Stripe does not promise to deliver events in order, and may deliver one many times. Every
applied event moves ``Account.state_at`` to the event's ``created``; an event older than that does
not change the status, so a late ``customer.subscription.updated (past_due)`` can never undo a newer
``invoice.paid``. The subscription's own facts — its plan, period end and cancel flag — have their
own clock, ``Account.subscription_at`` (the newest ``customer.subscription.*`` applied): a plan change
whose ``customer.subscription.updated`` is overtaken by the proration's ``invoice.paid`` (both sent
at once, applied by two workers) still changes the plan, without touching the newer status.
Events of the same second are applied (Stripe's clock has one-second resolution) except that nothing
brings a subscription back from ``canceled`` — only a *new* subscription (a new checkout) does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

#: how long a merchant tries a paid plan before paying (from the merchant's sign-up)
TRIAL_DAYS = 14
#: the paid plan a new merchant tries
TRIAL_PLAN = "chain"
#: how long a merchant whose payment failed keeps everything before being restricted
GRACE_DAYS = 7
#: the plan whose limits apply when no subscription is paid for (canceled)
FREE_PLAN = "free"


class Status(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    RESTRICTED = "restricted"
    CANCELED = "canceled"


#: every move the machine may make; anything else is refused (the event is recorded as ignored)
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.TRIALING: frozenset({Status.ACTIVE, Status.PAST_DUE, Status.CANCELED}),
    Status.ACTIVE: frozenset({Status.PAST_DUE, Status.CANCELED}),
    Status.PAST_DUE: frozenset({Status.ACTIVE, Status.RESTRICTED, Status.CANCELED}),
    Status.RESTRICTED: frozenset({Status.ACTIVE, Status.CANCELED}),
    # only a new subscription (a new checkout) starts again: see ``apply``
    Status.CANCELED: frozenset({Status.ACTIVE, Status.TRIALING}),
}


@dataclass(frozen=True)
class Limits:
    """What a plan allows; ``None`` is unlimited."""

    branches: int | None
    members: int | None
    staff_seats: int | None
    messages_per_month: int | None
    alliance_membership: bool


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    #: per month, in the currency's minor units (fen)
    price_minor: int
    currency: str
    limits: Limits

    @property
    def is_paid(self) -> bool:
        return self.price_minor > 0


@dataclass(frozen=True)
class Account:
    """One merchant's subscription as Lianka knows it."""

    plan: str
    status: Status
    trial_ends_at: datetime
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    #: when the current unpaid stretch began, and when its grace ends (past_due and restricted)
    past_due_since: datetime | None = None
    grace_until: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    #: the ``created`` time of the newest event applied: older events change the status no more
    state_at: datetime | None = None
    #: the ``created`` time of the newest ``customer.subscription.*`` event applied: the subscription's
    #: own facts (plan, period end, cancel flag) come from the newest of those, whatever came between
    subscription_at: datetime | None = None


def new_account(signed_up_at: datetime) -> Account:
    """A new merchant: the trial plan, trialing for ``TRIAL_DAYS`` from its sign-up."""
    return Account(plan=TRIAL_PLAN, status=Status.TRIALING, trial_ends_at=signed_up_at + timedelta(days=TRIAL_DAYS))


def is_restricted(account: Account) -> bool:
    """Configuration and marketing writes wait (the till, the portal, reads and billing go on)."""
    return account.status in (Status.RESTRICTED, Status.CANCELED)


def effective_plan(account: Account) -> str:
    """The plan whose limits apply now: a canceled subscription falls back to the free plan."""
    return FREE_PLAN if account.status is Status.CANCELED else account.plan


# --- limits ---------------------------------------------------------------------------------------


class Limit(StrEnum):
    BRANCHES = "branches"
    MEMBERS = "members"
    STAFF_SEATS = "staff_seats"
    MESSAGES_PER_MONTH = "messages_per_month"
    ALLIANCE_MEMBERSHIP = "alliance_membership"


#: the counted limits (alliance membership is a yes/no feature of the plan)
COUNTED = (Limit.BRANCHES, Limit.MEMBERS, Limit.STAFF_SEATS, Limit.MESSAGES_PER_MONTH)


@dataclass(frozen=True)
class Usage:
    branches: int
    members: int
    staff_seats: int
    messages_this_month: int
    alliances: int

    def of(self, limit: Limit) -> int:
        return {
            Limit.BRANCHES: self.branches,
            Limit.MEMBERS: self.members,
            Limit.STAFF_SEATS: self.staff_seats,
            Limit.MESSAGES_PER_MONTH: self.messages_this_month,
            Limit.ALLIANCE_MEMBERSHIP: self.alliances,
        }[limit]


def allowed(limits: Limits, limit: Limit) -> int | bool | None:
    """The plan's value for ``limit``: a count (``None`` unlimited) or, for alliances, yes/no."""
    return {
        Limit.BRANCHES: limits.branches,
        Limit.MEMBERS: limits.members,
        Limit.STAFF_SEATS: limits.staff_seats,
        Limit.MESSAGES_PER_MONTH: limits.messages_per_month,
        Limit.ALLIANCE_MEMBERSHIP: limits.alliance_membership,
    }[limit]


def fits(limits: Limits, limit: Limit, used: int, adding: int = 0) -> bool:
    """Whether ``used + adding`` is within the plan (``adding`` 0: is the merchant within it now)."""
    value = allowed(limits, limit)
    if isinstance(value, bool):
        return value or used + adding == 0
    return value is None or used + adding <= value


def over(limits: Limits, usage: Usage) -> list[Limit]:
    """The counted limits the merchant is over now (messages are a monthly allowance: being at it
    is not being over a set-up limit, so they never block configuration)."""
    return [lim for lim in (Limit.BRANCHES, Limit.MEMBERS, Limit.STAFF_SEATS) if not fits(limits, lim, usage.of(lim))]


# --- signals: what an event (or the clock) says -----------------------------------------------------


class Kind(StrEnum):
    #: customer.subscription.created / updated: the subscription's own status
    SUBSCRIPTION = "subscription"
    #: customer.subscription.deleted
    SUBSCRIPTION_DELETED = "subscription_deleted"
    INVOICE_PAID = "invoice_paid"
    PAYMENT_FAILED = "payment_failed"


#: Stripe's subscription statuses → ours. ``incomplete`` (the first payment has not gone through yet)
#: changes nothing: the checkout's ``invoice.paid`` or ``payment_failed`` will say.
STRIPE_STATUS: Mapping[str, Status | None] = {
    "trialing": Status.TRIALING,
    "active": Status.ACTIVE,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.RESTRICTED,
    "paused": Status.RESTRICTED,
    "canceled": Status.CANCELED,
    "incomplete_expired": Status.CANCELED,
    "incomplete": None,
}

SUBSCRIPTION_EVENTS = {
    "customer.subscription.created": Kind.SUBSCRIPTION,
    "customer.subscription.updated": Kind.SUBSCRIPTION,
    "customer.subscription.deleted": Kind.SUBSCRIPTION_DELETED,
    "invoice.paid": Kind.INVOICE_PAID,
    "invoice.payment_failed": Kind.PAYMENT_FAILED,
}


@dataclass(frozen=True)
class Signal:
    kind: Kind
    #: the event's ``created``
    at: datetime
    customer: str | None
    subscription: str | None
    #: the subscription's Stripe status (subscription events)
    stripe_status: str | None = None
    #: ``metadata.plan`` / ``metadata.tenant_id`` we put on the subscription at checkout
    plan: str | None = None
    tenant_ref: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False


class Unusable(ValueError):
    """An event this machine does not act on (another type, or missing what it needs): recorded as
    ``ignored`` with this reason."""


def _ts(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and not isinstance(value, bool) else None


def _id(value: object) -> str | None:
    """An expandable field: an id, or the expanded object carrying one."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def _period_end(obj: Mapping[str, Any]) -> datetime | None:
    """``current_period_end``: on the subscription in older API versions, on its items since 2025."""
    end = _ts(obj.get("current_period_end"))
    if end is not None:
        return end
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    ends = [_ts(i.get("current_period_end")) for i in data or [] if isinstance(i, Mapping)]
    return max((e for e in ends if e is not None), default=None)


def _invoice_subscription(obj: Mapping[str, Any]) -> str | None:
    """An invoice's subscription: ``parent.subscription_details.subscription`` since 2025, before
    that ``subscription``."""
    parent = obj.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping) and (found := _id(details.get("subscription"))):
            return found
    return _id(obj.get("subscription"))


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and meta:
        return meta
    parent = obj.get("parent")  # an invoice carries its subscription's metadata here
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping) and isinstance(details.get("metadata"), Mapping):
            return details["metadata"]  # type: ignore[no-any-return]
    return {}


def signal_from_event(event: Mapping[str, Any]) -> Signal:
    """The signal in a (verified) Stripe event; :class:`Unusable` for anything else."""
    kind = SUBSCRIPTION_EVENTS.get(str(event.get("type")))
    if kind is None:
        raise Unusable(f"event type {event.get('type')!r} does not concern the subscription")
    at = _ts(event.get("created"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if at is None or not isinstance(obj, Mapping):
        raise Unusable("the event has no created time or no object")
    meta = _metadata(obj)
    plan, tenant = meta.get("plan"), meta.get("tenant_id")
    common = {
        "at": at,
        "customer": _id(obj.get("customer")),
        "plan": plan if isinstance(plan, str) else None,
        "tenant_ref": tenant if isinstance(tenant, str) else None,
    }
    if kind in (Kind.SUBSCRIPTION, Kind.SUBSCRIPTION_DELETED):
        return Signal(
            kind,
            subscription=_id(obj.get("id")),
            stripe_status=str(obj.get("status")) if obj.get("status") else None,
            current_period_end=_period_end(obj),
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            **common,  # type: ignore[arg-type]
        )
    return Signal(kind, subscription=_invoice_subscription(obj), **common)  # type: ignore[arg-type]


# --- the machine -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    account: Account
    #: ``applied`` (the account changed or was confirmed) or ``ignored`` with ``reason``
    applied: bool
    reason: str = ""


def _move(account: Account, to: Status, at: datetime) -> Account:
    """``account`` in status ``to``, with the unpaid stretch started or closed as that status needs."""
    if to is Status.PAST_DUE:
        since = account.past_due_since if account.status in (Status.PAST_DUE, Status.RESTRICTED) else None
        since = since or at
        return replace(account, status=to, past_due_since=since, grace_until=since + timedelta(days=GRACE_DAYS))
    if to is Status.RESTRICTED:
        return replace(account, status=to, past_due_since=account.past_due_since or at)
    if to is Status.CANCELED:
        return replace(account, status=to, canceled_at=account.canceled_at or at, past_due_since=None, grace_until=None)
    return replace(account, status=to, past_due_since=None, grace_until=None, canceled_at=None)


def _target(account: Account, signal: Signal) -> Status | None:
    if signal.kind is Kind.SUBSCRIPTION_DELETED:
        return Status.CANCELED
    if signal.kind is Kind.INVOICE_PAID:
        return Status.ACTIVE
    if signal.kind is Kind.PAYMENT_FAILED:
        # a failed retry while already restricted keeps the restriction (and its original grace)
        return Status.RESTRICTED if account.status is Status.RESTRICTED else Status.PAST_DUE
    status = STRIPE_STATUS.get(signal.stripe_status or "")
    if status is Status.PAST_DUE and account.status is Status.RESTRICTED:
        return Status.RESTRICTED  # Stripe keeps saying past_due; our grace has run out already
    return status


def _facts(signal: Signal, account: Account) -> dict[str, Any]:
    """What a ``customer.subscription.*`` signal says about the subscription itself."""
    facts: dict[str, Any] = {
        "stripe_subscription_id": signal.subscription or account.stripe_subscription_id,
        "cancel_at_period_end": signal.cancel_at_period_end,
        "current_period_end": signal.current_period_end or account.current_period_end,
        "subscription_at": signal.at,
    }
    if signal.plan:
        facts["plan"] = signal.plan
    return facts


def apply(account: Account, signal: Signal) -> Decision:
    """Apply one Stripe signal to the account (never backwards in time, only allowed moves)."""
    about_subscription = signal.kind in (Kind.SUBSCRIPTION, Kind.SUBSCRIPTION_DELETED)
    if account.state_at is not None and signal.at < account.state_at:
        late_facts = (
            about_subscription
            and signal.subscription is not None
            and signal.subscription == account.stripe_subscription_id
            and account.status is not Status.CANCELED
            and (account.subscription_at is None or signal.at >= account.subscription_at)
        )
        if not late_facts:
            return Decision(account, False, "older than the state already applied")
        # overtaken by a newer event (the status stays), but the newest word on the subscription's plan,
        # period and cancel flag
        return Decision(replace(account, **_facts(signal, account)), True)
    known = account.stripe_subscription_id
    if signal.subscription is None:
        return Decision(account, False, "not about a subscription")
    if signal.subscription != known:
        if signal.kind is not Kind.SUBSCRIPTION:
            return Decision(account, False, "about a subscription that is not the merchant's current one")
        if known is not None and account.status is not Status.CANCELED:
            return Decision(account, False, "the merchant already has a live subscription")
    elif account.status is Status.CANCELED:
        return Decision(account, False, "the subscription is canceled; only a new checkout starts another")
    target = _target(account, signal)
    if target is None:
        return Decision(account, False, f"subscription status {signal.stripe_status!r} changes nothing")
    if target is not account.status and target not in TRANSITIONS[account.status]:
        return Decision(account, False, f"{account.status.value} cannot become {target.value}")
    moved = _move(account, target, signal.at) if target is not account.status else account
    updates: dict[str, Any] = {"state_at": signal.at}
    if about_subscription:  # not older than state_at, so not older than subscription_at (≤ state_at)
        updates.update(_facts(signal, moved))
    return Decision(replace(moved, **updates), True)


def tick(account: Account, now: datetime) -> Decision:
    """What time alone does: a trial that ended unpaid (no subscription) is past due from its end,
    and a past-due account whose grace has run out is restricted."""
    if account.status is Status.TRIALING and account.stripe_subscription_id is None and now >= account.trial_ends_at:
        moved = _move(account, Status.PAST_DUE, account.trial_ends_at)
        if moved.grace_until is not None and now >= moved.grace_until:
            moved = _move(moved, Status.RESTRICTED, now)
        return Decision(moved, True, "the trial ended without a subscription")
    if account.status is Status.PAST_DUE and account.grace_until is not None and now >= account.grace_until:
        return Decision(_move(account, Status.RESTRICTED, now), True, "the grace period ended")
    return Decision(account, False, "nothing is due")


# --- invoices and plan changes ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceFacts:
    """What an ``invoice.*`` event says about its invoice (stored for the console's list)."""

    id: str
    customer: str | None
    number: str | None
    currency: str
    amount_due: int
    amount_paid: int
    status: str
    hosted_invoice_url: str | None
    period_start: datetime | None
    period_end: datetime | None
    created: datetime
    #: the event's ``created``: a stored invoice changes only for a newer event
    at: datetime


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def invoice_from_event(event: Mapping[str, Any]) -> InvoiceFacts | None:
    """The invoice in an ``invoice.*`` event; ``None`` for any other event or an unusable one."""
    if not str(event.get("type", "")).startswith("invoice."):
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    at = _ts(event.get("created"))
    if not isinstance(obj, Mapping) or at is None or not isinstance(obj.get("id"), str):
        return None
    text_or_none = {k: (str(obj[k]) if obj.get(k) else None) for k in ("number", "hosted_invoice_url")}
    return InvoiceFacts(
        id=str(obj["id"]),
        customer=_id(obj.get("customer")),
        number=text_or_none["number"],
        currency=str(obj.get("currency") or "").upper()[:3],
        amount_due=_int(obj.get("amount_due")),
        amount_paid=_int(obj.get("amount_paid")),
        status=str(obj.get("status") or "open")[:16],
        hosted_invoice_url=text_or_none["hosted_invoice_url"],
        period_start=_ts(obj.get("period_start")),
        period_end=_ts(obj.get("period_end")),
        created=_ts(obj.get("created")) or at,
        at=at,
    )


class Change(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


def plan_change(current: Plan, target: Plan) -> Change:
    """An upgrade costs more (it applies at once and the difference is invoiced now); a downgrade
    costs less (it applies at once too, its credit goes to the next invoice)."""
    return Change.UPGRADE if target.price_minor > current.price_minor else Change.DOWNGRADE


#: Stripe's ``proration_behavior`` for each kind of change
PRORATION = {Change.UPGRADE: "always_invoice", Change.DOWNGRADE: "create_prorations"}
