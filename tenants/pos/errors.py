"""The POS's domain errors (mapped to RFC 9457 problems by ``web/problems.py``)."""

from __future__ import annotations

from lianka.platform.errors import RuleViolation


class NotAMember(RuleViolation):
    type_slug = "not-eligible-to-join"
    title = "The customer cannot join (yet)"


class RefundTooLarge(RuleViolation):
    type_slug = "refund-exceeds-sale"
    title = "The refund is more than what is left of the sale"


class NothingToRefund(RuleViolation):
    """A stored-value refund for a member who holds no principal: nothing can be paid back (the
    bonus never is), so the cashier is told so rather than shown a refund of 0."""

    type_slug = "nothing-to-refund"
    title = "The member has no stored-value principal to refund"
