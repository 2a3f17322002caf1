"""The workbook seam inside a running Excel, through the free xlwings API (crmsync/seam.py).

``ExcelBook(book)`` wraps the ``xlwings.Book`` that RunPython hands over (``xw.Book.caller()``)
and does what an action asks with as few calls into Excel as it can: each call crosses a process
boundary (COM on Windows, AppleScript on macOS), so

- a table is read with one ``Range.value`` from A1 to the used range's last cell;
- changed cells are written as rectangles of contiguous cells, one call each;
- fills are set on rectangles of marked cells; notes are per cell (Excel has no bulk call);
- a report is written with one call for its header and rows;
- screen updating and automatic calculation are off during those writes and restored after.

Only the BSD-licensed core of xlwings is used (no ``xlwings.pro``); this module imports nothing
from xlwings at all, it only calls the book it is given, so ``import crmsync.macros`` stays light.

Values go to Excel as they should read back: a string Excel would parse into something else (a
number, a date, a formula, TRUE) is written with Excel's text prefix ``'``, which Excel does not
keep in the value, so ``"0755"`` stays ``"0755"`` and ``"=1+1"`` stays text.

Notes people wrote are never changed: a cell that carries someone else's note is not marked (its
problem still appears on the report sheet and the row's check-status column).
"""

from __future__ import annotations

import numbers
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import Any

from .seam import MARK_FILL, MARK_PREFIX, Cell, Report, SheetTable, append_position

__all__ = ["ExcelBook", "MARK_RGB", "excel_text", "rectangles"]

#: seam.MARK_FILL as the (r, g, b) xlwings sets and reads.
MARK_RGB: tuple[int, int, int] = tuple(int(MARK_FILL[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[assignment]

#: The Open dialog's file types (Application.GetOpenFilename's FileFilter: label, patterns).
OPEN_FILTER = "Excel / CSV (*.xlsx;*.xlsm;*.xls;*.csv),*.xlsx;*.xlsm;*.xls;*.csv"


class ExcelBook:
    """The open workbook in Excel, as a ``WorkbookSeam``.

    :param book: an ``xlwings.Book``; None means ``xw.Book.caller()`` (the workbook that ran
        RunPython).
    """

    def __init__(self, book: Any = None):
        if book is None:
            import xlwings as xw

            book = xw.Book.caller()
        self.book = book
        self.name: str = book.name
        self._app = book.app
        self._quiet_depth = 0
        # The notes marked_cells(sheet) found — ours with their text, and the cells with other
        # people's notes — used once by the next mark_cells(sheet): a cell whose note is already
        # right is skipped (its fill left as it is), and no cell needs asking for its note.
        self._seen_notes: dict[str, tuple[dict[Cell, str], set[Cell]]] = {}

    def __repr__(self) -> str:
        return f"ExcelBook({self.name!r})"

    # -- reading -------------------------------------------------------------------------------

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def read_table(self, sheet: str) -> SheetTable:
        """Header (row 1) and the non-empty rows under it, read with one call for the values.

        Values are as Excel gives them: numbers as float, dates as datetime, booleans, text, empty
        cells (and empty text) as None, error cells as their text ("#N/A").  Rows are Excel rows.
        """
        sh = self._sheet(sheet)
        used = sh.used_range
        top, left = used.row, used.column
        nrows, ncols = used.shape
        last_row, last_col = top + nrows - 1, left + ncols - 1
        grid = sh.range((1, 1), (last_row, last_col)).options(ndim=2, err_to_str=True).value
        grid = grid or []  # xlwings gives empty cells (and empty text) as None already
        width = _used_width(grid)
        if width == 0:
            return SheetTable(sh.name, [], [], [])
        header = [_header_text(v) for v in grid[0][:width]]
        rows, row_numbers = [], []
        for i in range(1, len(grid)):
            row = grid[i][:width]
            if row.count(None) == len(row):
                continue
            rows.append(row)
            row_numbers.append(i + 1)
        return SheetTable(sh.name, header, rows, row_numbers)

    def marked_cells(self, sheet: str) -> dict[Cell, str]:
        """The cells whose note crmsync wrote (it starts with seam.MARK_PREFIX), with the note."""
        sh = self._sheet(sheet)
        found: dict[Cell, str] = {}
        others: set[Cell] = set()
        for note in sh.notes:
            text = _note_text(note)
            where = note.location
            if text.startswith(MARK_PREFIX):
                found[(where.row, where.column)] = text
            else:
                others.add((where.row, where.column))
        self._seen_notes[sh.name] = (dict(found), others)
        return found

    # -- writing -------------------------------------------------------------------------------

    def write_cells(self, sheet: str, cells: Mapping[Cell, Any]) -> None:
        """Set cell values, one call per rectangle of contiguous cells; None empties a cell."""
        if not cells:
            return
        sh = self._sheet(sheet)
        values = {cell: excel_value(v) for cell, v in cells.items()}
        with self._quiet():
            for (row, col), (nrows, ncols) in rectangles(values):
                block = [[values[(r, c)] for c in range(col, col + ncols)] for r in range(row, row + nrows)]
                sh.range((row, col)).value = block

    def append_rows(self, sheet: str, rows: Sequence[Sequence[Any]], *, after: int | None = None) -> int:
        """Add rows under the last row holding a value in one write, and resize the sheet's table
        (ListObject) over them: Excel grows a table by itself only for what a person types."""
        if not rows:
            return 0
        sh = self._sheet(sheet)
        first, width = append_position(self, sheet, rows, after)
        block = [[excel_value(row[j]) if j < len(row) else None for j in range(width)] for row in rows]
        last = first + len(rows) - 1
        with self._quiet():
            sh.range((first, 1)).value = block
            for listobject in sh.tables:
                rng = listobject.range
                bottom, right = rng.row + rng.shape[0] - 1, rng.column + rng.shape[1] - 1
                if rng.row == 1 and bottom < last:
                    listobject.resize(sh.range((rng.row, rng.column), (last, right)))
        return first

    def mark_cells(self, sheet: str, marks: Mapping[Cell, str], clear: Iterable[Cell] = ()) -> None:
        """Fill each cell of ``marks`` with seam.MARK_FILL and give it a note with its message;
        take our note and the fill off each cell of ``clear``.

        A cell with somebody else's note is left alone (no fill, no note).  After
        ``marked_cells(sheet)``, a cell whose note already says the same is not touched (a fill
        taken off by hand is not put back until the message changes), and no cell is asked for
        its note first.
        """
        sh = self._sheet(sheet)
        seen, others = self._seen_notes.pop(sh.name, (None, None))
        to_fill: set[Cell] = set()
        to_unfill: set[Cell] = set()
        with self._quiet():
            for cell, text in marks.items():
                if not text.startswith(MARK_PREFIX):
                    text = MARK_PREFIX + text
                if seen is not None:  # every note of the sheet is known
                    if cell in others:  # somebody's own note: leave the cell alone
                        continue
                    if cell in seen:
                        if seen[cell] != text:
                            sh.range(cell).note.text = text
                            to_fill.add(cell)
                        continue
                    sh.range(cell).add_note(text)
                    to_fill.add(cell)
                    continue
                rng = sh.range(cell)
                note = rng.note
                if note is None:
                    rng.add_note(text)
                elif _note_text(note).startswith(MARK_PREFIX):
                    note.text = text
                else:  # somebody's own note: leave the cell alone
                    continue
                to_fill.add(cell)
            for cell in clear:
                if cell in marks or (seen is not None and cell not in seen):
                    continue
                note = sh.range(cell).note
                if note is None:
                    continue
                if seen is not None or _note_text(note).startswith(MARK_PREFIX):
                    note.delete()
                    to_unfill.add(cell)
            for cells, color in ((to_fill, MARK_RGB), (to_unfill, None)):
                for (row, col), (nrows, ncols) in rectangles(dict.fromkeys(cells)):
                    sh.range((row, col), (row + nrows - 1, col + ncols - 1)).color = color

    def replace_report(self, sheet: str, report: Report) -> None:
        """Replace a report sheet's content: old rows (values, links, formats) cleared, the header
        and rows written in one call, then each link added to its cell."""
        if sheet in self.sheet_names():
            sh = self._sheet(sheet)
        else:
            sheets = self.book.sheets
            sh = sheets.add(sheet, after=sheets[len(sheets) - 1])
        width = max([len(report.header)] + [len(r) for r in report.rows])
        block = [list(report.header) + [None] * (width - len(report.header))]
        block += [list(r) + [None] * (width - len(r)) for r in report.rows]
        block = [[excel_value(v) for v in row] for row in block]
        with self._quiet():
            used = sh.used_range
            last_row = used.row + used.shape[0] - 1
            last_col = used.column + used.shape[1] - 1
            if last_row >= 2:
                # clear(), not clear_contents(): Excel keeps a cell's hyperlink when only its
                # contents are cleared.
                sh.range((2, 1), (last_row, max(last_col, width))).clear()
            if last_col > width:
                sh.range((1, width + 1), (1, last_col)).clear()
            # Links first: adding one sets the cell's text, which the values written next replace
            # with the typed value (a number stays a number); the link stays on the cell.
            for (i, col), link in sorted(report.links.items()):
                value = report.rows[i][col - 1] if col - 1 < len(report.rows[i]) else None
                shown = _display(value) or link.address
                sh.range((i + 2, col)).add_hyperlink("#" + link.address, shown, link.address)
            if width:
                sh.range((1, 1)).value = block

    def status(self, text: str) -> None:
        """Show ``text`` in Excel's status bar."""
        self._app.status_bar = text

    def save(self) -> None:
        """Nothing to do: the workbook is open in Excel and the user saves it there."""

    # -- the user's selection and file dialog ----------------------------------------------------

    def selected_rows(self, sheet: str) -> list[int]:
        """The rows of Excel's selection when it is on ``sheet`` of this workbook; a whole-column
        selection stops at the sheet's last used row.  Of a multi-area selection (Ctrl+click),
        the first area counts."""
        try:
            sel = self._app.selection
        except Exception:  # a chart or a shape is selected, or Excel is busy
            return []
        if sel is None:
            return []
        sh = sel.sheet
        if sh.book.name != self.book.name or sh.name.casefold() != sheet.casefold():
            return []
        first, count = sel.row, sel.shape[0]
        used = sh.used_range
        last = min(first + count - 1, used.row + used.shape[0] - 1)
        return list(range(first, last + 1))

    def selected_row(self, sheet: str) -> int | None:
        """The first row of Excel's selection on ``sheet`` (the active cell's row, unless the range
        was selected from the bottom up), or None."""
        rows = self.selected_rows(sheet)
        return rows[0] if rows else None

    def choose_file(self, title: str) -> str | None:
        """Excel's own Open dialog (``Application.GetOpenFilename``); the chosen path, or None
        when the user cancels.  An Excel that has no such call (xlwings on macOS drives Excel
        through AppleScript) is refused with a message pointing at ``crmsync import``."""
        ask = getattr(self._app.api, "GetOpenFilename", None)
        if ask is None:
            from .errors import InvalidInput
            from .i18n import tr

            raise InvalidInput(tr("此 Excel 不能打开选择文件的对话框：请在命令行运行 crmsync import 文件",
                                  "this Excel cannot show a file dialog: run crmsync import FILE instead"))
        chosen = ask(OPEN_FILTER, 1, title)
        # Excel answers False when the user cancels
        return str(chosen) if chosen and chosen is not True else None

    # -- helpers -------------------------------------------------------------------------------

    def _sheet(self, name: str):
        for sh in self.book.sheets:
            if sh.name == name:
                return sh
        # Excel matches sheet names case-insensitively
        for sh in self.book.sheets:
            if sh.name.casefold() == name.casefold():
                return sh
        from .errors import NotFound
        from .i18n import tr

        raise NotFound(tr(f"工作簿“{self.name}”中没有工作表“{name}”",
                          f"workbook '{self.name}' has no sheet '{name}'"))

    @contextmanager
    def _quiet(self):
        """Screen updating off and calculation manual while writing; both restored after, also on
        an error.  Nested uses restore only at the outermost."""
        if self._quiet_depth:
            self._quiet_depth += 1
            try:
                yield
            finally:
                self._quiet_depth -= 1
            return
        app = self._app
        saved = {}
        for prop, value in (("screen_updating", False), ("calculation", "manual")):
            try:
                saved[prop] = getattr(app, prop)
                if saved[prop] != value:
                    setattr(app, prop, value)
            except Exception:  # an engine or Excel state that refuses: write anyway, only slower
                saved.pop(prop, None)
        self._quiet_depth = 1
        try:
            yield
        finally:
            self._quiet_depth = 0
            for prop, value in reversed(list(saved.items())):
                try:
                    if getattr(app, prop) != value:
                        setattr(app, prop, value)
                except Exception:
                    pass


def rectangles(cells: Mapping[Cell, Any]) -> list[tuple[Cell, tuple[int, int]]]:
    """Group cells into rectangles of contiguous cells: ``[((row, col), (nrows, ncols)), ...]``.

    Runs of adjacent cells in a row are found first; runs with the same columns in consecutive
    rows are then joined.  A column of changed cells is one rectangle, so is a block of rows.
    """
    by_row: dict[int, list[int]] = {}
    for row, col in cells:
        by_row.setdefault(row, []).append(col)
    runs: dict[tuple[int, int], list[int]] = {}  # (first col, ncols) → rows, ascending
    for row in sorted(by_row):
        cols = sorted(by_row[row])
        start = prev = cols[0]
        for col in cols[1:] + [None]:
            if col is not None and col == prev + 1:
                prev = col
                continue
            runs.setdefault((start, prev - start + 1), []).append(row)
            if col is not None:
                start = prev = col
    out = []
    for (col, ncols), rows in runs.items():
        first = last = rows[0]
        for row in rows[1:] + [None]:
            if row is not None and row == last + 1:
                last = row
                continue
            out.append(((first, col), (last - first + 1, ncols)))
            if row is not None:
                first = last = row
    out.sort()
    return out


def excel_value(value: Any) -> Any:
    """A value ready to be written with ``Range.value`` so that it reads back the same."""
    if value is None or isinstance(value, (bool, int, float, datetime, date)):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, complex):  # Decimal, numpy
        return float(value)
    if isinstance(value, time):
        return datetime.combine(date(1899, 12, 30), value)  # Excel's day zero
    if not isinstance(value, str):
        value = str(value)
    return excel_text(value)


def excel_text(text: str) -> str:
    """Text as written to a cell: with Excel's text prefix ``'`` unless Excel cannot mistake it.

    Excel parses a value written to a cell as if typed: ``0755`` becomes 755, ``1/2`` a date,
    ``=...`` or ``+86 …`` a formula, ``TRUE`` a boolean.  The prefix makes it text and is not
    part of the value.  Text that starts with a letter outside ASCII (Chinese, for instance) is
    never parsed, so it is written as it is.
    """
    if not text:
        return text
    first = text[0]
    if ord(first) > 127 and unicodedata.category(first).startswith("L"):
        return text
    return "'" + text


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _note_text(note: Any) -> str:
    text = note.text or ""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _used_width(grid: list[list[Any]]) -> int:
    """The number of columns up to the last one holding anything."""
    width = 0
    for row in grid:
        for j in range(len(row) - 1, width - 1, -1):
            if row[j] is not None:
                width = j + 1
                break
    return width


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
