"""Settlement errors (RFC 9457 problems through ``platform.errors``): why a month may not be closed."""

from __future__ import annotations

from lianka.platform.errors import RuleViolation


class PeriodNotEnded(RuleViolation):
    """Closing a month before its last day is over (in the book's time zone) would push the rest of
    its sales into the next month as late items."""

    type_slug = "period-not-ended"
    title = "The month has not ended yet"


class PeriodBeforeBook(RuleViolation):
    """A month before the book's first month has nothing to settle and no position to open from."""

    type_slug = "period-before-book"
    title = "The month is before the book existed"


class PeriodOutOfOrder(RuleViolation):
    """Each month opens from the previous close: closing after a gap, or before an already closed
    month, would leave entries on no statement."""

    type_slug = "period-out-of-order"
    title = "Months are closed in order"
