"""CSV member import: validate everything first, then enrol in committed batches.

* ``all_or_nothing``: any invalid row → the import fails with its report and nothing is written.
* ``skip_invalid``: the valid rows are imported; the report lists the others.

The job keeps a ``processed`` pointer and commits it with each batch, so a crashed import resumes
where it stopped, and the UI / CLI can show progress. Re-running the same file is harmless: a
person who is already a member is not enrolled twice (their empty profile fields are filled), and
opening points are posted under a key made of the phone and the amount, so they are never credited
twice. Imported members get no sign-up bonus: they are not new to the merchant.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lianka.platform import outbox
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity.members import _find_or_create_person
from lianka.platform.webhooks import services as webhooks
from lianka.tenants import queries
from lianka.tenants.domain.imports import MemberRow, parse_members_csv
from lianka.tenants.models import MemberImport
from lianka.tenants.services import accounts, crm
from lianka.tenants.services.programme import programme_at

BATCH = 200
MODES = ("all_or_nothing", "skip_invalid")
MAX_BYTES = 20 * 2**20


def view(job: MemberImport) -> dict[str, Any]:
    return {
        "id": job.id,
        "mode": job.mode,
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "created_members": job.created_members,
        "errors": job.errors,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "percent": 100 if job.total == 0 else job.processed * 100 // job.total,
    }


async def create(uow: UnitOfWork, content: bytes, *, mode: str, actor: str) -> MemberImport:
    """Validate the file and queue the import (through the outbox: queued only if this commits)."""
    if mode not in MODES:
        raise ValidationFailed(f"mode is one of {', '.join(MODES)}", field="mode")
    if len(content) > MAX_BYTES:
        raise ValidationFailed("the file is larger than 20 MB", field="file")
    try:
        decoded = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8 text", field="file") from None
    parsed = parse_members_csv(decoded)
    if parsed.fatal:
        raise ValidationFailed(parsed.fatal, field="file")
    errors = [{"line": e.line, "errors": list(e.errors)} for e in parsed.errors]
    rejected = bool(errors) and mode == "all_or_nothing"
    job = MemberImport(
        tenant_id=uow.tenant_id,
        mode=mode,
        status="failed" if rejected else "queued",
        content=decoded,
        total=0 if rejected else len(parsed.rows),
        processed=0,
        created_members=0,
        errors=errors,
        actor=actor[:200],
        finished_at=datetime.now(UTC) if rejected else None,
    )
    uow.session.add(job)
    await uow.session.flush()
    if not rejected:
        await outbox.enqueue(
            uow, "run_member_import", queue="default", tenant=str(uow.tenant_id), import_id=str(job.id)
        )
    return job


async def get(uow: UnitOfWork, import_id: uuid.UUID) -> MemberImport:
    job = await uow.session.get(MemberImport, (uow.tenant_id, import_id), populate_existing=True)
    if job is None:
        raise NotFound("import not found")
    return job


async def start(
    db: Database, tenant: uuid.UUID, content: bytes, *, mode: str, actor: str, key: str | None = None
) -> dict[str, Any]:
    """Use case: validate a file and queue its import (:func:`create`); the job as :func:`view` shows it.
    A file refused as a whole raises and writes nothing; an ``all_or_nothing`` file with invalid rows
    is recorded as ``failed`` with its row report. With ``key`` (the console's upload form) the same
    upload sent twice queues one job and answers the first one (``crm.write_once``)."""

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        return view(await create(uow, content, mode=mode, actor=actor))

    return await crm.write_once(
        db, tenant, work, key=key, scope="members.import", request=(mode, hashlib.sha256(content).hexdigest())
    )


async def status(db: Database, tenant: uuid.UUID, import_id: uuid.UUID) -> dict[str, Any]:
    """Use case: an import's status, progress and row report."""
    async with db.uow(tenant) as uow:
        return view(await get(uow, import_id))


async def _import_row(
    uow: UnitOfWork, tenant: uuid.UUID, row: MemberRow, branches: dict[str, uuid.UUID], programme: Any, now: datetime
) -> bool:
    await uow.set_system()
    member_id = await _find_or_create_person(uow, row.phone)
    await uow.set_tenant(tenant)
    branch = branches.get(row.branch) if row.branch else None
    created = await queries.add_membership(uow, member_id, branch)
    if created:  # the same event as any other join (the till's, the join link's), in this batch's transaction
        data = {"member_id": str(member_id), "branch_id": str(branch) if branch else None}
        await webhooks.emit(uow, "member.joined", data)
    consent: dict[str, Any] = {}
    for channel, granted in (("sms", row.sms_consent), ("email", row.email_consent)):
        if granted:
            consent[channel] = {
                "granted": True,
                "at": now.isoformat(),
                "history": [{"granted": True, "at": now.isoformat(), "source": "import"}],
            }
    # the join branch is the membership's: the file's branch only when this import enrolled the person
    await queries.merge_imported_profile(uow, member_id, row, json.dumps(consent))
    key = f"import-opening:{row.phone}:{row.opening_points}"
    if row.opening_points and not await queries.ledger_entry_exists(uow, key):
        await accounts.award_points(
            uow,
            member_id,
            row.opening_points,
            programme=programme,
            reason="opening_balance",
            key=key,
            business_time=now,
            refs={"import": "csv"},
        )
    return created


async def run(
    db: Database, tenant: uuid.UUID, import_id: uuid.UUID, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Run (or resume) an import, one committed batch at a time."""
    async with db.uow(tenant) as uow:
        job = await get(uow, import_id)
        if job.status in ("done", "failed"):
            return view(job)
        parsed = parse_members_csv(job.content)
        job.status = "running"
        await uow.commit()
    rows = parsed.rows
    done = job.processed
    while done < len(rows):
        async with db.uow(tenant) as uow:
            job = await get(uow, import_id)
            done = job.processed  # another worker may have moved on: trust the committed pointer
            if done >= len(rows):
                break
            now = datetime.now(UTC)
            _, programme = await programme_at(uow, now)
            branches = await queries.branch_ids_by_code(uow)
            batch = rows[done : done + BATCH]
            created = 0
            errors = list(job.errors)
            for row in batch:
                if row.branch and row.branch not in branches:
                    errors.append({"line": row.line, "errors": [f"branch: no branch {row.branch!r}"]})
                    continue
                created += await _import_row(uow, tenant, row, branches, programme, now)
            await queries.record_import_batch(
                uow,
                import_id,
                before=done,
                processed=done + len(batch),
                created=created,
                errors_json=json.dumps(errors),
            )
            await uow.commit()
            done += len(batch)
        if progress:
            progress(done, len(rows))
    async with db.uow(tenant) as uow:
        await queries.finish_import(uow, import_id)
        await uow.commit()
        return view(await get(uow, import_id))
