"""The merchant console: server-rendered pages (Jinja + htmx + a little Alpine), zh-CN and English.

``console_router()`` holds every page (public ones and those behind sign-in) with the console's
error pages and HTML security headers; ``web.app.create_app`` registers it with
``template_config()`` and ``static_files_router()``. How to add a page: ``pages.py`` (the pattern),
``branches.py`` (a complete CRUD page), ``nav.py`` (the menu and its guards), decision 0018.
"""

from __future__ import annotations

from litestar import Router

from lianka.web.console.alliance import AlliancePages
from lianka.web.console.alliance_dashboard import AllianceDashboardPages
from lianka.web.console.alliance_liability import AllianceLiabilityPages
from lianka.web.console.alliance_offers import AllianceOfferPages
from lianka.web.console.audit import AuditPages
from lianka.web.console.auth import AuthPages, MerchantPages
from lianka.web.console.automations import AutomationPages
from lianka.web.console.billing import BillingPages
from lianka.web.console.branches import BranchPages
from lianka.web.console.campaigns import CampaignPages
from lianka.web.console.clients import ClientPages
from lianka.web.console.coupons import CouponPages
from lianka.web.console.dashboard import DashboardPages
from lianka.web.console.draws import DrawConsolePages
from lianka.web.console.erasures import ErasurePages
from lianka.web.console.errors import EXCEPTION_HANDLERS
from lianka.web.console.finance import FinancePages, LiabilityPages, VoucherPages
from lianka.web.console.join_posters import JoinPosterPages
from lianka.web.console.member_imports import MemberImportPages
from lianka.web.console.members import MemberPages
from lianka.web.console.membership import MembershipPages
from lianka.web.console.messaging import MessagingPages, SmsRepliesPages
from lianka.web.console.onboarding import OnboardingPages
from lianka.web.console.payments import PaymentPages
from lianka.web.console.payouts import AlliancePayoutPages, PayoutPages
from lianka.web.console.programme import ProgrammePages
from lianka.web.console.programme_start import ProgrammeStartPages
from lianka.web.console.public import PublicPages
from lianka.web.console.rewards import RewardPages
from lianka.web.console.security import html_security_middleware
from lianka.web.console.segments import SegmentPages
from lianka.web.console.settlement import SettlementPages
from lianka.web.console.staff import StaffPages
from lianka.web.console.templating import static_files_router, template_config
from lianka.web.console.till import TillPages
from lianka.web.console.webhooks import WebhookPages

__all__ = ["console_router", "static_files_router", "template_config"]


def console_router() -> Router:
    return Router(
        "/",
        route_handlers=[
            PublicPages,
            AuthPages,
            MerchantPages,
            OnboardingPages,
            DashboardPages,
            FinancePages,
            LiabilityPages,
            VoucherPages,
            BranchPages,
            JoinPosterPages,
            MemberPages,
            MemberImportPages,
            ErasurePages,
            ProgrammePages,
            CouponPages,
            RewardPages,
            MembershipPages,
            CampaignPages,
            AutomationPages,
            DrawConsolePages,
            AllianceOfferPages,
            SegmentPages,
            MessagingPages,
            SmsRepliesPages,
            ProgrammeStartPages,
            TillPages,
            ClientPages,
            StaffPages,
            AuditPages,
            SettlementPages,
            PayoutPages,
            AlliancePayoutPages,
            AlliancePages,
            AllianceDashboardPages,
            AllianceLiabilityPages,
            PaymentPages,
            WebhookPages,
            BillingPages,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[html_security_middleware],
        include_in_schema=False,
    )
