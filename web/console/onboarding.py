"""The onboarding checklist: what a new merchant still has to set up, each step from real data."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get
from litestar.response import Template

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.tenants.services.onboarding import SetupProgress, setup_progress
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, page


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str
    done: bool
    href: str


def steps(progress: SetupProgress) -> list[Step]:
    """The checklist in the order a merchant goes live."""
    return [
        Step(
            "branches",
            N_("Add your branches"),
            N_("Each shop or counter where members earn and spend."),
            progress.branches > 0,
            MENU["branches"].href,
        ),
        Step(
            "programme",
            N_("Set up your programme"),
            N_("Start from the template for your trade: tiers, points, stored value."),
            progress.programme_configured,
            "/console/start/programme",
        ),
        Step(
            "pos",
            N_("Connect a till"),
            N_("Create a POS client for each till, or use the web till."),
            progress.pos_client,
            MENU["clients"].href,
        ),
        Step(
            "staff",
            N_("Invite your staff"),
            N_("Managers, cashiers and analysts, each with their role."),
            progress.staff_invited,
            MENU["staff"].href,
        ),
        Step(
            "members",
            N_("Import your members"),
            N_("Bring your existing customers with their points."),
            progress.members > 0,
            MENU["members"].href,
        ),
        Step("live", N_("Go live"), N_("Record the first sale to a member."), progress.first_sale, MENU["till"].href),
    ]


class OnboardingPages(Controller):
    path = "/console/start"

    @get("/", guards=[requires(*MENU["start"].permissions)])
    async def checklist(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        checklist = steps(await setup_progress(ident.db, principal.tenant))
        return await page(
            request,
            "console/onboarding.html",
            principal=principal,
            active="start",
            steps=checklist,
            done=sum(s.done for s in checklist),
        )
