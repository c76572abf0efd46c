"""The payouts panel on the alliance's statements page (the chain's panel, with the alliance's book):
P owes the operator ¥100.00 (10,000 points issued), the operator owes Q ¥48.00 and R ¥32.00; nobody
is connected to Stripe, so every line is in the bank file. The operator pays all owed and marks
P's collection received; a partner sees its own line only and no button; both languages."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import text

from lianka.billing.payouts import services
from lianka.platform.db import Database
from lianka.web.console import i18n
from tests.api.settlement_kit import World, make_world
from tests.api.test_console import sign_in_console

pytestmark = pytest.mark.integration
PERIOD = "2026-10"
HTMX = {"HX-Request": "true"}


def lines(html: str) -> dict[str, tuple[str, str, str]]:
    """The payouts table: partner slug -> (status, method, direction)."""
    found = re.findall(
        r'<tr data-payee="([\w-]+)" data-status="(\w+)" data-method="(\w*)" data-direction="(\w+)"', html
    )
    return {code: (status, method, direction) for code, status, method, direction in found}


async def slugs(db: Database, world: World) -> dict[str, str]:
    async with db.uow(system=True) as uow:
        rows = await uow.session.execute(
            text("SELECT id, slug FROM merchants WHERE id = ANY(:ids)"),
            {"ids": [p.tenant for p in world.partners.values()]},
        )
        by_id = {r.id: r.slug for r in rows}
    return {letter: by_id[p.tenant] for letter, p in world.partners.items()}


async def test_the_operator_pays_its_partners_from_the_statements_page(
    client, db, tenant_factory, auth_kit, staff_token, member_factory
) -> None:
    w = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    x = await member_factory(w.partners["P"].tenant)
    await w.earn("P", "P1", x, 1_000_000)
    await w.redeem("Q", "Q1", x, 6_000)
    await w.redeem("R", "R1", x, 4_000)
    slug = await slugs(db, w)
    alliance = uuid.UUID(w.alliance)
    base = f"/console/alliance/{alliance}/settlement/{PERIOD}/payouts"

    operator = await sign_in_console(client, auth_kit, w.partners["O"].tenant, "owner")
    page = await operator.get(f"/console/alliance/{alliance}/statements?period={PERIOD}")
    assert page.status_code == 200 and base not in page.text  # not closed: no payouts yet
    await w.close(PERIOD)
    page = await operator.get(f"/console/alliance/{alliance}/statements?period={PERIOD}")
    assert f'hx-get="{base}"' in page.text

    panel = await operator.get(base, headers=HTMX)
    assert panel.status_code == 200 and "<html" not in panel.text
    assert 'data-testid="no-payouts"' in panel.text and 'data-testid="pay-all"' in panel.text
    assert f'hx-post="{base}/run"' in panel.text
    assert "所有应付伙伴的款项" in panel.text  # the confirmation, in the alliance's words

    ran = await operator.post(f"{base}/run", {}, htmx=True)
    assert ran.status_code == 200, ran.text
    assert lines(ran.text) == {
        slug["P"]: ("pending", "bank", "collection"),
        slug["Q"]: ("pending", "bank", "payout"),
        slug["R"]: ("pending", "bank", "payout"),
    }
    assert "¥100.00" in ran.text and "¥48.00" in ran.text and "¥32.00" in ran.text
    assert f"运营方向 {slug['Q']} 付款" in ran.text and f"{slug['P']} 向运营方付款" in ran.text
    assert f'data-testid="payee-{slug["Q"]}" data-connection="none"' in ran.text
    again = await operator.post(f"{base}/run", {}, htmx=True)
    assert len(lines(again.text)) == 3  # one line per partner, however often it is run
    rows = {p.code: p for p in await services.list_payouts(db, alliance, PERIOD)}
    assert len(rows) == 3

    marked = await operator.post(f"{base}/{rows[slug['P']].id}/mark", {"status": "paid"}, htmx=True)
    assert lines(marked.text)[slug["P"]] == ("paid", "bank", "collection")
    refused = await operator.post(f"{base}/{rows[slug['P']].id}/retry", {}, htmx=True)
    assert refused.status_code == 409 and "只有失败或被退回的付款可以重试" in refused.text
    csv_file = await operator.get(f"{base}/bank-file")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert [row.split(",")[2] for row in csv_file.content.decode("utf-8-sig").splitlines()[1:]] == ["pay", "pay"]

    operator.client.cookies.set(i18n.LANG_COOKIE, "en")
    english = await operator.get(base, headers=HTMX)
    assert f"The operator pays {slug['Q']}" in english.text and "Partners connected to Stripe" in english.text
    full = await operator.get(base)  # without htmx: the panel's own page, back to the statements
    assert full.status_code == 200 and f"/console/alliance/{alliance}/statements?period={PERIOD}" in full.text

    # Q sees its own line, no buttons, no bank file; it cannot pay or mark
    q = await sign_in_console(client, auth_kit, w.partners["Q"].tenant, "owner")
    own = await q.get(base, headers=HTMX)
    assert own.status_code == 200 and lines(own.text) == {slug["Q"]: ("pending", "bank", "payout")}
    assert "pay-all" not in own.text and "mark-" not in own.text and "bank-file" not in own.text
    denied = await q.post(f"{base}/{rows[slug['R']].id}/mark", {"status": "paid"})
    assert denied.status_code == 403
    assert (await q.post(f"{base}/run", {})).status_code == 403
    assert (await q.get(f"{base}/bank-file")).status_code == 403
    assert (await services.get(db, alliance, rows[slug["R"]].id)).status == "pending"

    # a merchant outside the alliance: 404
    outsider = await sign_in_console(client, auth_kit, await tenant_factory("Outsider"), "owner")
    assert (await outsider.get(base, headers=HTMX)).status_code == 404
