"""The programme editor's forms: one per section of the programme document, to and from the document.

A section's form is a flat set of inputs (``tier_policy-window_months``, ``tiers-2-threshold``):
nested fields are joined with ``-``, list items numbered by their row. :func:`from_programme` fills
the inputs from a version (plus one blank row per list, to add an item); :func:`from_post` keeps
what was posted, to show it again beside its errors; :func:`to_value` reads the inputs into the
section's value — exactly what the API's ``PUT /programme/{section}`` takes — so that the same use
case (:func:`lianka.tenants.services.programme.publish_section`) validates and publishes it.
Amounts are typed in yuan and read exactly in fen (:mod:`form_values`).

When the use case refuses the value, its problem names a path in the document
(``stored_value.plans[1].get``); :meth:`SectionForm.input_for` finds the input it came from, so the
message stands beside it even though blank and removed rows were left out of the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.datastructures import FormMultiDict

from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import Programme, TierQualification
from lianka.web.console import form_values as fv

#: most rows a list may post (a programme with more tiers, rules or plans is edited through the API)
MAX_ROWS = 60


@dataclass(frozen=True)
class Spec:
    """One input: its name inside its group (``expiry-months``, ``threshold``) and how it reads."""

    name: str
    kind: str  # text int opt_int yuan rate flag date list multi weekdays streak threshold steps clock


def _specs(*pairs: str) -> tuple[Spec, ...]:
    return tuple(Spec(*p.split(":")) for p in pairs)


@dataclass(frozen=True)
class Section:
    """A section of the document as a form. ``root``: the document key the section's value replaces
    (None when the value's keys are document keys, as for tiers and rules); ``lists``: list name ->
    the inputs of one row, and the values a blank row starts with."""

    key: str
    root: str | None
    fields: tuple[Spec, ...] = ()
    lists: dict[str, tuple[Spec, ...]] = field(default_factory=dict)
    blank: dict[str, dict[str, str]] = field(default_factory=dict)


SECTIONS: dict[str, Section] = {
    s.key: s
    for s in (
        Section(
            "tiers",
            None,
            _specs(
                "tier_policy-window_months:int", "tier_policy-review_every_months:int", "tier_policy-retention:text"
            ),
            {
                "tiers": _specs(
                    "code:text",
                    "name:text",
                    "rank:int",
                    "qualification:text",
                    "threshold:threshold",
                    "discount_percent:int",
                    "points_multiplier:rate",
                    "birthday_multiplier:rate",
                    "perks:list",
                )
            },
            {
                "tiers": {
                    "qualification": "spend",
                    "discount_percent": "0",
                    "points_multiplier": "1",
                    "birthday_multiplier": "1",
                }
            },
        ),
        Section(
            "points",
            "points",
            _specs(
                "name:text",
                "earn_per_major:rate",
                "rounding:text",
                "expiry-kind:text",
                "expiry-months:int",
                "expiry-extra_years:int",
                "expiry-remind_days_before:int",
                "pending_days:int",
                "cash_value_per_point:rate",
                "cash_max_share_percent:int",
                "cash_min_points:int",
            ),
        ),
        Section(
            "rules",
            None,
            (),
            {
                "rules": _specs(
                    "code:text",
                    "kind:text",
                    "points:int",
                    "multiplier:rate",
                    "streak_bonus:streak",
                    "event:text",
                    "weekdays:weekdays",
                    "branches:list",
                    "tiers:multi",
                    "starts:date",
                    "ends:date",
                    "cap_per_day:opt_int",
                    "cap_per_member:opt_int",
                    "cap_total:opt_int",
                    "min_spend:yuan",
                    "coupon_template:text",
                    "active:flag",
                )
            },
            {"rules": {"kind": "promotion", "points": "0", "multiplier": "1", "min_spend": "0.00", "active": "on"}},
        ),
        Section(
            "join", "join", _specs("policy:text", "single_purchase_min:yuan", "cumulative_min:yuan", "min_age:int")
        ),
        Section(
            "stored-value",
            "stored_value",
            _specs("consumption:text", "bonus_funder:text", "bonus_counts_as_spend:flag"),
            {"plans": _specs("code:text", "name:text", "pay:yuan", "get:yuan", "active:flag")},
            {"plans": {"active": "on"}},
        ),
        Section("refunds", "refunds", _specs("clawback:flag", "reissue_coupons:flag", "anywhere:flag")),
        Section(
            "promotions",
            None,
            (),
            {
                "promotions": _specs(
                    "code:text",
                    "name:text",
                    "kind:text",
                    "percent_off:int",
                    "steps:steps",
                    "buy:int",
                    "multiplier:rate",
                    "skus:list",
                    "categories:list",
                    "members_only:flag",
                    "min_tier:text",
                    "weekdays:weekdays",
                    "branches:list",
                    "starts:date",
                    "ends:date",
                    "from_time:clock",
                    "until_time:clock",
                    "stackable:flag",
                    "active:flag",
                    "limit_per_member:opt_int",
                )
            },
            {
                "promotions": {
                    "kind": "spend_save",
                    "percent_off": "0",
                    "buy": "1",
                    "multiplier": "1",
                    "stackable": "on",
                    "active": "on",
                }
            },
        ),
    )
}

_MULTI = frozenset({"multi", "weekdays"})
_LIST_PATH = re.compile(r"^(?P<list>[a-z_]+)\[(?P<index>\d+)\](?:\.(?P<rest>[a-z_]+))?")
_SPLIT = re.compile(r"[,，、;；\n]+")
_STREAK_ITEM = re.compile(r"^(\d{1,3})\s*[:：]\s*(\d{1,9})$")
_STEP_ITEM = re.compile(r"^([^:：]{1,20})\s*[:：]\s*([^:：]{1,20})$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::00)?$")
#: the sections whose value is their one list (a bare list, as the API takes it)
_LIST_SECTIONS = {"rules": "rules", "promotions": "promotions"}


@dataclass
class SectionForm:
    """The inputs of one section's form as shown: text ``values``, checkbox ``groups``, how many
    ``rows`` each list shows, and (after :func:`to_value`) which row each item of the value came from."""

    section: Section
    values: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    order: dict[str, list[int]] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def chosen(self, name: str, option: object) -> bool:
        return str(option) in self.groups.get(name, [])

    def names(self) -> set[str]:
        """Every input of the form (where an error may be shown)."""
        out = {s.name for s in self.section.fields}
        for lst, specs in self.section.lists.items():
            out |= {f"{lst}-{i}-{s.name}" for i in range(self.rows.get(lst, 0)) for s in specs}
        return out

    def input_for(self, path: str) -> str | None:
        """The input a problem's ``field`` (a path in the document) came from, None if none did."""
        root = self.section.root
        if root:
            if not path.startswith(f"{root}."):
                return None
            path = path[len(root) + 1 :]
        found = _LIST_PATH.match(path)
        if found and found.group("list") in self.section.lists:
            rows = self.order.get(found.group("list"), [])
            index = int(found.group("index"))
            if index >= len(rows):
                return None
            return f"{found.group('list')}-{rows[index]}-{found.group('rest') or 'code'}"
        return path.split("[", 1)[0].replace(".", "-")


# --- from the document ------------------------------------------------------------------------------


def _part(doc: dict[str, Any], section: Section) -> dict[str, Any]:
    if section.root:
        part: dict[str, Any] = doc[section.root]
        return part
    return {k: doc[k] for k in ("tiers", "tier_policy", "rules", "promotions") if k in doc}


def _shown(spec: Spec, value: Any, currency: str, item: dict[str, Any]) -> str | list[str]:
    kind = spec.kind
    if kind == "threshold":
        kind = "yuan" if item.get("qualification", "spend") == TierQualification.SPEND else "int"
    if value is None:
        return [] if kind in _MULTI else ""
    match kind:
        case "yuan":
            return fv.major_units(int(value), currency)
        case "flag":
            return "on" if value else ""
        case "list":
            return ", ".join(str(v) for v in value)
        case "multi" | "weekdays":
            return [str(v) for v in value]
        case "streak":
            return ", ".join(f"{k}:{n}" for k, n in value.items())
        case "steps":
            return ", ".join(
                f"{fv.major_units(int(s['spend']), currency)}:{fv.major_units(int(s['off']), currency)}" for s in value
            )
        case "clock":
            return str(value)[:5]
        case _:
            return str(value)


def _put(form: SectionForm, name: str, shown: str | list[str]) -> None:
    if isinstance(shown, list):
        form.groups[name] = shown
    else:
        form.values[name] = shown


def from_programme(programme: Programme, key: str, currency: str) -> SectionForm:
    """The form of section ``key`` filled in from ``programme``, with a blank row per list."""
    section = SECTIONS[key]
    return from_document(section, _part(msgspec.to_builtins(programme), section), currency)


def from_document(section: Section, part: dict[str, Any], currency: str) -> SectionForm:
    """The form of ``section`` filled in from ``part`` (the document's value for it, as JSON types),
    with a blank row per list — for another versioned document edited the same way (alliance terms)."""
    form = SectionForm(section)
    for spec in section.fields:
        value: Any = part
        for step in spec.name.split("-"):
            value = value.get(step) if isinstance(value, dict) else None
        _put(form, spec.name, _shown(spec, value, currency, part))
    for lst, specs in section.lists.items():
        items = part.get(lst, [])
        for i, item in enumerate(items):
            for spec in specs:
                _put(form, f"{lst}-{i}-{spec.name}", _shown(spec, item.get(spec.name), currency, item))
        blank = section.blank.get(lst, {})
        for spec in specs:
            name = f"{lst}-{len(items)}-{spec.name}"
            _put(form, name, [] if spec.kind in _MULTI else blank.get(spec.name, ""))
        form.rows[lst] = len(items) + 1
    return form


def from_post(post: FormMultiDict, key: str | Section) -> SectionForm:
    """The form of section ``key`` (or of another document's ``Section``) as it was posted (to show
    it again with its errors)."""
    section = key if isinstance(key, Section) else SECTIONS[key]
    form = SectionForm(section)
    for spec in section.fields:
        _put(form, spec.name, _posted(post, spec.name, spec))
    for lst, specs in section.lists.items():
        rows = fv.whole(fv.text_of(post, f"{lst}-rows", max_length=3), f"{lst}-rows", required=False) or 0
        form.rows[lst] = min(rows, MAX_ROWS)
        for i in range(form.rows[lst]):
            for spec in (*specs, Spec("remove", "flag")):
                _put(form, f"{lst}-{i}-{spec.name}", _posted(post, f"{lst}-{i}-{spec.name}", spec))
    return form


def _posted(post: FormMultiDict, name: str, spec: Spec) -> str | list[str]:
    if spec.kind in _MULTI:
        return fv.all_of(post, name)
    value = post.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- to the section's value ---------------------------------------------------------------------------


def _read(form: SectionForm, name: str, spec: Spec, currency: str, item: dict[str, Any]) -> Any:
    text = form.value(name)
    if "\x00" in text or len(text) > 400:
        raise ValidationFailed(f"{name}: not a value", field=name, reason="too-long")
    kind = spec.kind
    if kind == "threshold":
        kind = "yuan" if item.get("qualification") == TierQualification.SPEND else "int"
        if not text:
            return 0
    match kind:
        case "int":
            return fv.whole(text, name)
        case "opt_int":
            return fv.whole(text, name, required=False)
        case "yuan":
            return fv.minor_units(text, name, currency, required=False) or 0
        case "rate":
            return fv.rate(text, name)
        case "flag":
            return bool(text)
        case "date":
            found = fv.day(text, name)
            return found.isoformat() if found else None
        case "list":
            return [v.strip() for v in _SPLIT.split(text) if v.strip()]
        case "multi":
            return form.groups.get(name, [])
        case "weekdays":
            days = form.groups.get(name, [])
            if any(d not in "0123456" or len(d) != 1 for d in days):
                raise ValidationFailed(f"{name}: weekdays are 0..6", field=name, reason="invalid")
            return sorted({int(d) for d in days})
        case "streak":
            return _streak(text, name)
        case "steps":
            return _steps(text, name, currency)
        case "clock":
            if not text:
                return None
            clock = _CLOCK.match(text)
            if clock is None:
                raise ValidationFailed(f"{name}: a time such as 14:00", field=name, reason="format")
            return f"{int(clock.group(1)):02d}:{clock.group(2)}:00"
        case _:
            return text


def _streak(text: str, name: str) -> dict[str, int]:
    """``7:20, 30:100`` (day of the streak: bonus points) as the document's ``{"7": 20, "30": 100}``."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in _SPLIT.split(text)):
        if not part:
            continue
        found = _STREAK_ITEM.match(part)
        if found is None:
            raise ValidationFailed(f"{name}: day:points pairs", field=name, reason="format")
        out[str(int(found.group(1)))] = int(found.group(2))
    return out


def _steps(text: str, name: str, currency: str) -> list[dict[str, int]]:
    """``100:10, 200:30`` (满 yuan : 减 yuan) as the document's ``[{"spend": 10000, "off": 1000}, …]``."""
    out: list[dict[str, int]] = []
    for part in (p.strip() for p in _SPLIT.split(text)):
        if not part:
            continue
        found = _STEP_ITEM.match(part)
        if found is None:
            raise ValidationFailed(f"{name}: spend:saving pairs", field=name, reason="format")
        spend = fv.minor_units(found.group(1).strip(), name, currency)
        off = fv.minor_units(found.group(2).strip(), name, currency)
        assert spend is not None and off is not None
        out.append({"spend": spend, "off": off})
    return out


def _is_blank(form: SectionForm, lst: str, i: int) -> bool:
    """A row left as the blank row was shown (nothing typed, no box changed)."""
    blank = form.section.blank.get(lst, {})
    for spec in form.section.lists[lst]:
        name = f"{lst}-{i}-{spec.name}"
        if spec.kind in _MULTI:
            if form.groups.get(name):
                return False
        elif form.value(name) != blank.get(spec.name, ""):
            return False
    return True


def to_value(form: SectionForm, currency: str) -> Any:
    """The section's value for ``publish_section`` / ``preview``; a 400 naming the input at fault.
    Removed rows and untouched blank rows are left out; a row with a value but no code needs one."""
    section = form.section
    value: dict[str, Any] = {}
    for spec in section.fields:
        steps = spec.name.split("-")
        target = value
        for step in steps[:-1]:
            target = target.setdefault(step, {})
        target[steps[-1]] = _read(form, spec.name, spec, currency, value)
    for lst, specs in section.lists.items():
        items: list[dict[str, Any]] = []
        form.order[lst] = []
        for i in range(form.rows.get(lst, 0)):
            if form.value(f"{lst}-{i}-remove") or _is_blank(form, lst, i):
                continue
            if not form.value(f"{lst}-{i}-code"):
                raise ValidationFailed(f"{lst} row {i}: a code is required", field=f"{lst}-{i}-code", reason="required")
            item: dict[str, Any] = {"qualification": form.value(f"{lst}-{i}-qualification")} if lst == "tiers" else {}
            for spec in specs:
                item[spec.name] = _read(form, f"{lst}-{i}-{spec.name}", spec, currency, item)
            items.append(item)
            form.order[lst].append(i)
        value[lst] = items
    return value[_LIST_SECTIONS[section.key]] if section.key in _LIST_SECTIONS else value
