"""The ribbon's whitelist of actions and the one entry point every button calls.

Each button of the workbook's 客户管理 tab runs the VBA Sub ``CrmRibbonClick``, which only does::

    RunPython "import crmsync.macros as m; m.on_ribbon('<button id>')"

``on_ribbon`` looks the id up in ``ACTIONS`` (the whitelist: an id that is not there runs nothing)
and calls the function the action names, imported only then.  Importing this module imports
nothing heavy (no xlwings, pandas or store), so a click stays fast.

The ribbon XML (templates/ribbon/customUI14.xml) and ``ACTIONS`` must list the same ids; a test
checks it.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable

from . import i18n

__all__ = ["ACTIONS", "Action", "on_ribbon", "message"]


@dataclass(frozen=True)
class Action:
    """One ribbon button: its id, labels and the function that implements it.

    ``target`` is ``"package.module:function"``; the function is called as ``function(book)``
    with the calling workbook (an ``xlwings.Book``, or None outside Excel) and may return a
    one-line message for the status bar.
    """

    id: str
    zh: str
    en: str
    target: str
    tip_zh: str = ""
    tip_en: str = ""

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    def tip(self, lang: str = "zh") -> str:
        return self.tip_en if lang == "en" else self.tip_zh

    def resolve(self) -> Callable[..., Any] | None:
        """Import and return the implementing function, or None when it does not exist (yet).

        Only a missing module or function counts as "not there"; an error raised while importing
        an existing module propagates, so a broken action is not mistaken for a missing one.
        """
        module_name, _, func_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                return None
            raise
        return getattr(module, func_name, None)


def _action(id, zh, en, tip_zh, tip_en, target) -> Action:
    return Action(id, zh, en, target, tip_zh, tip_en)


#: The whitelist: button id → action, in ribbon order.
ACTIONS: dict[str, Action] = {
    a.id: a
    for a in (
        _action("validate", "校验", "Validate",
                "检查所有工作表的数据，问题写入“校验结果”并在单元格上标出。",
                "Check every sheet; problems go to the Validation sheet and are marked in cells.",
                "crmsync.actions:validate_workbook"),
        _action("dedupe", "查重", "Find duplicates",
                "按名称、信用代码和手机号查找疑似重复的客户。",
                "Find likely duplicate customers by name, credit code and mobile.",
                "crmsync.actions_dedupe:dedupe_workbook"),
        _action("approve", "审核", "Approve",
                "审核选中的待审核新客户（经理）。",
                "Approve the selected pending new customers (managers).",
                "crmsync.actions_sync:approve_workbook"),
        _action("sync", "同步", "Sync",
                "与中心数据库同步：上传本地修改，取回他人修改，冲突写入“冲突”。",
                "Sync with the store: send local edits, fetch others' changes, list conflicts.",
                "crmsync.actions_sync:sync_workbook"),
        _action("import", "导入", "Import",
                "从旧表格导入客户，按表头自动匹配列。",
                "Import customers from a legacy spreadsheet, matching columns by header.",
                "crmsync.actions_import:import_file"),
        _action("export", "导出", "Export",
                "导出客户列表（CSV/Excel），敏感字段按角色脱敏。",
                "Export customers (CSV/Excel), masking sensitive fields by role.",
                "crmsync.actions_reports:export_workbook"),
        _action("new_followup", "新增跟进", "New follow-up",
                "为当前选中的客户新增一条跟进记录。",
                "Add a follow-up for the selected customer.",
                "crmsync.actions_reports:new_followup"),
        _action("reminders", "刷新提醒", "Refresh reminders",
                "列出今天到期和已逾期的跟进。",
                "List follow-ups due today and overdue.",
                "crmsync.actions_reports:refresh_reminders"),
        _action("dashboard", "刷新仪表板", "Refresh dashboard",
                "重新计算漏斗、转化率和跟进统计。",
                "Recompute the funnel, conversion and follow-up figures.",
                "crmsync.actions_reports:refresh_dashboard"),
    )
}

_MESSAGES = {
    "unknown": {
        "zh": "未知的按钮“{id}”，未执行任何操作。请更新工作簿（crmsync workbook build）。",
        "en": "Unknown button '{id}': nothing was run. Update the workbook (crmsync workbook build).",
    },
    "unavailable": {
        "zh": "“{label}”功能尚未可用，未执行任何操作。",
        "en": "'{label}' is not available yet: nothing was run.",
    },
    "done": {
        "zh": "“{label}”已完成。",
        "en": "'{label}' done.",
    },
}


def message(key: str, lang: str = "zh", **values: object) -> str:
    """Return the message ``key`` in ``lang`` (Chinese unless ``en``), filled with ``values``."""
    table = _MESSAGES[key]
    return table["en" if lang == "en" else "zh"].format(**values)


def on_ribbon(button_id: str, book: Any = None, lang: str | None = None) -> str:
    """Run the action of a ribbon button and return the one-line message shown to the user.

    An id not in ``ACTIONS`` runs nothing.  An action whose implementation cannot be imported
    yet says so and runs nothing.  An action that refuses its input (a ``CrmsyncError``) shows
    the reason as the message.  The message also goes to Excel's status bar when a workbook
    is at hand (``book``, or ``xlwings.Book.caller()`` when called from Excel).

    :param lang: ``zh`` or ``en``; defaults to the current language (crmsync.i18n: the
        ``CRMSYNC_LANG`` setting, else Chinese).

    >>> on_ribbon("nope", lang="en")
    "Unknown button 'nope': nothing was run. Update the workbook (crmsync workbook build)."
    """
    lang = lang or i18n.lang()
    action = ACTIONS.get(button_id)
    if action is None:
        return _show(message("unknown", lang, id=button_id), book)
    func = action.resolve()
    if func is None:
        return _show(message("unavailable", lang, label=action.label(lang)), book)
    book = book if book is not None else _caller_book()
    try:
        result = func(book)
    except Exception as exc:
        from .errors import CrmsyncError

        if not isinstance(exc, CrmsyncError):  # a bug: shown in full by RunPython, not hidden
            raise
        # a refused input (no selection, no store configured): one line, not a traceback dialog
        return _show(str(exc), book)
    text = result if isinstance(result, str) else message("done", lang, label=action.label(lang))
    return _show(text, book)


def _caller_book() -> Any:
    """The workbook that ran RunPython, or None when not called from Excel.

    xlwings is imported only when a caller can exist: RunPython passes ``--wb=`` on the command
    line, and the UDF server has xlwings loaded already.
    """
    from_excel = any(arg.startswith("--wb=") for arg in sys.argv)
    if not from_excel and "xlwings" not in sys.modules:
        return None
    try:
        import xlwings as xw

        return xw.Book.caller()
    except Exception:  # no Excel, or not called from a workbook
        return None


def _show(text: str, book: Any) -> str:
    """Put ``text`` in the status bar of ``book``'s Excel, when there is one; return it."""
    if book is None:
        book = _caller_book()
    if book is not None:
        try:
            book.app.status_bar = text
        except Exception:  # a closed app or an engine without a status bar
            pass
    return text
