"""Reading and writing workbook files without Excel, safely and losslessly.

Reading: every file is checked first (xlsx_safety.check_package: zip bombs, entity attacks,
encrypted or legacy files, grids that would make calamine abort the process), then read with
python-calamine from the same open file, so what was checked is what is read.

Writing (xlsx_write): only the parts meant to change are rewritten — one worksheet's rows, its
tables' ranges, styles when a date format is missing — and every other zip part is copied byte
for byte; the result replaces the file atomically.  book_file.FileBook gathers many changes —
cells, marks (fill + note), report sheets with links — into one such write (xlsx_edit).

    names = list_sheets("crm_workbook.xlsm")
    data = read_sheet("crm_workbook.xlsm", "客户")
    replace_sheet_rows("crm_workbook.xlsm", "客户", [["C001", "华为", 13812345678]])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidFile, InvalidInput
from .xlsx_safety import DEFAULT_LIMITS, Limits, Package, check_package, message, open_package, say
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

    :param header_row: the 1-based row holding the header (say 3, under a title and a blank row);
        None means the first non-empty row.
    Raises InvalidFile if the file fails the safety check, NotFound if there is no such sheet,
    InvalidInput for a header_row below 1 or a sheet that is not a worksheet.

        data = read_sheet("客户.xlsx", "客户")
        for number, row in zip(data.row_numbers, data.rows): ...
    """
    if header_row is not None and header_row < 1:
        raise InvalidInput(say(lang, f"表头行号必须从 1 开始，收到 {header_row}",
                               f"the header row is 1-based; got {header_row}"))
    with open_package(path, limits, lang=lang, errors_of=sheet) as pkg:
        grid = read_grid(pkg, sheet)
        name = pkg.sheet(sheet).name
    if header_row is None:
        header_row = next((i + 1 for i, row in enumerate(grid) if row.count(None) != len(row)), 0)
    header, rows, numbers = rows_under(grid, header_row)
    return SheetData(name, header, rows, numbers, header_row)


def rows_under(grid: list[list[object]], header_row: int) -> tuple[list[str], list[list[object]], list[int]]:
    """Return (header, rows, Excel row numbers) of a grid under its 1-based header row.

    Entirely empty rows are left out; every row has ``len(header)`` values (the used width).
    """
    if header_row < 1 or header_row > len(grid):
        return [], [], []
    width = _used_width(grid, header_row - 1)
    header = [_header_text(v) for v in grid[header_row - 1][:width]]
    header += [""] * (width - len(header))
    rows, numbers = [], []
    for i in range(header_row, len(grid)):
        row = grid[i]
        if row.count(None) == len(row):
            continue
        if len(row) != width:
            row = row[:width] if len(row) > width else row + [None] * (width - len(row))
        rows.append(row)
        numbers.append(i + 1)
    return header, rows, numbers


def read_grid(pkg: Package, sheet: str) -> list[list[object]]:
    """Return every row of a sheet from A1 (a checked Package), empty cells as None, errors as text.

    Raises NotFound (no such sheet), InvalidInput (not a worksheet), InvalidFile (the file changed
    since the check, or calamine cannot read it).
    """
    from python_calamine import CalamineError, CalamineWorkbook

    found = pkg.worksheet(sheet)
    pkg.fp.seek(0)
    try:
        # From the file object the check read: a file swapped on disk since is not what we read.
        book = CalamineWorkbook.from_filelike(pkg.fp)
        try:
            grid = book.get_sheet_by_name(found.name).to_python(skip_empty_area=False)
        finally:
            book.close()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # CalamineError, and a Rust panic (pyo3's PanicException is a BaseException)
        if not isinstance(e, (CalamineError, Exception)) and type(e).__name__ != "PanicException":
            raise
        raise InvalidFile(message("corrupt", pkg.name, pkg.lang, detail=_first_line(e))) from None
    if pkg.changed_on_disk():  # written to in place while it was read: what we have may be a mix
        raise pkg.refuse("changed")
    scan = pkg.scans.get(found.part)
    for r, c, text in scan.errors if scan else ():
        # calamine gives an error cell as "": put back its text so validation can report it.
        if r <= len(grid) and c <= len(grid[r - 1]) and grid[r - 1][c - 1] == "":
            grid[r - 1][c - 1] = text
    for i, row in enumerate(grid):
        if "" in row:
            grid[i] = [None if v == "" else v for v in row]
    return grid


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:200]


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
