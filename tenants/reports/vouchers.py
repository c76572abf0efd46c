"""Accounting vouchers (会计凭证): a month's journal summarised for the merchant's accountant.

One voucher per journal entry kind of the month (top-ups, stored-value spends, refunds, expiries,
clearing, membership sales …), one line per accounting account: the month's postings in the
merchant's currency on the ledger accounts mapped to that accounting code, summed. The ledger's
sign is the accountant's: a negative posting is a debit (借), a positive one a credit (贷) — every
entry balances in its unit, so every voucher balances (checked: an unbalanced one is refused).
Points (a unit of their own) are not money and stay out; their value is in the liability report.

The mapping ledger account kind → (code, name) is the merchant's (``account_mappings``), over PRC
defaults (:data:`DEFAULTS`); a ``clr_*`` key maps every branch clearing line. Layout of the files:
``docs/vouchers.md``.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from lianka.alliance.ledger.domain import check_period
from lianka.platform.db import Database
from lianka.platform.errors import ValidationFailed
from lianka.platform.money import minor_digits
from lianka.tenants.reports import finance_queries as q
from lianka.tenants.services.accounts import merchant_info

#: ledger account kind -> (accounting code, name): 小企业会计准则 / 企业会计准则 style codes
DEFAULTS: dict[str, tuple[str, str]] = {
    "cash": ("1001", "库存现金"),
    "sv_float": ("1002", "银行存款-储值资金"),
    "sv_principal": ("2203.01", "预收账款-储值本金"),
    "sv_bonus": ("2203.02", "预收账款-储值赠送"),
    "deferred_membership_revenue": ("2203.03", "预收账款-付费会员"),
    "sales": ("6001", "主营业务收入"),
    "membership_revenue": ("6001.02", "主营业务收入-付费会员"),
    "bonus_expense": ("6601", "销售费用-储值赠送与积分"),
    "points_breakage": ("6051", "其他业务收入-过期沉淀"),
    "clr_hub": ("1221.01", "其他应收款-内部往来(总部)"),
    "clr_*": ("1221.02", "其他应收款-内部往来(门店)"),
}
UNMAPPED = ("9999", "未映射科目")


def account_for(kind: str, mapping: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """The accounting account of a ledger account kind: exact key, then a ``prefix*`` key, then the
    defaults the same way; an unknown kind goes to 9999 (visible, never dropped)."""
    for table in (mapping, DEFAULTS):
        if kind in table:
            return table[kind]
        for key, value in table.items():
            if key.endswith("*") and kind.startswith(key[:-1]):
                return value
    return UNMAPPED[0], f"{UNMAPPED[1]}({kind})"


@dataclass(frozen=True)
class Line:
    code: str
    name: str
    debit: int  # minor units, not negative
    credit: int
    kinds: tuple[str, ...]  # the ledger account kinds summed into it


@dataclass(frozen=True)
class Voucher:
    number: int
    entry_kind: str
    lines: tuple[Line, ...]

    @property
    def debit(self) -> int:
        return sum(x.debit for x in self.lines)

    @property
    def credit(self) -> int:
        return sum(x.credit for x in self.lines)


def build(moves: Iterable[q.VoucherMove], mapping: Mapping[str, tuple[str, str]]) -> list[Voucher]:
    """Pure: vouchers numbered 1… in entry-kind order, lines in code order."""
    by_kind: dict[str, dict[tuple[str, str], list[q.VoucherMove]]] = defaultdict(lambda: defaultdict(list))
    for m in moves:
        by_kind[m.entry_kind][account_for(m.account_kind, mapping)].append(m)
    out: list[Voucher] = []
    for entry_kind in sorted(by_kind):
        lines = []
        for (code, name), ms in sorted(by_kind[entry_kind].items()):
            amount = sum(m.amount for m in ms)
            if amount:
                kinds = tuple(sorted({m.account_kind for m in ms}))
                lines.append(Line(code, name, -amount if amount < 0 else 0, amount if amount > 0 else 0, kinds))
        if not lines:
            continue
        v = Voucher(len(out) + 1, entry_kind, tuple(lines))
        if v.debit != v.credit:
            raise ValueError(f"voucher {entry_kind} does not balance: {v.debit} != {v.credit}")
        out.append(v)
    return out


@dataclass(frozen=True)
class Vouchers:
    period: str
    currency: str
    vouchers: tuple[Voucher, ...]
    mapping: dict[str, tuple[str, str]]  # the merchant's own rows


async def vouchers(db: Database, tenant: uuid.UUID, period: str) -> Vouchers:
    check_period(period)
    async with db.uow(tenant) as uow:
        currency, _ = await merchant_info(uow)
        moves = await q.voucher_moves(uow, period, currency)
        mapping = await q.account_mappings(uow)
    return Vouchers(period, currency, tuple(build(moves, mapping)), mapping)


def _checked(ledger_kind: str, code: str, name: str) -> tuple[str, str]:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}\*?", ledger_kind):
        raise ValidationFailed("unknown ledger account kind", field="ledger_kind")
    code, name = code.strip(), name.strip()
    if code and not re.fullmatch(r"[0-9A-Za-z.\-]{1,20}", code):
        raise ValidationFailed("an accounting code is 1-20 letters, digits, '.' or '-'", field=f"code_{ledger_kind}")
    if code and not 1 <= len(name) <= 60:
        raise ValidationFailed("an account name is 1-60 characters", field=f"name_{ledger_kind}")
    return code, name


async def set_mappings(db: Database, tenant: uuid.UUID, changes: Mapping[str, tuple[str, str]]) -> None:
    """The merchant maps ledger account kinds to its own accounting codes, all in one transaction; a
    kind set to its default (or to an empty code) goes back to following the default. Bad input
    anywhere changes nothing."""
    checked = {kind: _checked(kind, code, name) for kind, (code, name) in changes.items()}
    async with db.uow(tenant) as uow:
        for kind, (code, name) in sorted(checked.items()):
            if not code or DEFAULTS.get(kind) == (code, name):
                await q.delete_mapping(uow, kind)
            else:
                await q.upsert_mapping(uow, kind, code, name)
        await uow.commit()


async def set_mapping(db: Database, tenant: uuid.UUID, ledger_kind: str, code: str, name: str) -> None:
    await set_mappings(db, tenant, {ledger_kind: (code, name)})


#: the file layout (docs/vouchers.md): one row per voucher line
HEADER = ["voucher_date", "voucher_no", "summary", "account_code", "account_name", "debit", "credit", "currency"]


def rows(v: Vouchers, last_day: str) -> list[list[object]]:
    """The voucher lines as the file's rows: amounts in yuan with two decimals (exact ``Decimal``),
    the empty side blank, dated the month's last day, numbered 记-0001…"""
    digits = minor_digits(v.currency)

    def major(x: int) -> object:
        return Decimal(x).scaleb(-digits) if x else ""

    return [
        [
            last_day,
            f"记-{x.number:04d}",
            x.entry_kind,
            line.code,
            line.name,
            major(line.debit),
            major(line.credit),
            v.currency,
        ]
        for x in v.vouchers
        for line in x.lines
    ]
