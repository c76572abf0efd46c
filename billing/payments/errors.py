"""Member payments' domain errors (RFC 9457 problems through the one mapping)."""

from __future__ import annotations

from lianka.platform.errors import BadRequest, Conflict, DomainError, RuleViolation


class PaymentsNotConfigured(DomainError):
    """The merchant has chosen no provider (or the installation lacks the key to decrypt its
    credentials): nothing is broken, and retrying will not help until it is set."""

    type_slug = "payments-not-configured"
    title = "Online payments are not configured for this merchant"
    status = 409


class ProviderFailed(DomainError):
    """The provider refused or could not be reached; nothing was charged or refunded by us."""

    type_slug = "payment-provider-failed"
    title = "The payment provider refused the request"
    status = 502


class NotificationInvalid(DomainError):
    type_slug = "payment-notification-invalid"
    title = "The payment notification could not be verified"
    status = 400


class OrderNotRefundable(RuleViolation):
    type_slug = "order-not-refundable"
    title = "This order cannot be refunded (not paid, or already refunded in full)"


class RefundTooLarge(RuleViolation):
    type_slug = "refund-too-large"
    title = "The refund is larger than what is left of the order"


class UnknownOrderKind(BadRequest):
    type_slug = "unknown-order-kind"
    title = "No part of Lianka delivers this kind of order"


class BadCredentials(BadRequest):
    type_slug = "bad-payment-credentials"
    title = "The payment credentials are incomplete or malformed"


class RefundInProgress(Conflict):
    type_slug = "refund-in-progress"
    title = "A refund of this order is being sent to the provider"
