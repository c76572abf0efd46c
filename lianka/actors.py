"""Every dramatiq actor module, imported by the worker (``lianka worker``).

Each business area registers its actors and periodic jobs when its ``jobs`` module is imported.
"""

from __future__ import annotations

from lianka.platform.jobs import get_broker

broker = get_broker()

# Business areas append their job modules here, e.g. ``import lianka.alliance.ledger.jobs``.
import lianka.platform.builtin_jobs  # noqa: E402,F401
from lianka.platform.identity import jobs as _identity_jobs  # noqa: E402,F401
