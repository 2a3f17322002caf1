"""Writing workbook files without Excel: only the parts meant to change are rewritten.

openpyxl rewrites a whole workbook and drops what it does not model (the ribbon relationship,
x14 extensions, charts, shapes).  Here the source zip is copied entry by entry — the stored,
compressed bytes of every part we do not mean to change, in the same order — and only these are
written anew:

- the worksheet: its ``<sheetData>`` streamed with inline strings (the shared-string table stays
  untouched), its ``<dimension>``, and the validation / conditional-format / autofilter ranges that
  ran to the end of the old data, extended to the end of the new data;
- the sheet's tables (``ref`` and ``autoFilter ref``) when they sit on the replaced rows;
- styles.xml, only when a date must be written in a column whose style is not a date format;
- calcChain.xml is dropped (with its relationship and content type) when formulas were removed,
  as Excel requires; it rebuilds it.

The new file is written beside the target, fsynced, and moved over it with os.replace: a failure
at any point leaves the original untouched.

The work is split by concern: xlsx_sheet (the worksheet stream, rows, ranges, tables), xlsx_cells
(values to cell XML), xlsx_styles (date formats, fill and link variants), xlsx_zip (the zip writer
and the atomic replace), xlsx_patch (sparse edits of a sheet), xlsx_notes (cell notes),
xlsx_edit (many changes to one file in one write, for book_file.FileBook).  This module holds
the three public functions and ``rows_part``, which xlsx_edit shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import InvalidInput
from .xlsx_cells import write_rows
from .xlsx_limits import say
from .xlsx_safety import DEFAULT_LIMITS, Limits, Package, Sheet, open_package
from .xlsx_sheet import (OldSheet, SheetStream, column_styles, drop_calc_chain, edit_row, extend_tail,
                         resize_tables, set_dimension)
from .xlsx_styles import Styles
from .xlsx_zip import Spool, write_package

__all__ = ["replace_sheet_rows", "rows_part", "update_cells", "write_key_values"]


def replace_sheet_rows(path: str | Path, sheet: str, rows: Sequence[Sequence[object]], *, start_row: int = 2,
                       out: str | Path | None = None, limits: Limits = DEFAULT_LIMITS,
                       lang: str | None = None) -> int:
    """Replace every row of a worksheet from start_row down with rows; return the number written.

    Rows above start_row (the header) stay as they are.  Each column keeps the style of the old
    first data row (or of its ``<col>``), so text, date and number formats survive.  Values: str
    (as inline text; leading zeros kept), int/float/Decimal, bool, date/datetime/time (as Excel
    serials in a date format), None or "" (empty).  The sheet's tables, and the validation and
    conditional-format ranges that ran to the end of the old data, are resized to the new rows.

    :param out: write there instead of replacing path (atomically either way).
    Raises InvalidFile (unsafe or unwritable file), NotFound (no such sheet), InvalidInput (a value
    Excel cannot hold, named by row and column) — and then no file has changed.

        replace_sheet_rows("crm.xlsm", "客户", [["C001", "华为技术有限公司", "0755"]])
    """
    if start_row < 1:
        raise InvalidInput(say(lang, f"起始行必须从 1 开始，收到 {start_row}", f"start_row is 1-based; got {start_row}"))
    target = Path(out) if out is not None else Path(path)
    check_size(rows, start_row, limits, lang)
    with open_package(path, limits, lang=lang) as pkg:
        sh = pkg.worksheet(sheet)
        styles = Styles(pkg)
        with Spool() as spool:
            tables, removed = rows_part(pkg, sh, rows, start_row, styles, spool, lang)
            changes: dict[str, bytes | Spool] = {sh.part: spool.finish(), **tables}
            if styles.changed:
                changes[pkg.styles] = styles.to_bytes()
            drop = drop_calc_chain(pkg, changes) if removed else set()
            write_package(pkg, target, changes, drop)
    return len(rows)


def check_size(rows: Sequence[Sequence[object]], start_row: int, limits: Limits, lang: str | None) -> None:
    """Raise InvalidInput when rows from start_row would not fit the limits (or Excel's grid)."""
    width = max((len(r) for r in rows), default=0)
    new_last = start_row - 1 + len(rows)
    if new_last > min(limits.max_rows, 1_048_576) or width > min(limits.max_cols, 16_384):
        raise InvalidInput(say(lang, f"{len(rows)} 行 × {width} 列超过上限（{limits.max_rows} 行 / {limits.max_cols} 列）",
                               f"{len(rows)} rows × {width} columns is over the limit "
                               f"({limits.max_rows} rows / {limits.max_cols} columns)"))


def rows_part(pkg: Package, sh: Sheet, rows: Sequence[Sequence[object]], start_row: int, styles: Styles,
              spool: Spool, lang: str | None, *,
              kept: Callable[[int, bytes, bytes], bytes] | None = None,
              styled: Mapping[tuple[int, int], Callable[[int, int], int]] | None = None,
              tail: Callable[[bytes, bytes], bytes] | None = None) -> tuple[dict[str, bytes], bool]:
    """Write worksheet sh with its rows from start_row replaced by rows into spool (not finished).

    Return (the sheet's tables whose range changes → new bytes, whether formulas were removed).
    :param kept: edits a kept row (above start_row): (number, element, prefix) → element.
    :param styled: cells of rows taking another style (see ``write_rows``).
    :param tail: edits the part's tail from ``</sheetData>``: (tail, prefix) → tail.
    """
    width = max((len(r) for r in rows), default=0)
    new_last = start_row - 1 + len(rows)
    old = OldSheet.read(pkg, sh, start_row)
    spool.write(set_dimension(old.head, max(width, old.kept_width, 1), max(new_last, old.kept_last, 1)))
    for number, el in zip(old.kept_numbers, old.kept):
        spool.write(kept(number, el, old.prefix) if kept else el)
    write_rows(spool, rows, start_row, old.template(styles), styles, pkg.date1904, lang, old.prefix, styled)
    old_end = max(old.last_row, start_row)
    rest = extend_tail(old.tail, start_row, old_end, max(new_last, start_row))
    spool.write(tail(rest, old.prefix) if tail else rest)
    return resize_tables(pkg, sh, start_row, new_last, lang), old.removed_formulas


def update_cells(path: str | Path, sheet: str, cells: Mapping[tuple[int, int], object], *,
                 out: str | Path | None = None, limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> int:
    """Set individual cells, keyed (row, col) 1-based, keeping each cell's style; return how many.

    A missing cell or row is created (styled like its column).  None or "" empties a cell but
    keeps its style.  Values as for replace_sheet_rows.  Raises as replace_sheet_rows does.

        update_cells("crm.xlsm", "客户", {(5, 3): "13812345678", (5, 9): None})
    """
    _check_positions(cells, lang)
    with open_package(path, limits, lang=lang) as pkg:
        _update_open(pkg, sheet, cells, Path(out) if out is not None else Path(path), lang)
    return len(cells)


def write_key_values(path: str | Path, sheet: str, mapping: Mapping[str, str], *, out: str | Path | None = None,
                     limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> None:
    """Set key (column A) / value (column B) pairs on a settings sheet such as ``xlwings.conf``.

    Keys are matched as xlwings reads them (upper-cased, spaces kept), among the keys xlwings sees:
    those from A1 down to the first empty cell in column A.  A key found there gets its value in B
    replaced; a new one is appended right under them.  None writes an empty value.
    Raises NotFound if the sheet does not exist, and InvalidInput if appending would overwrite a
    row in use below the keys.

        write_key_values("crm_workbook.xlsm", "xlwings.conf", {"CRMSYNC_STORE": "/srv/crm/crm.db"})
    """
    from .workbook import read_grid

    target = Path(out) if out is not None else Path(path)
    with open_package(path, limits, lang=lang) as pkg:
        grid = read_grid(pkg, sheet)
        rows_of: dict[str, int] = {}
        block_end = 0  # the last row of the contiguous keys from A1: all xlwings reads
        for i, row in enumerate(grid, start=1):
            key = row[0] if row else None
            if key is None:
                break
            rows_of.setdefault(_conf_key(key), i)
            block_end = i
        cells: dict[tuple[int, int], object] = {}
        nxt = block_end + 1
        for key, value in mapping.items():
            row = rows_of.get(_conf_key(key))
            if row is None:
                if nxt <= len(grid) and any(v is not None for v in grid[nxt - 1][:2]):  # A and B get written
                    raise InvalidInput(say(lang, f"“{sheet}”第 {nxt} 行已有内容，无法在键列表后追加“{key}”；"
                                                 "请删除该行或把它移到键列表之前",
                                           f"row {nxt} of {sheet!r} is in use; cannot append {key!r} after the keys"))
                row = rows_of[_conf_key(key)] = nxt
                nxt += 1
                cells[(row, 1)] = str(key)
            cells[(row, 2)] = "" if value is None else str(value)
        if nxt > block_end + 1 and nxt <= len(grid) and grid[nxt - 1] and grid[nxt - 1][0] is not None:
            # Filling the gap would join the keys below it to the ones xlwings reads (duplicates
            # there make xlwings fail): leave that to a person.
            raise InvalidInput(say(lang, f"“{sheet}”第 {nxt} 行还有键“{grid[nxt - 1][0]}”，在键列表后追加会把它并入"
                                         "xlwings 读取的设置；请先整理该工作表",
                                   f"row {nxt} of {sheet!r} holds the key {grid[nxt - 1][0]!r}; appending after the "
                                   "keys would join it to the settings xlwings reads; tidy the sheet first"))
        if cells:
            _update_open(pkg, sheet, cells, target, lang)


def _conf_key(key: object) -> str:
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    return str(key).upper()


def _check_positions(cells: Mapping[tuple[int, int], object], lang: str | None) -> None:
    for (r, c) in cells:
        if not (1 <= r <= 1_048_576 and 1 <= c <= 16_384):
            raise InvalidInput(say(lang, f"单元格位置 ({r}, {c}) 超出 Excel 的范围", f"cell ({r}, {c}) is outside Excel's grid"))


def _update_open(pkg: Package, sheet: str, cells: Mapping[tuple[int, int], object], target: Path,
                 lang: str | None) -> None:
    """Write pkg to target with the given cells of sheet set (see update_cells)."""
    by_row: dict[int, dict[int, object]] = {}
    for (r, c), v in cells.items():
        by_row.setdefault(r, {})[c] = v
    sh = pkg.worksheet(sheet)
    styles = Styles(pkg)
    stream = SheetStream(pkg.chunks(pkg.info(sh.part)), pkg, sh)
    head = stream.head()
    col_styles = column_styles(head)
    scan = pkg.scans.get(sh.part)
    max_row = max([scan.max_row if scan else 0, *by_row])
    max_col = max([scan.max_col if scan else 0, *(c for _, c in cells)])

    def new_row(r: int) -> bytes:
        return edit_row(None, r, by_row[r], col_styles, styles, pkg.date1904, stream.prefix, lang)[0]

    with Spool() as spool:
        spool.write(set_dimension(head, max_col, max_row))
        pending = sorted(by_row, reverse=True)  # popped from the end: smallest row first
        removed_formula = False
        batch: list[bytes] = []
        for number, el in stream.rows():
            while pending and pending[-1] < number:  # rows that do not exist yet go before this one
                batch.append(new_row(pending.pop()))
            if pending and pending[-1] == number:
                pending.pop()
                el, had = edit_row(el, number, by_row[number], col_styles, styles, pkg.date1904, stream.prefix, lang)
                removed_formula |= had
            batch.append(el)
            if len(batch) >= 5000:
                spool.write(b"".join(batch))
                batch.clear()
        while pending:
            batch.append(new_row(pending.pop()))
        spool.write(b"".join(batch))
        spool.write(stream.tail())
        changes: dict[str, bytes | Spool] = {sh.part: spool.finish()}
        if styles.changed:
            changes[pkg.styles] = styles.to_bytes()
        drop = drop_calc_chain(pkg, changes) if removed_formula else set()
        write_package(pkg, target, changes, drop)
