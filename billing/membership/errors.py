"""Paid membership's problems (RFC 9457 via ``web/problems.py``)."""

from __future__ import annotations

from lianka.platform.errors import Conflict, RuleViolation


class ProductCodeTaken(Conflict):
    type_slug = "membership-product-exists"
    title = "A membership product with this code already exists"


class ProductRetired(RuleViolation):
    type_slug = "membership-product-retired"
    title = "This membership product is no longer sold"


class RefundNotAllowed(RuleViolation):
    type_slug = "membership-refund-not-allowed"
    title = "The merchant's policy does not pay membership fees back"


class NothingToRefund(RuleViolation):
    type_slug = "membership-nothing-to-refund"
    title = "Every month of this membership has begun: there is nothing left to pay back"


class TermNotLive(RuleViolation):
    type_slug = "membership-term-not-live"
    title = "This membership term has already ended"


class OnlineRefundUnavailable(Conflict):
    """A term paid online is paid back through its order's provider (``billing/payments``'
    ``refund_order``); a term whose paid order is not on record (delivered by hand, or its order
    already refunded) cannot be, so the refund is refused and nothing changes."""

    type_slug = "membership-online-refund-unavailable"
    title = "This membership was paid online, but no refundable payment for it is on record"


class WrongCurrency(RuleViolation):
    type_slug = "membership-wrong-currency"
    title = "The payment's currency is not the product's"
