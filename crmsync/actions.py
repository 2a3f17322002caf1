"""The ribbon's actions, written once against the workbook seam (crmsync/seam.py).

Each action takes ``book`` — a ``WorkbookSeam``, a file path, or the ``xlwings.Book`` Excel hands
to RunPython — and returns the one-line message for the status bar.  The CLI calls the same
functions on files, so a button and its command always do the same thing.

Actions whose engine belongs to a later piece of work (sync, duplicates, import/export, reports,
approval) are not defined here yet: ``crmsync.macros`` then tells the user plainly that the button
is not available and runs nothing.
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
