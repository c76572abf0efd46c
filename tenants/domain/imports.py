"""Member CSV import: parse and validate every row before anything is written.

Columns (header names in English or Chinese; only ``phone`` is required):
``phone/手机``, ``name/姓名``, ``gender/性别`` (male/female/男/女), ``birthday/生日`` (YYYY-MM-DD),
``email/邮箱``, ``tags/标签`` (separated by ``;`` or ``；``), ``branch/门店`` (join branch code),
``sms_consent/短信`` and ``email_consent/邮件`` (yes/no/是/否), ``opening_points/积分``.

Phones are normalised to E.164 (mainland China by default). A phone appearing twice in one file
is an error on the second row. The result says, per row, what is wrong — so a merchant can choose
all-or-nothing or "import the good rows and give me a report".
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import phonenumbers

MAX_ROWS = 100_000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEADERS = {
    "phone": "phone",
    "手机": "phone",
    "手机号": "phone",
    "mobile": "phone",
    "name": "name",
    "姓名": "name",
    "gender": "gender",
    "性别": "gender",
    "birthday": "birthday",
    "生日": "birthday",
    "email": "email",
    "邮箱": "email",
    "tags": "tags",
    "标签": "tags",
    "branch": "branch",
    "门店": "branch",
    "sms_consent": "sms_consent",
    "短信": "sms_consent",
    "email_consent": "email_consent",
    "邮件": "email_consent",
    "opening_points": "opening_points",
    "积分": "opening_points",
}
_GENDER = {
    "male": "male",
    "m": "male",
    "男": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "other": "other",
    "": "unknown",
    "unknown": "unknown",
}
_YES = {"yes", "y", "true", "1", "是"}
_NO = {"no", "n", "false", "0", "否", ""}


@dataclass(frozen=True)
class MemberRow:
    line: int
    phone: str
    name: str = ""
    gender: str = "unknown"
    birthday: date | None = None
    email: str = ""
    tags: tuple[str, ...] = ()
    branch: str = ""
    sms_consent: bool = False
    email_consent: bool = False
    opening_points: int = 0


@dataclass(frozen=True)
class RowError:
    line: int
    errors: tuple[str, ...]


@dataclass
class ParseResult:
    rows: list[MemberRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    fatal: str = ""

    @property
    def ok(self) -> bool:
        return not self.fatal and not self.errors


def normalise_phone(raw: str, region: str = "CN") -> str:
    """E.164, or ValueError. Accepts ``138 0013 8000``, ``+86-138…``, ``008613800138000``."""
    try:
        n = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(n):
        raise ValueError(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def valid_email(value: str) -> bool:
    """Looks like an e-mail address (one ``@``, a dot in the domain, no spaces): the check imports and
    profile changes share."""
    return bool(_EMAIL.match(value))


def mask_phone(e164: str) -> str:
    """``+8613800138000`` → ``+86 138****8000`` (lists never show a whole number)."""
    n = phonenumbers.parse(e164, None)
    national = str(n.national_number)
    keep_tail = 4
    head = min(3, max(len(national) - keep_tail - 1, 0))
    hidden = national[:head] + "*" * (len(national) - head - keep_tail) + national[-keep_tail:]
    return f"+{n.country_code} {hidden}"


def _bool(value: str, col: str, errors: list[str]) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v not in _NO:
        errors.append(f"{col}: expected yes/no, got {value!r}")
    return False


def parse_members_csv(content: str | bytes, region: str = "CN") -> ParseResult:
    """Every row parsed and checked; a file that cannot be read at all is ``fatal`` (nothing imported).

    Lines may end in ``\n``, ``\r\n`` or a bare ``\r`` (old spreadsheet exports); a line break
    inside a quoted cell is a row error, like any other control character. A NUL character means the
    file is not CSV text (a UTF-16 or binary file saved as .csv) and is fatal: it could not even be
    stored for the import job."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return ParseResult(fatal=f"line {line}: the file contains NUL characters; save it as CSV (UTF-8) text")
    try:
        return _parse(csv.reader(io.StringIO(text, newline="")), region)
    except csv.Error as exc:  # e.g. a cell over the csv module's field size limit
        return ParseResult(fatal=f"the file is not readable CSV: {exc}")


def _control(value: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def _parse(reader: Iterator[list[str]], region: str) -> ParseResult:
    try:
        header = next(reader)
    except StopIteration:
        return ParseResult(fatal="the file is empty")
    cols = [_HEADERS.get(h.strip().lower(), _HEADERS.get(h.strip(), "")) for h in header]
    if "phone" not in cols:
        return ParseResult(fatal="a 'phone' (手机) column is required")
    unknown = [h for h, c in zip(header, cols, strict=True) if not c and h.strip()]
    result = ParseResult(fatal=f"unknown columns: {', '.join(unknown)}" if unknown else "")
    if result.fatal:
        return result
    seen: dict[str, int] = {}
    for i, raw in enumerate(reader, start=2):
        if i - 1 > MAX_ROWS:
            return ParseResult(fatal=f"at most {MAX_ROWS} rows per file")
        if not any(cell.strip() for cell in raw):
            continue
        values = dict(zip(cols, [c.strip() for c in raw], strict=False))
        errors = [
            f"{col}: line breaks and control characters are not allowed"
            for col, value in values.items()
            if col and _control(value)
        ]
        if errors:
            result.errors.append(RowError(i, tuple(errors)))
            continue
        phone = ""
        try:
            phone = normalise_phone(values.get("phone", ""), region)
        except ValueError as exc:
            errors.append(str(exc))
        if phone and phone in seen:
            errors.append(f"phone {phone} already on line {seen[phone]}")
        gender = _GENDER.get(values.get("gender", "").lower())
        if gender is None:
            errors.append(f"gender: unknown value {values.get('gender')!r}")
        birthday = None
        if values.get("birthday"):
            try:
                birthday = date.fromisoformat(values["birthday"])
            except ValueError:
                errors.append(f"birthday: expected YYYY-MM-DD, got {values['birthday']!r}")
        email = values.get("email", "")
        if email and not valid_email(email):
            errors.append(f"email: not an address: {email!r}")
        points = 0
        if values.get("opening_points"):
            if not values["opening_points"].isdigit() or int(values["opening_points"]) > 10**9:
                errors.append("opening_points: a whole number from 0 to 1,000,000,000")
            else:
                points = int(values["opening_points"])
        sms = _bool(values.get("sms_consent", ""), "sms_consent", errors)
        mail = _bool(values.get("email_consent", ""), "email_consent", errors)
        name = values.get("name", "")
        if len(name) > 100:
            errors.append("name: at most 100 characters")
        if errors:
            result.errors.append(RowError(i, tuple(errors)))
            continue
        seen[phone] = i
        tags = tuple(t.strip() for t in re.split(r"[;；]", values.get("tags", "")) if t.strip())
        result.rows.append(
            MemberRow(
                i, phone, name, gender or "unknown", birthday, email, tags, values.get("branch", ""), sms, mail, points
            )
        )
    return result
