"""Hypothesis drives random sequences of credit, debit, reversal, clawback and expiry against the real
ledger, checking after every step that it agrees with a simple model and that every invariant holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import AlreadyReversed, InsufficientFunds
from lianka.alliance.ledger.queries import CHECKS
from lianka.platform.db import Database
from lianka.platform.settings import get_settings
from lianka.tenants.models import Merchant

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.db = Database.from_settings(get_settings())
        self.clock = T0
        self.balance = 0
        self.entries: list[tuple[uuid.UUID, int]] = []  # (entry id, member delta)
        self.reversed: set[uuid.UUID] = set()

    def run(self, coro):
        return self.runner.run(coro)

    @initialize()
    def open_book(self) -> None:
        async def go() -> None:
            async with self.db.uow(system=True) as uow:
                m = Merchant(slug=f"h-{uuid.uuid4().hex[:12]}", name="hypothesis")
                uow.session.add(m)
                await uow.commit()
            self.tenant = m.id
            async with self.db.uow(self.tenant) as uow:
                unit = f"PTS:{m.id.hex[:8]}"
                self.member = await ledger.open_account(
                    uow, owner_kind="member", owner_id=uuid.uuid4(), kind="points", unit=unit
                )
                self.issued = await ledger.open_account(
                    uow, owner_kind="merchant", owner_id=m.id, kind="points_issued", unit=unit, allow_negative=True
                )
                await uow.commit()

        self.run(go())

    async def _post(self, amount: int, **lot: object) -> ledger.Entry:
        async with self.db.uow(self.tenant) as uow:
            e = await ledger.post(
                uow,
                kind="x",
                business_time=self.clock,
                key=uuid.uuid4().hex,
                legs=[
                    ledger.Leg(self.member, amount, **lot),  # type: ignore[arg-type]
                    ledger.Leg(self.issued, -amount),
                ],
            )
            await uow.commit()
            return e

    @rule(n=st.integers(1, 500), life=st.sampled_from([None, 5, 20, 60]), pending=st.sampled_from([0, 0, 3]))
    def credit(self, n: int, life: int | None, pending: int) -> None:
        expires = self.clock + timedelta(days=life) if life else None
        e = self.run(self._post(n, expires_at=expires, available_at=self.clock + timedelta(days=pending)))
        self.balance += n
        self.entries.append((e.id, n))

    @rule(n=st.integers(1, 500))
    def debit(self, n: int) -> None:
        available = self.run(self._available())
        try:
            e = self.run(self._post(-n))
        except InsufficientFunds:
            assert n > available or n > self.balance
            return
        assert n <= available
        self.balance -= n
        self.entries.append((e.id, -n))

    @rule(data=st.data(), clawback=st.booleans())
    def reverse(self, data: st.DataObject, clawback: bool) -> None:
        candidates = [e for e in self.entries if e[0] not in self.reversed]
        if not candidates:
            return
        entry_id, delta = data.draw(st.sampled_from(candidates))

        async def go() -> None:
            async with self.db.uow(self.tenant) as uow:
                await ledger.reverse(uow, entry_id, key=uuid.uuid4().hex, business_time=self.clock, clawback=clawback)
                await uow.commit()

        before = self.balance
        try:
            self.run(go())
        except (InsufficientFunds, AlreadyReversed):
            assert not clawback or delta < 0  # with clawback a credit reversal always goes through
            return
        self.reversed.add(entry_id)
        self.balance = before - delta

    @rule(days=st.integers(1, 30))
    def advance_and_expire(self, days: int) -> None:
        self.clock += timedelta(days=days)

        async def go() -> int:
            total = 0
            while True:
                async with self.db.uow(self.tenant) as uow:
                    before = await ledger.balance(uow, self.member)
                    n = await ledger.expire_due(uow, self.clock, batch_size=7)
                    after = await ledger.balance(uow, self.member)
                    await uow.commit()
                total += before - after
                if n == 0:
                    return total

        self.balance -= self.run(go())

    async def _available(self) -> int:
        async with self.db.uow(self.tenant) as uow:
            return await ledger.available_points(uow, self.member, self.clock)

    @invariant()
    def books_agree(self) -> None:
        if not hasattr(self, "tenant"):
            return

        async def go() -> None:
            async with self.db.uow(self.tenant) as uow:
                assert await ledger.balance(uow, self.member) == self.balance
                assert await ledger.balance(uow, self.member, datetime.now(UTC) + timedelta(days=1)) == self.balance
                assert await ledger.balance(uow, self.issued) == -self.balance - await self._breakage(uow)
                for name, sql in CHECKS.items():  # the operator's checks, scoped by RLS to this book
                    bad = (await uow.session.execute(text(f"{sql} LIMIT 5"))).all()
                    assert bad == [], (name, bad)

        self.run(go())

    async def _breakage(self, uow) -> int:
        acc = await ledger.open_account(
            uow, owner_kind="merchant", owner_id=self.tenant, kind="points_breakage", unit=self.member.unit
        )
        return await ledger.balance(uow, acc)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.runner.close()


def test_ledger_state_machine() -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
