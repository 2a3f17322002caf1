"""The ribbon's actions, written once against the workbook seam (crmsync/seam.py).

Each action takes ``book`` — a ``WorkbookSeam``, a file path, or the ``xlwings.Book`` Excel hands
to RunPython — and returns the one-line message for the status bar.  The CLI calls the same
functions on files, so a button and its command always do the same thing.

This module holds 校验 (validate) and what every action shares (sheets and columns by label,
where the store is and who acts, the selection).  The other buttons live one concern per module:

- crmsync/actions_sync.py: 同步 (sync) and 审核 (approve);
- crmsync/actions_dedupe.py: 查重 (duplicates);
- crmsync/actions_reports.py: 刷新提醒, 刷新仪表板, 新增跟进, 导出;
- crmsync/actions_import.py: 导入 (import a legacy spreadsheet).

crmsync/macros.py maps each ribbon button to its function.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest
from typing import Any

from . import i18n
from .schema import ENTITIES, Entity
from .seam import MARK_PREFIX, Link, Report, SheetTable, as_seam

#: The hidden column whose text makes a row show as invalid (a conditional format in the workbook).
STATUS_COLUMN_KEY = "_status"


@lru_cache(maxsize=1)
def _layout() -> dict:
    from .build import TEMPLATES

    return json.loads((TEMPLATES / "layout.json").read_text(encoding="utf-8"))


def _extra_labels(key: str) -> set[str]:
    spec = next(s for s in _layout()["entity_extra_columns"] if s["key"] == key)
    return {spec["zh"], spec["en"]}


def report_sheet_name(key: str, sheet_names: list[str]) -> str:
    """The name of a report sheet (by layout key) in this workbook, whichever language it speaks."""
    spec = next(s for s in _layout()["sheets"] if s.get("key") == key)
    for name in (spec["zh"], spec["en"]):
        if name in sheet_names:
            return name
    return spec["en" if i18n.lang() == "en" else "zh"]


def entity_sheets(sheet_names: list[str]) -> list[tuple[Entity, str]]:
    """The entity sheets present in a workbook, as (entity, sheet name)."""
    found = []
    for ent in ENTITIES.values():
        for name in (ent.zh, ent.en):
            if name in sheet_names:
                found.append((ent, name))
                break
    return found


def field_columns(ent: Entity, table: SheetTable) -> dict[str, int]:
    """Map each field key of ``ent`` to its 0-based column in the table, by Chinese or English label."""
    by_label = {}
    for f in ent.fields:
        by_label[f.zh] = f.key
        by_label[f.en] = f.key
        by_label[f.key] = f.key
    columns = {}
    for j, label in enumerate(table.header):
        key = by_label.get(str(label).strip()) if label is not None else None
        if key is not None and key not in columns:
            columns[key] = j
    return columns


@dataclass
class SheetCheck:
    """What checking one entity sheet found."""

    sheet: str
    rows: int = 0
    invalid_rows: int = 0
    marks: dict = field(default_factory=dict)      # (row, col) → note
    problems: list = field(default_factory=list)   # (row, col, label, value, message)


def check_sheet(ent: Entity, table: SheetTable, *, enums=None, lang: str = "zh") -> SheetCheck:
    """Validate the rows of one entity sheet; return each problem with the cell it belongs to."""
    from .validate import validate_columns

    result = SheetCheck(table.sheet, rows=len(table.rows))
    columns = field_columns(ent, table)
    # The sheet's columns as they are: no per-row dicts (100,000 rows make that the slow part).
    by_position = list(zip_longest(*table.rows)) if table.rows else []
    blank = [None] * len(table.rows)
    values = {k: (by_position[j] if j < len(by_position) else blank)
              for k, j in columns.items() if not ent.get(k).system}
    _, problems = validate_columns(values, ent, enums=enums, lang=lang, row_numbers=table.row_numbers)
    bad_rows = set()
    for p in problems:
        col = columns.get(p.field)
        # A rule between fields (lost reason, dates) is shown on the field it names; a field the
        # sheet lacks is shown on the row's first column.
        col = (col + 1) if col is not None else 1
        label = ent.get(p.field).label(lang) if p.field in ent.keys else p.field
        result.problems.append((p.row, col, label, p.value, p.message))
        note = result.marks.get((p.row, col))
        result.marks[(p.row, col)] = (note + "\n" if note else MARK_PREFIX) + p.message
        bad_rows.add(p.row)
    result.invalid_rows = len(bad_rows)
    return result


@dataclass
class WorkbookCheck:
    """What 校验 found in a whole workbook."""

    rows: int = 0
    invalid_rows: int = 0
    problems: list = field(default_factory=list)  # (sheet, row, col, label, value, message)
    message: str = ""


def check_workbook(book: Any, *, enums=None, lang: str | None = None, write: bool = True) -> WorkbookCheck:
    """校验: check every entity sheet, mark invalid cells, list problems on 校验结果, report a count.

    Marks from an earlier check are cleared where the problem is fixed.  Nothing outside the
    entity sheets' marks, their hidden check-status column and the report sheet changes; with
    ``write=False`` nothing changes at all.
    """
    seam = as_seam(book)
    lang = lang or i18n.lang()
    enums = enums if enums is not None else _store_enums()
    names = seam.sheet_names()
    report = Report(header=_report_header("validation", lang), rows=[])
    outcome = WorkbookCheck()
    status_labels = _extra_labels(STATUS_COLUMN_KEY)
    for ent, sheet in entity_sheets(names):
        seam.status(_t(lang, f"正在校验 {sheet}…", f"Checking {sheet}…"))
        table = seam.read_table(sheet)
        found = check_sheet(ent, table, enums=enums, lang=lang)
        if write:
            before = seam.marked_cells(sheet)
            seam.mark_cells(sheet, found.marks, clear=[c for c in before if c not in found.marks])
            _write_row_status(seam, table, found, status_labels, lang)
        for row, col, label, value, message in found.problems:
            report.links[(len(report.rows), 2)] = Link(sheet, row, col)
            report.rows.append([sheet, row, label, _shown(value), message, _t(lang, "错误", "Error")])
            outcome.problems.append((sheet, row, col, label, value, message))
        outcome.invalid_rows += found.invalid_rows
        outcome.rows += found.rows
    if outcome.problems:
        outcome.message = _t(
            lang, f"校验完成：{outcome.rows} 行中 {outcome.invalid_rows} 行有问题，共 {len(outcome.problems)} 处，见“校验结果”",
            f"Checked {outcome.rows} rows: {len(outcome.problems)} problems in {outcome.invalid_rows} rows; "
            "see the Validation sheet")
    else:
        outcome.message = _t(lang, f"校验通过：{outcome.rows} 行没有发现问题", f"All {outcome.rows} rows are valid")
    if write:
        seam.replace_report(report_sheet_name("validation", names), report)
        seam.save()
    seam.status(outcome.message)
    return outcome


def validate_workbook(book: Any, *, enums=None, lang: str | None = None) -> str:
    """The 校验 button: check_workbook on the calling workbook; return the status-bar message."""
    return check_workbook(book, enums=enums, lang=lang).message


def _write_row_status(seam, table: SheetTable, found: SheetCheck, labels: set[str], lang: str) -> None:
    """Set the hidden check-status column: text on invalid rows (they show red), empty on valid ones."""
    col = next((j + 1 for j, h in enumerate(table.header) if h in labels), None)
    if col is None:
        return
    counts: dict[int, int] = defaultdict(int)
    for row, *_ in found.problems:
        counts[row] += 1
    cells = {}
    for row_number, row in zip(table.row_numbers, table.rows):
        old = row[col - 1] if col - 1 < len(row) else None
        new = _t(lang, f"{counts[row_number]} 个问题", f"{counts[row_number]} problems") if counts.get(row_number) else None
        if (old or None) != new:
            cells[(row_number, col)] = new
    if cells:
        seam.write_cells(table.sheet, cells)


def _t(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _report_header(key: str, lang: str) -> list[str]:
    from .build_sheets import report_columns

    return [c.label for c in report_columns(key, _layout(), lang)]


def _shown(value: Any) -> Any:
    """A value as the report shows it: as typed, but never an object Excel cannot hold."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _store_enums():
    """The store's current enumerations when a store is configured, else the defaults."""
    import os

    location = os.environ.get("CRMSYNC_STORE")
    if not location:
        return None
    try:
        from .store import Store

        with Store(location) as store:
            return store.enums()
    except Exception:  # no store yet or unreachable: check against the built-in lists
        return None


# ---- where the store is and who acts; the workbook's own file ---------------------------------

def _sync_context(book: Any, seam, store: str | None, user: str | None) -> tuple[str, str]:
    """Where the store is and who acts: given, else the workbook's xlwings.conf / the environment.

    The user never comes from the workbook (a file cannot vouch for who opened it): it is the
    caller's or ``CRMSYNC_USER`` in the environment of the person's own account.
    """
    import os

    from .errors import InvalidInput
    from .lookup import settings

    location = store or _conf_store(book, seam) or settings().store or os.environ.get("CRMSYNC_STORE")
    who = user or os.environ.get("CRMSYNC_USER")
    if not location:
        raise InvalidInput(i18n.tr("未配置中心库：请在 xlwings.conf 中填写 CRMSYNC_STORE",
                                   "no store configured: fill in CRMSYNC_STORE on the xlwings.conf sheet"))
    if not who:
        raise InvalidInput(i18n.tr("未设置同步用户：请在本机环境变量中设置 CRMSYNC_USER",
                                   "no user for sync: set CRMSYNC_USER in this account's environment"))
    return location, who


def _conf_store(book: Any, seam) -> str | None:
    """CRMSYNC_STORE from the workbook's own xlwings.conf sheet (keys in A, values in B, from A1);
    a relative path is taken from the workbook's folder."""
    import os
    from pathlib import Path

    if "xlwings.conf" not in seam.sheet_names():
        return None
    try:
        table = seam.read_table("xlwings.conf")
    except Exception:  # an odd conf sheet: fall back to the other sources
        return None
    for row in [table.header, *table.rows]:
        if len(row) >= 2 and str(row[0] or "").strip().upper() == "CRMSYNC_STORE" and row[1]:
            location = os.path.expandvars(str(row[1]).strip())
            folder = getattr(seam, "path", None) or getattr(book, "fullname", None)
            if "://" not in location and folder and not Path(location).is_absolute():
                location = str(Path(folder).parent / location)
            return location
    return None


def _copy_id(book: Any, seam) -> str:
    from pathlib import Path

    path = getattr(seam, "path", None) or getattr(book, "fullname", None)
    return str(Path(path).resolve()) if path else seam.name


def _close_own(book: Any, seam) -> None:
    """Close a FileBook this action opened from a path (a seam or a workbook it was given stays open)."""
    if seam is not book and hasattr(seam, "close") and (isinstance(book, str) or hasattr(book, "__fspath__")):
        seam.close()


def _is_file(seam) -> bool:
    from .book_file import FileBook

    return isinstance(seam, FileBook)


def _report_context(book: Any, seam, store: str | None, user: str | None) -> tuple[str, str]:
    """Where the store is and whose view: as for sync, but a missing user reads as the admin —
    the same rule the worksheet functions follow (README: "Who is asking")."""
    import os

    from .errors import InvalidInput
    from .lookup import settings

    location = store or _conf_store(book, seam) or settings().store or os.environ.get("CRMSYNC_STORE")
    if not location:
        raise InvalidInput(i18n.tr("未配置中心库：请在 xlwings.conf 中填写 CRMSYNC_STORE",
                                   "no store configured: fill in CRMSYNC_STORE on the xlwings.conf sheet"))
    return location, user or os.environ.get("CRMSYNC_USER") or "admin"


def _customer_rows(seam) -> dict[str, int]:
    """customer_id → its row on the workbook's customer sheet (for links)."""
    names = seam.sheet_names()
    cust = ENTITIES["customer"]
    sheet = next((n for n in (cust.zh, cust.en) if n in names), None)
    if sheet is None:
        return {}
    table = seam.read_table(sheet)
    col = field_columns(cust, table).get("customer_id")
    if col is None:
        return {}
    return {str(r[col]): n for r, n in zip(table.rows, table.row_numbers) if col < len(r) and r[col]}


def selected_customer_ids(seam) -> list[str] | None:
    """The ids of the customers on the rows selected on the customer sheet, in order; None when
    nothing is selected there (a selected row without a customer id counts for nothing)."""
    names = seam.sheet_names()
    cust = ENTITIES["customer"]
    sheet = next((n for n in (cust.zh, cust.en) if n in names), None)
    rows = seam.selected_rows(sheet) if sheet is not None else []
    if not rows:
        return None
    id_of = {n: cid for cid, n in _customer_rows(seam).items()}
    return [id_of[r] for r in rows if r in id_of]
