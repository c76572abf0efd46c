"""The settlement pages of the console through the app's test client: the months and which may be
closed (the current one is refused with its reason, nothing queued), closing a past month through the
worker's queue with its progress, the month's summary and each branch's statement with its lines and
late items, the files (the API's exporters) for the month and for one statement, the currency of the
data, and what each role sees and what the server refuses.

The browser journey (tests/browser/test_csettle.py) drives the same pages in Chromium."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.settlement import jobs
from lianka.alliance.settlement.domain import next_period, period_end, period_of
from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit
from lianka.tenants.domain.programme import BonusFunder
from lianka.web.console import i18n
from lianka.web.console.i18n import Language
from lianka.web.console.settlement import month_label
from tests.api.settlement_kit import Chain, csv_table, make_chain, pdf_text, xlsx_sheets
from tests.api.test_console import Console, sign_in_console

pytestmark = pytest.mark.integration
ZH, EN = Language("zh-CN"), Language("en")
TZ = "Asia/Shanghai"
PROGRESS = {"HX-Request": "true", "HX-Target": "close-progress"}


def this_month() -> str:
    return period_of(datetime.now(UTC), TZ)


async def queued_closes(db: Database, tenant: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(text("SELECT payload FROM outbox WHERE actor = 'close_period' ORDER BY id"))
        # who queued it travels with the message (by_*: the close is audited as them, decision 0051)
        return [{k: v for k, v in r.payload.items() if not k.startswith("by_")} for r in rows]


async def run_queued(db: Database, tenant: uuid.UUID) -> list[str]:
    """What the worker does with the queued closes (``jobs.close_period``): each one's checksums."""
    out = []
    for payload in await queued_closes(db, tenant):
        out += await jobs.close_scope(payload["kind"], payload["book"], payload["period"], db)
    return out


def rows_of(html: str) -> dict[str, dict[str, str]]:
    """The months table: period -> its row's data attributes."""
    found = re.findall(r'<tr data-period="([0-9-]+)" data-status="(\w+)" data-closable="(\w+)"', html)
    return {p: {"status": s, "closable": c} for p, s, c in found}


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


class Setting:
    """A chain (branches A, B, C; the design's worked example booked in October 2026) and its console."""

    def __init__(self, chain: Chain, db: Database, kit: AuthKit) -> None:
        self.chain, self.db, self.kit = chain, db, kit

    async def console(self, role: str = "owner", **kw: Any) -> Console:
        return await sign_in_console(self.chain.client, self.kit, self.chain.tenant, role, **kw)

    async def till(self, call: Any) -> Any:
        """Book at the till (its bearer token) without the console's cookies, then put them back."""
        cookies = dict(self.chain.client.cookies)
        self.chain.client.cookies.clear()
        try:
            return await call
        finally:
            for k, v in cookies.items():
                self.chain.client.cookies.set(k, v)


@pytest.fixture
async def setting(client, db: Database, tenant_factory, auth_kit: AuthKit, staff_token, member_factory) -> Setting:
    chain = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    x, y = await member_factory(chain.tenant), await member_factory(chain.tenant)
    await chain.top_up(x, "1000-1100", "A")
    await chain.spend(x, 55_000, "B")
    await chain.spend(x, 11_000, "C")
    await chain.top_up(y, "500", "B")
    await chain.spend(y, 20_000, "A")
    return Setting(chain, db, auth_kit)


# --- who may -------------------------------------------------------------------------------------------


async def test_owner_and_analyst_read_every_page_and_only_the_owner_may_close(setting: Setting) -> None:
    await setting.chain.close("2026-10")  # as the API would
    c_branch = setting.chain.branches["C"]
    for role in ("owner", "analyst"):
        console = await setting.console(role)
        page = await console.get("/console/settlement")
        assert page.status_code == 200, page.text
        months = rows_of(page.text)
        assert months["2026-10"]["status"] == "closed" and months["2026-11"]["closable"] == "true"
        assert months[this_month()] == {"status": "open", "closable": "false"}
        assert list(months) == sorted(months, reverse=True)  # newest first
        closes = re.findall(r'action="/console/settlement/([0-9-]+)/close"', page.text)
        assert closes == (["2026-11"] if role == "owner" else [])  # only closable months, only for a writer
        for url in (
            "/console/settlement/2026-10",
            f"/console/settlement/2026-10/statements/{c_branch}",
            "/console/settlement/2026-10/progress",
        ):
            r = await console.get(url)
            assert r.status_code == 200, (role, url, r.text)
    before = await queued_closes(setting.db, setting.chain.tenant)
    for htmx in (False, True):  # the analyst's crafted post is refused, nothing queued
        r = await console.post("/console/settlement/2026-11/close", {}, htmx=htmx)
        assert r.status_code == 403 and "您的角色无权执行此操作" in r.text
    assert await queued_closes(setting.db, setting.chain.tenant) == before


@pytest.mark.parametrize("role", ["cashier", "manager"])
async def test_cashier_and_manager_are_refused_every_route(setting: Setting, role: str) -> None:
    await setting.chain.close("2026-10")
    branch = setting.chain.branches["A"]
    console = await setting.console(role, branches=(branch,))
    page = await console.get("/console/branches" if role == "manager" else "/console/till")
    assert "/console/settlement" not in page.text  # not in the menu
    base = "/console/settlement/2026-10"
    for url in (
        "/console/settlement",
        base,
        f"{base}/progress",
        f"{base}/statements/{branch}",
        f"{base}/download/pdf",
        f"{base}/statements/{branch}/download/csv",
    ):
        assert (await console.get(url)).status_code == 403, (role, url)
    assert (await console.post("/console/settlement/2026-11/close", {})).status_code == 403
    assert await queued_closes(setting.db, setting.chain.tenant) == []


# --- which months ----------------------------------------------------------------------------------------


async def test_a_month_that_may_not_be_closed_is_refused_with_its_reason(setting: Setting) -> None:
    console = await setting.console()
    now = this_month()
    ends = i18n.localdate(period_end(now, TZ), ZH, TZ, "long")  # the first day after the month
    not_ended = f"{month_label(now, ZH)}尚未结束（{TZ}）：从 {ends} 起可以月结。"
    # the calendar says it before anyone tries
    page = text_of((await console.get("/console/settlement")).text)
    assert not_ended in page
    refusals = {
        now: not_ended,
        next_period(now): f"{month_label(next_period(now), ZH)}尚未结束",
        "2099-01": "2099年1月尚未结束",
        "1999-01": "1999年1月早于您开始记账的月份（2026年10月）：没有可月结的内容。",
        "2026-09": "早于您开始记账的月份（2026年10月）",
    }
    for period, message in refusals.items():
        for htmx in (False, True):
            r = await console.post(f"/console/settlement/{period}/close", {}, htmx=htmx)
            assert r.status_code == 422, (period, r.text)
            assert message in text_of(r.text), (period, text_of(r.text))
            assert 'data-testid="close-refused"' in r.text
            assert ("<html" in r.text) is not htmx  # htmx: the months panel alone
    # no close yet: November may be closed, October folding into it (the book's first close)
    months = rows_of((await console.get("/console/settlement")).text)
    assert months["2026-10"]["closable"] == months["2026-11"]["closable"] == "true"
    assert "这是首次月结：2026年10月也会一并结清" in text_of((await console.get("/console/settlement")).text)
    r = await console.post("/console/settlement/2026-11/close", {})
    assert r.status_code == 303
    assert await queued_closes(setting.db, setting.chain.tenant) == [
        {"kind": "chain", "book": str(setting.chain.tenant), "period": "2026-11"}
    ]  # only the allowed close was queued
    await run_queued(setting.db, setting.chain.tenant)
    # October went with it: closed, no statements of its own, and no longer closable
    page = (await console.get("/console/settlement")).text
    assert rows_of(page)["2026-10"] == {"status": "closed", "closable": "false"}
    assert "已随首次月结（2026年11月）一并结清" in text_of(page)
    r = await console.post("/console/settlement/2026-10/close", {})
    assert r.status_code == 422 and "2026年11月已经月结：更早的月份不能再月结。" in text_of(r.text)
    r = await console.post("/console/settlement/bad/close", {})
    assert r.status_code == 400


async def test_english_reasons(setting: Setting) -> None:
    console = await setting.console()
    console.client.cookies.set(i18n.LANG_COOKIE, "en")
    now = this_month()
    r = await console.post(f"/console/settlement/{now}/close", {})
    ends = i18n.localdate(period_end(now, TZ), EN, TZ, "long")
    assert r.status_code == 422
    assert f"{month_label(now, EN)} has not ended yet ({TZ}): it can be closed from {ends}." in text_of(r.text), r.text
    await setting.chain.close("2026-10")
    await setting.chain.close("2026-11")
    page = text_of((await console.get("/console/settlement")).text)
    assert "See the statements" in page
    r = await console.post("/console/settlement/2026-09/close", {})
    assert "September 2026 is before your books began (October 2026)" in text_of(r.text)


# --- closing, progress, the summary and a statement -----------------------------------------------


async def test_close_a_past_month_then_its_statements_show_lines_and_late_items(
    setting: Setting, member_factory
) -> None:
    chain, db = setting.chain, setting.db
    console = await setting.console()
    page = (await console.get("/console/settlement")).text
    assert "2026年10月" in text_of(page) and 'data-testid="close-2026-10"' in page

    r = await console.post("/console/settlement/2026-10/close", {})
    assert r.status_code == 303 and r.headers["location"] == "/console/settlement/2026-10/progress"
    r = await console.post("/console/settlement/2026-10/close", {}, htmx=True)  # htmx: the same, by HX-Redirect
    assert r.headers["hx-redirect"] == "/console/settlement/2026-10/progress"
    # queued, not yet run: the progress page says so and polls every second
    progress = await console.get("/console/settlement/2026-10/progress")
    assert 'data-step="queued"' in progress.text and 'hx-trigger="every 1s"' in progress.text
    assert "<html" in progress.text
    polled = await console.get("/console/settlement/2026-10/progress?n=3", headers=PROGRESS)
    assert "<html" not in polled.text and "?n=4" in polled.text and 'data-step="queued"' in polled.text
    waited = await console.get(f"/console/settlement/2026-10/progress?n={1000}", headers=PROGRESS)
    assert 'data-testid="close-slow"' in waited.text  # a close that waits long for the worker says so

    checksums = await run_queued(db, chain.tenant)  # the worker
    assert len(set(checksums)) == 1  # closed once, the second message re-read the same close
    done = await console.get("/console/settlement/2026-10/progress", headers=PROGRESS)
    assert 'data-step="closed"' in done.text and 'data-percent="100"' in done.text
    assert "hx-trigger" not in done.text  # the polling stops
    assert 'href="/console/settlement/2026-10"' in done.text

    # the month's summary: each branch's net and who pays whom, the chart's data the same
    period = await console.get("/console/settlement/2026-10")
    nets = dict(re.findall(r'data-branch="(\w+)" data-net="(-?\d+)"', period.text))
    assert nets == {"A": "-80000", "B": "5000", "C": "11000", "hub": "64000"}
    words = text_of(period.text)
    assert "A 向总部付款 · ¥800.00" in words and "总部向 B 付款 · ¥50.00" in words
    drawn = re.search(r"data-settlement-chart='([^']+)'", period.text)
    assert drawn is not None
    chart = json.loads(unescape(drawn.group(1)))
    assert chart["values"] == [-80_000, 5_000, 11_000] and chart["texts"] == ["-¥800.00", "¥50.00", "¥110.00"]
    assert 'data-testid="total-receive">¥160.00' in period.text and 'data-testid="total-pay">¥800.00' in period.text

    # an October top-up arrives after the close (an offline till): a late item of November
    late_member = await member_factory(chain.tenant)
    await setting.till(chain.top_up(late_member, "500", "C", at="2026-10-31T20:00:00+08:00"))
    assert rows_of((await console.get("/console/settlement")).text)["2026-11"]["closable"] == "true"
    r = await console.post("/console/settlement/2026-11/close", {})
    assert r.status_code == 303
    await run_queued(db, chain.tenant)
    c = chain.branches["C"]
    statement = await console.get(f"/console/settlement/2026-11/statements/{c}")
    assert statement.status_code == 200
    words = text_of(statement.text)
    assert "C 向总部付款 ¥500.00" in words
    lines = dict(re.findall(r'<tr data-line="(\w+)" data-amount="(-?\d+)"', statement.text))
    assert lines == {"stored_value_collected": "-50000"}
    late = re.findall(r'<tr data-entry="[0-9a-f-]{36}" data-belongs-to="([0-9-]+)" data-line="(\w+)"', statement.text)
    assert late == [("2026-10", "stored_value_collected")]
    assert "2026年10月" in words and "储值收款" in words and "-¥500.00" in words
    assert "2026/10/31 20:00" in words  # the business time, in the chain's zone
    # the opening is October's closing position
    assert re.search(r'data-line="opening".*?¥110\.00', statement.text, re.S)
    # HQ's statement lists the same item from its side, with the branch it came from
    hub = await console.get(f"/console/settlement/2026-11/statements/{chain.tenant}")
    hub_late = re.findall(r'data-belongs-to="2026-10" data-line="stored_value_collected">(.*?)</tr>', hub.text, re.S)
    assert len(hub_late) == 1 and "<td>C</td>" in hub_late[0] and "¥500.00" in hub_late[0]
    assert "-¥500.00" not in hub_late[0]
    # October did not move
    oct_c = await console.get(f"/console/settlement/2026-10/statements/{c}")
    assert "没有迟到项目" in text_of(oct_c.text) and "总部向 C 付款 ¥110.00" in text_of(oct_c.text)


# --- files --------------------------------------------------------------------------------------------------


async def test_downloads_are_the_apis_files_for_the_month_and_for_one_statement(setting: Setting) -> None:
    closed = await setting.chain.close("2026-10")
    console = await setting.console("analyst")
    base = "/console/settlement/2026-10"
    b = setting.chain.branches["B"]
    types = {
        "pdf": ("application/pdf", b"%PDF", ".pdf"),
        "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK", ".xlsx"),
        "csv": ("text/csv", b"\xef\xbb\xbf", ".csv"),
        "instructions": ("text/csv", b"\xef\xbb\xbf", "-instructions-2026-10.csv"),
    }
    for fmt, (media, magic, ending) in types.items():
        whole = await console.get(f"{base}/download/{fmt}")
        one = await console.get(f"{base}/statements/{b}/download/{fmt}")
        for r in (whole, one):
            assert r.status_code == 200, (fmt, r.text)
            assert r.headers["content-type"].startswith(media), (fmt, r.headers["content-type"])
            assert r.content.startswith(magic), fmt
            disposition = r.headers["content-disposition"]
            assert disposition.startswith("attachment; filename=") and disposition.endswith(f'{ending}"'), disposition
        assert "-B-" in one.headers["content-disposition"] and "-B-" not in whole.headers["content-disposition"]
    # the month's files are the API's, byte for byte where they carry no time
    api = await setting.chain.client.get("/api/v1/settlement/periods/2026-10/download/csv", headers=setting.chain.owner)
    assert (await console.get(f"{base}/download/csv")).content == api.content
    # one statement's: only B
    table = csv_table((await console.get(f"{base}/statements/{b}/download/csv")).content)
    assert {row[2] for row in table[1:] if len(row) > 2 and row[0] == "2026-10"} == {"B"}
    assert table[-1] == ["checksum", closed["checksum"]]
    sheets = xlsx_sheets((await console.get(f"{base}/statements/{b}/download/xlsx")).content)
    assert [row[0] for row in sheets["Summary"][3:]] == ["B B"]
    pdf = pdf_text((await console.get(f"{base}/statements/{b}/download/pdf")).content)
    assert "¥50.00" in pdf and "-¥800.00" not in pdf  # B's statement, not A's
    instructions = csv_table((await console.get(f"{base}/statements/{b}/download/instructions")).content)
    assert [row[1:4] for row in instructions[1:]] == [["连锁茶饮", "B B", "5000"]]
    # what does not exist
    assert (await console.get(f"{base}/download/docx")).status_code == 400
    assert (await console.get("/console/settlement/2026-11/download/pdf")).status_code == 404  # not closed
    assert (await console.get(f"{base}/statements/{uuid.uuid4()}/download/pdf")).status_code == 404


async def test_another_merchants_month_is_not_found(setting: Setting, tenant_factory) -> None:
    await setting.chain.close("2026-10")
    b = setting.chain.branches["B"]
    other = await tenant_factory("别家")
    console = await sign_in_console(setting.chain.client, setting.kit, other, "owner")
    for url in (
        f"/console/settlement/2026-10/statements/{b}",
        f"/console/settlement/2026-10/statements/{b}/download/pdf",
        "/console/settlement/2026-10/download/pdf",
    ):
        assert (await console.get(url)).status_code == 404, url
    page = await console.get("/console/settlement/2026-10")
    assert page.status_code == 200 and "尚未月结" in text_of(page.text)


async def test_amounts_are_in_the_chains_own_currency(
    client, db: Database, tenant_factory, auth_kit: AuthKit, staff_token, member_factory
) -> None:
    async def dollars(name: str) -> uuid.UUID:
        made: uuid.UUID = await tenant_factory(name, currency="USD")
        return made

    chain = await make_chain(client, db, dollars, auth_kit, staff_token, BonusFunder.HQ)
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "1000-1100", "A")
    await chain.spend(x, 55_000, "B")
    await chain.close("2026-10")
    console = await sign_in_console(client, auth_kit, chain.tenant, "owner")
    period = (await console.get("/console/settlement/2026-10")).text
    statement = (await console.get(f"/console/settlement/2026-10/statements/{chain.branches['A']}")).text
    for html in (period, statement):
        assert "-$1,000.00" in html and "¥" not in text_of(html)
    assert "$500.00" in period
