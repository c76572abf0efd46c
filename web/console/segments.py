"""Segments (人群) in the console, under Marketing (营销): the saved segments with their counts, and
the rule builder — AND/OR groups of conditions edited as a form; every change (a field, "add
condition", "add group", "remove") posts the form to ``/build`` with htmx, which answers the
builder again with the live count and a sample of ten, or the refusal beside the field at fault.

The form names each node by its path (``r`` the root group, ``r.0`` its first child, ``r.0.2`` …):
``nodes`` lists them in order, ``<path>.kind`` says what each is, and the condition's parameters
are ``<path>.<name>``. :func:`document` turns that into the rule document the API takes (values the
form cannot make valid stay as typed, so the strict decoder names the field); :func:`rows` does
the reverse for display. Each handler calls one use case of ``tenants.marketing.services``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.identity.principal import Principal
from lianka.tenants.marketing import domain
from lianka.tenants.marketing import services as svc
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import form_values as fv
from lianka.web.console.i18n import N_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_errors, go, language, page, panel_page

READ = requires(*MENU["segments"].permissions)
WRITE = requires(Permission.CAMPAIGNS_WRITE)
ROOT = "r"
_PATH = re.compile(r"^r(\.[0-9]{1,2}){0,4}$")
_SPLIT = re.compile(r"[,，、\s]+")

KIND_LABELS: dict[str, str] = {
    "tier": N_("Tier"),
    "tags": N_("Tags"),
    "stage": N_("Lifecycle stage"),
    "rfm": N_("RFM score"),
    "birthday_month": N_("Birthday month"),
    "joined": N_("Join date"),
    "last_purchase": N_("Last purchase"),
    "spend": N_("Spend in a window"),
    "visits": N_("Visits in a window"),
    "branch": N_("Branch"),
    "points": N_("Points balance"),
    "stored_value": N_("Stored value balance"),
    "points_expiring": N_("Points expiring"),
    "coupon": N_("Holds a coupon"),
    "consent": N_("Marketing consent"),
}
STAGES = {"new": N_("New"), "active": N_("Active"), "at_risk": N_("At risk"), "dormant": N_("Dormant")}
SCORES = {"recency": N_("Recency"), "frequency": N_("Frequency"), "monetary": N_("Monetary")}
CHANNELS = {
    "sms": N_("SMS"),
    "email": N_("E-mail"),
    "portal": N_("Portal inbox"),
    "wechat": N_("WeChat"),
    "alliance": N_("Alliance partners' offers"),
}
#: the parameters of each kind as the form holds them: name -> how it converts
PARAMS: dict[str, dict[str, str]] = {
    "tier": {"tiers": "list"},
    "tags": {"tags": "list", "match": "text"},
    "stage": {"stages": "many"},
    "rfm": {"score": "text", "min": "int", "max": "int"},
    "birthday_month": {"months": "ints"},
    "joined": {"on_or_after": "date", "before": "date"},
    "last_purchase": {"on_or_after": "date", "before": "date"},
    "spend": {"days": "int", "min": "money", "max": "money"},
    "visits": {"days": "int", "min": "int", "max": "int"},
    "branch": {"branches": "many", "how": "text", "days": "int"},
    "points": {"min": "int", "max": "int"},
    "stored_value": {"min": "money", "max": "money"},
    "points_expiring": {"days": "int", "min": "int", "this_month": "flag"},
    "coupon": {"templates": "many"},
    "consent": {"channel": "text", "granted": "bool"},
}
NEW_CONDITION: dict[str, Any] = {"kind": "consent", "channel": "sms", "granted": True}


def _convert(how: str, form: FormMultiDict, name: str, currency: str) -> Any:
    """The form's value as the document wants it; text that cannot be converted stays text (the
    strict decoder then refuses it naming the field). ``None``: leave the parameter out."""
    if how == "many":
        return fv.all_of(form, name)
    text = fv.text_of(form, name, max_length=400)
    if how == "list":
        return [t for t in _SPLIT.split(text) if t]
    if how == "ints":
        return [int(t) if t.isdigit() else t for t in _SPLIT.split(text) if t]
    if how == "bool":
        return text != "false"
    if how == "flag":
        return True if text == "true" else None
    if not text:
        return None
    if how == "int":
        return int(text) if text.isdigit() else text
    if how == "money":
        try:
            return fv.minor_units(text, name, currency)
        except DomainError:
            return text
    return text


def _tree(form: FormMultiDict, currency: str) -> dict[str, Any]:
    """The nodes of the form as a nested document (paths renumbered by their order)."""
    paths = [p for p in fv.all_of(form, "nodes") if _PATH.match(p)]
    if ROOT not in paths:
        paths.insert(0, ROOT)
    nodes: dict[str, dict[str, Any]] = {}
    for p in paths:
        kind = fv.text_of(form, f"{p}.kind", max_length=40) or ("group" if p == ROOT else "consent")
        if p == ROOT or kind == "group":
            op = fv.text_of(form, f"{p}.op", max_length=8) or "and"
            node: dict[str, Any] = {"kind": "group", "op": op, "negate": fv.flag(form, f"{p}.negate"), "conditions": []}
        else:
            node = {"kind": kind}
            for name, how in PARAMS.get(kind, {}).items():
                value = _convert(how, form, f"{p}.{name}", currency)
                if value is not None:
                    node[name] = value
        parent = nodes.get(p.rsplit(".", 1)[0]) if p != ROOT else None
        if p != ROOT and (parent is None or parent["kind"] != "group"):
            continue
        nodes[p] = node
        if parent is not None:
            parent["conditions"].append(node)
    return nodes[ROOT]


def _locate(doc: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = doc
    for part in path.split(".")[1:]:
        children = node.get("conditions", [])
        if not part.isdigit() or int(part) >= len(children):
            return None
        node = children[int(part)]
    return node


def apply(doc: dict[str, Any], action: str) -> dict[str, Any]:
    """``add-condition:<path>``, ``add-group:<path>`` or ``remove:<path>`` on the root group ``doc``."""
    verb, _, path = action.partition(":")
    if not _PATH.match(path):
        return doc
    if verb in ("add-condition", "add-group"):
        node = _locate(doc, path)
        if node is not None and node.get("kind") == "group" and len(node["conditions"]) < domain.MAX_CONDITIONS:
            new = dict(NEW_CONDITION)
            if verb == "add-group":
                new = {"kind": "group", "op": "or", "negate": False, "conditions": [dict(NEW_CONDITION)]}
            node["conditions"].append(new)
    elif verb == "remove" and path != ROOT:
        parent = _locate(doc, path.rsplit(".", 1)[0])
        index = int(path.rsplit(".", 1)[1])
        if parent is not None and index < len(parent.get("conditions", [])):
            del parent["conditions"][index]
    return doc


def document(form: FormMultiDict, currency: str) -> dict[str, Any]:
    root = _tree(form, currency)
    action = fv.text_of(form, "action", max_length=40)
    return {"version": domain.VERSION, "root": apply(root, action) if action else root}


@dataclass
class Row:
    """One node of the builder as the template draws it."""

    path: str
    depth: int
    kind: str
    values: dict[str, Any] = field(default_factory=dict)


def _shown(how: str, value: Any, currency: str) -> Any:
    if how == "money" and isinstance(value, int):
        return fv.major_units(value, currency)
    if how in ("list", "ints") and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if how == "many":
        return [str(v) for v in value] if isinstance(value, list) else []
    if how == "bool":
        return "true" if value is not False else "false"
    if how == "flag":
        return "true" if value is True else ""
    return "" if value is None else str(value)


def rows(doc: dict[str, Any], currency: str) -> list[Row]:
    out: list[Row] = []

    def walk(node: dict[str, Any], path: str, depth: int) -> None:
        kind = str(node.get("kind", ""))
        if kind == "group":
            out.append(Row(path, depth, "group", {"op": node.get("op", "and"), "negate": bool(node.get("negate"))}))
            for i, child in enumerate(node.get("conditions") or []):
                if isinstance(child, dict):
                    walk(child, f"{path}.{i}", depth + 1)
        else:
            params = PARAMS.get(kind, {})
            out.append(Row(path, depth, kind, {n: _shown(h, node.get(n), currency) for n, h in params.items()}))

    root = doc.get("root")
    walk(root if isinstance(root, dict) else {"kind": "group"}, ROOT, 0)
    return out


_FIELD_PATH = re.compile(r"\.conditions\[(\d+)\]")


def error_place(field_path: str) -> tuple[str, str | None]:
    """``$.root.conditions[0].min`` -> (``r.0``, ``min``): the node and parameter a refusal names."""
    path = _FIELD_PATH.sub(r".\1", field_path.removeprefix("$.root").replace("$", ""))
    parts = [p for p in path.split(".") if p]
    nums = [p for p in parts if p.isdigit()]
    rest = [p for p in parts if not p.isdigit()]
    return ".".join([ROOT, *nums]), (rest[-1] if rest else None)


class SegmentPages(Controller):
    path = "/console/segments"

    async def _builder(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        doc: dict[str, Any],
        name: str,
        segment_id: uuid.UUID | None,
        status: int = 200,
        name_error: str | None = None,
    ) -> Template:
        merchant = await _currency(request, principal, ident)
        b = await svc.builder(ident.db, principal.tenant, doc)
        place: tuple[str | None, str | None] = (None, None)
        message = None
        if b.error is not None:
            place = error_place(str(b.error.extra.get("field", "$.root")))
            message = b.error.detail
        template = (
            "console/segments/_builder.html" if request.headers.get("hx-request") else "console/segments/edit.html"
        )
        return await page(
            request,
            template,
            principal=principal,
            active="segments",
            status=status,
            rows=rows(doc, merchant),
            name=name,
            name_error=name_error,
            segment_id=segment_id,
            builder=b,
            error_node=place[0],
            error_param=place[1],
            error_message=message,
            kinds=KIND_LABELS,
            stages=STAGES,
            scores=SCORES,
            channels=CHANNELS,
        )

    @get("/", guards=[READ])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        segments = await svc.list_segments(ident.db, principal.tenant)
        return await panel_page(request, "segments", principal=principal, segments=segments)

    @get("/new", guards=[READ, WRITE])
    async def new(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        doc = {"version": domain.VERSION, "root": {"kind": "group", "op": "and", "conditions": [dict(NEW_CONDITION)]}}
        return await self._builder(request, principal, ident, doc=doc, name="", segment_id=None)

    @get("/{segment_id:uuid}", guards=[READ])
    async def edit(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService, segment_id: FromPath[uuid.UUID]
    ) -> Template:
        s = await svc.get_segment(ident.db, principal.tenant, segment_id)
        return await self._builder(request, principal, ident, doc=dict(s.rules), name=s.name, segment_id=s.id)

    @post("/build", guards=[READ], status_code=200)
    async def build(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        form = await form_data(request)
        currency = await _currency(request, principal, ident)
        raw_id = fv.text_of(form, "segment_id", max_length=40)
        return await self._builder(
            request,
            principal,
            ident,
            doc=document(form, currency),
            name=fv.text_of(form, "name", max_length=100),
            segment_id=uuid.UUID(raw_id) if re.fullmatch(r"[0-9a-f-]{36}", raw_id) else None,
        )

    @post("/save", guards=[READ, WRITE], status_code=200)
    async def save(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        form = await form_data(request)
        currency = await _currency(request, principal, ident)
        doc = document(form, currency)
        name = fv.text_of(form, "name", max_length=100)
        raw_id = fv.text_of(form, "segment_id", max_length=40)
        segment_id = uuid.UUID(raw_id) if re.fullmatch(r"[0-9a-f-]{36}", raw_id) else None
        try:
            if segment_id is None:
                await svc.create_segment(ident.db, principal.tenant, name, doc)
            else:
                await svc.change_segment(ident.db, principal.tenant, segment_id, name=name, raw=doc)
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            errors = form_errors(exc, language(request), ("name",))
            return await self._builder(
                request, principal, ident, doc=doc, name=name, segment_id=segment_id, status=exc.status,
                name_error=errors.get("name") or (errors.general[0] if errors.general and exc.extra.get("field") == "name" else None),
            )  # fmt: skip
        return go(request, "/console/segments", flash="segment-saved")


async def _currency(request: HtmlRequest, principal: Principal, ident: IdentityService) -> str:
    return (await merchant_profile(ident.db, principal.tenant)).currency
