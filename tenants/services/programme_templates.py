"""Use cases of the onboarding step "choose a programme template for your trade".

Applying a template is one transaction: the welcome coupon template is created (or the one this
template created before is reused) and the template's programme is published as a new version with
:func:`lianka.tenants.services.programme.publish` — the same building block as ``PUT /programme``,
so the version is validated, never back-dated and serialised with other programme writers. The
version's note names the template (``template:<key>``), which is how the console knows which one
is in force. It runs under an Idempotency-Key (the console puts one in the form it renders), so a
double click publishes one version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select

from lianka.platform import audit, idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain import templates
from lianka.tenants.models import Merchant, ProgrammeVersion
from lianka.tenants.services import coupons, programme
from lianka.tenants.services.accounts import merchant_info

NOTE_PREFIX = "template:"


class Applied(msgspec.Struct, frozen=True):
    template: str
    version: int
    coupon_template: str


@dataclass(frozen=True)
class TemplateStatus:
    """What the template page shows besides the templates: the merchant's trade (which template to
    recommend) and the version in force (0: none yet) with the template it came from, if any."""

    trade: str
    currency: str
    version: int
    effective_from: datetime | None
    template: str | None


def template(key: str) -> templates.ProgrammeTemplate:
    found = templates.BY_KEY.get(key)
    if found is None:
        raise ValidationFailed(f"unknown programme template {key!r}", field="template")
    return found


async def _welcome_coupon(uow: UnitOfWork, tpl: templates.ProgrammeTemplate, language: str, currency: str) -> str:
    """The code of an active welcome coupon template for ``tpl``: the one it created before, else a new
    one (``welcome-tea``, or ``welcome-tea-2``… when that code was taken by a deactivated template)."""
    for n in range(1, 100):
        code = tpl.welcome_code if n == 1 else f"{tpl.welcome_code}-{n}"
        existing = await coupons.get_template_by_code(uow, code)
        if existing is not None and existing.active:
            return code
        if existing is None:
            t = tpl.welcome_terms(language, currency, code)
            await coupons.create_template(
                uow,
                coupons.TemplateSpec(
                    code=t.code,
                    name=t.name,
                    kind=t.kind,
                    amount_off=t.amount_off,
                    percent_off=t.percent_off,
                    cap=t.cap,
                    min_spend=t.min_spend,
                    valid_days=t.valid_days,
                    per_member_limit=t.per_member_limit,
                ),
            )
            return code
    raise ValidationFailed("too many welcome coupon templates; reactivate one", field="template")


async def apply_template(
    db: Database, tenant: uuid.UUID, key: str, *, language: str, idempotency_key: str, actor: audit.Actor
) -> tuple[Applied, bool]:
    """Publish template ``key`` as the programme in force from now, with its welcome coupon, in the
    language ``language`` ("zh-CN" or "en"). Returns (what was applied, replayed)."""
    tpl = template(key)
    if language not in templates.LANGUAGES:
        raise ValidationFailed(f"language is one of {', '.join(templates.LANGUAGES)}", field="language")

    async def work(uow: UnitOfWork) -> Applied:
        await programme.lock(uow)
        currency, _ = await merchant_info(uow)
        code = await _welcome_coupon(uow, tpl, language, currency)
        version = await programme.publish(
            uow,
            tpl.programme(language, currency, code),
            effective_from=None,
            note=NOTE_PREFIX + tpl.key,
            actor=actor,
        )
        return Applied(tpl.key, version, code)

    return await idempotency.once(db, tenant, "programme.template", idempotency_key, (tpl.key, language), Applied, work)


async def template_status(db: Database, tenant: uuid.UUID) -> TemplateStatus:
    async with db.uow(tenant) as uow:
        merchant = (
            await uow.session.execute(select(Merchant.trade, Merchant.currency).where(Merchant.id == tenant))
        ).one()
        version, _ = await programme.programme_at(uow, datetime.now(UTC))
        row = await uow.session.get(ProgrammeVersion, (tenant, version)) if version else None
    note = row.note if row is not None else ""
    chosen = note.removeprefix(NOTE_PREFIX) if note.startswith(NOTE_PREFIX) else None
    return TemplateStatus(
        merchant.trade,
        merchant.currency,
        version,
        row.effective_from if row else None,
        chosen if chosen in templates.BY_KEY else None,
    )
