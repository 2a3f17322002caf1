"""Reading and writing workbook files without Excel, safely and losslessly.

Reading: every file is checked first (xlsx_safety.check_package: zip bombs, entity attacks,
encrypted or legacy files, grids that would make calamine abort the process), then read with
python-calamine from the same open file, so what was checked is what is read.

Writing (xlsx_write): only the parts meant to change are rewritten — one worksheet's rows, its
tables' ranges, styles when a date format is missing — and every other zip part is copied byte
for byte; the result replaces the file atomically.

    names = list_sheets("crm_workbook.xlsm")
    data = read_sheet("crm_workbook.xlsm", "客户")
    replace_sheet_rows("crm_workbook.xlsm", "客户", [["C001", "华为", 13812345678]])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidFile, InvalidInput, NotFound
from .i18n import lang as current_lang
from .xlsx_safety import DEFAULT_LIMITS, Limits, Package, check_package, message, open_package
from .xlsx_write import replace_sheet_rows, update_cells, write_key_values

__all__ = [
    "Limits",
    "SheetData",
    "check_package",
    "list_sheets",
    "read_sheet",
    "replace_sheet_rows",
    "update_cells",
    "write_key_values",
]


@dataclass
class SheetData:
    """One sheet as rows under a header.

    ``rows[i]`` is Excel row ``row_numbers[i]`` (1-based), so a message can name the row.  Values
    are as calamine gives them (numbers as float, dates as datetime/date, booleans), empty cells
    and empty strings as None, error cells as their text ("#N/A").  Entirely empty rows are left
    out; every row has ``len(header)`` values.
    """

    sheet: str
    header: list[str]
    rows: list[list[object]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    header_row: int = 0  # 1-based; 0 when the sheet is empty


def list_sheets(path: str | Path, *, limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> list[str]:
    """Return the names of the workbook's sheets in workbook order (hidden ones included).

    Raises InvalidFile if the file fails the safety check.
    """
    with open_package(path, limits, lang=lang) as pkg:
        return [s.name for s in pkg.sheets]


def read_sheet(path: str | Path, sheet: str, *, header_row: int | None = None,
               limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> SheetData:
    """Return the rows of one worksheet under its header row.

    :param header_row: the 1-based row holding the header; None means the first non-empty row.
    Raises InvalidFile if the file fails the safety check, NotFound if there is no such sheet.

        data = read_sheet("客户.xlsx", "客户")
        for number, row in zip(data.row_numbers, data.rows): ...
    """
    with open_package(path, limits, lang=lang, errors_of=sheet) as pkg:
        grid = read_grid(pkg, sheet)
    if header_row is not None and header_row < 1:
        raise InvalidInput(_tr(lang, f"表头行号必须从 1 开始，收到 {header_row}",
                               f"the header row is 1-based; got {header_row}"))
    name = pkg.sheet(sheet).name
    if header_row is None:
        header_row = next((i + 1 for i, row in enumerate(grid) if any(v is not None for v in row)), 0)
    if header_row == 0 or header_row > len(grid):
        return SheetData(name, [], header_row=0 if header_row == 0 else header_row)
    width = _used_width(grid, header_row - 1)
    header = [_header_text(v) for v in grid[header_row - 1][:width]]
    rows, numbers = [], []
    for i in range(header_row, len(grid)):
        row = grid[i]
        if any(v is not None for v in row):
            rows.append(row[:width] if len(row) >= width else row + [None] * (width - len(row)))
            numbers.append(i + 1)
    return SheetData(name, header, rows, numbers, header_row)


def read_grid(pkg: Package, sheet: str) -> list[list[object]]:
    """Return every row of a sheet from A1 (a checked Package), empty cells as None, errors as text."""
    from python_calamine import CalamineError, CalamineWorkbook

    found = pkg.sheet(sheet)
    if found is None:
        raise NotFound(_tr(pkg.lang, f"“{pkg.name}”中没有工作表“{sheet}”；现有：{'、'.join(s.name for s in pkg.sheets)}",
                           f'"{pkg.name}" has no sheet {sheet!r}; it has: '
                           + ", ".join(s.name for s in pkg.sheets)))
    if found.kind != "worksheet":
        raise InvalidInput(_tr(pkg.lang, f"“{pkg.name}”中的“{found.name}”不是普通工作表（{found.kind}）",
                               f'{found.name!r} in "{pkg.name}" is not a worksheet ({found.kind})'))
    pkg.fp.seek(0)
    try:
        # From the file object the check read: a file swapped on disk since is not what we read.
        book = CalamineWorkbook.from_filelike(pkg.fp)
        try:
            grid = book.get_sheet_by_name(found.name).to_python(skip_empty_area=False)
        finally:
            book.close()
    except CalamineError as e:
        raise InvalidFile(message("corrupt", pkg.name, pkg.lang, detail=str(e).splitlines()[0][:200])) from None
    for row in grid:
        for j, v in enumerate(row):
            if v == "":
                row[j] = None
    scan = pkg.scans.get(found.part)
    for r, c, text in scan.errors if scan else ():
        # calamine gives an error cell as "": put back its text so validation can report it.
        if r <= len(grid) and c <= len(grid[r - 1]) and grid[r - 1][c - 1] is None:
            grid[r - 1][c - 1] = text
    return grid


def _used_width(grid: list[list[object]], header_index: int) -> int:
    """Return the number of columns up to the last one holding anything from the header down."""
    width = max((len(row) for row in grid[header_index:]), default=0)
    while width > 0 and all(len(row) < width or row[width - 1] is None for row in grid[header_index:]):
        width -= 1
    return width


def _header_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _tr(lang: str | None, zh: str, en: str) -> str:
    return en if (lang or current_lang()) == "en" else zh
