"""The error workbook of an import: the rows that were not imported, ready to fix and re-import.

Sheets:

- 错误行 / Rows to fix: 原行号 (the row in the original file), the original columns with the values
  exactly as read, and 错误说明 (every problem of the row).  Each bad cell is filled red and carries
  a note with its problems.  The header matches the original file's, so after fixing, the sheet
  imports again as it is (the importer ignores 原行号 and 错误说明);
- 疑似重复 / Likely duplicates: rows held back because they match existing customers, same layout,
  with the matched ids and the evidence; import them with ``--keep-duplicates`` once checked;
- 问题清单 / Problems: one line per problem (row, column, header, field, value, message).

Written with XlsxWriter: about twice openpyxl's write-only mode here (notes/performance.md: ~5,000
against ~2,300 rows/s), which matters when a file has thousands of bad rows.  Every string is written as text, never as a formula or link: a hostile file must not
gain formulas through us.
"""

from __future__ import annotations

from pathlib import Path

from datetime import date, datetime

from .i18n import tr

__all__ = ["write_error_workbook"]

_RED = "FFFFC7CE"


def write_error_workbook(plan, path: str | Path) -> Path:
    """Write the plan's bad rows, held-back duplicates and problems to a new .xlsx; return its path."""
    import xlsxwriter

    from .importer import PROBLEM_HEADER, ROW_HEADER

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # No formulas or links from data: every string is written as text.
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    red = wb.add_format({"bg_color": "#" + _RED[2:], "pattern": 1})
    bold = wb.add_format({"bold": True})
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    moment = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    header = list(plan.header)
    by_row: dict[int, list] = {}
    for p in plan.problems:
        by_row.setdefault(p.row, []).append(p)
    index_of = {c.letter: c.index for c in plan.columns.columns}

    def put(ws, r: int, c: int, value, fmt=None) -> None:
        if value is None:
            if fmt is not None:
                ws.write_blank(r, c, None, fmt)
            return
        if isinstance(value, bool):
            ws.write_boolean(r, c, value, fmt)
        elif isinstance(value, (int, float)):
            if value != value or value in (float("inf"), float("-inf")):
                ws.write_string(r, c, str(value), fmt)
            else:
                ws.write_number(r, c, value, fmt)
        elif isinstance(value, datetime):
            ws.write_datetime(r, c, value, fmt or moment)
        elif isinstance(value, date):
            ws.write_datetime(r, c, datetime(value.year, value.month, value.day), fmt or day)
        else:
            ws.write_string(r, c, _text(value), fmt)

    def header_row(ws, extra: list[str]) -> None:
        for j, h in enumerate([tr(ROW_HEADER, "Original row"), *header, *extra]):
            ws.write_string(0, j, h, bold)
        ws.freeze_panes(1, 1)

    ws = wb.add_worksheet(tr("错误行", "Rows to fix"))
    header_row(ws, [tr(PROBLEM_HEADER, "Problems")])
    for r, row in enumerate(sorted(by_row), start=1):
        problems = by_row[row]
        notes: dict[int, list[str]] = {}
        for p in problems:
            j = index_of.get(p.column)
            if j is not None:
                notes.setdefault(j, []).append(p.message)
        values = plan.originals.get(row, [])
        put(ws, r, 0, row)
        for j in range(len(header)):
            v = values[j] if j < len(values) else None
            if j in notes:
                put(ws, r, j + 1, v, red)
                ws.write_comment(r, j + 1, _text("\n".join(notes[j]))[:30000],
                                 {"author": "crmsync", "x_scale": 2.5, "y_scale": 1.5})
            else:
                put(ws, r, j + 1, v)
        put(ws, r, len(header) + 1, "；".join(_short(p) for p in problems))

    if plan.duplicates:
        ws = wb.add_worksheet(tr("疑似重复", "Likely duplicates"))
        header_row(ws, [tr("匹配客户", "Matches"), tr("依据", "Evidence")])
        for r, d in enumerate(plan.duplicates, start=1):
            values = plan.originals.get(d.row, [])
            put(ws, r, 0, d.row)
            for j in range(len(header)):
                put(ws, r, j + 1, values[j] if j < len(values) else None)
            put(ws, r, len(header) + 1, ", ".join(d.matches))
            put(ws, r, len(header) + 2, d.evidence)

    ws = wb.add_worksheet(tr("问题清单", "Problems"))
    for j, h in enumerate((tr("行", "Row"), tr("列", "Column"), tr("列名", "Header"), tr("字段", "Field"),
                           tr("值", "Value"), tr("问题", "Problem"))):
        ws.write_string(0, j, h, bold)
    for r, p in enumerate(plan.problems, start=1):
        label = plan.entity.get(p.field).label(_lang()) if p.field in plan.entity.keys else p.field
        for j, v in enumerate((p.row, p.column, p.header, label, p.value, p.message)):
            put(ws, r, j, v)
    ws = wb.add_worksheet(tr("说明", "About"))
    for r, line in enumerate(_about(plan)):
        put(ws, r, 0, line)
    wb.close()
    tmp.replace(path)
    return path


def _lang() -> str:
    from .i18n import lang

    return lang()


def _short(p) -> str:
    return f"{p.column}{p.row} {p.message}" if p.column else p.message


_CONTROL = dict.fromkeys(list(range(0, 9)) + [11, 12] + list(range(14, 32)))


def _text(value: object) -> str:
    """Text as a cell may hold it: XML-illegal control characters removed, at most Excel's limit."""
    return str(value).translate(_CONTROL)[:32767]


def _about(plan) -> list[str]:
    s = plan.summary()
    lines = [
        tr(f"来源：{plan.source.file}" + (f" 工作表 {plan.source.sheet}" if plan.source.sheet else ""),
           f"Source: {plan.source.file}" + (f" sheet {plan.source.sheet}" if plan.source.sheet else "")),
        tr(f"共 {s['rows']} 行：可导入 {s['valid']} 行，有错误 {s['invalid']} 行，疑似重复 {s['duplicates']} 行",
           f"{s['rows']} rows: {s['valid']} importable, {s['invalid']} with problems, {s['duplicates']} likely duplicates"),
        tr("修改“错误行”中标红的单元格（批注里写明了问题），保存后用 crmsync import 本文件 --sheet 错误行 再次导入；"
           "原行号和错误说明两列会被忽略。",
           "Fix the red cells on 'Rows to fix' (each note says what is wrong), save, and import this file "
           "again with crmsync import FILE --sheet 'Rows to fix'; the row-number and problem columns are ignored."),
    ]
    unmapped = plan.unmapped
    if unmapped:
        lines.append(tr(f"未匹配的列（已保存在客户的附加数据中）：{'、'.join(unmapped)}",
                        f"Unmapped columns (kept with each customer's extra data): {', '.join(unmapped)}"))
    lines += plan.notes
    return lines
