"""The member portal: mobile-first pages (they open in WeChat's browser on a small phone), zh-CN and
English, on the console's stack (Jinja + htmx, Babel, CSP, CSRF — decision 0018; the portal's choices:
decision 0027).

``portal_router()`` holds the join link pages (``/join/<merchant>[/<branch>]``), sign-in
(``/m/sign-in``), the card (``/m``) and the member's pages at each merchant (``/m/<merchant>``,
``…/history``), with the portal's error pages and the console's HTML security headers;
``web.app.create_app`` registers it beside the console's router.
"""

from __future__ import annotations

from litestar import Router

from lianka.web.console.security import html_security_middleware
from lianka.web.portal.alliance import AlliancePages
from lianka.web.portal.auth import PortalAuthPages
from lianka.web.portal.campaign_links import CampaignLinkPages
from lianka.web.portal.card import CardPages
from lianka.web.portal.draws import DrawPages
from lianka.web.portal.errors import EXCEPTION_HANDLERS
from lianka.web.portal.join import JoinPages
from lianka.web.portal.perks import PerkPages
from lianka.web.portal.privacy import PrivacyPages
from lianka.web.portal.top_up import MembershipBuyPages, TopUpPages
from lianka.web.portal.unsubscribe import UnsubscribePages

__all__ = ["portal_router"]


def portal_router() -> Router:
    return Router(
        "/",
        route_handlers=[
            PortalAuthPages,
            JoinPages,
            CardPages,
            PrivacyPages,
            AlliancePages,
            PerkPages,
            DrawPages,
            TopUpPages,
            MembershipBuyPages,
            UnsubscribePages,
            CampaignLinkPages,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[html_security_middleware],
        include_in_schema=False,
    )
