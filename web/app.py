"""The Litestar application factory."""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ControllerRouterHandler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from redis.asyncio import BlockingConnectionPool, Redis

from lianka.platform.db import Database
from lianka.platform.errors import Unauthorized
from lianka.platform.identity.guards import check_csrf_form, provide_identity, provide_principal
from lianka.platform.identity.runtime import Identity
from lianka.platform.log import configure_logging, get_logger
from lianka.platform.metrics import OutboxGauges, scrape_time_exposition
from lianka.platform.settings import Settings, get_settings
from lianka.platform.tracing import configure_tracing, litestar_plugin
from lianka.web.api.alliance_offers import AllianceOffersController, MyOffersController
from lianka.web.api.alliances import AlliancesController, AllianceTillController
from lianka.web.api.audit import AuditController
from lianka.web.api.auth import AuthController
from lianka.web.api.automations import AutomationsController
from lianka.web.api.billing import BillingController, BillingWebhooksController
from lianka.web.api.branches import BranchesController
from lianka.web.api.campaigns import CampaignsController, MarketingSettingsController
from lianka.web.api.clients import ClientsController
from lianka.web.api.coupons import CouponTemplatesController, MemberCouponsController
from lianka.web.api.crm import CrmController
from lianka.web.api.deps import DEPENDENCIES
from lianka.web.api.draws import DrawsController, PortalDrawsController
from lianka.web.api.events import EventsController
from lianka.web.api.marketing import (
    MessagingProvidersController,
    PortalWechatController,
    SegmentsController,
    SmsReceiptsController,
    SmsRepliesController,
)
from lianka.web.api.members import MembersController
from lianka.web.api.members_auth import PortalController
from lianka.web.api.membership import MembershipController, PortalMembershipController, PosMembershipController
from lianka.web.api.payments import PaymentsController, PaymentWebhooksController, PortalPaymentsController
from lianka.web.api.payouts import AlliancePayoutsController, PayoutsController
from lianka.web.api.portal_alliance import PortalAllianceController, PortalStatementsController
from lianka.web.api.portal_join import PortalJoinController
from lianka.web.api.portal_privacy import PortalPrivacyController
from lianka.web.api.portal_programme import PortalProgrammeController
from lianka.web.api.portal_referral import PortalReferralController
from lianka.web.api.pos import PosController
from lianka.web.api.programme import ProgrammeController
from lianka.web.api.rewards import RewardsController
from lianka.web.api.settlement import SettlementController
from lianka.web.api.signup import SignupController
from lianka.web.api.staff import StaffController
from lianka.web.api.webhooks import WebhooksController
from lianka.web.billing_gate import billing_gate
from lianka.web.console import console_router, static_files_router, template_config
from lianka.web.docs import assets_router, render_plugins
from lianka.web.health import HealthController
from lianka.web.middleware import edge_guard, request_id_middleware, security_headers
from lianka.web.oauth import OAuthController
from lianka.web.openapi import document_problems
from lianka.web.portal import portal_router
from lianka.web.problems import EXCEPTION_HANDLERS
from lianka.web.strict import strict_body

log = get_logger(__name__)


async def metrics_token(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """``/metrics`` wants ``Authorization: Bearer $LIANKA_METRICS_TOKEN``. Without a token configured
    it is open — development only: production refuses to start without one (``Settings``), and this
    guard refuses everyone if such settings are built by hand anyway."""
    settings: Settings = connection.app.state.settings
    if not settings.metrics_token and not settings.is_production:
        return
    scheme, _sep, given = (connection.headers.get("authorization") or "").partition(" ")
    if (
        not settings.metrics_token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), settings.metrics_token.encode())
    ):
        raise Unauthorized("Send the metrics token: Authorization: Bearer <LIANKA_METRICS_TOKEN>")


#: the outbox's scrape-time gauges (one per process: the query is cached a few seconds)
OUTBOX_GAUGES = OutboxGauges()


class MetricsController(PrometheusController):
    """HTTP metrics (Litestar's Prometheus middleware), the business counters of
    ``platform/metrics.py`` — summed over every process of the host in multiprocess mode — and the
    outbox gauges, computed now (decision 0049)."""

    path = "/metrics"
    include_in_schema = False
    guards = [metrics_token]  # noqa: RUF012 (Litestar reads a class attribute)

    @get()
    async def get(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        try:
            await OUTBOX_GAUGES.refresh(request.app.state.db)
        except Exception as exc:  # the database away: the other metrics still answer; gauges keep their last value
            log.warning("outbox gauges not refreshed", error=f"{type(exc).__name__}: {exc}")
        body = generate_latest(registry) + scrape_time_exposition(OUTBOX_GAUGES)
        return Response(body, status_code=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def api_routes() -> list[ControllerRouterHandler]:
    """Every ``/api/v1`` controller; each business area adds its own here. Every route declares its
    access with a guard from ``lianka.platform.identity.guards`` (a test checks)."""
    return [
        SignupController,
        AuthController,
        StaffController,
        ClientsController,
        MembersController,
        PortalController,
        PosController,
        BranchesController,
        ProgrammeController,
        SettlementController,
        PayoutsController,
        AlliancePayoutsController,
        AlliancesController,
        AllianceTillController,
        AllianceOffersController,
        MyOffersController,
        CrmController,
        AuditController,
        # catalogue: coupons, earning-rule events, rewards, the member portal's programme pages
        CouponTemplatesController,
        MemberCouponsController,
        EventsController,
        RewardsController,
        PortalProgrammeController,
        PortalPrivacyController,
        PortalJoinController,
        PortalAllianceController,
        PortalStatementsController,
        BillingController,
        BillingWebhooksController,
        PortalReferralController,
        PaymentsController,
        PortalPaymentsController,
        PaymentWebhooksController,
        MembershipController,
        PosMembershipController,
        PortalMembershipController,
        SegmentsController,
        MessagingProvidersController,
        SmsReceiptsController,
        PortalWechatController,
        SmsRepliesController,
        CampaignsController,
        AutomationsController,
        MarketingSettingsController,
        DrawsController,
        PortalDrawsController,
        WebhooksController,
    ]


async def before_request(request: Request[Any, Any, Any]) -> None:
    """Runs after the guards: strict JSON bodies, then the CSRF field of cookie-authenticated forms."""
    await strict_body(request)
    await check_csrf_form(request)


REDIS_CONNECTIONS = 16  # per web process: sign-in limits, sessions, rate limits; a burst waits for one


def redis_client(url: str) -> Redis:
    """One bounded pool per process: a burst of requests waits (up to 5 s) for one of its connections
    instead of opening a new one each, whose connect can time out on a busy host. A hung Redis still
    fails the request (503) in seconds instead of holding it forever."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=REDIS_CONNECTIONS, timeout=5, socket_connect_timeout=2, socket_timeout=2
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


def create_app(settings: Settings | None = None, db: Database | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)
    configure_tracing(settings, "lianka-web")  # off without an OTLP endpoint (platform/tracing.py)
    otel = litestar_plugin()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own_db = db is None
        app.state.db = db or Database.from_settings(settings)
        app.state.redis = redis_client(settings.redis_url)
        app.state.settings = settings
        app.state.identity = Identity.create(app.state.db, settings, app.state.redis)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            if own_db:
                await app.state.db.dispose()

    prometheus = PrometheusConfig(
        app_name="lianka", prefix="lianka", group_path=True, exclude=["/metrics", "/healthz", "/readyz"]
    )
    app = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            OAuthController,
            assets_router(),
            Router("/api/v1", route_handlers=api_routes()),
            console_router(),
            portal_router(),
            static_files_router(),
        ],
        dependencies={"principal": Provide(provide_principal), "ident": Provide(provide_identity), **DEPENDENCIES},
        lifespan=[lifespan],
        state=State({"settings": settings}),
        middleware=[request_id_middleware, prometheus.middleware],
        before_send=[security_headers(production=settings.is_production)],
        # the first guard of every route: headers, path and query string; then what the subscription allows
        guards=[edge_guard, billing_gate],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=before_request,
        template_config=template_config(),
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        openapi_config=OpenAPIConfig(
            title="Lianka API",
            version="1",
            path="/schema",
            description=(
                "Membership marketing for merchants, chains and alliances. Errors are RFC 9457 "
                "problem details (`application/problem+json`, schema `ProblemDetails`)."
            ),
            render_plugins=render_plugins(),
        ),
        logging_config=None,  # structlog, configured above
        plugins=[otel] if otel is not None else [],
        debug=False,
    )
    document_problems(app)
    return app
