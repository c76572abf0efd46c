"""The member's programme pages at one merchant: "Invite friends" (``/m/<merchant>/invite``: the
invitation code, link and QR code, the friends who joined and what they earned the member), the
coupon centre (``…/coupon-centre``, 领券中心), the daily check-in (``…/checkin``, 签到) and the
rewards catalogue with redemption (``…/rewards``) and the member's redemptions (``…/redemptions``).

Each handler calls the use case its JSON route calls (``referrals.invite``, ``coupon_centre.offers``
/ ``claim``, ``checkin.status`` / ``check_in``, ``rewards.catalogue`` / ``redeem`` /
``redemptions``) for the signed-in member's own id, after ``portal_perks.merchant_page`` checked the
membership (another merchant is 404 like an unknown one). Claims and redemptions carry an
Idempotency-Key made when the page is shown (a hidden field): a double tap or a reload books once.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import checkin, coupon_centre, portal_perks, referrals, rewards
from lianka.web.api.deps import actor_of
from lianka.web.console.i18n import N_
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, language
from lianka.web.portal.pages import portal_page, problem_text
from lianka.web.portal.qr import qr_svg

MEMBER = requires_member()
#: the member's words for a refusal (problem type → text)
REFUSALS: dict[str, str] = {
    "coupon-sold-out": N_("Sorry, these coupons have all been claimed."),
    "coupon-limit-reached": N_("You already hold as many of these coupons as allowed."),
    "coupon-template-inactive": N_("This coupon is no longer offered."),
    "reward-sold-out": N_("Sorry, this reward is out of stock."),
    "reward-limit-reached": N_("You have redeemed this reward as often as allowed."),
    "reward-tier-not-allowed": N_("This reward is for members of another tier."),
    "reward-inactive": N_("This reward is no longer offered."),
    "insufficient-points": N_("You do not have enough points for this reward."),
    "insufficient-funds": N_("You do not have enough points for this reward."),
    "checkin-not-offered": N_("Check-in earns nothing here today."),
}
#: why a reward cannot be redeemed now (``rewards.Standing.reason``)
REWARD_REASONS = {
    "sold out": N_("Out of stock"),
    "not for this tier": N_("For another tier"),
    "limit reached": N_("You have redeemed it as often as allowed"),
    "not enough points": N_("Not enough points yet"),
}
#: why a coupon cannot be claimed now (``coupon_centre.Offer.reason``)
OFFER_REASONS = {
    "sold-out": N_("All claimed"),
    "limit-reached": N_("You hold as many as allowed"),
}


T = TypeVar("T")


def _refusal(exc: DomainError, request: HtmlRequest) -> str:
    lang = language(request)
    text = REFUSALS.get(exc.type_slug)
    return lang.gettext(text) if text else problem_text(exc, None, lang)


async def _write(
    request: HtmlRequest, work: Awaitable[T], again: Callable[[str, int], Awaitable[Template]]
) -> T | Template:
    """Runs a member's write; a refusal the member can act on (sold out, not enough points, already
    checked in) re-renders the page with it and its status. Signed out, forbidden and unknown go on to
    the portal's error handlers."""
    try:
        return await work
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await again(_refusal(exc, request), exc.status)


def _keys(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """A fresh Idempotency-Key per form on the page (each claim or redemption is its own write)."""
    return {i: secrets.token_urlsafe(24) for i in ids}


class PerkPages(Controller):
    path = "/m"
    guards = (MEMBER,)

    # --- invite friends ----------------------------------------------------------------------

    @get("/{merchant:str}/invite")
    async def invite(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        inv = await referrals.invite(ident.db, merchant, principal.subject_id, ident.cfg.public_url)
        title = language(request).gettext("Your invitation link as a QR code: a friend scans it to join")
        return await portal_page(
            request,
            "portal/invite.html",
            signed_in=True,
            merchant=mp.merchant,
            invite=inv,
            qr=qr_svg(inv.link, title=title),
        )

    # --- coupon centre -----------------------------------------------------------------------

    async def _centre(
        self,
        request: HtmlRequest,
        mp: portal_perks.MerchantPage,
        principal: CurrentPrincipal,
        ident: IdentityService,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        offers = await coupon_centre.offers(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request,
            "portal/coupon_centre.html",
            signed_in=True,
            status=status,
            merchant=mp.merchant,
            offers=offers,
            keys=_keys([o.template.id for o in offers]),
            reasons=OFFER_REASONS,
            error=error,
        )

    @get("/{merchant:str}/coupon-centre")
    async def coupon_centre(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        return await self._centre(request, mp, principal, ident)

    @post("/{merchant:str}/coupon-centre/{template_id:uuid}/claim")
    async def claim(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        template_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[Any]:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        form = await form_data(request)
        done = await _write(
            request,
            coupon_centre.claim(ident.db, mp.tenant, template_id, principal.subject_id, form_text(form, "_key")[:200]),
            lambda error, status: self._centre(request, mp, principal, ident, error=error, status=status),
        )
        if isinstance(done, Template):
            return done
        return go(request, f"/m/{mp.merchant.slug}/coupon-centre", flash="coupon-claimed")

    # --- check-in ------------------------------------------------------------------------------

    async def _checkin(
        self,
        request: HtmlRequest,
        mp: portal_perks.MerchantPage,
        principal: CurrentPrincipal,
        ident: IdentityService,
        *,
        done: schemas.CheckinOut | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        state = await checkin.status(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request,
            "portal/checkin.html",
            signed_in=True,
            status=status,
            merchant=mp.merchant,
            points_name=mp.points_name,
            state=state,
            done=done,
            error=error,
        )

    @get("/{merchant:str}/checkin")
    async def checkin_page(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        return await self._checkin(request, mp, principal, ident)

    @post("/{merchant:str}/checkin")
    async def check_in(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        """Once per local day: a second tap (or a reload) shows the same check-in."""
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        done = await _write(
            request,
            checkin.check_in(ident.db, mp.tenant, principal.subject_id),
            lambda error, status: self._checkin(request, mp, principal, ident, error=error, status=status),
        )
        if isinstance(done, Template):
            return done
        return await self._checkin(request, mp, principal, ident, done=done)

    # --- rewards -------------------------------------------------------------------------------

    async def _rewards(
        self,
        request: HtmlRequest,
        mp: portal_perks.MerchantPage,
        principal: CurrentPrincipal,
        ident: IdentityService,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        catalogue = await rewards.catalogue(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request,
            "portal/rewards.html",
            signed_in=True,
            status=status,
            merchant=mp.merchant,
            points_name=mp.points_name,
            catalogue=catalogue,
            keys=_keys([i.reward.id for i in catalogue.items]),
            reasons=REWARD_REASONS,
            error=error,
        )

    @get("/{merchant:str}/rewards")
    async def rewards_page(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        return await self._rewards(request, mp, principal, ident)

    @post("/{merchant:str}/rewards/{reward_id:uuid}/redeem")
    async def redeem(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        reward_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[Any]:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        form = await form_data(request)
        done = await _write(
            request,
            rewards.redeem(
                ident.db,
                mp.tenant,
                reward_id,
                principal.subject_id,
                form_text(form, "_key")[:200],
                channel="portal",
                actor=actor_of(principal),
            ),
            lambda error, status: self._rewards(request, mp, principal, ident, error=error, status=status),
        )
        if isinstance(done, Template):
            return done
        return go(request, f"/m/{mp.merchant.slug}/redemptions", flash="reward-redeemed")

    @get("/{merchant:str}/redemptions")
    async def redemptions(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        mine = await portal_perks.my_redemptions(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request,
            "portal/redemptions.html",
            signed_in=True,
            merchant=mp.merchant,
            points_name=mp.points_name,
            mine=mine,
        )
