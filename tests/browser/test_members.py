"""The members pages in a real browser, in zh-CN and in English: the list with its charts, a filter
that updates the results in place, a member's page, a tag edited with an inline error first, and a
3-row CSV imported while the progress bar (polled by htmx, the job run by the real worker) reaches
100% — then the new members are in the list."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lianka.tenants.crm_queries import ListFilter
from lianka.tenants.domain.programme import Programme, Tier
from lianka.tenants.services import branches as branch_svc
from lianka.tenants.services import crm, member_imports
from lianka.tenants.services.programme import set_programme
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served, make_merchant, make_staff
from tests.browser.test_console_journeys import LANGS, OpenPage, sign_in

PROGRAMME = Programme(
    tiers=[Tier(code="regular", name="普通会员", rank=0), Tier(code="gold", name="金卡会员", rank=1, threshold=100_000)]
)


async def arrange(db: Any, lang: str) -> tuple[uuid.UUID, str]:
    """A tea shop with a programme, a branch and four members (two tagged vip), and its owner."""
    tenant, _ = await make_merchant(db, "一点茶 Yidian Tea")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=datetime.now(UTC) - timedelta(days=1))
        await uow.commit()
    await branch_svc.open_branch(db, tenant, branch_svc.BranchChanges("SH01", "人民广场店", "", "Asia/Shanghai"))
    prefix = "1390000" if lang == "zh-CN" else "1391111"
    existing = (
        "phone,name,tags,branch,opening_points\n"
        f"{prefix}0001,王芳,vip;常客,SH01,120\n{prefix}0002,李娜,vip,,0\n"
        f"{prefix}0003,张伟,,SH01,0\n{prefix}0004,刘洋,,,0\n"
    )
    job = await member_imports.start(db, tenant, existing.encode(), mode="all_or_nothing", actor="test")
    await member_imports.run(db, tenant, uuid.UUID(str(job["id"])))
    return tenant, await make_staff(db, tenant, "owner")


async def without_axe_traces(page: Any) -> None:
    """axe-core (run by ``visit.check``) leaves an empty ``style`` attribute on the elements it measured;
    htmx copies the attributes of elements that keep their id across a swap (its settling), and setting
    ``style`` from a script is what the page's CSP refuses and logs. No page of ours writes such an
    attribute: remove what the checker left before the next swap."""
    await page.evaluate("document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))")


async def htmx_settled(page: Any) -> None:
    """Wait until htmx has no request in flight and has settled its last swap. htmx 2 wires the
    swapped-in elements (their triggers) in the settle step, ``settleDelay`` (20 ms) after they appear:
    a change made in between reaches no listener and posts nothing. A person is never that fast;
    Playwright is, when it acts on an element the moment a wait finds it (also on a page still
    loading, before htmx has processed it)."""
    await page.wait_for_function(
        "() => document.readyState === 'complete' && window.htmx"
        " && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def rows(page: Any) -> Any:
    return page.locator("#member-results tbody tr")


@pytest.mark.parametrize("lang", LANGS)
async def test_list_filter_detail_edit_a_tag_import_and_see_the_new_members(
    open_page: OpenPage, served: Served, browser_db: Any, lang: str
) -> None:
    tenant, email = await arrange(browser_db, lang)
    visit = await open_page(lang)
    page, t = visit.page, Language(lang).gettext
    await sign_in(visit, email)

    # the list, from the menu: masked phones, and the charts drawn from their data (no inline script)
    await page.locator("#side-menu").get_by_role("link", name=t("Members"), exact=True).click()
    await page.wait_for_url("**/console/members")
    await page.wait_for_selector(".chart[data-drawn] canvas")
    assert await page.locator(".chart[data-drawn]").count() == 2
    assert await rows(page).count() == 4
    assert re.search(r"\+86 139\*{4}000[1-4]", await page.locator("#member-results").inner_text())
    await visit.check("members-list")

    # a filter updates the results in place (and the address)
    await page.select_option("#f-tag", "vip")
    await page.wait_for_url(re.compile(r"tag=vip"))
    await page.wait_for_function("document.querySelectorAll('#member-results tbody tr').length === 2")
    assert await page.locator(".chart[data-drawn]").count() == 2  # the charts stay
    await visit.check("members-filtered")

    # a member's page
    await page.locator("#member-results").get_by_role("link", name="王芳").click()
    await page.wait_for_url(re.compile(r"/console/members/[0-9a-f-]{36}$"))
    assert await page.locator("h1").inner_text() == "王芳"
    assert await page.get_by_test_id("points-available").inner_text() == "120"
    assert await page.locator("#tier-form").count() == 1  # the owner may grant a tier
    await visit.check("member-detail")

    # edit the tags: a bad e-mail first (the error beside its field, no page load), then saved
    await page.get_by_test_id("edit-profile").click()
    await page.wait_for_selector("#profile-form")
    await page.fill("#f-tags", "vip, 常客, 生日月")
    await page.fill("#f-email", "not an address")
    await page.locator("#profile-form button[type=submit]").click()
    await page.wait_for_selector("#f-email-error")
    assert await page.locator("#f-email").get_attribute("aria-invalid") == "true"
    assert await page.locator("#f-email-error").inner_text() == t(
        "Enter an e-mail address such as li@example.com, or leave it empty."
    )
    await visit.check("member-profile-error")
    await page.fill("#f-email", "wang@example.com")
    await without_axe_traces(page)
    await page.locator("#profile-form button[type=submit]").click()
    await page.wait_for_selector("#member-panel .flash")
    assert await page.locator("#member-panel .flash").inner_text() == t("Profile saved.")
    assert "生日月" in await page.get_by_test_id("profile-tags").inner_text()
    await visit.check("member-profile-saved")

    # import three more members and watch the progress reach 100%
    await visit.goto("/console/members")
    await page.get_by_test_id("import-members").click()
    await page.wait_for_url("**/console/members/imports/new")
    await visit.check("members-import")
    prefix = "1370000" if lang == "zh-CN" else "1371111"
    new = f"phone,name,tags\n{prefix}0001,陈静,new\n{prefix}0002,赵敏,new\n{prefix}0003,周杰,new\n"
    await page.set_input_files(
        "#f-file", files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": new.encode()}]
    )
    await page.get_by_test_id("start-import").click()
    await page.wait_for_url(re.compile(r"/console/members/imports/[0-9a-f-]{36}$"))
    await page.wait_for_selector("#import-progress[data-status='done'][data-percent='100']", timeout=20_000)
    assert await page.get_by_test_id("import-percent").inner_text() == "100%"
    assert await page.locator("#import-progress progress").get_attribute("value") == "100"
    created = Language(lang).ngettext("%(count)s new member.", "%(count)s new members.", 3) % {"count": 3}
    assert await page.get_by_test_id("import-created").inner_text() == created
    await visit.check("members-import-done")

    # the new members are in the list
    await page.get_by_test_id("see-members").click()
    await page.wait_for_url("**/console/members")
    assert await rows(page).count() == 7
    names = await page.locator("#member-results tbody tr td:first-child a").all_inner_texts()
    assert {"陈静", "赵敏", "周杰"} <= set(names)
    await visit.check("members-after-import")

    listed, total = await crm.members_page(browser_db, tenant, ListFilter(tag="生日月"), limit=10, offset=0)
    assert total == 1 and listed[0]["name"] == "王芳"
