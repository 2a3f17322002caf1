"""Validation of rows against the schema: per-cell problems, cross-field rules, one-line messages.

Two paths apply the same rules (normalise.field_checker for cells, ``_RULES`` across fields):

- ``validate_table`` checks column by column, memoising repeated values (lists, dates, cities) and
  skipping values already in normal form; it is the bulk path (imports, sync of a whole sheet);
- ``model_for`` derives a pydantic model from the schema, and ``validate_record`` validates one
  record with it (a form, an API call, a single changed row).

Problems are data, never exceptions: validation does not stop at the first one and does not raise
on odd values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
import operator
from functools import lru_cache, partial
from itertools import compress
from operator import itemgetter
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import PlainValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from . import clock
from .enums import Enums
from .normalise import (FAST_PATHS, _BAD_RE, default_enums, field_checker, normalise_value,
                        resolve_field)
from .schema import Entity, Field, entity as entity_by_key

__all__ = ["MESSAGES", "Problem", "ValidationResult", "check_value", "model_for", "validate_columns",
           "normalise_value", "problem_message", "validate_record", "validate_table"]

#: code → (Chinese, English) message templates.  Placeholders: {label} the field's label, {value}
#: the value as typed, {allowed} a list's labels, {max}/{length} for too_long, {other_label} and
#: {other_value} for the other field of a cross-field rule, {expected}, {labels}, {today}.
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("{label}不能为空", "{label} is required"),
    "excel_error": ("{label}“{value}”是Excel错误值，请填写实际内容",
                    "{label} '{value}' is an Excel error value; enter the real value"),
    "lost_digits": ("{label}“{value}”以数字形式保存，已丢失位数，请将单元格设为文本后重新输入",
                    "{label} '{value}' was stored as a number and has lost digits; "
                    "format the cell as text and type it again"),
    "invalid_text": ("{label}“{value}”不是文本", "{label} '{value}' is not text"),
    "bad_characters": ("{label}“{value}”含有不可见字符或控制字符，已去除",
                       "{label} '{value}' contains invisible or control characters; they were removed"),
    "too_long": ("{label}超过{max}个字符（现有{length}个）",
                 "{label} is longer than {max} characters ({length})"),
    "invalid_mobile": ("{label}“{value}”不是有效的11位大陆手机号",
                       "{label} '{value}' is not a valid 11-digit mainland mobile number"),
    "invalid_phone": ("{label}“{value}”不是有效的电话号码，应为区号加号码，如010-12345678",
                      "{label} '{value}' is not a valid phone number; "
                      "use area code and number, e.g. 010-12345678"),
    "invalid_email": ("{label}“{value}”不是有效的邮箱地址，应如name@example.com",
                      "{label} '{value}' is not a valid email address, e.g. name@example.com"),
    "invalid_credit_code": ("{label}“{value}”不是有效的统一社会信用代码（应为18位，末位校验码正确）",
                            "{label} '{value}' is not a valid unified social credit code "
                            "(18 characters with a correct check character)"),
    "invalid_id_number": ("{label}“{value}”不是有效的18位身份证号码（校验码或出生日期不对）",
                          "{label} '{value}' is not a valid 18-character ID number "
                          "(wrong check character or birth date)"),
    "invalid_date": ("{label}“{value}”不是有效的日期，应如2024-05-21",
                     "{label} '{value}' is not a valid date, e.g. 2024-05-21"),
    "invalid_datetime": ("{label}“{value}”不是有效的日期时间，应如2024-05-21 14:30",
                         "{label} '{value}' is not a valid date and time, e.g. 2024-05-21 14:30"),
    "invalid_int": ("{label}“{value}”不是整数", "{label} '{value}' is not a whole number"),
    "invalid_money": ("{label}“{value}”不是有效的金额，应如1234.50",
                      "{label} '{value}' is not a valid amount, e.g. 1234.50"),
    "out_of_range": ("{label}“{value}”超出允许的范围", "{label} '{value}' is out of range"),
    "invalid_bool": ("{label}“{value}”应为“是”或“否”", "{label} '{value}' should be yes or no"),
    "not_in_list": ("{label}“{value}”不在可选列表中，可选：{allowed}",
                    "{label} '{value}' is not in the list; choose one of: {allowed}"),
    "lost_reason_required": ("{other_label}为“{other_value}”时必须填写{label}",
                             "{label} is required when {other_label} is '{other_value}'"),
    "wrong_id_kind": ("{other_value}应填写{expected}，不应填写{label}“{value}”",
                      "{label} '{value}' does not fit a customer of type '{other_value}'; "
                      "fill in {expected} instead"),
    "contact_missing": ("请至少填写{labels}中的一项", "Fill in at least one of {labels}"),
    "date_in_future": ("{label}“{value}”晚于今天（{today}）",
                       "{label} '{value}' is in the future (today is {today})"),
    "date_before_created": ("{label}“{value}”早于{other_label}（{other_value}）",
                            "{label} '{value}' is before {other_label} ({other_value})"),
    "next_before_time": ("{label}“{value}”应晚于{other_label}（{other_value}）",
                         "{label} '{value}' must be after {other_label} ({other_value})"),
    "closed_before_opened": ("{label}“{value}”早于{other_label}（{other_value}）",
                             "{label} '{value}' is before {other_label} ({other_value})"),
}


@dataclass(frozen=True)
class Problem:
    """One problem in one cell (or one rule of a row, reported on the field to fix)."""

    row: int  # the caller's row number (e.g. the Excel row), or the index if none was given
    field: str  # field key
    code: str  # a key of MESSAGES
    message: str  # one line, zh or en
    value: object = None  # the original value


@dataclass
class ValidationResult:
    rows: list[dict]  # normalised rows; keys = field keys, unknown keys passed through untouched
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def by_row(self) -> dict[int, list[Problem]]:
        """Return the problems grouped by row number, in order."""
        grouped: dict[int, list[Problem]] = {}
        for p in self.problems:
            grouped.setdefault(p.row, []).append(p)
        return grouped


# ---- messages ------------------------------------------------------------------------------------

def _show(value: object, limit: int = 40) -> str:
    """Return a value as one short, visible line for a message (invisible characters escaped)."""
    try:
        text = "" if value is None else str(value)
    except Exception:  # str() of a 5,000-digit int or an odd object
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _BAD_RE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def _join(labels: list[str], lang: str) -> str:
    if len(labels) < 2:
        return "".join(labels)
    return ("、".join(labels[:-1]) + "或" if lang != "en" else ", ".join(labels[:-1]) + " or ") + labels[-1]


def problem_message(code: str, field: Field, value: object = None, lang: str = "zh",
                    enums: Enums | None = None, entity: Entity | None = None, **extra: object) -> str:
    """Return the one-line message for a problem code on a field, in Chinese or English (lang="en").

    ``extra`` fills a rule's placeholders: ``other`` (a field key of ``entity``), ``other_value``,
    ``expected`` (a field key), ``alternatives`` (field keys), ``normalised``, ``today``.
    """
    en = lang == "en"
    enums = enums or default_enums()
    templates = MESSAGES.get(code, ("{label}“{value}”有误（{code}）", "{label} '{value}' is invalid ({code})"))

    def label_of(key: object) -> str:
        try:
            return (entity.get(str(key)) if entity else resolve_field(str(key))).label(lang)
        except (KeyError, ValueError):
            return str(key)

    ctx: dict[str, object] = {"label": field.label(lang), "value": _show(value), "code": code}
    if code == "not_in_list" and field.enum:
        ctx["allowed"] = (", " if en else "、").join(enums.labels(field.enum, lang))
    if code == "too_long":
        normalised = extra.get("normalised")
        ctx["max"] = field.max_length
        ctx["length"] = len(normalised) if isinstance(normalised, str) else len(_show(value, 10**9))
    if "other" in extra:
        other = entity.get(str(extra["other"])) if entity and extra["other"] in entity.keys else None
        ctx["other_label"] = other.label(lang) if other else label_of(extra["other"])
        shown = extra.get("other_value")
        if other is not None and other.enum and isinstance(shown, str):
            shown = enums.label(other.enum, shown, lang)
        ctx["other_value"] = _show(shown)
    if "expected" in extra:
        ctx["expected"] = label_of(extra["expected"])
    if "alternatives" in extra:
        names = [field.label(lang)] + [label_of(k) for k in extra["alternatives"]]  # type: ignore[union-attr]
        ctx["labels"] = _join(names, lang)
    if "today" in extra:
        ctx["today"] = extra["today"]
    return templates[1 if en else 0].format_map(_Missing(ctx))


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return ""


def check_value(value: object, kind: str | Field, enums: Enums | None = None, lang: str = "zh") -> str:
    """Return "" when a value is valid (or empty) for a field type or field, else its message.

    For worksheet formulas (CRM_VALID).  Raises ValueError for an unknown ``kind``.

    >>> check_value("1381234567", "mobile")
    '手机号“1381234567”不是有效的11位大陆手机号'
    """
    field = resolve_field(kind)
    normalised, code = normalise_value(value, field, enums)
    if code is None:
        return ""
    return problem_message(code, field, value, lang, enums, normalised=normalised)


# ---- cross-field rules ---------------------------------------------------------------------------
# A rule reads normalised columns: col(key) is a list of values, skip(key) the indexes whose value
# is unusable (it has a problem, or is absent from a partial row).  It yields
# (index, field key, code, value, extra message arguments) for each broken row.

Column = Callable[[str], list]
Skip = Callable[[str], set]
Found = Iterable[tuple[int, str, str, object, dict]]


def _lost_reason(col: Column, skip: Skip, today: str) -> Found:
    s_skip, r_skip = skip("status"), skip("lost_reason")
    for i, (status, reason) in enumerate(zip(col("status"), col("lost_reason"))):
        if i not in s_skip and i not in r_skip and reason is None and status == "lost":
            yield i, "lost_reason", "lost_reason_required", None, {"other": "status", "other_value": status}


def _id_kind(col: Column, skip: Skip, today: str) -> Found:
    t_skip, c_skip, n_skip = skip("customer_type"), skip("credit_code"), skip("id_number")
    for i, (kind, code, number) in enumerate(zip(col("customer_type"), col("credit_code"), col("id_number"))):
        if i in t_skip:
            continue
        if kind == "enterprise" and number is not None and i not in n_skip:
            yield i, "id_number", "wrong_id_kind", number, {
                "other": "customer_type", "other_value": kind, "expected": "credit_code"}
        elif kind == "individual" and code is not None and i not in c_skip:
            yield i, "credit_code", "wrong_id_kind", code, {
                "other": "customer_type", "other_value": kind, "expected": "id_number"}


def _contact(col: Column, skip: Skip, today: str) -> Found:
    skips = skip("mobile") | skip("phone") | skip("email")
    for i, (mobile, phone, email) in enumerate(zip(col("mobile"), col("phone"), col("email"))):
        if mobile is None and phone is None and email is None and i not in skips:
            yield i, "mobile", "contact_missing", None, {"alternatives": ("phone", "email")}


def _deal_date(col: Column, skip: Skip, today: str) -> Found:
    d_skip, c_skip = skip("first_deal_date"), skip("created_at")
    for i, (deal, created) in enumerate(zip(col("first_deal_date"), col("created_at"))):
        if deal is None or i in d_skip:
            continue
        if deal > today:
            yield i, "first_deal_date", "date_in_future", deal, {"today": today}
        elif created is not None and i not in c_skip and deal < created[:10]:
            yield i, "first_deal_date", "date_before_created", deal, {
                "other": "created_at", "other_value": created}


def _after(first: str, then: str, code: str, strict: bool) -> Callable[[Column, Skip, str], Found]:
    """Return a rule: ``then`` must be after ``first`` (or not before it when not strict)."""

    def rule(col: Column, skip: Skip, today: str) -> Found:
        f_skip, t_skip = skip(first), skip(then)
        for i, (a, b) in enumerate(zip(col(first), col(then))):
            if a is not None and b is not None and i not in f_skip and i not in t_skip:
                if b < a or (strict and b == a):
                    yield i, then, code, b, {"other": first, "other_value": a}

    return rule


_RULES: dict[str, tuple[Callable[[Column, Skip, str], Found], ...]] = {
    "customer": (_lost_reason, _id_kind, _contact, _deal_date),
    "followup": (_after("follow_time", "next_time", "next_before_time", strict=True),),
    "service": (_after("opened_at", "closed_at", "closed_before_opened", strict=False),),
}


def _cross(ent: Entity, cols: dict[str, list], skips: dict[str, set], n: int, today: str) -> list:
    """Return the cross-field findings of an entity's rules over normalised columns."""
    rules = _RULES.get(ent.key, ())
    if not rules:
        return []
    nothing: list = [None] * n
    col: Column = lambda key: cols.get(key) or nothing  # noqa: E731
    skip: Skip = lambda key: skips.get(key) or set()  # noqa: E731
    return [found for rule in rules for found in rule(col, skip, today)]


def _today(today: date | None) -> str:
    if isinstance(today, datetime):
        today = today.date()
    return (today or clock.today()).isoformat()


def _entity(entity: Entity | str) -> Entity:
    return entity if isinstance(entity, Entity) else entity_by_key(entity)


# ---- the record path: a pydantic model derived from the schema -----------------------------------

def _field_validator(f: Field, enums: Enums) -> Callable[[object, ValidationInfo], object]:
    check = field_checker(f, enums)

    def validate(value: object, info: ValidationInfo) -> object:
        val, code = check(value)
        if code is None and val is None and f.required:
            if info.context and f.key in info.context.get("absent", ()):
                return None  # a partial update does not touch this field
            code = "required"
        if code is None:
            return val
        problems = info.context.get("problems") if info.context else None
        if problems is None:  # used on its own: behave like any pydantic model
            lang = (info.context or {}).get("lang", "zh")
            raise PydanticCustomError(code, problem_message(code, f, value, lang, enums, normalised=val))
        problems.append((f.key, code, value, val))
        return val

    return validate


@lru_cache(maxsize=64)
def model_for(entity: Entity | str, enums: Enums | None = None) -> type[pydantic.BaseModel]:
    """Return a pydantic model of an entity (custom fields included) applying validate's rules.

    Fields are read by key (aliases, so no key can clash with pydantic's own names).  On its own it
    raises ValidationError like any model; validate_record runs it in collecting mode instead.

    >>> record = model_for("customer").model_validate(
    ...     {"customer_name": "甲公司", "customer_type": "企业", "status": "意向", "mobile": "13812345678"})
    >>> record.as_row()["status"]
    'intent'
    """
    ent = _entity(entity)
    enums = enums or default_enums()
    # A key that clashes with pydantic's own names ("json", "copy", "model_x") gets an alias.
    names = {(f.key if f.key.isidentifier() and not f.key.startswith(("_", "model_"))
              and not hasattr(pydantic.BaseModel, f.key) else f"field_{i}"): f.key
             for i, f in enumerate(ent.fields)}
    definitions: dict[str, Any] = {
        name: (Annotated[Any, PlainValidator(_field_validator(ent.get(key), enums))],
               pydantic.Field(default=None, alias=key, validate_default=True))
        for name, key in names.items()
    }

    def cross_rules(self: _Record, info: ValidationInfo) -> pydantic.BaseModel:
        ctx = info.context or {}
        row = self.as_row()
        bad = {p[0] for p in ctx.get("problems", ())} | set(ctx.get("absent", ()))
        found = _cross(ent, {k: [v] for k, v in row.items()}, {k: {0} for k in bad}, 1,
                       _today(ctx.get("today")))
        if "problems" in ctx:
            ctx["cross"] = found
        elif found:
            _, key, code, value, extra = found[0]
            raise PydanticCustomError(code, problem_message(
                code, ent.get(key), value, ctx.get("lang", "zh"), enums, ent, **extra))
        return self

    model = pydantic.create_model(
        f"{ent.key.title()}Record", __base__=_Record,
        __validators__={"cross_rules": model_validator(mode="after")(cross_rules)}, **definitions)
    model.field_keys = names
    return model


class _Record(pydantic.BaseModel):
    """Base of model_for's models: as_row() gives the normalised values by field key."""

    model_config = pydantic.ConfigDict(extra="ignore")
    field_keys: ClassVar[dict[str, str]] = {}  # attribute name → field key

    def as_row(self) -> dict:
        """Return the normalised values by field key."""
        return {key: getattr(self, name) for name, key in self.field_keys.items()}


def validate_record(values: Mapping, entity: Entity | str, *, enums: Enums | None = None,
                    lang: str = "zh", today: date | None = None,
                    partial: bool = False) -> tuple[dict, list[Problem]]:
    """Return (normalised record, problems) for one record, checked with model_for's model.

    The record has the keys ``values`` has, fields normalised and other keys untouched; problems
    carry row 0.  ``partial=True`` (an update) skips the checks that need an absent key.  Raises TypeError when ``values`` is not a mapping.

    >>> row, problems = validate_record({"customer_name": "甲公司", "mobile": "138 1234 5678"}, "customer")
    >>> row["mobile"], [p.code for p in problems]
    ('13812345678', ['required', 'required'])
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"a record is a mapping of field keys to values, not {type(values).__name__}")
    ent = _entity(entity)
    enums = enums or default_enums()
    absent = {k for k in ent.keys if k not in values} if partial else set()
    ctx: dict[str, Any] = {"problems": [], "absent": absent, "today": today, "lang": lang}
    record = model_for(ent, enums).model_validate({k: values[k] for k in ent.keys if k in values},
                                                  context=ctx)
    normalised = record.as_row()
    row = dict(values)
    for key in ent.keys:
        if key in values:
            row[key] = normalised[key]
    found = [(0, key, code, value, {"normalised": val}) for key, code, value, val in ctx["problems"]]
    found += ctx.get("cross", [])
    return row, _problems(found, ent, enums, lang, None)


def _problems(found: list, ent: Entity, enums: Enums, lang: str,
              numbers: Sequence[int] | None) -> list[Problem]:
    """Return Problems for findings (index, key, code, value, extra), by row then field order."""
    order = {k: i for i, k in enumerate(ent.keys)}
    found.sort(key=lambda f: (f[0], order.get(f[1], 0)))  # stable: a cell's own problem first
    return [Problem(numbers[i] if numbers is not None else i, key, code,
                    problem_message(code, ent.get(key), value, lang, enums, ent, **extra), value)
            for i, key, code, value, extra in found]


# ---- the table path: column by column ------------------------------------------------------------

# Columns of these classes are checked once per distinct value: across them only int and float
# can be equal (1 == 1.0, unlike True or Decimal), and equal ones normalise alike below 1e15.
_SET_SAFE = frozenset({str, type(None), int, float, datetime, date})
_CLEAN_CODES = frozenset({"bad_characters", "too_long"})  # these give a cleaned value, not the input


def _check_column(values: Sequence, f: Field, enums: Enums, skip_required: set | None) -> tuple[list, list]:
    """Return (normalised column, findings) for one field, checking each distinct value once."""
    classes = {c if c.__name__ != "Timestamp" else datetime for c in set(map(type, values))}
    if not classes <= _SET_SAFE:
        return _check_cells(values, f, field_checker(f, enums), skip_required)
    check = field_checker(f, enums)
    fast = FAST_PATHS.get(f.type)
    max_length = f.max_length or 10**9
    both_numbers = int in classes and float in classes
    normal: dict = {}
    flagged: dict = {}
    for v in set(values):
        cls = v.__class__
        if cls is str:
            if fast is not None and len(v) <= max_length and fast(v):
                normal[v] = v  # already in normal form: the common case
                continue
        elif v is None or (cls is float and v != v):
            continue
        elif both_numbers and (cls is int or cls is float) and abs(v) >= 1e15:
            return _check_cells(values, f, check, skip_required)  # 10**15 and 1e15 differ
        normal[v], code = check(v)
        if code is not None:
            flagged[v] = code
    out = list(map(normal.get, values))
    found: list = []
    if flagged:
        for i in compress(range(len(values)), map(flagged.__contains__, values)):
            v = values[i]
            code = flagged[v]
            if code not in _CLEAN_CODES:
                out[i] = v  # exactly as given (1 and 1.0 shared one result)
            found.append((i, f.key, code, v, {"normalised": out[i]}))
    if f.required:
        for i in compress(range(len(values)), map(_is_none, out)):
            if values[i] not in flagged and (skip_required is None or i not in skip_required):
                found.append((i, f.key, "required", values[i], {}))
        found.sort(key=lambda x: x[0])
    return out, found


_is_none = partial(operator.is_, None)


def _check_cells(values: Sequence, f: Field, check: Callable, skip_required: set | None) -> tuple[list, list]:
    """Return (normalised column, findings) cell by cell: for columns of odd or mixed objects."""
    out: list = []
    found: list = []
    for i, v in enumerate(values):
        val, code = check(v)
        out.append(val)
        if code is not None:
            found.append((i, f.key, code, v, {"normalised": val}))
        elif val is None and f.required and (skip_required is None or i not in skip_required):
            found.append((i, f.key, "required", v, {}))
    return out, found


def _read_columns(rows: object, ent: Entity) -> tuple[int, dict, dict, dict]:
    """Return (n, entity columns, other columns, absent row indexes by key), keys in input order."""
    if hasattr(rows, "columns") and hasattr(rows, "iloc"):  # a pandas DataFrame
        columns: dict = {}
        for j, name in enumerate(rows.columns):
            if name not in columns:  # a repeated header: the first column wins
                columns[name] = rows.iloc[:, j].tolist()
        return len(rows), _split(columns, ent), columns, {}
    rows = rows if isinstance(rows, list) else list(rows)  # type: ignore[call-overload]
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise TypeError(f"row {i} is a {type(r).__name__}, not a mapping of field keys to values")
    names = list(rows[0]) if rows else []
    if len(names) > 1 and all(len(r) == len(names) for r in rows):
        try:  # every row has the same keys (the usual case): one C call per row
            columns = dict(zip(names, zip(*map(itemgetter(*names), rows))))
            return len(rows), _split(columns, ent), columns, {}
        except (KeyError, TypeError):
            pass
    seen: dict = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    columns = {k: [r.get(k) for r in rows] for k in seen}
    absent = {k: found for k in seen if (found := {i for i, r in enumerate(rows) if k not in r})}
    return len(rows), _split(columns, ent), columns, absent


def _split(columns: dict, ent: Entity) -> dict:
    """Return the entity's columns (the same lists; ``columns`` keeps every column in order)."""
    return {k: columns[k] for k in ent.keys if k in columns}


def validate_table(rows: object, entity: Entity | str, *, enums: Enums | None = None,
                   lang: str = "zh", row_numbers: Sequence[int] | None = None,
                   today: date | None = None, partial: bool = False) -> ValidationResult:
    """Return the normalised rows and every problem of a table (list of dicts or DataFrame).

    Each output row has the keys its input row had: fields normalised, other keys untouched.

    :param row_numbers: the caller's number for each row (e.g. Excel rows); default the index.
    :param partial: rows are updates: a key absent from a row stays absent and is not required.

    Never raises on a value; raises TypeError for a row that is not a mapping and ValueError when
    ``row_numbers`` does not have one number per row.

    >>> result = validate_table([{"customer_name": "甲公司", "customer_type": "企业",
    ...     "status": "流失", "mobile": 13812345678.0}], "customer", row_numbers=[2])
    >>> [(p.row, p.field, p.code) for p in result.problems]
    [(2, 'lost_reason', 'lost_reason_required')]
    """
    ent = _entity(entity)
    n, columns, given, absent = _read_columns(rows, ent)
    normalised, problems = _check_table(n, columns, absent, ent, enums, lang, row_numbers, today, partial)
    return ValidationResult(_assemble(n, normalised, given, absent), problems)


def validate_columns(columns: Mapping[str, Sequence], entity: Entity | str, *,
                     enums: Enums | None = None, lang: str = "zh",
                     row_numbers: Sequence[int] | None = None,
                     today: date | None = None) -> tuple[dict[str, list], list[Problem]]:
    """validate_table for a table already held as columns (field key → one value per row).

    Returns the normalised columns and every problem.  A sheet read from a workbook is columns
    already; going through 100,000 row dicts and back costs more than the checks on a large sheet.
    Keys that are not fields of the entity are ignored.
    """
    ent = _entity(entity)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    own = {k: v for k, v in columns.items() if k in ent.keys}
    return _check_table(n, own, {}, ent, enums, lang, row_numbers, today, False)


def _check_table(n: int, columns: dict, absent: dict, ent: Entity, enums: Enums | None, lang: str,
                 row_numbers: Sequence[int] | None, today: date | None,
                 partial: bool) -> tuple[dict[str, list], list[Problem]]:
    """The column pass shared by validate_table and validate_columns."""
    enums = enums or default_enums()
    numbers = list(row_numbers) if row_numbers is not None else None
    if numbers is not None and len(numbers) != n:
        raise ValueError(f"row_numbers has {len(numbers)} numbers for {n} rows")
    normalised: dict[str, list] = {}
    found: list = []
    skips: dict[str, set] = {}
    for f in ent.fields:
        values = columns.get(f.key)
        if values is None:  # no row has this column
            if f.required and not partial:
                found.extend((i, f.key, "required", None, {}) for i in range(n))
            skips[f.key] = set(range(n)) if partial else set()
            continue
        out, column_found = _check_column(values, f, enums, absent.get(f.key) if partial else None)
        normalised[f.key] = out
        found.extend(column_found)
        skips[f.key] = {c[0] for c in column_found} | (absent.get(f.key, set()) if partial else set())
    found.extend(_cross(ent, normalised, skips, n, _today(today)))
    return normalised, _problems(found, ent, enums, lang, numbers)


def _assemble(n: int, normalised: dict, given: dict, absent: dict) -> list[dict]:
    """Return the output rows: the keys each row had, fields normalised, the rest untouched."""
    names = list(given)
    columns = [normalised.get(k, c) for k, c in given.items()]
    rows = [dict(zip(names, t)) for t in zip(*columns)] if names else [{} for _ in range(n)]
    for key, indexes in absent.items():  # a key a row did not have stays out of it
        for i in indexes:
            del rows[i][key]
    return rows
