"""Worksheet functions (UDFs) of crm_workbook.xlsm: =CRM_LOOKUP(A2, "客户名称") and friends.

The workbook's ``xlwings.conf`` sheet names this module (``UDF MODULES`` = ``crmsync.udfs``) and
its VBA module ``xlwings_udfs`` holds the wrappers xlwings generates from the declarations below
(crmsync/build_vba.py runs xlwings' own generator at build time), so users never have to "Import
Functions".  UDFs run on Windows Excel only, in xlwings' UDF server (one long-lived process).

This module only declares the functions and turns answers into cells; the work is elsewhere:
crmsync.normalise/validate for CRM_VALID and CRM_NORMALIZE, crmsync.lookup (cached read-only
access to the store named by the workbook's xlwings.conf ``CRMSYNC_STORE``, else the environment
variable) for the rest.  Every function answers with a value or a one-line message in the cell,
never a traceback; messages are Chinese unless ``CRMSYNC_LANG`` (workbook conf, else environment)
is ``en``.

Excel passes numbers as floats, empty cells as None and ranges as tuples of rows; the functions
accept those (a range where one cell is expected gets a message).  CRM_HISTORY returns a list of
rows: Excel 365/2021 spills it by itself.  It deliberately does not declare xlwings' ``expand``
option, which xlwings documents as the legacy resizing for Excel without dynamic arrays and says
not to use with them (it rewrites the formula as a Ctrl+Shift+Enter array).  Outside Windows the
xlwings decorators leave the functions unchanged, so they are plain functions in tests.  The first
docstring line ("中文。English.") is shown in the workbook's 使用说明 sheet.
"""

from __future__ import annotations

from functools import lru_cache

import xlwings as xw

from . import lookup
from .errors import CrmsyncError, InvalidInput
from .i18n import lang, tr


def _ask(question, wrap=lambda text: text):
    """Run question(lookup) against the configured store; errors become one line of text."""
    try:
        return question(lookup.current())
    except CrmsyncError as exc:
        return wrap(str(exc))
    except Exception as exc:  # never a traceback in a cell
        return wrap(lookup.error_text(exc))


def _store_or_none():
    """The configured store's reader, or None (validation works without a store)."""
    try:
        return lookup.current()
    except Exception:
        return None


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@lru_cache(maxsize=256)
def _schema_kind(kind: str):
    """A field type (mobile), its Chinese/English name (手机号, 日期), or a customer field's key,
    label or synonym (credit_code, 统一社会信用代码); None if none of these."""
    from .normalise import TYPE_LABELS, resolve_field
    from .schema import CUSTOMER, header_index, normalise_header

    text = kind.strip()
    try:
        return resolve_field(text)
    except ValueError:
        pass
    wanted = normalise_header(text)
    for type_, names in TYPE_LABELS.items():
        if wanted in (normalise_header(n) for n in names):
            return resolve_field(type_)
    key = header_index(CUSTOMER).get(wanted)
    return CUSTOMER.get(key) if key in CUSTOMER.by_key else None


def _field(kind, reader):
    """The Field a kind names (custom fields of the store too); raises InvalidInput."""
    if isinstance(kind, str) and kind.strip():
        found = _schema_kind(kind)
        if found is not None:
            return found
        if reader is not None:
            try:
                return reader.field("customer", kind)
            except CrmsyncError:
                pass
    shown = "" if kind is None else str(kind)
    raise InvalidInput(tr(
        f"未知的类型“{shown}”：请用字段类型（mobile、email、credit_code、id_number、date 等）或客户表的列名（如 手机号）",
        f"unknown kind '{shown}': use a field type (mobile, email, credit_code, id_number, date, ...) "
        "or a customer column label (e.g. Mobile)"))


def _check(value, kind):
    """(field, normalised value, problem message or "") for CRM_VALID and CRM_NORMALIZE."""
    from .normalise import normalise_value
    from .validate import problem_message

    if isinstance(value, (list, tuple)):
        raise InvalidInput(tr("请只传入一个单元格", "pass one cell, not a range"))
    reader = _store_or_none()
    f = _field(kind, reader)
    enums = reader.enums() if reader is not None else None
    normalised, code = normalise_value(value, f, enums)
    if code is None or code == "bad_characters":
        return f, normalised, ""
    return f, normalised, problem_message(code, f, value, lang(), enums)


@xw.func(category="crmsync")
@xw.arg("value", doc="要检查的值 / the value to check")
@xw.arg("kind", doc="字段类型或列名，如 mobile、email、credit_code、手机号 / field type or label")
def CRM_VALID(value, kind):
    """有效时返回空白，否则返回问题说明（空单元格视为有效）。Returns empty text for a valid (or empty) value, else what is wrong."""
    try:
        return _check(value, kind)[2]
    except CrmsyncError as exc:
        return str(exc)
    except Exception as exc:
        return lookup.error_text(exc)


@xw.func(category="crmsync")
@xw.arg("value", doc="要规范化的值 / the value to normalise")
@xw.arg("kind", doc="字段类型或列名，如 mobile、date、status、手机号 / field type or label")
def CRM_NORMALIZE(value, kind):
    """返回按该类型规范化后的值（如 +86 138-1234-5678 → 13812345678）；无法规范化时返回问题说明。Returns the value normalised for its type, else what is wrong."""
    try:
        f, normalised, problem = _check(value, kind)
    except CrmsyncError as exc:
        return str(exc)
    except Exception as exc:
        return lookup.error_text(exc)
    if problem:
        return problem
    if normalised is None:
        return ""
    if f.type == "enum" and f.enum:  # the label the drop-down shows, not the stored key
        reader = _store_or_none()
        from .normalise import default_enums

        return (reader.enums() if reader is not None else default_enums()).label(f.enum, normalised, lang())
    return normalised if isinstance(normalised, (str, bool, int, float)) else str(normalised)


@xw.func(category="crmsync")
@xw.arg("id", doc="记录编号，如 C202405210001 / record id")
@xw.arg("field", doc="字段键或列名，如 customer_name 或 客户名称 / field key or label")
def CRM_LOOKUP(id, field):
    """返回中心库中某条记录某个字段的当前值。Returns the store's current value of a record's field."""
    if id is None or id == "" or (id.__class__ is str and id.isspace()):
        return ""
    try:  # _ask written out: this is the function a sheet calls most
        return lookup.current().value(id, field)
    except CrmsyncError as exc:
        return str(exc)
    except Exception as exc:
        return lookup.error_text(exc)


@xw.func(category="crmsync")
@xw.arg("id", doc="记录编号 / record id")
@xw.arg("field", doc="字段键或列名，可省略 / field key or label, optional")
def CRM_HISTORY(id, field=None):
    """返回最近的修改记录（时间、修改人、旧值、新值，最新在上），溢出为多行。Returns recent changes (time, user, old, new; newest first) as rows that spill."""
    if _empty(id):
        return [[""]]
    rows = _ask(lambda lk: lk.history(id, None if _empty(field) else field), wrap=lambda t: [[t]])
    return rows if rows else [[tr("无修改记录", "no changes")]]


@xw.func(category="crmsync")
@xw.arg("name", doc="客户名称 / customer name")
@xw.arg("phone", doc="手机号或座机 / mobile or landline")
def CRM_DUPES(name, phone):
    """返回名称或电话相同的已有客户编号（逗号分隔）。Returns the ids of existing customers with the same name or phone."""
    if _empty(name) and _empty(phone):
        return ""
    found = _ask(lambda lk: lk.duplicates(name, phone))
    return ", ".join(found) if isinstance(found, list) else found


@xw.func(category="crmsync")
@xw.arg("id", doc="客户编号 / customer id")
def CRM_NEXT_FOLLOWUP(id):
    """返回客户的下次跟进时间（没有则为空白）。Returns the customer's next follow-up time (empty if none)."""
    if _empty(id):
        return ""
    return _ask(lambda lk: lk.next_followup(id))


@xw.func(category="crmsync")
@xw.arg("field", doc="字段键或列名，如 status 或 客户状态 / field key or label")
@xw.arg("value", doc="要计数的值，如 成交客户 / the value to count")
def CRM_COUNT(field, value):
    """返回中心库中该字段等于该值的客户数。Returns how many customers in the store have this value."""
    return _ask(lambda lk: lk.count(field, value))
