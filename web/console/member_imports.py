"""Importing members from a CSV file: the upload form, then the job's page whose progress bar htmx
polls every second until the import is done, with the rows it refused and why.

The upload calls the API's use case (``member_imports.start``: the whole file is validated first,
then a job imports it in committed batches) with the key its form was rendered with, so a double
click queues one job; the job's page calls ``member_imports.status`` (what ``GET
/api/v1/members/imports/{id}`` answers). Guards are the API's: ``members:import`` to upload (owners
and admins), ``members:read`` to follow an import.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.services import member_imports
from lianka.web.api.deps import actor_of
from lianka.web.console import member_texts
from lianka.web.console.member_texts import member_form_errors
from lianka.web.console.members import READ, form_key, new_key
from lianka.web.console.pages import FormErrors, HtmlRequest, form_data, form_text, go, is_htmx, language, page

IMPORT = requires(Permission.MEMBERS_IMPORT)
FIELDS = ("file", "mode")
PROGRESS_TARGET = "import-progress"
#: rows of the report a page lists (the count says how many more there are)
SHOWN_ERRORS = 200
#: the file's columns as the import reads them (``tenants.domain.imports``), for the form's help
COLUMNS = (
    ("phone", "手机", True),
    ("name", "姓名", False),
    ("gender", "性别", False),
    ("birthday", "生日", False),
    ("email", "邮箱", False),
    ("tags", "标签", False),
    ("branch", "门店", False),
    ("sms_consent", "短信", False),
    ("email_consent", "邮件", False),
    ("opening_points", "积分", False),
)


class MemberImportPages(Controller):
    path = "/console/members/imports"

    async def _form(
        self,
        request: HtmlRequest,
        principal: Any,
        *,
        mode: str = "skip_invalid",
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Template:
        return await page(
            request,
            "console/members/import.html",
            principal=principal,
            active="members",
            status=status,
            mode=mode,
            key=new_key(),
            errors=errors or FormErrors(),
            columns=COLUMNS,
            labels=member_texts,
        )

    @get("/new", guards=[READ, IMPORT])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal) -> Template:
        return await self._form(request, principal)

    @post("/", guards=[READ, IMPORT])
    async def start(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Validate and queue the file, then its job's page (post/redirect/get); a refused file comes
        back with the reason beside the file field."""
        form = await form_data(request)
        mode = form_text(form, "mode")
        upload = form.get("file")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise ValidationFailed("no file", field="file")
            content = await upload.read()
            job = await member_imports.start(
                ident.db, principal.tenant, content, mode=mode, actor=actor_of(principal), key=form_key(form)
            )
        except DomainError as exc:
            return await self._form(
                request,
                principal,
                mode=mode,
                status=exc.status,
                errors=member_form_errors(exc, language(request), FIELDS),
            )
        return go(request, f"/console/members/imports/{job['id']}")

    @get("/{import_id:uuid}", guards=[READ])
    async def status(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, import_id: FromPath[uuid.UUID]
    ) -> Template:
        """The job's page; htmx's poll (every second while it runs) gets only the progress part."""
        job = await member_imports.status(ident.db, principal.tenant, import_id)
        polled = is_htmx(request) and request.headers.get("hx-target") == PROGRESS_TARGET
        template = "console/members/_progress.html" if polled else "console/members/import_status.html"
        errors = job["errors"]
        return await page(
            request,
            template,
            principal=principal,
            active="members",
            job=job,
            shown_errors=errors[:SHOWN_ERRORS],
            more_errors=max(0, len(errors) - SHOWN_ERRORS),
            running=job["status"] in ("queued", "running"),
            labels=member_texts,
        )
