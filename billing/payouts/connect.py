"""Payees and their Stripe Connect accounts: an Express account per branch (or alliance partner),
created once, and an onboarding link (Stripe's hosted pages) to give the branch; Stripe tells us
when the account can receive transfers (``account.updated``, see ``webhooks.py``). Bank details for
payees paid by the bank file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lianka.alliance.settlement.statements import Scope
from lianka.billing.payouts import domain
from lianka.billing.payouts import queries as q
from lianka.billing.services import stripe_client
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.settings import Settings


@dataclass(frozen=True)
class Payee:
    """A branch as the payouts pages show it: how it can be paid."""

    id: uuid.UUID
    code: str
    name: str
    stripe_account_id: str | None
    payouts_enabled: bool
    details_submitted: bool
    problem: str | None
    bank_account_name: str | None
    bank_name: str | None
    bank_account_masked: str

    @property
    def connection(self) -> str:
        """``connected`` (Stripe can pay it), ``onboarding`` (account made, not finished) or ``none``."""
        if self.stripe_account_id and self.payouts_enabled:
            return "connected"
        return "onboarding" if self.stripe_account_id else "none"


async def _names(db: Database, book: uuid.UUID, scope: Scope | None) -> list[tuple[uuid.UUID, str, str]]:
    """(id, code, name) of the book's payees: a chain's branches, or (``scope`` an alliance's) its
    partners by slug and name, the operator excepted (it is the hub that pays)."""
    if scope is not None and scope.kind == "alliance":
        operator = scope.operator.id if scope.operator else None
        return sorted((m, p.slug, p.name) for m, p in scope.partners.items() if m != operator)
    async with db.uow(book) as uow:
        return await q.branch_names(uow)


async def payees(db: Database, book: uuid.UUID, scope: Scope | None = None) -> list[Payee]:
    """The book's payees with their connection and bank details: a chain's branches, or an
    alliance's partners when ``scope`` is the alliance's."""
    names = await _names(db, book, scope)
    async with db.uow(book) as uow:
        accounts = await q.payee_accounts(uow)
    out = []
    for payee_id, code, name in sorted(names, key=lambda n: n[1]):
        a = accounts.get(payee_id)
        out.append(
            Payee(
                payee_id,
                code,
                name,
                a.stripe_account_id if a else None,
                a.payouts_enabled if a else False,
                a.details_submitted if a else False,
                a.problem if a else None,
                a.bank_account_name if a else None,
                a.bank_name if a else None,
                domain.mask(a.bank_account_number if a else None),
            )
        )
    return out


async def _payee(db: Database, book: uuid.UUID, payee: uuid.UUID, scope: Scope | None) -> tuple[str, str]:
    found = next(((c, n) for i, c, n in await _names(db, book, scope) if i == payee), None)
    if found is None:
        raise NotFound("No such payee")  # another merchant's branch, or a merchant not in the alliance
    return found


def _kind(scope: Scope | None) -> str:
    return domain.payee_kind(scope.kind if scope is not None else "chain")


async def onboarding_link(
    db: Database,
    settings: Settings,
    book: uuid.UUID,
    payee: uuid.UUID,
    *,
    return_url: str,
    refresh_url: str,
    scope: Scope | None = None,
) -> str:
    """The branch's onboarding link (Stripe's hosted Express onboarding), creating its connected
    account the first time (one per branch: the row is locked and the create call keyed)."""
    client = stripe_client(settings)
    code, name = await _payee(db, book, payee, scope)
    async with db.uow(book) as uow:
        await q.ensure_payee(uow, book, payee, _kind(scope))
        account = await q.payee_account(uow, payee, lock=True)
        assert account is not None
        acct = account.stripe_account_id
        if acct is None:
            created = await client.v1.accounts.create_async(
                params={
                    "type": "express",
                    "business_profile": {"name": f"{code} {name}"},
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"tenant_id": str(book), "payee_id": str(payee)},
                },
                options={"idempotency_key": f"lianka-account-{book}-{payee}"},
            )
            acct = created.id
            await q.set_stripe_account(uow, payee, acct)
        await uow.commit()
    link = await client.v1.account_links.create_async(
        params={"account": acct, "type": "account_onboarding", "return_url": return_url, "refresh_url": refresh_url}
    )
    return link.url


async def set_bank_details(
    db: Database, book: uuid.UUID, payee: uuid.UUID, name: str, bank: str, number: str, scope: Scope | None = None
) -> Payee:
    """The payee's bank account, for the bank payment file (shown back masked)."""
    digits = number.replace(" ", "")
    if not name.strip() or not bank.strip() or not digits.isdigit() or not 6 <= len(digits) <= 34:
        raise ValidationFailed("account name, bank and a 6-34 digit account number are required", field="bank")
    await _payee(db, book, payee, scope)
    async with db.uow(book) as uow:
        await q.ensure_payee(uow, book, payee, _kind(scope))
        await q.set_bank_details(uow, payee, name.strip(), bank.strip(), digits)
        await uow.commit()
    return next(p for p in await payees(db, book, scope) if p.id == payee)
