"""The alliances' errors (RFC 9457 problems through ``platform.errors``)."""

from __future__ import annotations

from lianka.platform.errors import NotFound, RuleViolation


class NotAPartner(NotFound):
    """The merchant never joined the alliance: answered like an unknown alliance."""

    type_slug = "alliance-not-found"
    title = "No such alliance among yours"


class PartnerInactive(RuleViolation):
    type_slug = "partner-inactive"
    title = "This partner is suspended or has left the alliance"


class IssuanceCapReached(RuleViolation):
    type_slug = "issuance-cap-reached"
    title = "The partner's monthly issuance cap is reached"


class CreditLimitExceeded(RuleViolation):
    type_slug = "credit-limit-exceeded"
    title = "The partner owes more than its credit limit: settle before issuing points"


class NotACardholder(NotFound):
    type_slug = "not-a-cardholder"
    title = "This card is not an alliance card"
