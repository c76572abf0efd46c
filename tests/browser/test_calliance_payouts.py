"""The alliance's payouts panel in a real browser, in zh-CN and in English: the operator (a tea shop)
opens its alliance's closed October on the statements page, the panel loads (htmx), "Pay all owed"
(confirmed) makes one line per partner — the bakery issued 10,000 points and owes ¥100.00, the
florist accepted 6,000 and is owed ¥48.00; nobody is connected to Stripe, so both are bank-file
lines — then marks the bakery's collection received."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership, month_end, till
from lianka.alliance.alliances.domain import Terms
from lianka.platform import audit
from lianka.tenants.domain.programme import Programme
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from lianka.web.console.settlement import month_label
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in

OCTOBER = datetime(2026, 10, 15, 4, 0, tzinfo=UTC)


async def arrange(db: Any) -> dict[str, Any]:
    from lianka.platform.identity.members import _find_or_create_person

    tea, _ = await make_merchant(db, "一点茶 Yidian Tea")
    bakery, bakery_slug = await make_merchant(db, "麦香面包坊 Bakery")
    florist, florist_slug = await make_merchant(db, "花间花店 Florist")
    branches = {}
    async with db.uow(system=True) as uow:
        for tenant, code in ((tea, "T1"), (bakery, "B1"), (florist, "F1")):
            await uow.set_tenant(tenant)
            branches[code] = await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
        await uow.commit()
    a = await membership.create(
        db,
        tea,
        code=f"city-{uuid.uuid4().hex[:8]}",
        name="城市生活联盟",
        terms=Terms(issue_price=Decimal("0.010"), reimbursement_price=Decimal("0.008"), member_value=Decimal("0.010")),
    )
    for partner in (bakery, florist):
        code, _ = await membership.invite(db, tea, a.id)
        await membership.accept(db, partner, code)
    async with db.uow(system=True) as uow:
        member = await _find_or_create_person(uow, f"+86139{uuid.uuid4().int % 10**8:08d}")
        await uow.set_tenant(bakery)
        await uow.session.execute(
            text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": bakery, "m": member}
        )
        await set_programme(uow, Programme(), effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    await till.earn(
        db,
        bakery,
        a.id,
        member_id=member,
        amount=1_000_000,
        branch_id=branches["B1"],
        key=uuid.uuid4().hex,
        business_time=OCTOBER,
    )
    await till.redeem(
        db,
        florist,
        a.id,
        member_id=member,
        points=6_000,
        branch_id=branches["F1"],
        key=uuid.uuid4().hex,
        business_time=OCTOBER + timedelta(hours=1),
    )
    await month_end.close_period(db, tea, a.id, "2026-10", actor=audit.SCHEDULED)
    return {"alliance": a.id, "tea": tea, "bakery": bakery_slug, "florist": florist_slug}


@pytest.mark.parametrize("lang", LANGS)
async def test_the_operator_pays_all_owed_and_marks_a_collection(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    w = await arrange(browser_db)
    email = await make_staff(browser_db, w["tea"], "owner")
    visit = await open_page(lang)
    page, language = visit.page, Language(lang)
    t = language.gettext
    await sign_in(visit, email)

    await visit.goto(f"/console/alliance/{w['alliance']}/statements?period=2026-10")
    await page.wait_for_selector("[data-testid=no-payouts]")  # the panel, loaded by htmx
    asked: list[str] = []

    async def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await page.get_by_test_id("pay-all").click()
    await page.wait_for_selector("table[data-testid=payouts] tbody tr")
    assert asked and month_label("2026-10", language) in asked[0]
    rows = page.locator("table[data-testid=payouts] tbody tr")
    assert await rows.count() == 2
    bakery = page.locator(f"tr[data-payee='{w['bakery']}']")
    assert await bakery.get_attribute("data-direction") == "collection"
    assert await bakery.get_attribute("data-method") == "bank"
    assert t("%(partner)s pays the operator") % {"partner": w["bakery"]} in await bakery.inner_text()
    assert "¥100.00" in await bakery.inner_text()
    florist = page.locator(f"tr[data-payee='{w['florist']}']")
    assert t("The operator pays %(partner)s") % {"partner": w["florist"]} in await florist.inner_text()
    assert "¥48.00" in await florist.inner_text()
    assert t("Not connected: paid by bank file") in await florist.inner_text()
    await page.wait_for_selector("#payouts-panel:not([hx-trigger])")  # everything sent: no more polling
    await visit.check("alliance-payouts-panel")

    await page.get_by_test_id(f"mark-paid-{w['bakery']}").click()
    await page.wait_for_selector(f"tr[data-payee='{w['bakery']}'][data-status='paid']")
    await visit.check("alliance-payouts-marked")
