"""Chains and alliances set up for the settlement API tests: merchants with branches, an owner and a
till each, helpers to book activity at a business time and to close a month; and readers for the
files a close produces (CSV, XLSX, and the text of a PDF)."""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder, Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.services.programme import set_programme

OCT = "2026-10-15T12:00:00+08:00"


def programme(funder: BonusFunder) -> Programme:
    return Programme(
        stored_value=StoredValueConfig(
            bonus_funder=funder,
            plans=[
                StoredValuePlan(code="1000-1100", name="储值1000送100", pay=100_000, get=110_000),
                StoredValuePlan(code="500", name="储值500", pay=50_000, get=50_000),
            ],
        )
    )


class Chain:
    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        tenant: uuid.UUID,
        pos: dict[str, str],
        owner: dict[str, str],
        branches: dict[str, uuid.UUID],
    ) -> None:
        self.client, self.tenant, self.pos, self.owner, self.branches = client, tenant, pos, owner, branches

    async def post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        r = await self.client.post(
            url, json=body, headers={**(headers or self.pos), "Idempotency-Key": uuid.uuid4().hex}
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def top_up(self, member: uuid.UUID, plan: str, branch: str, at: str = OCT) -> Any:
        return await self.post(
            "/api/v1/pos/top-ups",
            {"member_id": str(member), "plan": plan, "branch_id": str(self.branches[branch]), "business_time": at},
        )

    async def spend(self, member: uuid.UUID, amount: int, branch: str, at: str = OCT) -> Any:
        return await self.post(
            "/api/v1/pos/sales",
            {
                "member_id": str(member),
                "amount": amount,
                "stored_value": amount,
                "branch_id": str(self.branches[branch]),
                "business_time": at,
            },
        )

    async def close(self, period: str = "2026-10") -> Any:
        r = await self.client.post(f"/api/v1/settlement/periods/{period}/close?wait=true", headers=self.owner)
        assert r.status_code == 200, r.text
        return r.json()


async def add_branch(db: Database, tenant: uuid.UUID, code: str, name: str) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :n) RETURNING id"),
            {"t": tenant, "c": code, "n": name},
        )
        await uow.commit()
    assert isinstance(branch, uuid.UUID)
    return branch


async def make_chain(
    client: AsyncTestClient[Litestar],
    db: Database,
    tenant_factory: Any,
    auth_kit: Any,
    staff_token: Any,
    funder: BonusFunder,
    *,
    name: str = "连锁茶饮",
    branches: dict[str, str] | None = None,
) -> Chain:
    """A chain with branches A, B, C (or ``branches``: code -> name), a stored-value programme, a till
    and an owner."""
    tenant = await tenant_factory(name)
    ids = {
        code: await add_branch(db, tenant, code, branch_name)
        for code, branch_name in (branches or {c: c for c in "ABC"}).items()
    }
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme(funder), effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"])
    owner = await staff_token(tenant, "owner")
    return Chain(client, tenant, pos.headers, owner.headers, ids)


@dataclass
class Partner:
    tenant: uuid.UUID
    owner: dict[str, str]
    pos: dict[str, str]
    branches: dict[str, uuid.UUID]


class World:
    """An operator O and partners P (branches P1, P2), Q and R in one alliance, all driven by the API."""

    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client
        self.partners: dict[str, Partner] = {}
        self.alliance = ""

    async def call(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any = None,
        expect: int | tuple[int, ...] = (200, 201),
    ) -> Any:
        h = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        r = await self.client.request(method, url, json=body, headers=h)
        assert r.status_code in ((expect,) if isinstance(expect, int) else expect), r.text
        return r.json() if r.content and r.headers.get("content-type", "").endswith("json") else r

    async def earn(
        self, who: str, branch: str, member: uuid.UUID, amount: int, at: str = "2026-10-20T15:00:00+08:00", **kw: Any
    ) -> Any:
        p = self.partners[who]
        return await self.call(
            "POST",
            f"/api/v1/pos/alliances/{self.alliance}/earn",
            p.pos,
            {"member_id": str(member), "amount": amount, "branch_id": str(p.branches[branch]), "business_time": at},
            **kw,
        )

    async def redeem(
        self, who: str, branch: str, member: uuid.UUID, points: int, at: str = "2026-10-20T15:00:00+08:00", **kw: Any
    ) -> Any:
        p = self.partners[who]
        return await self.call(
            "POST",
            f"/api/v1/pos/alliances/{self.alliance}/redeem",
            p.pos,
            {"member_id": str(member), "points": points, "branch_id": str(p.branches[branch]), "business_time": at},
            **kw,
        )

    async def found(self, body: dict[str, Any], joining: str = "PQR") -> str:
        """The operator founds an alliance (``body``) and ``joining`` partners join it; its id."""
        o = self.partners["O"]
        self.alliance = (await self.call("POST", "/api/v1/alliances", o.owner, body))["id"]
        for name in joining:
            invite = await self.call("POST", f"/api/v1/alliances/{self.alliance}/invites", o.owner, {"note": name})
            joined = await self.call(
                "POST", "/api/v1/alliances/join", self.partners[name].owner, {"code": invite["code"]}
            )
            assert joined["role"] == "partner" and joined["status"] == "active"
        return self.alliance

    async def close(self, period: str = "2026-10", **kw: Any) -> Any:
        return await self.call(
            "POST",
            f"/api/v1/alliances/{self.alliance}/settlement/periods/{period}/close",
            self.partners["O"].owner,
            **kw,
        )


async def make_world(
    client: AsyncTestClient[Litestar],
    db: Database,
    tenant_factory: Any,
    auth_kit: Any,
    staff_token: Any,
    *,
    names: dict[str, str] | None = None,
    branch_names: dict[str, str] | None = None,
) -> World:
    """Merchants O (branch O1), P (P1, P2), Q (Q1), R (R1) named "Partner <letter>" unless ``names``
    says otherwise; the worked example's alliance between them."""
    w = World(client)
    for letter, branches in (("O", ["O1"]), ("P", ["P1", "P2"]), ("Q", ["Q1"]), ("R", ["R1"])):
        tenant = await tenant_factory((names or {}).get(letter, f"Partner {letter}"))
        b = {code: await add_branch(db, tenant, code, (branch_names or {}).get(code, code)) for code in branches}
        pos = await auth_kit.pos(tenant, ["pos"])
        w.partners[letter] = Partner(tenant, (await staff_token(tenant, "owner")).headers, pos.headers, b)
    await w.found(
        {
            "code": f"coalition-{uuid.uuid4().hex[:8]}",
            "name": "城市联盟",
            "terms": {
                "issue_price": "0.010",
                "reimbursement_price": "0.008",
                "member_value": "0.010",
                "earn_rate": "1",
            },
        }
    )
    return w


# --- reading what a close produced ------------------------------------------------------------------


def csv_table(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def xlsx_sheets(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    wb = load_workbook(io.BytesIO(body))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def _unescape(literal: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(literal):
        c = literal[i]
        if c == 0x5C:  # backslash
            octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(), 8))
                i += 1 + len(octal.group())
                continue
            nxt = literal[i + 1 : i + 2]
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(nxt, nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def pdf_text(body: bytes) -> str:
    """The text reportlab drew, one string per line: page streams inflated, the UCS-2 strings of the
    CID font every statement is set in decoded (enough for our own statements; no general PDF reader)."""
    assert body.startswith(b"%PDF")
    lines = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", body, re.S):
        data = zlib.decompress(base64.a85decode(stream.strip(), adobe=True))
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", data, re.S):
            raw = _unescape(literal)
            lines.append(raw.decode("utf-16-be", errors="replace"))  # every string is in the CID font
    return "\n".join(lines)
