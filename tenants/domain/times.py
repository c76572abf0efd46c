"""The times a merchant's requests may carry, bounded so that nothing downstream can overflow.

Python's ``datetime`` ends at 9999-12-31 and starts at year 1: a ``business_time`` at year 9999 plus
a return window, an expiry period or a UTC conversion raises ``OverflowError`` deep inside a sale
(a 500, half-way through a transaction). So every time the tills and the console send is checked
here first and refused with a 400 ``validation-failed`` naming the field.

* **Business times** (when a sale, top-up, refund or event happened): from :data:`EARLIEST` to
  :data:`BUSINESS_TIME_AHEAD` past the server's clock. Offline tills upload sales days or weeks
  late, so the past is open back to 2000 (older entries land in the next open period as late
  items); a day ahead absorbs a till whose clock or time-zone offset is wrong, and no more — a
  sale dated next month would be priced with a programme version not yet in force.
* **Settings** (when a programme version takes effect, a coupon template's validity): from
  :data:`EARLIEST` to :data:`LATEST`. Far enough for any real validity window, and far enough from
  the end of the calendar that adding years of expiry or ``valid_days`` cannot overflow.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lianka.platform.errors import ValidationFailed

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
BUSINESS_TIME_AHEAD = timedelta(days=1)


def aware(value: datetime, field: str) -> datetime:
    """``value`` in UTC; a naive time (which zone?) or one UTC cannot hold is a 400 naming ``field``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{field} needs a time zone, e.g. 2026-11-20T10:00:00+08:00", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is after the last UTC instant Python can hold
        raise ValidationFailed(f"{field} is out of range", field=field) from None


def within(value: datetime, field: str, earliest: datetime, latest: datetime) -> datetime:
    """``value`` when ``earliest <= value <= latest`` (compared in UTC), else a 400 naming ``field``."""
    if not earliest <= aware(value, field) <= latest:
        raise ValidationFailed(
            f"{field} must be between {earliest.isoformat()} and {latest.isoformat()}",
            field=field,
            earliest=earliest.isoformat(),
            latest=latest.isoformat(),
        )
    return value


def business_time(value: datetime | None, field: str = "business_time", *, now: datetime | None = None) -> datetime:
    """When something happened: ``now`` when not given, else a time from 2000 to a day from now."""
    now = now or datetime.now(UTC)
    if value is None:
        return now
    return within(value, field, EARLIEST, now + BUSINESS_TIME_AHEAD)


def setting(value: datetime | None, field: str) -> datetime | None:
    """A time a merchant configures (an effective date, a validity bound): from 2000 to 2100."""
    return None if value is None else within(value, field, EARLIEST, LATEST)
