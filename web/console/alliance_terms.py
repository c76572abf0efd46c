"""The alliance terms editor's form: every field of the terms document (``alliance.alliances.domain.Terms``)
as inputs, to and from the document ``PUT /api/v1/alliances/{id}/terms`` takes.

Built on the programme editor's form machinery (:mod:`programme_form`): flat inputs whose nested
fields are joined with ``-`` (``expiry-months``, ``stored_value-bonus_funder``), the alliance's
stored-value plans as numbered rows (``plans-0-pay``, a blank row to add one), amounts typed in
yuan and read exactly in minor units of the alliance's currency. The per-partner settings (earn
rate, monthly issuance cap, credit limit, keyed by the partner's merchant id) are one row per
merchant: ``partner-<i>-key`` carries the id, the three inputs beside it are left empty to use the
default.

The publish use case (:func:`lianka.alliance.alliances.terms.publish_terms`) checks the document;
its problem names the value at fault by its path in the document (``expiry.months``,
``stored_value.plans[1].get``, ``earn_rates.<merchant id>``) and :func:`input_for` finds the input
it came from, so the message stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.datastructures import FormMultiDict

from lianka.alliance.alliances.domain import MAX_PARTNER_KEYS, Terms
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import StoredValueConfig
from lianka.web.console import form_values as fv
from lianka.web.console import programme_form as pf
from lianka.web.console.i18n import N_, NP_

Spec = pf.Spec

TERMS = pf.Section(
    "alliance-terms",
    None,
    (
        Spec("issue_price", "rate"),
        Spec("member_value", "rate"),
        Spec("reimbursement_price", "rate"),
        Spec("earn_rate", "rate"),
        Spec("expiry-kind", "text"),
        Spec("expiry-months", "int"),
        Spec("expiry-extra_years", "int"),
        Spec("expiry-remind_days_before", "int"),
        Spec("breakage", "text"),
        Spec("fee_per_transaction", "yuan"),
        Spec("fee_monthly", "yuan"),
        Spec("monthly_issuance_cap", "int"),
        Spec("credit_limit", "yuan"),
        Spec("stored_value-consumption", "text"),
        Spec("stored_value-bonus_funder", "text"),
        Spec("stored_value-bonus_counts_as_spend", "flag"),
    ),
    {
        "plans": (
            Spec("code", "text"),
            Spec("name", "text"),
            Spec("pay", "yuan"),
            Spec("get", "yuan"),
            Spec("active", "flag"),
        )
    },
    {"plans": {"active": "on"}},
)

#: the per-partner settings: the document's key -> (the row's input, how it reads)
PER_PARTNER: dict[str, tuple[str, str]] = {
    "earn_rates": ("earn_rate", "rate"),
    "issuance_caps": ("issuance_cap", "int"),
    "credit_limits": ("credit_limit", "yuan"),
}

#: what each input is called (the stored-value and expiry ones read as in the programme editor)
LABELS: dict[str, str] = {
    "issue_price": N_("Issue price per point"),
    "member_value": N_("Value of a point at the till"),
    "reimbursement_price": N_("Reimbursement per point accepted"),
    "earn_rate": N_("Points per ¥1 spent"),
    "expiry-kind": N_("Points expire"),
    "expiry-months": N_("Months until points expire"),
    "expiry-extra_years": N_("Extra years (end of year)"),
    "expiry-remind_days_before": N_("Remind members this many days before"),
    "breakage": N_("Expired points go to"),
    "fee_per_transaction": N_("Fee per transaction"),
    "fee_monthly": N_("Monthly fee"),
    "monthly_issuance_cap": N_("Points a partner may issue per month (0: no cap)"),
    "credit_limit": N_("Credit limit: most a partner may owe (0: no limit)"),
    "stored_value-consumption": N_("Spending order"),
    "stored_value-bonus_funder": N_("Who pays for the bonus"),
    "stored_value-bonus_counts_as_spend": N_("Bonus counts as spend for points"),
    "plans-code": N_("Code"),
    "plans-name": N_("Name"),
    "plans-pay": N_("Pay"),
    "plans-get": N_("Get"),
    "plans-active": N_("On sale"),
    "partner-earn_rate": N_("Points per ¥1"),
    "partner-issuance_cap": N_("Monthly issuance cap"),
    "partner-credit_limit": N_("Credit limit"),
}

CHOICES: dict[str, dict[str, str]] = {
    "expiry-kind": {
        "rolling_months": N_("Some months after they are earned"),
        "end_of_year": N_("At the end of a year"),
        "never": NP_("points expiry", "Never"),
    },
    "breakage": {
        "operator": N_("The operator"),
        "issuers": N_("Back to the partners that issued them (their issue price)"),
    },
    "stored_value-consumption": {
        "proportional": N_("Principal and bonus in proportion"),
        "principal_first": N_("Principal first"),
    },
    "stored_value-bonus_funder": {
        "hq": N_("The operator"),
        "issuing_branch": N_("The partner branch that sold the plan"),
        "redeeming_branch": N_("The partner branch where it is spent"),
    },
}

#: messages beside a refused input: by the input's last part and the problem's reason, or the part alone
ERROR_TEXTS: dict[str, str] = {
    "issue_price": N_("Enter a price per point from 0 to 1000, such as 0.010."),
    "member_value": N_("Enter a value per point from 0 to 1000, such as 0.010."),
    "reimbursement_price": N_("Enter a price per point from 0 to 1000, such as 0.008."),
    "reimbursement_price:above-issue-price": N_(
        "The reimbursement may not exceed the issue price: the operator would lose on every point."
    ),
    "earn_rate": N_("Enter 0 to 1000 points per ¥1."),
    "months": N_("Enter 1 to 120 months."),
    "extra_years": N_("Enter 0 to 10 years."),
    "remind_days_before": N_("Enter 0 to 365 days."),
    "kind": N_("Choose when points expire."),
    "breakage": N_("Choose who gets expired points."),
    "monthly_issuance_cap": N_("Enter a whole number of points, at most 1,000,000,000,000."),
    "issuance_cap": N_("Enter a whole number of points, at most 1,000,000,000,000."),
    "consumption": N_("Choose the spending order."),
    "bonus_funder": N_("Choose who pays for the bonus."),
    "code": N_("Use lower-case letters, digits, “-” or “_” (at most 40)."),
    "code:duplicate": N_("Another row uses this code."),
    "code:required": N_("Give this row a code, or leave the whole row empty."),
    "name": N_("Enter a name of 1 to 100 characters."),
    "pay": N_("Enter an amount above zero."),
    "get": N_("Enter an amount above zero."),
    "effective_at": N_("Choose a time from now on (in your time zone)."),
    "note": N_("A note has at most 400 characters."),
    "validation-failed": N_("Check the values you entered."),
}


@dataclass
class TermsForm:
    """The inputs as shown: the section's form, and one row per partner (``key``, ``label``)."""

    form: pf.SectionForm
    partners: list[tuple[str, str]] = field(default_factory=list)

    def value(self, name: str) -> str:
        return self.form.value(name)

    def names(self) -> set[str]:
        """Every input of the form (where an error may be shown)."""
        per_partner = {f"partner-{i}-{name}" for i in range(len(self.partners)) for name, _ in PER_PARTNER.values()}
        return self.form.names() | per_partner

    def input_for(self, path: str) -> str | None:
        """The input a problem's ``field`` (a path in the terms document) came from, None if none did."""
        name, _, key = path.partition(".")
        if name in PER_PARTNER:
            rows = [k for k, _ in self.partners]
            return f"partner-{rows.index(key)}-{PER_PARTNER[name][0]}" if key in rows else None
        if path.startswith("stored_value.plans"):
            path = path.removeprefix("stored_value.")
        return self.form.input_for(path)


def _shown(kind: str, value: Any, currency: str) -> str:
    if value is None:
        return ""
    return fv.major_units(int(value), currency) if kind == "yuan" else str(value)


def from_terms(terms: Terms, partners: list[tuple[str, str]], currency: str) -> TermsForm:
    """The form filled in from ``terms``; ``partners``: (merchant id, label) of the alliance's
    merchants — a setting for a merchant not among them keeps its own row, labelled by its id."""
    doc = msgspec.to_builtins(terms)
    stored_value = doc.pop("stored_value", None) or msgspec.to_builtins(StoredValueConfig())
    doc["plans"] = stored_value.pop("plans", [])
    doc["stored_value"] = stored_value
    form = TermsForm(pf.from_document(TERMS, doc, currency), list(partners))
    known = {key for key, _ in partners}
    for name in PER_PARTNER:
        form.partners += [(key, key) for key in doc[name] if key not in known]
        known |= set(doc[name])
    for i, (key, _) in enumerate(form.partners):
        form.form.values[f"partner-{i}-key"] = key
        for name, (input_name, kind) in PER_PARTNER.items():
            form.form.values[f"partner-{i}-{input_name}"] = _shown(kind, doc[name].get(key), currency)
    return form


def from_post(post: FormMultiDict, labels: dict[str, str]) -> TermsForm:
    """The form as it was posted (to show it again with its errors); ``labels``: merchant id -> label."""
    form = TermsForm(pf.from_post(post, TERMS))
    rows = fv.whole(fv.text_of(post, "partner-rows", max_length=5), "partner-rows", required=False) or 0
    for i in range(min(rows, MAX_PARTNER_KEYS)):
        key = fv.text_of(post, f"partner-{i}-key", max_length=64)
        form.partners.append((key, labels.get(key, key)))
        form.form.values[f"partner-{i}-key"] = key
        for input_name, _ in PER_PARTNER.values():
            name = f"partner-{i}-{input_name}"
            form.form.values[name] = fv.text_of(post, name, max_length=400)
    return form


def _read(text: str, name: str, kind: str, currency: str) -> Any:
    if kind == "rate":
        return fv.rate(text, name)
    if kind == "int":
        return fv.whole(text, name)
    return fv.minor_units(text, name, currency)


def to_document(form: TermsForm, currency: str) -> dict[str, Any]:
    """The terms document the inputs say (what ``PUT /alliances/{id}/terms`` takes); a 400 naming
    the input at fault when one cannot be read (the rules are the use case's)."""
    doc: dict[str, Any] = pf.to_value(form.form, currency)
    doc["stored_value"]["plans"] = doc.pop("plans")
    for name, (input_name, kind) in PER_PARTNER.items():
        doc[name] = {}
        for i, (key, _) in enumerate(form.partners):
            text = form.value(f"partner-{i}-{input_name}")
            if not text:
                continue
            if not key:
                raise ValidationFailed("a partner row without its merchant", field=f"partner-{i}-{input_name}")
            doc[name][key] = _read(text, f"partner-{i}-{input_name}", kind, currency)
    return doc
