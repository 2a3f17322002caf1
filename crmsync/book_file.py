"""The workbook seam over a workbook file, without Excel: the CLI, the folder watcher, tests.

``FileBook`` checks the file once when it is opened (xlsx_safety: a file that is not a safe
workbook is refused with one message naming it) and reads sheets from that same checked file
with python-calamine.  Changes — cell values, marks, report sheets — are collected and written
by ``save()`` in one atomic write that rewrites only the parts they touch (xlsx_edit); every
other part of the file (the ribbon, the VBA project, other sheets, validations, formats) is
copied byte for byte.  Until then the file on disk is unchanged, and reads see the pending
values (as the file will hold them: numbers as float, "" as empty).

    book = FileBook("crm_workbook.xlsm", on_status=print)
    table = book.read_table("客户")
    book.mark_cells("客户", {(5, 7): "⚠ 手机号格式不对"})
    book.save()

The checked file stays open from the first read to ``save()`` or ``close()`` (so what is read
and what is saved over is the file that was checked; a save by another program meanwhile makes
``save()`` refuse rather than overwrite it).  A large sheet is inflated in a worker thread while
calamine parses it, so that ``save()`` rewrites only its edited rows.

A mark is a light-red fill (``seam.MARK_FILL``) on the cell's own format — number format, font,
border and alignment kept — and a note whose text starts with ``seam.MARK_PREFIX``.  Taking a
mark off puts the cell's format back and removes that note.  Notes people wrote are never
changed: a cell holding one is not marked (its problem is still listed on the report sheet).
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .seam import MARK_FILL, MARK_PREFIX, Cell, Link, Report, SheetTable, append_position
from .workbook import _header_text, read_grid, rows_under
from .xlsx_edit import SheetChanges, save_changes
from .xlsx_limits import say
from .xlsx_notes import sheet_comments
from .xlsx_patch import SheetText
from .xlsx_safety import DEFAULT_LIMITS, Limits, Package, open_package

__all__ = ["FileBook"]

#: A sheet part this large (inflated: ~15,000 customer rows) is read in bulk: it is inflated and
#: indexed in the background meanwhile, so that saving changes to it rewrites only the edited
#: rows (xlsx_patch.SheetText), and its rows are built with the garbage collector paused, then
#: moved to the oldest generation by one full collection (_bulk_allocation).
_BULK = 16 << 20


@contextmanager
def _bulk_allocation(bulk: bool):
    """Pause the cyclic garbage collector while a large table's rows are built, then collect once.

    The rows are lists of plain values (no cycles), so pausing frees nothing later than it
    would be freed.  Left young, they make CPython's collector (3.11) run several full
    collections over them while the caller validates them; one collection now moves them to the
    oldest generation at once (~0.1 s here saves ~0.5 s there on 100,000 rows).
    """
    if not bulk:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
    gc.collect()


class FileBook:
    """A workbook file as the seam (crmsync/seam.py) sees it.

    :param on_status: called with each status message (the CLI prints them); every message is
        also kept in ``messages``, the last one last.
    :param lang: the language of error messages ("zh"/"en"; default the user's).
    :param selected: what stands for the user's selection, which a file does not have: a row or
        rows (Excel's numbers), on ``selected_sheet`` or, when that is None, on any sheet asked.
    :param chosen_file: the file ``choose_file`` answers with (else ``$CRMSYNC_CHOSEN_FILE``,
        else None, as when the user cancels).
    Raises InvalidFile when the file is missing or not a safe workbook; the file is not changed.
    """

    def __init__(self, path: str | Path, *, on_status: Callable[[str], Any] | None = None,
                 lang: str | None = None, limits: Limits = DEFAULT_LIMITS,
                 selected: int | Iterable[int] | None = None, selected_sheet: str | None = None,
                 chosen_file: str | Path | None = None):
        self.selected = [selected] if isinstance(selected, int) else list(selected or ())
        self.selected_sheet = selected_sheet
        self.chosen_file = chosen_file
        self.path = Path(path)
        self.name = self.path.name
        self.on_status = on_status
        self.lang = lang
        self.limits = limits
        self.messages: list[str] = []
        self._pending: dict[str, SheetChanges] = {}
        self._texts: dict[str, SheetText] = {}  # large sheets read: inflated meanwhile, for save()
        self._pkg: Package | None = None
        self._package()

    # -- the checked file --

    def _package(self) -> Package:
        if self._pkg is None:
            self._pkg = open_package(self.path, self.limits, lang=self.lang, errors_of=True)
        return self._pkg

    def close(self) -> None:
        """Let go of the file (pending changes are kept; the next read checks the file again)."""
        for text in self._texts.values():
            text.ready()  # the worker is done with its copy before the file may change
        self._texts.clear()
        if self._pkg is not None:
            self._pkg.close()
            self._pkg = None

    def __enter__(self) -> FileBook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _sheet(self, sheet: str) -> str:
        """The worksheet's name as the workbook spells it; NotFound / InvalidInput as Package.worksheet."""
        return self._package().worksheet(sheet).name

    def _changes(self, sheet: str) -> SheetChanges:
        name = self._sheet(sheet)
        return self._pending.setdefault(name, SheetChanges())

    # -- reading --

    def sheet_names(self) -> list[str]:
        return [s.name for s in self._package().sheets]

    def read_table(self, sheet: str) -> SheetTable:
        """The header (row 1) and the non-empty rows under it, pending writes included."""
        name = self._sheet(sheet)
        pending = self._pending.get(name)
        if pending is not None and pending.report is not None:
            header, rows, _ = pending.report
            header = [_header_text(_as_read(v)) for v in header]
            width = max([len(header), *(len(r) for r in rows)])
            header += [""] * (width - len(header))
            rows = [[_as_read(v) for v in row] + [None] * (width - len(row)) for row in rows]
            numbers = list(range(2, 2 + len(rows)))
        else:
            pkg = self._package()
            part = pkg.worksheet(name).part
            bulk = pkg.info(part).file_size >= _BULK
            if bulk and part not in self._texts:
                self._texts[part] = SheetText(pkg, part)  # inflated while calamine parses it
            with _bulk_allocation(bulk):
                header, rows, numbers = rows_under(read_grid(pkg, name), 1)
        if pending is not None and pending.cells:
            _overlay(header, rows, numbers, pending.cells)
        return SheetTable(name, header, rows, numbers, header_row=1)

    def marked_cells(self, sheet: str) -> dict[Cell, str]:
        """The cells whose note crmsync wrote (text starting with MARK_PREFIX), pending marks included."""
        name = self._sheet(sheet)
        _, comments = sheet_comments(self._package(), self._package().worksheet(name))
        existing = comments.texts() if comments else {}
        found = {c: t for c, t in existing.items() if t.startswith(MARK_PREFIX)}
        pending = self._pending.get(name)
        for cell, text in (pending.notes.items() if pending else ()):
            if cell in existing and not existing[cell].startswith(MARK_PREFIX):
                continue  # a person's note: never ours to mark
            if text is None:
                found.pop(cell, None)
            else:
                found[cell] = text
        return found

    # -- collecting changes --

    def write_cells(self, sheet: str, cells: Mapping[Cell, Any]) -> None:
        """Set the values of these cells (None empties a cell, keeping its format)."""
        changes = self._changes(sheet)
        for cell in cells:
            self._check_cell(cell)
        if changes.report is not None:  # on a report being replaced: part of the report
            header, rows, _ = changes.report
            for (r, c), value in cells.items():
                target = header if r == 1 else None
                if r >= 2:
                    while len(rows) < r - 1:
                        rows.append([])
                    target = rows[r - 2]
                if target is not None:
                    target.extend([None] * (c - len(target)))
                    target[c - 1] = value
            return
        changes.cells.update(cells)

    def append_rows(self, sheet: str, rows: Sequence[Sequence[Any]], *, after: int | None = None) -> int:
        """Add rows under the last row holding a value; the sheet's table, and the validations and
        conditional formats that ran to its end, grow over them when saved.  Every column of a new
        row is written (an empty cell too), so each cell takes its column's format (text columns
        stay text).  Return the first new row's number (0 when rows is empty)."""
        if not rows:
            return 0
        changes = self._changes(sheet)
        if changes.report is not None:
            raise InvalidInput(say(self.lang, f"不能在报表工作表“{sheet}”上追加行",
                                   f"cannot append rows to the report sheet {sheet!r}"))
        first, width = append_position(self, sheet, rows, after)
        cells = {(first + i, j + 1): (row[j] if j < len(row) else None)
                 for i, row in enumerate(rows) for j in range(width)}
        self._check_cell((first + len(rows) - 1, width))
        changes.cells.update(cells)
        changes.grow_to = max(changes.grow_to, first + len(rows) - 1)
        return first

    def mark_cells(self, sheet: str, marks: Mapping[Cell, str], clear: Iterable[Cell] = ()) -> None:
        """Fill each cell of marks light red with a note holding its message; take both off each
        cell of clear.  A cell in both is marked."""
        changes = self._changes(sheet)
        clear = list(clear)
        for cell in [*clear, *marks]:
            self._check_cell(cell)
        for cell in clear:
            changes.notes[cell] = None
        for cell, text in marks.items():
            text = "" if text is None else str(text)
            changes.notes[cell] = text if text.startswith(MARK_PREFIX) else MARK_PREFIX + text

    def replace_report(self, sheet: str, report: Report) -> None:
        """Replace the rows of a report sheet: header in row 1 (its format kept), rows from row 2,
        each link a hyperlink to its cell."""
        changes = self._changes(sheet)
        rows = [list(r) for r in report.rows]
        links: dict[Cell, str] = {}
        for (i, c), link in report.links.items():
            if not (0 <= i < len(rows)) or c < 1:
                raise InvalidInput(say(self.lang, f"报表链接位置 ({i}, {c}) 不在报表的行列范围内",
                                       f"report link ({i}, {c}) is outside the report's rows"))
            links[(i, c)] = link.address if isinstance(link, Link) else str(link)
        changes.report = (list(report.header), rows, links)
        changes.cells.clear()  # the report replaces what was written there before

    def status(self, text: str) -> None:
        self.messages.append(text)
        if self.on_status is not None:
            self.on_status(text)

    def save(self) -> None:
        """Write every collected change in one atomic write; nothing is written when nothing differs.

        Raises InvalidFile (file unwritable, or saved by another program since it was read),
        InvalidInput (a value Excel cannot hold, named by row and column); the file is then
        unchanged and the changes stay collected.
        """
        if not self._pending:
            return
        pkg = self._package()
        try:
            save_changes(pkg, self.path, self._pending, fill=MARK_FILL, is_ours=lambda t: t.startswith(MARK_PREFIX),
                         limits=self.limits, lang=self.lang, texts=self._texts)
        finally:
            self.close()  # the file on disk is the new one (or the old one after a failure): read it afresh
        self._pending.clear()

    # -- what stands for the user: the selection and the file dialog --

    def selected_rows(self, sheet: str) -> list[int]:
        """The rows given as ``selected`` when they are on ``sheet`` (as given, without repeats)."""
        if not self.selected:
            return []
        if self.selected_sheet is not None and self._sheet(self.selected_sheet) != self._sheet(sheet):
            return []
        return list(dict.fromkeys(self.selected))

    def selected_row(self, sheet: str) -> int | None:
        rows = self.selected_rows(sheet)
        return rows[0] if rows else None

    def choose_file(self, title: str) -> str | None:
        """The file given as ``chosen_file``, else ``$CRMSYNC_CHOSEN_FILE``; None stands for a cancel."""
        import os

        chosen = self.chosen_file or os.environ.get("CRMSYNC_CHOSEN_FILE")
        return str(chosen) if chosen else None

    def _check_cell(self, cell: Cell) -> None:
        r, c = cell
        if not (isinstance(r, int) and isinstance(c, int) and 1 <= r <= 1_048_576 and 1 <= c <= 16_384):
            raise InvalidInput(say(self.lang, f"单元格位置 {cell!r} 超出 Excel 的范围", f"cell {cell!r} is outside Excel's grid"))


def _as_read(value: Any) -> Any:
    """A value as reading the written file gives it back: numbers as float, "" / NaN as empty."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return None if value.is_nan() else float(value)
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return _as_read(item())
    return value


def _overlay(header: list[str], rows: list[list], numbers: list[int], cells: Mapping[Cell, Any]) -> None:
    """Put pending cell values into a read table (rows and numbers in place)."""
    index = {n: i for i, n in enumerate(numbers)}
    touched = set()
    for (r, c), value in sorted(cells.items()):
        value = _as_read(value)
        if c > len(header):
            header.extend([""] * (c - len(header)))
            for row in rows:
                row.extend([None] * (c - len(row)))
        if r == 1:
            header[c - 1] = _header_text(value)
            continue
        i = index.get(r)
        if i is None:
            if value is None:
                continue
            i = bisect.bisect_left(numbers, r)
            numbers.insert(i, r)
            rows.insert(i, [None] * len(header))
            index = {n: k for k, n in enumerate(numbers)}
        rows[i][c - 1] = value
        touched.add(r)
    for r in touched:  # a row emptied by the writes is left out, as reading the file would
        i = index[r]
        if all(v is None for v in rows[i]):
            del rows[i], numbers[i]
            index = {n: k for k, n in enumerate(numbers)}
