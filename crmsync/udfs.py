"""Worksheet functions (UDFs) of crm_workbook.xlsm: =CRM_VALID(A2, "mobile") and friends.

The workbook's ``xlwings.conf`` sheet names this module (``UDF MODULES`` = ``crmsync.udfs``) and
its VBA module ``xlwings_udfs`` holds the wrappers xlwings generates from the declarations below
(crmsync/build.py runs xlwings' own generator at build time), so users never have to "Import
Functions".  UDFs run on Windows Excel only.

Outside Windows the xlwings decorators leave the functions unchanged, so they are plain functions
in tests.  Excel passes numbers as floats and empty cells as None; the functions accept both.
Each docstring is shown in Excel's function wizard (Chinese first, then English).

The validation functions call crmsync.validate; the store-backed ones answer ``尚未可用`` (not
available yet) until they are wired to the store.
"""

from __future__ import annotations

import importlib

import xlwings as xw

from . import i18n

#: What a function that is not wired yet returns (shown in the cell).
NOT_AVAILABLE = "尚未可用"


def _validate():
    """crmsync.validate, imported on first use (None while it does not exist)."""
    try:
        return importlib.import_module("crmsync.validate")
    except ModuleNotFoundError as exc:
        if exc.name == "crmsync.validate":
            return None
        raise


def _cell(value):
    """A Python value as something Excel can show in one cell."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return "; ".join(str(_cell(v)) for v in value)
    return str(value)


@xw.func(category="crmsync")
@xw.arg("id", doc="记录编号，如 C202405210001 / record id")
@xw.arg("field", doc="字段键或列名，如 customer_name 或 客户名称 / field key or label")
def CRM_LOOKUP(id, field):
    """返回某条记录某个字段在中心库中的当前值。Returns the store's current value of a record's field."""
    return NOT_AVAILABLE


@xw.func(category="crmsync")
@xw.arg("value", doc="要检查的值 / the value to check")
@xw.arg("kind", doc="字段类型，如 mobile、email、credit_code / field type")
def CRM_VALID(value, kind):
    """有效时返回 TRUE，否则返回问题说明。Returns TRUE for a valid value, else what is wrong with it."""
    validate = _validate()
    if validate is None:
        return NOT_AVAILABLE
    try:
        problem = validate.check_value(value, kind, lang=i18n.lang())
    except ValueError as exc:  # an unknown kind
        return str(exc)
    return True if not problem else _cell(problem)


@xw.func(category="crmsync")
@xw.arg("value", doc="要规范化的值 / the value to normalise")
@xw.arg("kind", doc="字段类型，如 mobile、date、credit_code / field type")
def CRM_NORMALIZE(value, kind):
    """返回按该类型规范化后的值（如手机号去掉 +86 和空格）。Returns the value normalised for its type."""
    validate = _validate()
    if validate is None:
        return NOT_AVAILABLE
    try:
        return _cell(validate.normalise_value(value, kind)[0])
    except ValueError as exc:  # an unknown kind
        return str(exc)


@xw.func(category="crmsync")
@xw.arg("id", doc="记录编号 / record id")
@xw.arg("field", doc="字段键或列名 / field key or label")
def CRM_HISTORY(id, field):
    """返回某字段的修改历史（时间、修改人、旧值、新值），溢出为多行。Returns a field's change history as rows."""
    return [[NOT_AVAILABLE]]


@xw.func(category="crmsync")
@xw.arg("name", doc="客户名称 / customer name")
@xw.arg("phone", doc="手机号或座机 / mobile or landline")
def CRM_DUPES(name, phone):
    """返回可能重复的已有客户编号。Returns the ids of existing customers this one may duplicate."""
    return NOT_AVAILABLE


@xw.func(category="crmsync")
@xw.arg("id", doc="客户编号 / customer id")
def CRM_NEXT_FOLLOWUP(id):
    """返回客户的下次跟进时间。Returns the customer's next follow-up time."""
    return NOT_AVAILABLE


@xw.func(category="crmsync")
@xw.arg("field", doc="字段键或列名，如 status / field key or label")
@xw.arg("value", doc="要计数的值，如 成交客户 / the value to count")
def CRM_COUNT(field, value):
    """返回中心库中该字段等于该值的客户数。Returns how many customers in the store have this value."""
    return NOT_AVAILABLE
