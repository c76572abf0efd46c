"""Webhooks' domain errors (RFC 9457 problems through ``web/problems.py``)."""

from __future__ import annotations

from lianka.platform.errors import NotFound, ValidationFailed


class UnsafeWebhookURL(ValidationFailed):
    """The URL is not https (production), has credentials, or resolves to an address Lianka does not
    post to (private, loopback, link-local, multicast, reserved); ``reason`` says which."""

    type_slug = "webhook-url-refused"
    title = "This URL cannot receive webhooks"


class UnknownEventType(ValidationFailed):
    type_slug = "webhook-unknown-event"
    title = "Unknown webhook event type"


class SubscriptionNotFound(NotFound):
    type_slug = "webhook-subscription-not-found"
    title = "No such webhook subscription"


class DeliveryNotFound(NotFound):
    type_slug = "webhook-delivery-not-found"
    title = "No such webhook delivery"
