"""Payout errors (RFC 9457 problems through ``platform.errors``)."""

from __future__ import annotations

from lianka.platform.errors import Conflict


class PayoutNotRetryable(Conflict):
    """A retry is made only when the latest attempt is definitively over (failed, or returned by the
    payee's bank / reversed): retrying a pending or paid payout could pay twice."""

    type_slug = "payout-not-retryable"
    title = "Only a failed or returned payout can be retried"


class PayoutNotBank(Conflict):
    """Stripe transfers are settled by Stripe's webhooks; only bank-file payouts are marked by hand."""

    type_slug = "payout-not-bank"
    title = "Only a payout in the bank file can be marked by hand"


class PayoutStatusConflict(Conflict):
    type_slug = "payout-status-conflict"
    title = "The payout cannot move to that status from the one it has"
