"""Normalisers, one per field type (schema.FIELD_TYPES): each turns a value into (normalised, code).

A normaliser never raises.  Any object in any field gives either ``(normalised, None)`` or
``(value, code)`` with a problem code (validate.MESSAGES says what each means).  The value that comes
back with a code is the original one, except for ``bad_characters`` and ``too_long``, where it is
the cleaned text.  Empty values (None, blank text, NaN, pandas NA/NaT) give ``(None, None)``.

Both validation paths, validate_table's column pass and model_for's pydantic model, call the same
``field_checker``, so they apply the same rules.  Each normaliser starts with a fast path for
values that are already normal: an ``re`` match costs ~0.3 µs where stdnum's USCC check costs 7 µs,
email-validator 35 µs and phonenumbers 25 µs, and most cells of a real sheet are already normal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache, partial

import email_validator
import phonenumbers
from stdnum.cn import ric, uscc

from . import clock
from .enums import Enums
from .normalise_dates import _norm_date, _norm_datetime, is_normal_date, is_normal_datetime
from .schema import CUSTOMER, FIELD_TYPES, Field

Result = tuple[object, "str | None"]

#: Error values a cell can show; in any field they are a problem, never data.
EXCEL_ERRORS = frozenset({"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!",
                          "#SPILL!", "#CALC!", "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#BUSY!",
                          "#CONNECT!", "#UNKNOWN!"})

#: Labels for a bare field type given as ``kind`` (``check_value(x, "mobile")``).
TYPE_LABELS = {
    "id": ("编号", "ID"), "ref": ("关联编号", "Reference"), "text": ("文本", "Text"),
    "longtext": ("文本", "Text"), "name": ("名称", "Name"), "mobile": ("手机号", "Mobile"),
    "phone": ("电话", "Phone"), "email": ("邮箱", "Email"),
    "credit_code": ("统一社会信用代码", "Credit code"), "id_number": ("证件号码", "ID number"),
    "date": ("日期", "Date"), "datetime": ("日期时间", "Date and time"), "int": ("整数", "Integer"),
    "money": ("金额", "Amount"), "bool": ("是否", "Yes/no"), "enum": ("选项", "Option"),
    "tags": ("标签", "Tags"), "user": ("用户", "User"), "team": ("团队", "Team"),
}

_INT_MAX = 2**63 - 1  # the store's BIGINT
_MONEY_MAX = Decimal(10) ** 15
_LOST_DIGITS_AT = 1e15  # Excel keeps 15 significant digits; a float this big lost the rest
_NO_DIGIT_CHECK = frozenset({"money", "date", "datetime", "bool"})  # they report range instead
_NA_TYPES = frozenset({"NAType", "NaTType"})


# ---- text --------------------------------------------------------------------------------------

# Zero-width, bidi-override, control and unpaired-surrogate characters: removed and reported,
# never stored silently (notes/input-safety.md).
_BAD = ("\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e"
        "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff")
_WIDE = "０-９Ａ-Ｚａ-ｚ"  # full-width letters and digits (with U+3000) are folded; CJK punctuation is not
_BAD_RE = re.compile(f"[{_BAD}]")
_WIDE_TABLE = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
               for c in range(r[0], r[1] + 1)} | {0x3000: 0x20}
_NC = rf"[^\s{_BAD}{_WIDE}]"
#: One line already in normal form: no bad or wide characters, single inner spaces, no ends.
TEXT_NORMAL = re.compile(rf"(?!#){_NC}+(?: {_NC}+)*")  # "#…" may be an Excel error
#: Several lines already in normal form: no bad or wide characters, no \r, no space at the ends.
LONGTEXT_NORMAL = re.compile(rf"(?!#)(?:{_NC}(?:[^{_BAD}{_WIDE}\r\u3000]*{_NC})?)")


def clean_text(text: str, multiline: bool = False) -> tuple[str, bool]:
    """Return (cleaned text, whether bad characters were removed).

    Folds full-width letters/digits/space, strips the ends and, for one-line text, collapses
    inner whitespace to single spaces; for multi-line text it keeps lines, turning \\r\\n into \\n.
    """
    cleaned = _BAD_RE.sub("", text)
    had_bad = len(cleaned) != len(text)
    cleaned = cleaned.translate(_WIDE_TABLE)
    if multiline:
        return cleaned.replace("\r\n", "\n").replace("\r", "\n").strip(), had_bad
    return " ".join(cleaned.split()), had_bad


def _as_text(v: object) -> str | None:
    """Return a scalar as text (12.0 → "12"), or None for objects that are not text."""
    cls = v.__class__
    if cls is str:
        return v
    if cls is int:
        return str(v)
    if cls is float:
        if v != v or v in (float("inf"), float("-inf")):
            return None
        return str(int(v)) if v.is_integer() else repr(v)
    if cls is Decimal:
        return str(int(v)) if v == v.to_integral_value() else str(v)
    return None


def _norm_text(v: object, multiline: bool = False) -> Result:
    if v.__class__ is str and (LONGTEXT_NORMAL if multiline else TEXT_NORMAL).fullmatch(v):
        return v, None
    s = _as_text(v)
    if s is None:
        return v, "invalid_text"
    cleaned, had_bad = clean_text(s, multiline)
    if had_bad:
        return cleaned or None, "bad_characters"
    return cleaned or None, None


_TAG_SPLIT = re.compile(r"[,，;；、|/\n\r]+")


def _norm_tags(v: object) -> Result:
    if isinstance(v, (list, tuple, set, frozenset)):
        items = list(v) if not isinstance(v, (set, frozenset)) else sorted(v, key=repr)
        parts: list[object] = []
        for item in items:
            s = _as_text(item)
            if s is None:
                return v, "invalid_text"
            parts.extend(_TAG_SPLIT.split(s))
    else:
        s = _as_text(v)
        if s is None:
            return v, "invalid_text"
        parts = _TAG_SPLIT.split(s)
    tags: dict[str, None] = {}  # a dict keeps first-seen order while dropping repeats
    any_bad = False
    for part in parts:
        tag, had_bad = clean_text(part)
        any_bad |= had_bad
        if tag:
            tags[tag] = None
    joined = ",".join(tags) or None
    return joined, "bad_characters" if any_bad else None


# ---- numbers that are really digit strings (mobiles, phones, id numbers) -----------------------

_INT_TEXT = re.compile(r"(\d+)\.0*", re.A)  # "13812345678.0" from a CSV of an Excel number
_SCI_TEXT = re.compile(r"(\d+)(?:\.(\d*))?[eE]\+?(\d{1,3})", re.A)  # "1.3812345678E+10"


def _digit_text(v: object) -> tuple[str | None, str | None]:
    """Return (digits text, None), (None, "lost_digits") or (None, None) when it is no number.

    Text is NFKC-folded and stripped; integral floats and scientific notation become digits,
    refused when the notation kept fewer digits than the number has.
    """
    cls = v.__class__
    if cls is int:
        return (str(v), None) if 0 <= v < 10**30 else (None, None)
    if cls is float or cls is Decimal:
        if v != v or not abs(v) < 10**30 or v != int(v) or v < 0:
            return None, None
        return str(int(v)), None
    if cls is not str or len(v) > 100:
        return None, None
    s = unicodedata.normalize("NFKC", v).strip()
    m = _INT_TEXT.fullmatch(s)
    if m:
        return m.group(1), None
    m = _SCI_TEXT.fullmatch(s)
    if m:
        whole, frac, exp = m.group(1), (m.group(2) or "").rstrip("0"), int(m.group(3))
        if len(frac) > exp:
            return None, None
        digits = whole.lstrip("0") + frac
        if len(digits) < len(whole.lstrip("0")) + exp:
            return None, "lost_digits"  # "1.38123E+10": the rest of the number is gone
        return digits, None
    return s, None


_MOBILE = re.compile(r"1[3-9]\d{9}", re.A)
_SEPARATORS = re.compile(r"[\s\-.()\[\]_/—–]+")


def _strip_cn_prefix(t: str) -> str:
    for prefix in ("+86", "0086"):
        if t.startswith(prefix):
            return t[len(prefix):]
    if t.startswith("86") and len(t) == 13:
        return t[2:]
    return t


def _norm_mobile(v: object) -> Result:
    if v.__class__ is str and _MOBILE.fullmatch(v):
        return v, None
    s, code = _digit_text(v)
    if s is None:
        return v, code or "invalid_mobile"
    t = _strip_cn_prefix(_SEPARATORS.sub("", s))
    if _MOBILE.fullmatch(t):
        return t, None
    return v, "invalid_mobile"


# 010 and 02x have 8-digit local numbers, other area codes 7 or 8; a local number never starts 0.
_LANDLINE = re.compile(r"(0(?:10|2\d))([1-9]\d{7})|(0[3-9]\d\d)([1-9]\d{6,7})", re.A)
_SERVICE = re.compile(r"([48]00)(\d{3})(\d{4})", re.A)  # 400/800 business numbers
#: A phone already in normal form.
PHONE_NORMAL = re.compile(r"(?:0(?:10|2\d)-[1-9]\d{7}|0[3-9]\d\d-[1-9]\d{6,7})(?:-\d{1,6})?"
                          r"|[48]00-\d{3}-\d{4}|1[3-9]\d{9}", re.A)
_EXTENSION = re.compile(r"(.*?\d)\s*(?:转|分机|ext\.?|x|#|-)\s*(\d{1,6})", re.I | re.A)


def _landline(digits: str, ext: str | None) -> str | None:
    """Return a landline/service/mobile number in normal form, or None."""
    if digits.startswith("+86") or digits.startswith("0086"):
        rest = _strip_cn_prefix(digits)
        digits = rest if rest.startswith("0") or _MOBILE.fullmatch(rest) else "0" + rest
    elif digits.startswith("86") and len(digits) >= 11:
        rest = digits[2:]
        if _MOBILE.fullmatch(rest) or _LANDLINE.fullmatch("0" + rest):
            digits = rest if _MOBILE.fullmatch(rest) else "0" + rest
    if ext is None and _MOBILE.fullmatch(digits):
        return digits
    m = _LANDLINE.fullmatch(digits)
    if m:
        area, local = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{area}-{local}" + (f"-{ext}" if ext else "")
    m = _SERVICE.fullmatch(digits)
    if m and ext is None:
        return "-".join(m.groups())
    return None


def _norm_phone(v: object) -> Result:
    if v.__class__ is str and PHONE_NORMAL.fullmatch(v):
        return v, None
    s, code = _digit_text(v)
    if s is None:
        return v, code or "invalid_phone"
    if v.__class__ is not str:
        # A number lost its leading zero in Excel; a Chinese area code always starts with 0.
        found = _landline(s, None) or (_landline("0" + s, None) if not s.startswith("0") else None)
        return (found, None) if found else (v, "invalid_phone")
    candidates = [(s, None)]
    m = _EXTENSION.fullmatch(s)
    if m:
        candidates.append((m.group(1), m.group(2)))
    for main, ext in candidates:
        found = _landline(_SEPARATORS.sub("", main), ext)
        if found:
            return found, None
    if s.startswith("+") and not s.startswith("+86"):
        # Only a foreign number needs phonenumbers: its formats are beyond a cheap check.
        try:
            num = phonenumbers.parse(s, None)
        except phonenumbers.NumberParseException:
            return v, "invalid_phone"
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL), None
    return v, "invalid_phone"


# ---- email ---------------------------------------------------------------------------------------

_SPECIAL_TLDS = "|".join(sorted({d.rsplit(".", 1)[-1] for d in email_validator.SPECIAL_USE_DOMAIN_NAMES}))
#: An ASCII address email-validator accepts unchanged (a property test checks this).
EMAIL_NORMAL = re.compile(
    r"(?=[^@]{1,64}@)(?=.{6,254}\Z)[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*@"
    r"(?:(?=[a-z0-9-]{1,63}\.)[a-z0-9]+(?:-[a-z0-9]+)*\.)+"
    rf"(?!(?:{_SPECIAL_TLDS})\Z)[a-z]{{2,63}}"
)


def _norm_email(v: object) -> Result:
    if v.__class__ is not str:
        return v, "invalid_email"
    if EMAIL_NORMAL.fullmatch(v):
        return v, None
    s = unicodedata.normalize("NFKC", v).strip()
    if s[:7].lower() == "mailto:":
        s = s[7:].strip()
    if not s or len(s) > 320:
        return v, "invalid_email"
    try:
        found = email_validator.validate_email(s, check_deliverability=False, strict=True).normalized
    except (email_validator.EmailNotValidError, ValueError, UnicodeError):
        return v, "invalid_email"
    return found, None


# ---- credit code and id number -------------------------------------------------------------------

_USCC_NORMAL = re.compile(r"\d{8}[0-9A-HJ-NP-RTUWXY]{10}", re.A)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# GB 32100 weights are 3**i mod 31, and 34 ≡ 3 (mod 31): reading the 17 characters backwards as a
# base-34 number gives the weighted sum mod 31 in one int() call (0.6 µs against stdnum's 7 µs).
_USCC_TO_BASE34 = str.maketrans(_USCC_ALPHABET, "0123456789abcdefghijklmnopqrstu")


def uscc_check_char(first17: str) -> str:
    """Return the GB 32100 check character for 17 already-valid characters (= stdnum's)."""
    total = int(first17[::-1].translate(_USCC_TO_BASE34), 34) % 31
    return _USCC_ALPHABET[(31 - total) % 31]


def is_normal_credit_code(s: str) -> bool:
    """Return True for 18 upper-case characters with a correct check character."""
    return _USCC_NORMAL.fullmatch(s) is not None and uscc_check_char(s[:17]) == s[17]


def _norm_credit_code(v: object) -> Result:
    if v.__class__ is str and is_normal_credit_code(v):
        return v, None
    s = _as_text(v)
    if s is None or len(s) > 100:
        return v, "invalid_credit_code"
    s = re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", s)).upper()
    return (s, None) if uscc.is_valid(s) else (v, "invalid_credit_code")


_RIC_NORMAL = re.compile(r"\d{17}[\dX]", re.A)


def is_normal_id_number(s: str) -> bool:
    """Return True for 18 characters with a correct check character and a real birth date."""
    if _RIC_NORMAL.fullmatch(s) is None or ric.calc_check_digit(s) != s[17]:
        return False
    try:  # the same date stdnum's ric.get_birth_date reads, without its 8 µs of cleaning
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return born.year >= 1900 and born <= clock.today()


def _norm_id_number(v: object) -> Result:
    s = v if v.__class__ is str else _as_text(v)
    if s is None or len(s) > 100:
        return v, "invalid_id_number"
    if not _RIC_NORMAL.fullmatch(s):
        s = re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", s)).upper()
    return (s, None) if is_normal_id_number(s) else (v, "invalid_id_number")


# ---- numbers, money, yes/no ----------------------------------------------------------------------

_AMOUNT = re.compile(
    r"([-+]?)(?:¥|rmb|cny|人民币)?([-+]?)(\d{1,3}(?:,\d{3})+|\d*)(\.\d+)?(e[-+]?\d{1,3})?(万元|亿元|万|亿|元)?", re.A
)
_UNITS = {None: 1, "元": 1, "万": 10**4, "万元": 10**4, "亿": 10**8, "亿元": 10**8}


def _parse_amount(v: object) -> Decimal | None:
    """Return the number a cell means ("¥1,234.50", "1.2万", 12.5, "(300)"), or None."""
    cls = v.__class__
    if cls is int or cls is float:
        return Decimal(v) if v == v and abs(v) != float("inf") else None
    if cls is Decimal:
        return v if v.is_finite() else None
    if cls is not str or len(v) > 100:
        return None
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", v)).lower()
    negative = s.startswith("(") and s.endswith(")")  # accounting notation for a negative amount
    if negative:
        s = s[1:-1]
    m = _AMOUNT.fullmatch(s)
    if m is None or not (m.group(3) or m.group(4)) or (m.group(1) and m.group(2)):
        return None
    number = Decimal((m.group(3) or "0").replace(",", "") + (m.group(4) or "") + (m.group(5) or ""))
    number *= _UNITS[m.group(6)]
    return -number if negative or "-" in (m.group(1) + m.group(2)) else number


def _norm_int(v: object) -> Result:
    if v.__class__ is int:
        return (v, None) if -_INT_MAX <= v <= _INT_MAX else (v, "out_of_range")
    if isinstance(v, bool):
        return v, "invalid_int"
    number = _parse_amount(v)
    if number is None or number != number.to_integral_value():
        return v, "invalid_int"
    if abs(number) > _INT_MAX:
        return v, "out_of_range"
    return int(number), None


def _norm_money(v: object) -> Result:
    if v.__class__ is float and abs(v) < 1e15:
        return round(v, 2), None  # the common case: Excel gives floats
    if isinstance(v, bool):
        return v, "invalid_money"
    number = _parse_amount(v)
    if number is None:
        return v, "invalid_money"
    if abs(number) >= _MONEY_MAX:
        return v, "out_of_range"
    return round(float(number), 2), None


_TRUE = frozenset({"是", "y", "yes", "true", "t", "1", "✓", "✔", "√", "对", "有"})
_FALSE = frozenset({"否", "n", "no", "false", "f", "0", "✗", "✘", "×", "错", "无"})


def _norm_bool(v: object) -> Result:
    if v is True or v is False:
        return v, None
    s = _as_text(v)
    if s is not None and len(s) <= 20:
        s = unicodedata.normalize("NFKC", s).strip().lower()
        if s in _TRUE:
            return True, None
        if s in _FALSE:
            return False, None
    return v, "invalid_bool"


_NORMALISERS: dict[str, Callable[[object], Result]] = {
    "id": _norm_text, "ref": _norm_text, "text": _norm_text, "longtext": partial(_norm_text, multiline=True),
    "name": _norm_text, "mobile": _norm_mobile, "phone": _norm_phone, "email": _norm_email,
    "credit_code": _norm_credit_code, "id_number": _norm_id_number, "date": _norm_date,
    "datetime": _norm_datetime, "int": _norm_int, "money": _norm_money, "bool": _norm_bool,
    "enum": _norm_text, "tags": _norm_tags, "user": _norm_text, "team": _norm_text,
}
assert set(_NORMALISERS) == set(FIELD_TYPES)

_INVALID = {t: f"invalid_{t}" for t in ("mobile", "phone", "email", "credit_code", "id_number", "date",
                                        "datetime", "int", "money", "bool")}

#: Tests of text already in normal form (the value itself, no problem), by type: validate_table
#: calls them before the normaliser, which starts with the same test.
FAST_PATHS: dict[str, Callable[[str], object]] = {
    "mobile": _MOBILE.fullmatch, "phone": PHONE_NORMAL.fullmatch, "email": EMAIL_NORMAL.fullmatch,
    "credit_code": is_normal_credit_code, "id_number": is_normal_id_number,
    "date": is_normal_date, "datetime": is_normal_datetime, "longtext": LONGTEXT_NORMAL.fullmatch,
    **{t: TEXT_NORMAL.fullmatch for t in ("text", "name", "user", "team", "ref", "id")},
}


def is_empty(value: object) -> bool:
    """Return True for None, blank text, NaN and pandas NA/NaT (zero-width text is not blank)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, float):
        return value != value
    if isinstance(value, Decimal):
        return value.is_nan()
    return type(value).__name__ in _NA_TYPES


def _plain(value: object) -> object:
    """Return numpy scalars and str subclasses as plain Python values (None for NaT)."""
    if type(value).__module__ == "numpy":
        if type(value).__name__ == "datetime64":
            return None if value != value else value.astype("datetime64[us]").item()
        return value.item() if hasattr(value, "item") else value
    if isinstance(value, str):
        return str(value)
    return value


def normalise_type(value: object, type_: str) -> Result:
    """Return (normalised, None), (None, None) for empty, or (value, code) for a value of a type.

    Never raises: an object the normaliser cannot read is reported with the type's invalid code.
    """
    try:
        cls = value.__class__
        if cls is not str and cls is not int and cls is not float:
            value = _plain(value)
            cls = value.__class__
        if cls is str:
            if not value or value.isspace():
                return None, None
            if (value[0] == "#" or value[0].isspace()) and value.strip().upper() in EXCEL_ERRORS:
                return value, "excel_error"
        elif cls is float:
            if value != value:
                return None, None
            if abs(value) >= _LOST_DIGITS_AT and value.is_integer() and type_ not in _NO_DIGIT_CHECK:
                return value, "lost_digits"
        elif is_empty(value):
            return None, None
        return _NORMALISERS[type_](value)
    except Exception:  # a normaliser must never stop a batch; odd objects are reported instead
        return value, _INVALID.get(type_, "invalid_text")


@cache
def default_enums() -> Enums:
    """Return the seed enumerations (used when a caller passes no Enums)."""
    return Enums.seed()


def resolve_field(kind: str | Field) -> Field:
    """Return the Field for a Field, a field type ("mobile") or a customer field key ("status").

    Raises ValueError for anything else.
    """
    if isinstance(kind, Field):
        return kind
    if kind in FIELD_TYPES:
        zh, en = TYPE_LABELS[kind]
        return Field(kind, zh, en, kind)
    if kind in CUSTOMER.keys:
        return CUSTOMER.get(kind)
    raise ValueError(f"unknown kind {kind!r}: use a field type ({', '.join(FIELD_TYPES)}) "
                     "or a customer field key")


@lru_cache(maxsize=512)
def field_checker(field: Field, enums: Enums) -> Callable[[object], Result]:
    """Return check(value) -> (normalised, code) for one field: its type, list and max length.

    ``required`` is left to the caller (an empty value gives (None, None)).
    """
    type_ = field.type if field.type in _NORMALISERS else "text"
    max_length = field.max_length
    list_key = field.enum if type_ == "enum" else None

    def check(value: object) -> Result:
        val, code = normalise_type(value, type_)
        if val is None or (code is not None and code != "bad_characters"):
            return val, code
        if list_key is not None:
            key = enums.normalise(list_key, val)
            if key is None:
                return value, "not_in_list"
            val = key
        if max_length is not None and val.__class__ is str and len(val) > max_length:
            return val, "too_long"
        return val, code

    return check


def normalise_value(value: object, kind: str | Field, enums: Enums | None = None) -> Result:
    """Return (normalised value, problem code or None) for one value of a field type or field.

    ``kind`` is a field type ("mobile"), a customer field key ("status") or a Field; a field
    brings its list and maximum length.  An empty value gives (None, None).  Never raises on
    ``value``; raises ValueError for an unknown ``kind``.

    >>> normalise_value(13812345678.0, "mobile")
    ('13812345678', None)
    >>> normalise_value("流失", "status")
    ('lost', None)
    """
    return field_checker(resolve_field(kind), enums or default_enums())(value)
