"""Outbound webhooks for integrators (decision 0052): subscriptions, their secrets (shown once), the
delivery log, replay and test send. Owners and admins (and ``admin``-scoped API clients)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.webhooks import domain, queries, sender
from lianka.platform.webhooks import services as svc


class NewSubscription(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    events: list[str]
    description: str = ""


class SubscriptionPatch(msgspec.Struct, forbid_unknown_fields=True):
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    active: bool | None = None


class SubscriptionOut(msgspec.Struct):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime
    secret_rotated_at: datetime
    #: the circuit breaker: attempts in a row without a 2xx (5 or more: deliveries wait and one is tried
    #: every 5 minutes), since when; "failing" when Lianka switched it off after 3 days of failures
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    paused_until: datetime | None = None
    switched_off_reason: str = ""
    #: after a rotation: until when the previous secret still signs beside the new one
    previous_secret_until: datetime | None = None


class SubscriptionCreated(msgspec.Struct):
    subscription: SubscriptionOut
    #: the signing secret, shown this once (stored sealed; rotate to get a new one)
    secret: str


class SecretOut(msgspec.Struct):
    secret: str


class EventTypeOut(msgspec.Struct):
    type: str
    description: str


class DeliveryOut(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subscription_id: uuid.UUID
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    replay_of: uuid.UUID | None
    created_at: datetime


class AttemptOut(msgspec.Struct):
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str
    response_snippet: str
    created_at: datetime


class DeliveryLogOut(msgspec.Struct):
    delivery: DeliveryOut
    attempts: list[AttemptOut]


def _sub(s: queries.Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        s.id, s.url, s.events, s.description, s.active, s.created_at, s.secret_rotated_at,
        s.consecutive_failures, s.failing_since, s.paused_until, s.switched_off_reason, s.previous_secret_until,
    )  # fmt: skip


def _delivery(d: queries.Delivery) -> DeliveryOut:
    return DeliveryOut(
        d.id, d.event_id, d.event_type, d.subscription_id, d.url, d.status, d.attempts, d.next_attempt_at,
        d.last_status, d.replay_of, d.created_at,
    )  # fmt: skip


def _policy(ident: IdentityService) -> sender.Policy:
    return sender.Policy(production=ident.settings.is_production)


READ = [requires(Permission.WEBHOOKS_READ)]
WRITE = [requires(Permission.WEBHOOKS_WRITE)]


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ("webhooks",)

    @get("/event-types", guards=READ, summary="The events a subscription can ask for")
    async def event_types(self) -> list[EventTypeOut]:
        return [EventTypeOut(t, d) for t, d in domain.EVENT_TYPES.items()]

    @get("/subscriptions", guards=READ, summary="The merchant's webhook subscriptions (no secrets)")
    async def list_subscriptions(self, principal: CurrentPrincipal, ident: IdentityService) -> list[SubscriptionOut]:
        return [_sub(s) for s in await svc.list_subscriptions(ident.db, principal.tenant)]

    @post(
        "/subscriptions",
        guards=WRITE,
        status_code=201,
        summary="Subscribe a URL to events; the answer holds the signing secret, shown once",
    )
    async def subscribe(
        self, data: JSONBody[NewSubscription], principal: CurrentPrincipal, ident: IdentityService
    ) -> SubscriptionCreated:
        made = await svc.subscribe(ident.db, principal.tenant, data.url, data.events, data.description, _policy(ident))
        return SubscriptionCreated(_sub(made.subscription), made.secret)

    @patch("/subscriptions/{sub_id:uuid}", guards=WRITE, summary="Change the URL, events, description; switch on/off")
    async def change(
        self,
        sub_id: FromPath[uuid.UUID],
        data: JSONBody[SubscriptionPatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> SubscriptionOut:
        s = await svc.change(
            ident.db, principal.tenant, sub_id, url=data.url, events=data.events, description=data.description,
            active=data.active, policy=_policy(ident),
        )  # fmt: skip
        return _sub(s)

    @post(
        "/subscriptions/{sub_id:uuid}/rotate-secret",
        guards=WRITE,
        status_code=200,
        summary="A new signing secret (shown once); the old one keeps signing beside it for overlap_hours "
        "(24 by default, 0 to 168; 0 when it leaked)",
    )
    async def rotate(
        self,
        sub_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
        overlap_hours: FromQuery[int] = 24,
    ) -> SecretOut:
        if not 0 <= overlap_hours <= 168:  # before timedelta(), which overflows on huge numbers
            raise ValidationFailed("The overlap is 0 to 168 hours", field="overlap_hours")
        overlap = timedelta(hours=overlap_hours)
        return SecretOut(await svc.rotate_secret(ident.db, principal.tenant, sub_id, overlap))

    @post(
        "/subscriptions/{sub_id:uuid}/test",
        guards=WRITE,
        status_code=202,
        summary="Send a webhook.test event to this subscription (logged like any delivery)",
    )
    async def test_send(
        self, sub_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> DeliveryOut:
        return _delivery(await svc.test_send(ident.db, principal.tenant, sub_id))

    @get("/deliveries", guards=READ, summary="The delivery log, newest first")
    async def deliveries(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        subscription_id: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int] = 50,
    ) -> list[DeliveryOut]:
        rows = await svc.list_deliveries(ident.db, principal.tenant, subscription_id, limit)
        return [_delivery(d) for d in rows]

    @get("/deliveries/{delivery_id:uuid}", guards=READ, summary="A delivery and every attempt")
    async def delivery(
        self, delivery_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> DeliveryLogOut:
        d, attempts = await svc.delivery_log(ident.db, principal.tenant, delivery_id)
        return DeliveryLogOut(
            _delivery(d),
            [
                AttemptOut(a.attempt, a.status_code, a.duration_ms, a.error, a.response_snippet, a.created_at)
                for a in attempts
            ],
        )

    @post(
        "/deliveries/{delivery_id:uuid}/replay",
        guards=WRITE,
        status_code=202,
        summary="Send the delivery's event again (same event id, a new delivery)",
    )
    async def replay(
        self, delivery_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> DeliveryOut:
        return _delivery(await svc.replay(ident.db, principal.tenant, delivery_id))
