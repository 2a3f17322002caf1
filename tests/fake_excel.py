"""A test double for Excel: an xlwings engine whose workbooks live in memory, loaded from files.

xlwings drives Excel through an engine (``xlwings/_xlwindows.py`` on Windows).  This module is a
small engine of the same shape, registered with ``xw.engines.add(xw.Engine(impl=...))``, so that
``xw.App(add_book=False).books.open(path)`` gives a real ``xlwings.Book`` whose calls land here,
and crmsync.excel.ExcelBook runs unchanged on Linux.

It is bounded to what ExcelBook and crmsync.macros call; anything else raises AttributeError, so
code that starts using a new member fails here first.  Where it matters it behaves as Excel does:

- numbers read as float, dates as datetime, empty cells and empty text as None;
- a value written is parsed as if typed into a General cell: ``"0755"`` becomes 755.0,
  ``"=…"``/``"+…"``/``"-…"``/``"@…"`` a formula, ``"TRUE"`` a boolean, ``"2024-05-01"`` a date,
  and a leading ``'`` marks text (it is not kept);
- ``clear_contents`` keeps a cell's fill, note and hyperlink; ``clear`` removes them;
- adding a note where one exists fails; a hyperlink sets the cell's text;
- the used range only grows (Excel shrinks it lazily, on save);
- ``Range.api`` is truthy (xlwings writes nothing when it is not).

Every call that would cross to Excel is counted in ``engine.calls`` (a Counter keyed by member),
so tests can check that the adapter keeps its calls few.

Use the ``fake_excel`` fixture (a ``FakeExcel``), or ``installed()`` outside pytest::

    book = fake_excel.open(path)            # an xlwings.Book, also the mock caller
    ExcelBook(book).read_table("客户")
    fake_excel.sheet(book, "客户").note(3, 7)
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

ENGINE_NAME = "fake_excel"
MAX_ROW, MAX_COL = 1_048_576, 16_384
# The cell budgets of xlwings' base classes: reads and writes above them are chunked by xlwings.
MAX_CELLS_PER_READ = 4_000_000
MAX_CELLS_PER_WRITE = 100_000

EXCEL_DAY_ZERO = dt.date(1899, 12, 30)

__all__ = ["ENGINE_NAME", "FakeComError", "FakeExcel", "Engine", "fake_excel", "installed", "parse_address"]


class FakeComError(Exception):
    """What a refused call raises in Excel (pywintypes.com_error on Windows)."""


class _Api:
    """Stands for the native object; xlwings only needs it to be truthy."""

    def __init__(self, owner):
        self.owner = owner

    def __bool__(self):
        return True

    def __repr__(self):
        return f"<api of {self.owner!r}>"


# -- the engine ------------------------------------------------------------------------------


class Engine:
    name = ENGINE_NAME
    type = "desktop"  # xlwings treats it like Excel on Windows/macOS

    def __init__(self):
        self.apps = Apps(self)
        self.calls: Counter[str] = Counter()

    @staticmethod
    def prepare_xl_data_element(x, options):
        """A value on its way to a cell, as xlwings' Windows engine prepares it."""
        if x is None:
            return ""
        if isinstance(x, float) and x != x:  # NaN
            return ""
        try:
            import numpy as np

            if isinstance(x, np.floating) and np.isnan(x):
                return ""
            if isinstance(x, np.number):
                return float(x)
        except ImportError:  # pragma: no cover
            pass
        try:
            import pandas as pd

            if x is pd.NaT or x is pd.NA:
                return ""
            if isinstance(x, pd.Timestamp):
                return x.to_pydatetime()
        except ImportError:  # pragma: no cover
            pass
        return x

    @staticmethod
    def clean_value_data(data, datetime_builder, empty_as, number_builder, err_to_str):
        """Values read from cells, as xlwings' Windows engine cleans them."""
        out = []
        for row in data:
            clean = []
            for v in row:
                if v is None or v == "":
                    v = empty_as
                elif isinstance(v, dt.datetime):
                    if datetime_builder is not dt.datetime:
                        v = datetime_builder(year=v.year, month=v.month, day=v.day, hour=v.hour,
                                             minute=v.minute, second=v.second, microsecond=v.microsecond)
                elif number_builder is not None and isinstance(v, float):
                    v = number_builder(v)
                clean.append(v)
            out.append(clean)
        return out


class Apps:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._apps: list[App] = []
        self._pids = itertools.count(4242)

    def keys(self):
        return [a.pid for a in self._apps]

    def add(self, spec=None, add_book=None, xl=None, visible=None):
        app = App(self.engine, next(self._pids))
        self._apps.insert(0, app)  # the newest app is the active one
        if add_book:
            app.books.add()
        return app

    @staticmethod
    def cleanup():
        pass

    def __iter__(self):
        return iter(list(self._apps))

    def __len__(self):
        return len(self._apps)

    def __getitem__(self, pid):
        for app in self._apps:
            if app.pid == pid:
                return app
        raise KeyError(pid)


class _AppApi(_Api):
    """The native Application: only the Open dialog, which xlwings does not wrap."""

    def GetOpenFilename(self, FileFilter=None, FilterIndex=None, Title=None, ButtonText=None, MultiSelect=False):
        app = self.owner
        app.engine.calls["App.api.GetOpenFilename"] += 1
        app.open_dialogs.append((FileFilter, Title))
        return app.open_answer if app.open_answer is not None else False  # Excel's cancel is False


class App:
    def __init__(self, engine: Engine, pid: int):
        self.engine = engine
        self.pid = pid
        self.books = Books(self)
        self.api = _AppApi(self)
        #: what the Open dialog answers (a path; None: the user cancels) and each dialog shown
        self.open_answer: str | None = None
        self.open_dialogs: list[tuple[str | None, str | None]] = []
        #: the selected range (a Range of this app's books), None when nothing is
        self.selected: Range | None = None
        self.visible = False
        self.display_alerts = True
        self.enable_events = True
        self._status_bar: str | bool = False
        self._screen_updating = True
        self._calculation = "automatic"
        #: every status-bar text set, in order
        self.status_messages: list[str] = []
        #: every change of screen_updating / calculation, in order: (property, value)
        self.settings_log: list[tuple[str, object]] = []

    def __repr__(self):
        return f"<fake Excel app {self.pid}>"

    @property
    def status_bar(self):
        return self._status_bar

    @status_bar.setter
    def status_bar(self, value):
        self.engine.calls["App.status_bar.set"] += 1
        self._status_bar = value
        if isinstance(value, str):
            self.status_messages.append(value)

    @property
    def screen_updating(self):
        return self._screen_updating

    @screen_updating.setter
    def screen_updating(self, value):
        self.engine.calls["App.screen_updating.set"] += 1
        self._screen_updating = bool(value)
        self.settings_log.append(("screen_updating", bool(value)))

    @property
    def calculation(self):
        return self._calculation

    @calculation.setter
    def calculation(self, value):
        if value not in ("automatic", "manual", "semiautomatic"):
            raise FakeComError(f"calculation {value!r}")
        self.engine.calls["App.calculation.set"] += 1
        self._calculation = value
        self.settings_log.append(("calculation", value))

    @property
    def selection(self):
        self.engine.calls["App.selection"] += 1
        return self.selected

    def activate(self, steal_focus=False):
        pass

    def quit(self):
        self.selected = None
        self.books._books.clear()
        if self in self.engine.apps._apps:
            self.engine.apps._apps.remove(self)

    kill = quit


class Books:
    def __init__(self, app: App):
        self.app = app
        self.api = _Api(self)
        self._books: list[Book] = []
        self._new = itertools.count(1)

    @property
    def active(self):
        return self._books[-1] if self._books else None

    def __call__(self, name_or_index):
        if isinstance(name_or_index, int):
            return self._books[name_or_index - 1]
        for book in self._books:
            if book.name.lower() == str(name_or_index).lower():
                return book
        raise KeyError(name_or_index)

    def __contains__(self, name):
        return any(b.name.lower() == str(name).lower() for b in self._books)

    def __len__(self):
        return len(self._books)

    def __iter__(self):
        return iter(list(self._books))

    def add(self):
        book = Book(self.app, f"Book{next(self._new)}", "")
        book.sheets._sheets.append(Sheet(book, "Sheet1"))
        self._books.append(book)
        return book

    def open(self, fullname, *excel_options):
        """Load every worksheet of the file into memory as Excel shows it: values and notes
        (fills, formats and hyperlinks in the file are not loaded)."""
        from crmsync.workbook import read_grid
        from crmsync.xlsx_safety import DEFAULT_LIMITS, open_package

        try:
            from crmsync.xlsx_notes import sheet_comments
        except ImportError:  # pragma: no cover - notes in the file are then not loaded
            sheet_comments = None

        path = Path(fullname)
        book = Book(self.app, path.name, str(path.resolve()))
        with open_package(path, DEFAULT_LIMITS) as pkg:
            for found in pkg.sheets:
                if found.kind != "worksheet":
                    continue
                sheet = Sheet(book, found.name, visible=found.state == "visible")
                for r, row in enumerate(read_grid(pkg, found.name), start=1):
                    for c, value in enumerate(row, start=1):
                        if value is not None:
                            sheet._put((r, c), _as_read(value))
                sheet.tables_on = _load_tables(pkg, pkg.worksheet(found.name), sheet)
                if sheet_comments is not None:
                    _, comments = sheet_comments(pkg, pkg.worksheet(found.name))
                    for cell, text in (comments.texts() if comments else {}).items():
                        sheet.notes_at[cell] = NoteState(text, author="")
                        sheet._touch(*cell)
                book.sheets._sheets.append(sheet)
        self._books.append(book)
        return book


class Book:
    def __init__(self, app: App, name: str, fullname: str):
        self.app = app
        self.name = name
        self.fullname = fullname
        self.sheets = Sheets(self)
        self.api = _Api(self)

    def __repr__(self):
        return f"<fake book {self.name}>"

    def activate(self):
        pass

    def close(self):
        if self in self.app.books._books:
            self.app.books._books.remove(self)


class Sheets:
    def __init__(self, book: Book):
        self.book = book
        self.api = _Api(self)
        self._sheets: list[Sheet] = []

    @property
    def active(self):
        return self._sheets[0]

    def __call__(self, name_or_index):
        if isinstance(name_or_index, int):
            if not 1 <= name_or_index <= len(self._sheets):
                raise FakeComError(f"no sheet {name_or_index}")
            return self._sheets[name_or_index - 1]
        for sheet in self._sheets:
            if sheet.name.lower() == str(name_or_index).lower():
                return sheet
        raise FakeComError(f"no sheet {name_or_index!r}")

    def __contains__(self, name):
        return any(s.name.lower() == str(name).lower() for s in self._sheets)

    def __len__(self):
        return len(self._sheets)

    def __iter__(self):
        return iter(list(self._sheets))

    def add(self, before=None, after=None, name=None):
        self.book.app.engine.calls["Sheets.add"] += 1
        if name is None:
            name = next(f"Sheet{i}" for i in itertools.count(1) if f"Sheet{i}" not in self)
        sheet = Sheet(self.book, name)
        if before is not None:
            self._sheets.insert(self._sheets.index(before), sheet)
        elif after is not None:
            self._sheets.insert(self._sheets.index(after) + 1, sheet)
        else:
            self._sheets.insert(0, sheet)
        return sheet


class Sheet:
    """One worksheet: cell values, formulas, fills, notes and hyperlinks, keyed by (row, col)."""

    def __init__(self, book: Book, name: str, visible: bool = True):
        self.book = book
        self.name = name
        self.visible = visible
        self.api = _Api(self)
        self.values: dict[tuple[int, int], object] = {}
        self.formulas: dict[tuple[int, int], str] = {}
        self.colors: dict[tuple[int, int], tuple[int, int, int]] = {}
        self.notes_at: dict[tuple[int, int], NoteState] = {}
        self.links: dict[tuple[int, int], LinkState] = {}
        self._bounds: list[int] | None = None  # [top, left, bottom, right], only grows
        self.tables_on: list[Table] = []  # the sheet's Excel tables (ListObjects), from the file

    def __repr__(self):
        return f"<fake sheet {self.name}>"

    @property
    def _calls(self) -> Counter:
        return self.book.app.engine.calls

    @property
    def index(self):
        return self.book.sheets._sheets.index(self) + 1

    # members xlwings calls

    def range(self, arg1, arg2=None):
        if isinstance(arg1, tuple) and len(arg1) == 4:
            return Range(self, *arg1)
        top, left, bottom, right = self._corners(arg1)
        if arg2 is not None:
            t2, l2, b2, r2 = self._corners(arg2)
            top, left, bottom, right = min(top, t2), min(left, l2), max(bottom, b2), max(right, r2)
        return Range(self, top, left, bottom - top + 1, right - left + 1)

    @property
    def cells(self):
        return Range(self, 1, 1, MAX_ROW, MAX_COL)

    @property
    def tables(self):
        self._calls["Sheet.tables"] += 1
        return Tables(self.tables_on)

    @property
    def used_range(self):
        self._calls["Sheet.used_range"] += 1
        if self._bounds is None:
            return Range(self, 1, 1, 1, 1)
        top, left, bottom, right = self._bounds
        return Range(self, top, left, bottom - top + 1, right - left + 1)

    @property
    def notes(self):
        self._calls["Sheet.notes"] += 1
        return [Note(self, cell) for cell in sorted(self.notes_at)]

    def activate(self):
        pass

    # for tests

    def value(self, row, col):
        return self.values.get((row, col))

    def color(self, row, col):
        return self.colors.get((row, col))

    def note(self, row, col) -> str | None:
        state = self.notes_at.get((row, col))
        return state.text if state else None

    def link(self, row, col) -> LinkState | None:
        return self.links.get((row, col))

    def rows(self, first=1, last=None, width=None) -> list[list[object]]:
        """Values of rows first..last (default: to the last row with a value), width columns."""
        cells = list(self.values) + list(self.formulas)
        last = last or max((r for r, _ in cells), default=0)
        width = width or max((c for _, c in cells), default=0)
        return [[self.values.get((r, c)) for c in range(1, width + 1)] for r in range(first, last + 1)]

    def snapshot(self):
        """Everything a test may compare before and after."""
        return (dict(self.values), dict(self.formulas), dict(self.colors),
                {k: (v.text, v.author) for k, v in self.notes_at.items()},
                {k: (v.address, v.text, v.tip) for k, v in self.links.items()})

    # internals

    def _corners(self, arg):
        if isinstance(arg, Range):
            return arg.row, arg.column, arg.row + arg.nrows - 1, arg.column + arg.ncols - 1
        if isinstance(arg, tuple) and len(arg) == 2:
            if 0 in arg:
                raise IndexError("Attempted to access 0-based Range. xlwings/Excel Ranges are 1-based.")
            return arg[0], arg[1], arg[0], arg[1]
        if isinstance(arg, str):
            return parse_address(arg)
        raise FakeComError(f"range({arg!r})")

    def _touch(self, row, col):
        if self._bounds is None:
            self._bounds = [row, col, row, col]
        else:
            b = self._bounds
            b[0], b[1], b[2], b[3] = min(b[0], row), min(b[1], col), max(b[2], row), max(b[3], col)

    def _put(self, cell, typed):
        """Store a value already in Excel's form (see _as_written); _EMPTY empties the cell."""
        self.formulas.pop(cell, None)
        if typed is _EMPTY:
            self.values.pop(cell, None)
            return
        if isinstance(typed, _Formula):
            self.values.pop(cell, None)
            self.formulas[cell] = typed.text
        else:
            self.values[cell] = typed
        self._touch(*cell)


class Tables:
    """The sheet's tables as xlwings' ``Tables`` collection sees them (by index or name)."""

    def __init__(self, tables: list):
        self._tables = tables

    def __call__(self, name_or_index):
        if isinstance(name_or_index, int):
            return self._tables[name_or_index - 1]
        return next(t for t in self._tables if t.name == name_or_index)

    def __len__(self):
        return len(self._tables)

    def __iter__(self):
        return iter(list(self._tables))

    def __contains__(self, name):
        return any(t.name == name for t in self._tables)


class Table:
    """An Excel table (ListObject): its name and range; ``resize`` moves its range as Excel does."""

    def __init__(self, sheet: "Sheet", name: str, row: int, col: int, nrows: int, ncols: int):
        self.sheet, self.name = sheet, name
        self.row, self.column, self.nrows, self.ncols = row, col, nrows, ncols
        self.api = _Api(self)

    def __repr__(self):
        return f"<fake table {self.name} {self.range.address}>"

    @property
    def range(self):
        return Range(self.sheet, self.row, self.column, self.nrows, self.ncols)

    def resize(self, range):
        self.sheet._calls["Table.resize"] += 1
        r = range.impl
        if (r.row, r.column) != (self.row, self.column) or r.ncols != self.ncols:
            raise FakeComError("a table keeps its header row and columns when resized here")
        self.nrows = r.nrows


def _load_tables(pkg, ws, sheet: "Sheet") -> list:
    """The sheet's tables (name and ref) from the file's table parts."""
    from crmsync.xlsx_limits import parse_ref
    from crmsync.xlsx_sheet import sheet_tables

    out = []
    for name, ref, _header_rows in sheet_tables(pkg, ws):
        first, _, last = ref.partition(":")
        (r1, c1), (r2, c2) = parse_ref(first), parse_ref(last)
        out.append(Table(sheet, name, r1, c1, r2 - r1 + 1, c2 - c1 + 1))
    return out


class NoteState:
    def __init__(self, text: str, author: str = "crmsync tests"):
        self.text = text
        self.author = author

    def __repr__(self):
        return f"NoteState({self.text!r})"


class LinkState:
    def __init__(self, address: str, text: str, tip: str | None):
        self.address = address
        self.text = text
        self.tip = tip

    def __repr__(self):
        return f"LinkState({self.address!r}, {self.text!r})"


class Range:
    def __init__(self, sheet: Sheet, row: int, col: int, nrows: int, ncols: int):
        if row < 1 or col < 1 or row + nrows - 1 > MAX_ROW or col + ncols - 1 > MAX_COL:
            raise FakeComError(f"range outside the sheet: {row},{col} {nrows}x{ncols}")
        self._sheet = sheet
        self.row, self.column, self.nrows, self.ncols = row, col, nrows, ncols
        self.options = {}  # xlwings sets it on every Range it wraps
        self.api = _Api(self)

    def __repr__(self):
        return f"<fake range {self._sheet.name}!{self.address}>"

    @property
    def _calls(self):
        return self._sheet._calls

    def _cells(self):
        for r in range(self.row, self.row + self.nrows):
            for c in range(self.column, self.column + self.ncols):
                yield r, c

    # members xlwings calls

    @property
    def sheet(self):
        return self._sheet

    @property
    def shape(self):
        return self.nrows, self.ncols

    def __len__(self):
        return self.nrows * self.ncols

    def __call__(self, *args):
        if len(args) == 1:
            i = args[0] - 1
            return Range(self._sheet, self.row + i // self.ncols, self.column + i % self.ncols, 1, 1)
        if len(args) == 2:
            return Range(self._sheet, self.row + args[0] - 1, self.column + args[1] - 1, 1, 1)
        raise ValueError("Invalid arguments")

    @property
    def max_cells_per_read(self):
        return MAX_CELLS_PER_READ

    @property
    def max_cells_per_write(self):
        return MAX_CELLS_PER_WRITE

    @property
    def address(self):
        first = f"${_letters(self.column)}${self.row}"
        if self.nrows == 1 and self.ncols == 1:
            return first
        return f"{first}:${_letters(self.column + self.ncols - 1)}${self.row + self.nrows - 1}"

    @property
    def raw_value(self):
        """A scalar for one cell, else a tuple of row tuples (what COM gives)."""
        self._calls["Range.raw_value.get"] += 1
        values = self._sheet.values
        if self.nrows * self.ncols == 0:
            return None
        if self.nrows == 1 and self.ncols == 1:
            return values.get((self.row, self.column))
        cols = range(self.column, self.column + self.ncols)
        return tuple(tuple(values.get((r, c)) for c in cols) for r in range(self.row, self.row + self.nrows))

    @raw_value.setter
    def raw_value(self, data):
        self._calls["Range.raw_value.set"] += 1
        put = self._sheet._put
        if not isinstance(data, (list, tuple)):  # one value fills the range
            typed = _as_written(data)
            for cell in self._cells():
                put(cell, typed)
            return
        rows = data if data and isinstance(data[0], (list, tuple)) else [data]
        if len(rows) != self.nrows or any(len(r) != self.ncols for r in rows):
            raise FakeComError(f"{len(rows)} rows of values for a {self.nrows}x{self.ncols} range")
        for r, row in enumerate(rows, start=self.row):
            for c, value in enumerate(row, start=self.column):
                put((r, c), _as_written(value))

    @property
    def color(self):
        colors = {self._sheet.colors.get(cell) for cell in self._cells()}
        return colors.pop() if len(colors) == 1 else None

    @color.setter
    def color(self, value):
        self._calls["Range.color.set"] += 1
        if isinstance(value, str):
            value = value.lstrip("#")
            value = tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = (value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF)  # Excel's BGR int
        elif value is not None:
            value = tuple(value)
            if len(value) != 3 or not all(isinstance(x, int) and 0 <= x <= 255 for x in value):
                raise FakeComError(f"color {value!r}")
        for cell in self._cells():
            if value is None:
                self._sheet.colors.pop(cell, None)
            else:
                self._sheet.colors[cell] = value
                self._sheet._touch(*cell)

    @property
    def note(self):
        self._calls["Range.note.get"] += 1
        cell = (self.row, self.column)
        return Note(self._sheet, cell) if cell in self._sheet.notes_at else None

    def add_note(self, text):
        self._calls["Range.add_note"] += 1
        cell = (self.row, self.column)
        if cell in self._sheet.notes_at:
            raise FakeComError("the cell already has a note")
        self._sheet.notes_at[cell] = NoteState(str(text))
        self._sheet._touch(*cell)
        return Note(self._sheet, cell)

    def add_hyperlink(self, address, text_to_display, screen_tip):
        self._calls["Range.add_hyperlink"] += 1
        cell = (self.row, self.column)
        self._sheet.links[cell] = LinkState(address, text_to_display, screen_tip)
        self._sheet.formulas.pop(cell, None)
        self._sheet.values[cell] = str(text_to_display)  # TextToDisplay becomes the cell's text
        self._sheet._touch(*cell)

    def clear_contents(self):
        """Values and formulas only: like Excel, fills, notes and hyperlinks stay."""
        self._calls["Range.clear_contents"] += 1
        for cell in self._cells() if len(self) <= 1_000_000 else self._present():
            self._sheet.values.pop(cell, None)
            self._sheet.formulas.pop(cell, None)

    def clear(self):
        """Everything: values, formulas, fills, notes, hyperlinks."""
        self._calls["Range.clear"] += 1
        s = self._sheet
        for cell in self._cells() if len(self) <= 1_000_000 else self._present():
            for store in (s.values, s.formulas, s.colors, s.notes_at, s.links):
                store.pop(cell, None)

    def _present(self):
        s = self._sheet
        inside = (lambda rc: self.row <= rc[0] < self.row + self.nrows
                  and self.column <= rc[1] < self.column + self.ncols)
        return [c for c in {*s.values, *s.formulas, *s.colors, *s.notes_at, *s.links} if inside(c)]


class Note:
    def __init__(self, sheet: Sheet, cell: tuple[int, int]):
        self._sheet = sheet
        self._cell = cell
        self.api = _Api(self)

    def _state(self):
        state = self._sheet.notes_at.get(self._cell)
        if state is None:
            raise FakeComError("the note was deleted")
        return state

    @property
    def text(self):
        self._sheet._calls["Note.text.get"] += 1
        return self._state().text

    @text.setter
    def text(self, value):
        self._sheet._calls["Note.text.set"] += 1
        self._state().text = str(value)

    @property
    def author(self):
        return self._state().author

    @property
    def location(self):
        self._sheet._calls["Note.location"] += 1
        return Range(self._sheet, *self._cell, 1, 1)

    def delete(self):
        self._sheet._calls["Note.delete"] += 1
        self._state()
        del self._sheet.notes_at[self._cell]


# -- values as Excel stores them ---------------------------------------------------------------


class _Formula:
    def __init__(self, text):
        self.text = text


_EMPTY = object()
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_ISO_DATE = re.compile(r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*$")


def _as_read(value):
    """A value from the file as Excel gives it: numbers float, dates and times datetime."""
    if isinstance(value, bool) or isinstance(value, (float, str, dt.datetime)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.time):
        return dt.datetime.combine(EXCEL_DAY_ZERO, value)
    if isinstance(value, dt.timedelta):
        return dt.datetime.combine(EXCEL_DAY_ZERO, dt.time()) + value
    return value


def _as_written(value):
    """What a General cell holds after ``value`` is written to it, as Excel parses typed input."""
    if value is None or value == "":
        return _EMPTY
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.time):
        return dt.datetime.combine(EXCEL_DAY_ZERO, value)
    if isinstance(value, str):
        if value.startswith("'"):
            return value[1:] if len(value) > 1 else _EMPTY
        if _NUMBER.match(value):
            return float(value)
        if value[0] in "=+-@":
            return _Formula(value)
        if value.strip().upper() in ("TRUE", "FALSE"):
            return value.strip().upper() == "TRUE"
        m = _ISO_DATE.match(value)
        if m:
            try:
                return dt.datetime(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return value
        return value
    raise FakeComError(f"Excel cannot hold a {type(value).__name__}")


def _letters(n: int) -> str:
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


_A1 = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)$")


def parse_address(address: str) -> tuple[int, int, int, int]:
    """``"B2"`` or ``"$A$1:C3"`` → (top, left, bottom, right)."""
    corners = []
    for part in address.split(":"):
        m = _A1.match(part.strip())
        if not m:
            raise FakeComError(f"address {address!r}")
        col = 0
        for ch in m[1].upper():
            col = col * 26 + ord(ch) - 64
        corners.append((int(m[2]), col))
    if len(corners) == 1:
        corners.append(corners[0])
    (r1, c1), (r2, c2) = corners
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


# -- what tests use ----------------------------------------------------------------------------


class FakeExcel:
    """The fake Excel a test talks to: open files as xlwings Books, then look inside."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._app = None

    @property
    def app(self):
        """The running (fake) Excel, as an ``xlwings.App``."""
        import xlwings as xw

        if self._app is None:
            self._app = xw.App(visible=False, add_book=False)
        return self._app

    def open(self, path, *, caller: bool = True):
        """Open a workbook file; it becomes ``xw.Book.caller()`` unless caller=False."""
        book = self.app.books.open(os.fspath(path))
        if caller:
            book.set_mock_caller()
        return book

    @staticmethod
    def sheet(book, name: str) -> Sheet:
        """The in-memory state of one sheet of an xlwings Book opened here."""
        return book.sheets[name].impl

    @property
    def calls(self) -> Counter:
        return self.engine.calls

    @property
    def status_messages(self) -> list[str]:
        return self.app.impl.status_messages

    @property
    def status_bar(self):
        return self.app.impl.status_bar

    def select(self, book, sheet: str, address: str) -> None:
        """Select a range ("A3" or "A3:C5") on a sheet, as a user's click would."""
        self.app.impl.selected = self.sheet(book, sheet).range(address)

    def answer_open_dialog(self, path) -> None:
        """The file the next Open dialogs answer with; None: the user cancels them."""
        self.app.impl.open_answer = None if path is None else os.fspath(path)

    @property
    def open_dialogs(self) -> list[tuple[str | None, str | None]]:
        """Each Open dialog shown: (file filter, title)."""
        return self.app.impl.open_dialogs

    def snapshot(self, book):
        """Every sheet's state, for comparing before and after."""
        return {s.name: s.impl.snapshot() for s in book.sheets}


@contextmanager
def installed():
    """Register the fake engine and make it active; afterwards put back the active engine and
    ``xw.Book``'s mock caller as they were, and forget the engine."""
    import xlwings as xw

    engine = Engine()
    wrapper = xw.Engine(impl=engine)
    saved_active = xw.engines.active
    saved_by_name = xw.engines.engines_by_name.get(ENGINE_NAME)
    had_mock = "_mock_caller" in vars(xw.Book)
    saved_mock = vars(xw.Book).get("_mock_caller")
    xw.engines.add(wrapper)
    wrapper.activate()
    try:
        yield FakeExcel(engine)
    finally:
        for app in list(engine.apps):
            app.quit()
        xw.engines.active = saved_active
        if wrapper in xw.engines.engines:
            xw.engines.engines.remove(wrapper)
        if saved_by_name is None:
            xw.engines.engines_by_name.pop(ENGINE_NAME, None)
        else:
            xw.engines.engines_by_name[ENGINE_NAME] = saved_by_name
        if had_mock:
            xw.Book._mock_caller = saved_mock
        elif "_mock_caller" in vars(xw.Book):
            del xw.Book._mock_caller


@pytest.fixture
def fake_excel(monkeypatch):
    """A fake Excel (FakeExcel) for one test; xlwings is left as it was afterwards."""
    monkeypatch.delenv("XLWINGS_LICENSE_KEY", raising=False)  # would switch on paid engines
    with installed() as fx:
        yield fx
