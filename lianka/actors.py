"""Every dramatiq actor module, imported by the worker (``lianka worker``) and the scheduler.

Each business area registers its actors and periodic jobs when its ``jobs`` module is imported;
add a new area's module to the list below.
"""

from __future__ import annotations

from lianka.platform.jobs import get_broker
from lianka.platform.settings import get_settings
from lianka.platform.tracing import configure_tracing

broker = get_broker()
configure_tracing(get_settings(), "lianka-worker")  # off without an OTLP endpoint (decision 0049)

import lianka.alliance.ledger.jobs  # noqa: E402
import lianka.alliance.reports.jobs  # noqa: E402
import lianka.alliance.settlement.jobs  # noqa: E402
import lianka.billing.jobs  # noqa: E402
import lianka.billing.membership.jobs  # noqa: E402
import lianka.billing.payments.jobs  # noqa: E402
import lianka.billing.payouts.jobs  # noqa: E402
import lianka.platform.builtin_jobs  # noqa: E402
import lianka.platform.identity.jobs  # noqa: E402
import lianka.platform.webhooks.jobs  # noqa: E402
import lianka.tenants.jobs  # noqa: E402
import lianka.tenants.marketing.jobs  # noqa: E402
import lianka.tenants.reports.jobs  # noqa: E402
import lianka.tenants.statement_jobs  # noqa: E402

__all__ = ["broker", "lianka"]
