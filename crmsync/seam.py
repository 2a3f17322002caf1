"""The workbook seam: what a ribbon action may do to a workbook, and nothing more.

Actions (crmsync/actions.py) are written once against ``WorkbookSeam``; two classes implement it:

- ``FileBook`` (crmsync/book_file.py): a workbook file on disk, no Excel needed — the CLI, the
  folder watcher, tests.  Changes are collected and written on ``save()`` by the lossless writer,
  which rewrites only the parts that change.
- ``ExcelBook`` (crmsync/excel.py): the open workbook inside Excel, through xlwings.

Rows and columns are Excel's: 1-based, row 1 is the header of an entity sheet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Cell = tuple[int, int]  # (row, column), 1-based like Excel

#: Every note crmsync writes starts with this, so the next check can find and clear its own notes
#: without touching notes people wrote.
MARK_PREFIX = "⚠ "

#: Fill of a marked (invalid) cell: light red, as Excel's "light red fill" preset.
MARK_FILL = "FFC7CE"


@dataclass
class SheetTable:
    """One sheet as a header and rows, with the Excel row number of each row."""

    sheet: str
    header: list[str]
    rows: list[list[Any]]
    row_numbers: list[int]
    header_row: int = 1

    def column(self, label: str) -> int | None:
        """The 1-based column of a header label, or None."""
        try:
            return self.header.index(label) + 1
        except ValueError:
            return None

    def frame(self):
        """The rows as a pandas DataFrame indexed by Excel row number."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.header, index=self.row_numbers)


@dataclass
class Link:
    """A hyperlink from a report cell to a cell of another sheet."""

    sheet: str
    row: int
    col: int

    @property
    def address(self) -> str:
        from .xlsx_safety import col_letters

        return f"'{self.sheet.replace(chr(39), chr(39) * 2)}'!{col_letters(self.col)}{self.row}"


@dataclass
class Report:
    """A report sheet's content: a header and rows, and cells that link elsewhere."""

    header: list[str]
    rows: list[list[Any]]
    links: dict[Cell, Link] = field(default_factory=dict)  # (row index from 0, column from 1)


@runtime_checkable
class WorkbookSeam(Protocol):
    """What actions need from a workbook."""

    #: A name for messages: the file name, or the workbook's name in Excel.
    name: str

    def sheet_names(self) -> list[str]:
        """Every sheet's name, in order."""

    def read_table(self, sheet: str) -> SheetTable:
        """The sheet's header (row 1) and the non-empty rows under it."""

    def write_cells(self, sheet: str, cells: Mapping[Cell, Any]) -> None:
        """Set the values of these cells (None empties a cell)."""

    def append_rows(self, sheet: str, rows: Sequence[Sequence[Any]], *, after: int | None = None) -> int:
        """Add rows (values from column 1) under the last row that holds a value, growing the
        sheet's table over them; return the first new row's number (0 when rows is empty).
        ``after``: that last row, when the caller has just read the sheet (saves reading it
        again); the rows then span every column it read.  Every column of a new row is written,
        so an empty cell still takes its column's format."""

    def marked_cells(self, sheet: str) -> dict[Cell, str]:
        """The cells crmsync marked earlier, with their note text."""

    def mark_cells(self, sheet: str, marks: Mapping[Cell, str], clear: Iterable[Cell] = ()) -> None:
        """Colour each cell in ``marks`` and give it a note with the message; take the colour and
        note off each cell in ``clear``."""

    def replace_report(self, sheet: str, report: Report) -> None:
        """Replace the content of a report sheet (header in row 1) with ``report``."""

    def status(self, text: str) -> None:
        """Show a one-line message (Excel's status bar; the CLI prints it)."""

    def save(self) -> None:
        """Make the changes durable (a file is written once, atomically)."""

    def selected_rows(self, sheet: str) -> list[int]:
        """The rows the user has selected on ``sheet``, in order; empty when the selection is
        elsewhere (another sheet or workbook) or there is none."""

    def selected_row(self, sheet: str) -> int | None:
        """The row of the selected cell on ``sheet`` (the first row of a selected range), or None."""

    def choose_file(self, title: str) -> str | None:
        """Ask the user for a file to open; its path, or None when the user cancels."""


def append_position(book: WorkbookSeam, sheet: str, rows: Sequence[Sequence[Any]], after: int | None) -> tuple[int, int]:
    """(first new row, width) for ``append_rows``: under the last row holding a value, as wide
    as the header or the widest row."""
    header = 0  # with ``after`` given, the caller's rows span the columns it read
    if after is None:
        table = book.read_table(sheet)
        after, header = max(table.row_numbers, default=table.header_row), len(table.header)
    return after + 1, max([header, *(len(r) for r in rows)])


def as_seam(book: Any) -> WorkbookSeam:
    """The seam for what an action was given: a seam, a path, or an ``xlwings.Book``."""
    if isinstance(book, WorkbookSeam):
        return book
    if isinstance(book, (str, bytes)) or hasattr(book, "__fspath__"):
        from .book_file import FileBook

        return FileBook(book)
    from .excel import ExcelBook

    return ExcelBook(book)
