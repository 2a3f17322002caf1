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
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from .errors import InvalidFile, InvalidInput, NotFound
from .i18n import lang as current_lang
from .xlsx_safety import (DEFAULT_LIMITS, Limits, Package, Sheet, _Refused, col_letters, open_package, parse_ref,
                          resolve_target)

EXCEL_MAX_CHARS = 32_767
_LEVEL = 1  # deflate level for new parts: sheet XML is repetitive, level 1 is ~4× faster than 6


def _tr(lang: str | None, zh: str, en: str) -> str:
    return en if (lang or current_lang()) == "en" else zh


# ---- public API -------------------------------------------------------------------------------


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
        raise InvalidInput(_tr(lang, f"起始行必须从 1 开始，收到 {start_row}", f"start_row is 1-based; got {start_row}"))
    target = Path(out) if out is not None else Path(path)
    width = max((len(r) for r in rows), default=0)
    new_last = start_row - 1 + len(rows)
    if new_last > min(limits.max_rows, 1_048_576) or width > min(limits.max_cols, 16_384):
        raise InvalidInput(_tr(lang, f"{len(rows)} 行 × {width} 列超过上限（{limits.max_rows} 行 / {limits.max_cols} 列）",
                               f"{len(rows)} rows × {width} columns is over the limit "
                               f"({limits.max_rows} rows / {limits.max_cols} columns)"))
    with open_package(path, limits, lang=lang) as pkg:
        sh = _worksheet(pkg, sheet)
        styles = _Styles(pkg)
        old = _OldSheet.read(pkg, sh, start_row)
        spool = _Spool()
        head = _set_dimension(old.head, max(width, old.kept_width, 1), max(new_last, old.kept_last, 1))
        spool.write(head)
        for el in old.kept:
            spool.write(el)
        _write_rows(spool, rows, start_row, old.template(styles), styles, pkg.date1904, lang)
        old_end = max(old.last_row, start_row)
        spool.write(_extend_tail(old.tail, start_row, old_end, max(new_last, start_row)))
        changes: dict[str, bytes | _Spool] = {sh.part: spool.finish()}
        changes.update(_resize_tables(pkg, sh, start_row, new_last, lang))
        if styles.changed:
            changes[pkg.styles] = styles.to_bytes()
        drop = _drop_calc_chain(pkg, changes) if old.removed_formulas else set()
        _write_package(pkg, target, changes, drop)
    return len(rows)


def update_cells(path: str | Path, sheet: str, cells: Mapping[tuple[int, int], object], *,
                 out: str | Path | None = None, limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> int:
    """Set individual cells, keyed (row, col) 1-based, keeping each cell's style; return how many.

    A missing cell or row is created (styled like its column).  None or "" empties a cell but
    keeps its style.  Values as for replace_sheet_rows.  Raises as replace_sheet_rows does.

        update_cells("crm.xlsm", "客户", {(5, 3): "13812345678", (5, 9): None})
    """
    target = Path(out) if out is not None else Path(path)
    for (r, c) in cells:
        if not (1 <= r <= 1_048_576 and 1 <= c <= 16_384):
            raise InvalidInput(_tr(lang, f"单元格位置 ({r}, {c}) 超出 Excel 的范围", f"cell ({r}, {c}) is outside Excel's grid"))
    by_row: dict[int, dict[int, object]] = {}
    for (r, c), v in cells.items():
        by_row.setdefault(r, {})[c] = v
    with open_package(path, limits, lang=lang) as pkg:
        sh = _worksheet(pkg, sheet)
        styles = _Styles(pkg)
        stream = _SheetStream(pkg.chunks(pkg.info(sh.part)), pkg, sh)
        head = stream.head()
        col_styles = _col_styles(head)
        scan = pkg.scans.get(sh.part)
        max_row = max([scan.max_row if scan else 0, *by_row])
        max_col = max([scan.max_col if scan else 0, *(c for _, c in cells)])
        spool = _Spool()
        spool.write(_set_dimension(head, max_col, max_row))
        pending = sorted(by_row, reverse=True)  # popped from the end: smallest row first
        removed_formula = False
        batch: list[bytes] = []
        for number, el in stream.rows():
            while pending and pending[-1] < number:  # rows that do not exist yet go before this one
                r = pending.pop()
                batch.append(_edit_row(None, r, by_row[r], col_styles, styles, pkg.date1904, stream.prefix, lang)[0])
            if pending and pending[-1] == number:
                pending.pop()
                el, had = _edit_row(el, number, by_row[number], col_styles, styles, pkg.date1904, stream.prefix, lang)
                removed_formula |= had
            batch.append(el)
            if len(batch) >= 5000:
                spool.write(b"".join(batch))
                batch.clear()
        while pending:
            r = pending.pop()
            batch.append(_edit_row(None, r, by_row[r], col_styles, styles, pkg.date1904, stream.prefix, lang)[0])
        spool.write(b"".join(batch))
        spool.write(stream.tail())
        changes: dict[str, bytes | _Spool] = {sh.part: spool.finish()}
        if styles.changed:
            changes[pkg.styles] = styles.to_bytes()
        drop = _drop_calc_chain(pkg, changes) if removed_formula else set()
        _write_package(pkg, target, changes, drop)
    return len(cells)


def write_key_values(path: str | Path, sheet: str, mapping: Mapping[str, str], *, out: str | Path | None = None,
                     limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> None:
    """Set key (column A) / value (column B) pairs on a settings sheet such as ``xlwings.conf``.

    Keys are matched as xlwings reads them (upper-cased, spaces kept); a key already in column A
    gets its value in B replaced, a new key is appended right under the keys read from A1 down,
    since xlwings stops at the first empty row.  Raises NotFound if the sheet does not exist, and
    InvalidInput if appending would overwrite cells below a gap in column A.
    """
    from .workbook import read_grid

    with open_package(path, limits, lang=lang) as pkg:
        _worksheet(pkg, sheet)
        grid = read_grid(pkg, sheet)
    rows_of: dict[str, int] = {}
    block_end = 0  # the last row of the contiguous keys from A1
    for i, row in enumerate(grid, start=1):
        key = row[0] if row else None
        if key is None:
            continue
        rows_of.setdefault(str(key).upper(), i)
        if block_end == i - 1:
            block_end = i
    cells: dict[tuple[int, int], object] = {}
    nxt = block_end + 1
    for key, value in mapping.items():
        row = rows_of.get(str(key).upper())
        if row is None:
            occupied = nxt <= len(grid) and any(v is not None for v in grid[nxt - 1][:2])
            if occupied:
                raise InvalidInput(_tr(lang, f"“{sheet}”第 {nxt} 行已有内容，无法在键列表后追加“{key}”；请整理该工作表",
                                       f"row {nxt} of {sheet!r} is in use; cannot append {key!r} after the keys"))
            row, nxt = nxt, nxt + 1
            cells[(row, 1)] = str(key)
        cells[(row, 2)] = "" if value is None else str(value)
    if cells:
        update_cells(path, sheet, cells, out=out, limits=limits, lang=lang)


# ---- the sheet stream -------------------------------------------------------------------------

_SHEETDATA_OPEN = re.compile(rb"<([A-Za-z_][\w.\-]*:)?sheetData\b[^>]*?(/?)>")
_ROW_NUMBER = re.compile(rb"\sr\s*=\s*[\"']\s*(\d+)")
_WS = b" \t\r\n"


class _SheetStream:
    """Walks a worksheet part: its head up to ``<sheetData>``, each row element, then the tail."""

    def __init__(self, chunks: Iterator[bytes], pkg: Package, sheet: Sheet):
        self._chunks = chunks
        self.pkg, self.sheet = pkg, sheet
        self.buf, self.pos, self.eof = b"", 0, False
        self.prefix = b""
        self._self_closed = False

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def _bad(self, what: str) -> InvalidFile:
        return InvalidFile(_tr(self.pkg.lang, f"无法写入“{self.pkg.name}”：工作表“{self.sheet.name}”结构异常（{what}）",
                               f'cannot write "{self.pkg.name}": the sheet {self.sheet.name!r} is malformed ({what})'))

    def head(self) -> bytes:
        """Return everything up to and including the ``<sheetData>`` start tag."""
        while not (m := _SHEETDATA_OPEN.search(self.buf, self.pos)):
            if not self._more():
                raise self._bad("no sheetData")
        self.prefix = m.group(1) or b""
        self.pos = m.end()
        if m.group(2):  # <sheetData/>: treat as an empty element
            self._self_closed = True
            return self.buf[:m.start()] + b"<" + self.prefix + b"sheetData>"
        return self.buf[:m.end()]

    def rows(self) -> Iterator[tuple[int, bytes]]:
        """Yield (row number, row element) for each row, as written."""
        if self._self_closed:
            return
        p = self.prefix
        open_row, close_row, close_data = b"<" + p + b"row", b"</" + p + b"row>", b"</" + p + b"sheetData>"
        number = 0
        while True:
            while True:
                while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                    self.pos += 1
                if len(self.buf) - self.pos >= len(close_data) + 1 or not self._more():
                    break
            buf, pos = self.buf, self.pos
            if buf.startswith(close_data, pos) or pos >= len(buf):
                if pos >= len(buf):
                    raise self._bad("unterminated sheetData")
                return
            if buf.startswith(b"<!--", pos):
                end = self._find(b"-->", pos)
                self.pos = end + 3
                continue
            if not (buf.startswith(open_row, pos) and buf[pos + len(open_row):pos + len(open_row) + 1] in (b" ", b">", b"/", b"\t", b"\r", b"\n")):
                raise self._bad("unexpected element in sheetData")
            gt = self._find(b">", pos)
            buf, pos = self.buf, self.pos
            if buf[gt - 1:gt] == b"/":
                end = gt + 1
            else:
                end = self._find(close_row, gt) + len(close_row)
                buf, pos = self.buf, self.pos
            el = buf[pos:end]
            m = _ROW_NUMBER.search(el, 0, el.find(b">"))
            number = int(m.group(1)) if m else number + 1
            self.pos = end
            yield number, el

    def _find(self, what: bytes, start: int) -> int:
        """Return the index of what in the buffer from start, reading more as needed."""
        offset = start - self.pos
        while (i := self.buf.find(what, self.pos + offset)) < 0:
            offset = max(len(self.buf) - self.pos - len(what), offset)
            if not self._more():
                raise self._bad("truncated element")
        return i

    def skip_rows(self) -> bool:
        """Skip the remaining rows; return whether they held formulas."""
        close_data = b"</" + self.prefix + b"sheetData>"
        formula = (b"<" + self.prefix + b"f>", b"<" + self.prefix + b"f ")
        had = False
        while (i := self.buf.find(close_data, self.pos)) < 0:
            had = had or any(self.buf.find(f, self.pos) >= 0 for f in formula)
            self.pos = max(self.pos, len(self.buf) - len(close_data))
            if not self._more():
                raise self._bad("unterminated sheetData")
        had = had or any(0 <= self.buf.find(f, self.pos, i) for f in formula)
        self.pos = i
        return had

    def tail(self) -> bytes:
        """Return everything from ``</sheetData>`` to the end of the part."""
        rest = self.buf[self.pos:] + b"".join(self._chunks)
        if self._self_closed:
            rest = b"</" + self.prefix + b"sheetData>" + rest
        return rest


_CELL = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?c\b([^>]*?)(?:/>|>(.*?)</(?:[A-Za-z_][\w.\-]*:)?c>)", re.S)
_ATTR = re.compile(rb"([\w:.\-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _attrs(tag: bytes) -> dict[bytes, bytes]:
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(tag)}


def _cells(row_el: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Return (column, attributes, element) for each cell of a row element."""
    out, col = [], 0
    body_start = row_el.find(b">") + 1
    for m in _CELL.finditer(row_el, body_start):
        attrs = _attrs(m.group(1))
        pos = parse_ref(attrs[b"r"].decode("ascii", "replace")) if b"r" in attrs else None
        col = pos[1] if pos else col + 1
        out.append((col, attrs, m.group(0)))
    return out


class _OldSheet:
    """The parts of the old worksheet that replace_sheet_rows keeps, and the style of its data rows."""

    head: bytes
    kept: list[bytes]
    tail: bytes
    kept_width = 0
    kept_last = 0
    last_row = 0
    removed_formulas = False
    template_row: bytes | None = None

    @classmethod
    def read(cls, pkg: Package, sheet: Sheet, start_row: int) -> _OldSheet:
        self = cls()
        stream = _SheetStream(pkg.chunks(pkg.info(sheet.part)), pkg, sheet)
        self.head = stream.head()
        self.kept = []
        for number, el in stream.rows():
            if number < start_row:
                self.kept.append(el)
                self.kept_last = number
                cells = _cells(el)
                if cells:
                    self.kept_width = max(self.kept_width, max(c for c, _, _ in cells))
            else:
                self.template_row = el
                self.removed_formulas = b"<f" in el
                self.removed_formulas |= stream.skip_rows()
                break
        self.tail = stream.tail()
        scan = pkg.scans.get(sheet.part)
        self.last_row = scan.max_row if scan else 0
        return self

    def template(self, styles: _Styles) -> _Template:
        """Return the per-column styles new rows take: old first data row, else ``<col>``."""
        col = _col_styles(self.head)
        cell: dict[int, int] = {}
        if self.template_row is not None:
            for c, attrs, _ in _cells(self.template_row):
                cell[c] = int(attrs.get(b"s", b"0") or 0)
        return _Template(col, cell, styles)


_COL = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?col\b([^>]*)>")


def _col_styles(head: bytes) -> dict[int, int]:
    """Return column → style id from the ``<cols>`` of a worksheet head."""
    out: dict[int, int] = {}
    for m in _COL.finditer(head):
        a = _attrs(m.group(1))
        if b"style" in a:
            lo, hi = int(a.get(b"min", b"1")), int(a.get(b"max", b"1"))
            for c in range(lo, min(hi, 16_384) + 1):
                out[c] = int(a[b"style"])
    return out


class _Template:
    """Per column: the style attribute a value cell takes, and the one an empty cell needs."""

    def __init__(self, col: dict[int, int], cell: dict[int, int], styles: _Styles):
        self.col, self.cell, self.styles = col, cell, styles

    def style(self, c: int) -> int:
        return self.cell.get(c, self.col.get(c, 0))

    def empty_attr(self, c: int) -> str:
        # An absent cell shows its column's style; write an empty cell only to keep a different one.
        s = self.cell.get(c)
        return f' s="{s}"' if s is not None and s != self.col.get(c, 0) else ""


# ---- values to cells --------------------------------------------------------------------------

_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")
_EPOCH_1900 = dt.datetime(1899, 12, 30)
_EPOCH_1904 = dt.datetime(1904, 1, 1)
_MAX_EXACT = 10 ** 15  # Excel keeps 15 significant digits


def _escape(text: str) -> str:
    text = _ILLEGAL.sub("", text)  # not allowed in XML 1.0 at all
    text = _XESCAPE.sub(r"_x005F_\1", text)  # Excel reads _x000D_ as an escape: keep it literal
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _where(lang: str | None, row: int, col: int) -> str:
    return _tr(lang, f"第 {row} 行 {col_letters(col)} 列", f"row {row}, column {col_letters(col)}")


def _bad_value(lang: str | None, row: int, col: int, zh: str, en: str) -> InvalidInput:
    return InvalidInput(_tr(lang, f"{_where(lang, row, col)}：{zh}", f"{_where(lang, row, col)}: {en}"))


def _serial(value: dt.date | dt.datetime | dt.time, date1904: bool, lang, row: int, col: int) -> str:
    """Return an Excel date serial for a date, datetime or time."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise _bad_value(lang, row, col, "带时区的时间无法写入 Excel，请先转换为本地时间",
                             "a time with a timezone cannot go into Excel; convert it to local time first")
        secs = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return repr(secs / 86400)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise _bad_value(lang, row, col, "带时区的日期时间无法写入 Excel，请先转换为本地时间",
                             "a datetime with a timezone cannot go into Excel; convert it to local time first")
        moment = value
    else:
        moment = dt.datetime(value.year, value.month, value.day)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    if moment < (epoch if date1904 else dt.datetime(1900, 1, 1)):
        raise _bad_value(lang, row, col, f"日期 {value} 早于 Excel 能表示的最早日期",
                         f"the date {value} is earlier than Excel can hold")
    delta = moment - epoch
    days = delta.days - (1 if not date1904 and moment < dt.datetime(1900, 3, 1) else 0)  # Excel's 1900-02-29
    if not (delta.seconds or delta.microseconds):
        return str(days)
    return repr(days + (delta.seconds + delta.microseconds / 1e6) / 86400)


def _number(value: object, lang, row: int, col: int) -> str | None:
    """Return the XML text of a number, None for NaN (an empty cell); raise for what Excel would change."""
    if isinstance(value, float):
        if value != value:
            return None
        if math.isinf(value):
            raise _bad_value(lang, row, col, "无穷大无法写入 Excel", "infinity cannot go into Excel")
        return repr(value)
    if isinstance(value, int):
        if abs(value) >= _MAX_EXACT:
            raise _bad_value(lang, row, col, f"数字 {value} 超过 15 位，Excel 会丢失精度；请作为文本保存",
                             f"the number {value} has over 15 digits and Excel would lose some; store it as text")
        return str(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if not value.is_finite() or Decimal(repr(float(value))) != value:
            raise _bad_value(lang, row, col, f"数字 {value} 无法在 Excel 中精确保存；请作为文本保存",
                             f"the number {value} cannot be held exactly by Excel; store it as text")
        return repr(float(value))
    raise TypeError(value)


def _cell(ref: str, value: object, s: int, styles: _Styles, date1904: bool, lang, row: int, col: int) -> str:
    """Return the XML of one cell holding value with style s ("" for an empty unstyled cell)."""
    sattr = f' s="{s}"' if s else ""
    if value is None or (isinstance(value, str) and not value) or type(value).__name__ == "NAType":
        return f'<c r="{ref}"{sattr}/>' if s else ""
    if isinstance(value, str):
        return _text_cell(ref, sattr, value, lang, row, col)
    if isinstance(value, bool):
        return f'<c r="{ref}"{sattr} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float, Decimal)):
        text = _number(value, lang, row, col)
        if text is None:
            return f'<c r="{ref}"{sattr}/>' if s else ""
        return f'<c r="{ref}"{sattr}><v>{text}</v></c>'
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        if value != value:  # pandas NaT
            return f'<c r="{ref}"{sattr}/>' if s else ""
        kind = "time" if isinstance(value, dt.time) else "datetime" if isinstance(value, dt.datetime) else "date"
        s = styles.date_style(s, kind)
        return f'<c r="{ref}" s="{s}"><v>{_serial(value, date1904, lang, row, col)}</v></c>'
    if isinstance(value, dt.timedelta):
        s = styles.date_style(s, "duration")
        return f'<c r="{ref}" s="{s}"><v>{repr(value.total_seconds() / 86400)}</v></c>'
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return _cell(ref, item(), s, styles, date1904, lang, row, col)
    raise _bad_value(lang, row, col, f"无法写入 {type(value).__name__} 类型的值 {value!r:.40}",
                     f"cannot write a value of type {type(value).__name__} ({value!r:.40})")


def _text_cell(ref: str, sattr: str, value: str, lang, row: int, col: int) -> str:
    if _SPECIAL.search(value):
        value = _escape(value)
        chars = len(value) - sum(len(e) - 1 for e in re.findall("&(?:amp|lt|gt|#13);", value))
    else:
        chars = len(value)
    if chars > EXCEL_MAX_CHARS:
        raise _bad_value(lang, row, col, f"文本有 {chars} 个字符，超过 Excel 单元格上限 {EXCEL_MAX_CHARS}",
                         f"the text has {chars} characters, over Excel's cell limit of {EXCEL_MAX_CHARS}")
    space = ' xml:space="preserve"' if value[:1] in " \t\n" or value[-1:] in " \t\n" else ""
    return f'<c r="{ref}"{sattr} t="inlineStr"><is><t{space}>{value}</t></is></c>'


def _write_rows(spool: _Spool, rows: Sequence[Sequence[object]], start_row: int, template: _Template,
                styles: _Styles, date1904: bool, lang) -> None:
    """Stream rows as ``<row>`` elements into spool (the hot path: plain str/float/int inline)."""
    width = max((len(r) for r in rows), default=0)
    letters = [col_letters(c + 1) for c in range(width)]
    style = [template.style(c + 1) for c in range(width)]
    sattr = [f' s="{s}"' if s else "" for s in style]
    empty = [template.empty_attr(c + 1) for c in range(width)]
    special, limit = _SPECIAL.search, EXCEL_MAX_CHARS
    batch: list[str] = []
    for i, values in enumerate(rows):
        r = start_row + i
        rs = str(r)
        batch.append(f'<row r="{rs}">')
        for j, v in enumerate(values):
            t = type(v)
            if t is str and v and len(v) <= limit and not special(v):
                sp = ' xml:space="preserve"' if v[0] in " \t\n" or v[-1] in " \t\n" else ""
                batch.append(f'<c r="{letters[j]}{rs}"{sattr[j]} t="inlineStr"><is><t{sp}>{v}</t></is></c>')
            elif v is None or (t is str and not v):
                if empty[j]:
                    batch.append(f'<c r="{letters[j]}{rs}"{empty[j]}/>')
            elif (t is float and v == v and v not in (math.inf, -math.inf)) or (t is int and -_MAX_EXACT < v < _MAX_EXACT):
                batch.append(f'<c r="{letters[j]}{rs}"{sattr[j]}><v>{v!r}</v></c>')
            else:
                xml = _cell(f"{letters[j]}{rs}", v, style[j], styles, date1904, lang, r, j + 1)
                if not xml and empty[j]:
                    xml = f'<c r="{letters[j]}{rs}"{empty[j]}/>'
                batch.append(xml)
        batch.append("</row>")
        if len(batch) > 20_000:
            spool.write("".join(batch).encode("utf-8"))
            batch.clear()
    spool.write("".join(batch).encode("utf-8"))


def _edit_row(el: bytes | None, number: int, values: dict[int, object], col_styles: dict[int, int],
              styles: _Styles, date1904: bool, prefix: bytes, lang) -> tuple[bytes, bool]:
    """Return a row element with the given cells set (and whether a replaced cell held a formula)."""
    if el is None:
        start, cells = f'<row r="{number}">'.encode(), []
    else:
        gt = el.find(b">")
        start = el[:gt + 1]
        if start.endswith(b"/>"):
            start = start[:-2].rstrip() + b">"
        start = re.sub(rb'\sspans\s*=\s*"[^"]*"', b"", start)  # a hint only; stale once cells change
        cells = _cells(el)
    had_formula = False
    by_col = {c: (attrs, xml) for c, attrs, xml in cells}
    for c, value in values.items():
        if c in by_col:
            attrs, xml = by_col[c]
            had_formula |= b"<f" in xml or b":f" in xml
            if b"<f" in xml and b't="shared"' in xml and b"ref=" in xml:
                raise InvalidInput(_tr(lang, f"{_where(lang, number, c)} 是其他单元格共用公式的来源，不能直接覆盖；请在 Excel 中修改",
                                       f"{_where(lang, number, c)} holds a formula other cells share; change it in Excel"))
            s = int(attrs.get(b"s", b"0") or 0)
        else:
            s = col_styles.get(c, 0)
        by_col[c] = ({}, _cell(f"{col_letters(c)}{number}", value, s, styles, date1904, lang, number, c).encode("utf-8"))
    body = b"".join(xml for _, (_, xml) in sorted(by_col.items()))
    if prefix:  # cells we wrote are unprefixed: give them the sheet's prefix
        body = re.sub(rb"<(/?)(c|v|is|t)\b", lambda m: b"<" + m.group(1) + prefix + m.group(2), body)
    return start + body + b"</" + prefix + b"row>", had_formula


# ---- dimension, ranges, tables ----------------------------------------------------------------

_DIMENSION_REF = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?dimension\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")")


def _set_dimension(head: bytes, cols: int, rows: int) -> bytes:
    ref = b"A1" if cols <= 1 and rows <= 1 else f"A1:{col_letters(max(cols, 1))}{max(rows, 1)}".encode()
    return _DIMENSION_REF.sub(lambda m: m.group(1) + ref + m.group(3), head, count=1)


_SQREF_ATTR = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?(?:conditionalFormatting|dataValidation)\b[^>]*?\ssqref\s*=\s*\")"
                         rb"([^\"]*)(\")")
_SQREF_ELEMENT = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?sqref>)([^<]*)(</)")
_AUTOFILTER_REF = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?autoFilter\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")")


def _extend_ranges(sqref: str, old_end: int, new_end: int) -> str:
    """Return sqref with each range that ran to the end of the old data extended to new_end.

    Ranges only grow: one that stops above the old data's end, or already reaches past the new
    end (a whole column), stays as it is.
    """
    out = []
    for part in sqref.split():
        a, _, b = part.partition(":")
        first, last = parse_ref(a), parse_ref(b or a)
        if first and last and first[0] <= old_end <= last[0] < new_end:
            part = f"{a}:{col_letters(last[1])}{new_end}"
        out.append(part)
    return " ".join(out)


def _extend_tail(tail: bytes, start_row: int, old_end: int, new_end: int) -> bytes:
    def sqref(m: re.Match) -> bytes:
        return m.group(1) + _extend_ranges(m.group(2).decode("ascii", "replace"), old_end, new_end).encode() + m.group(3)

    def autofilter(m: re.Match) -> bytes:
        return m.group(1) + _resize_ref(m.group(2).decode("ascii", "replace"), start_row, new_end, 1).encode() + m.group(3)

    tail = _SQREF_ATTR.sub(sqref, tail)
    tail = _SQREF_ELEMENT.sub(sqref, tail)
    return _AUTOFILTER_REF.sub(autofilter, tail)


def _resize_ref(ref: str, start_row: int, new_last: int, header_rows: int) -> str:
    """Return a table/autofilter ref whose header sits just above start_row, ending at new_last."""
    a, _, b = ref.partition(":")
    first, last = parse_ref(a), parse_ref(b)
    if not (first and last) or first[0] + header_rows != start_row:
        return ref  # not on the replaced rows
    bottom = max(new_last, first[0] + header_rows)  # a table keeps at least one data row
    return f"{col_letters(first[1])}{first[0]}:{col_letters(last[1])}{bottom}"


_TABLE_TAG = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?table\b[^>]*>")


def _resize_tables(pkg: Package, sheet: Sheet, start_row: int, new_last: int, lang) -> dict[str, bytes]:
    """Return the new bytes of each table on the sheet whose rows are being replaced."""
    out = {}
    for _, typ, target in pkg.rels(sheet.part):
        if not typ.endswith("/table") or pkg.info(target) is None:
            continue
        data = pkg.read(target)
        m = _TABLE_TAG.search(data)
        if not m:
            continue
        a = _attrs(m.group(0))
        header_rows = int(a.get(b"headerRowCount", b"1"))
        ref = a.get(b"ref", b"").decode("ascii", "replace")
        first = parse_ref(ref.partition(":")[0])
        if not first or first[0] + header_rows != start_row:
            continue  # not on the replaced rows
        if int(a.get(b"totalsRowCount", b"0")) > 0:
            raise InvalidInput(_tr(lang, f"工作表“{sheet.name}”的表格“{a.get(b'name', b'').decode()}”有汇总行，"
                                         "不能整体替换数据行；请先在 Excel 中关闭汇总行",
                                   f"the table {a.get(b'name', b'').decode()!r} on {sheet.name!r} has a totals row; "
                                   "turn it off in Excel before its rows are replaced"))
        new_ref = _resize_ref(ref, start_row, new_last, header_rows)
        if new_ref == ref:
            continue
        start_tag = re.sub(rb'(\sref\s*=\s*")[^"]*(")', lambda x: x.group(1) + new_ref.encode() + x.group(2),
                           m.group(0), count=1)
        data = data[:m.start()] + start_tag + data[m.end():]
        bottom = new_ref.rsplit(":", 1)[-1]
        bottom_row = parse_ref(bottom)[0]

        def refit(x: re.Match) -> bytes:
            r = x.group(2).decode("ascii", "replace")
            a_, _, b_ = r.partition(":")
            last = parse_ref(b_ or a_)
            if not last:
                return x.group(0)
            return x.group(1) + f"{a_}:{col_letters(last[1])}{bottom_row}".encode() + x.group(3)

        data = _AUTOFILTER_REF.sub(refit, data)
        data = re.sub(rb"(<(?:[A-Za-z_][\w.\-]*:)?sortState\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")", refit, data)
        out[pkg.info(target).filename] = data
    return out


def _drop_calc_chain(pkg: Package, changes: dict) -> set[str]:
    """Return the parts to drop so Excel rebuilds its calculation chain (formulas were removed)."""
    if not pkg.calc_chain:
        return set()
    part = pkg.calc_chain
    folder, base = os.path.split(pkg.workbook_part)
    rels_part = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
    rels = pkg.read(rels_part)

    def keep(m: re.Match) -> bytes:
        target = _attrs(m.group(0)).get(b"Target", b"").decode()
        return b"" if resolve_target(folder, target) == part else m.group(0)

    changes[rels_part] = re.sub(rb"<Relationship\b[^>]*?calcChain[^>]*?/>", keep, rels)
    types = pkg.read("[Content_Types].xml")
    changes["[Content_Types].xml"] = re.sub(rb'<Override\b[^>]*?PartName="/' + re.escape(part.encode()) + rb'"[^>]*/>',
                                            b"", types)
    return {part}


# ---- styles -----------------------------------------------------------------------------------

_DATE_IDS = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
_FORMATS = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss", "time": "hh:mm:ss", "duration": "[h]:mm:ss"}
_XF = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?xf\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?xf>)", re.S)
_CELLXFS = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?cellXfs\b[^>]*>)(.*?)(</(?:[A-Za-z_][\w.\-]*:)?cellXfs>)", re.S)
_NUMFMT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?numFmt\b([^>]*?)/?>")


def _is_date_code(code: str) -> bool:
    code = re.sub(r'"[^"]*"|\\.|\[(?!h\]|m\]|s\])[^\]]*\]', "", code.lower())
    return any(ch in code for ch in "ymdhs")


class _Styles:
    """The workbook's cell formats, extended (once per base style and kind) with date formats."""

    def __init__(self, pkg: Package):
        self.pkg = pkg
        self.changed = False
        self._loaded = False
        self._cache: dict[tuple[int, str], int] = {}

    def _load(self) -> None:
        self._loaded = True
        if not self.pkg.styles:
            raise InvalidFile(_tr(self.pkg.lang, f"“{self.pkg.name}”没有样式部件，无法写入日期",
                                  f'"{self.pkg.name}" has no styles part; dates cannot be written'))
        self.data = self.pkg.read(self.pkg.styles)
        self.formats: dict[int, str] = {}
        for m in _NUMFMT.finditer(self.data):
            a = _attrs(m.group(1))
            if b"numFmtId" in a:
                code = a.get(b"formatCode", b"").decode("utf-8", "replace")
                self.formats[int(a[b"numFmtId"])] = code.replace("&quot;", '"').replace("&amp;", "&")
        m = _CELLXFS.search(self.data)
        self.xfs = _XF.findall(m.group(2)) if m else []
        self.new_formats: dict[int, str] = {}
        self.new_xfs: list[bytes] = []

    def is_date(self, s: int) -> bool:
        if not self._loaded:
            self._load()
        xfs = self.xfs + self.new_xfs
        if s >= len(xfs):
            return False
        fmt = int(_attrs(xfs[s]).get(b"numFmtId", b"0"))
        return fmt in _DATE_IDS or _is_date_code({**self.formats, **self.new_formats}.get(fmt, ""))

    def date_style(self, s: int, kind: str) -> int:
        """Return s if it already shows a date/time, else a style like s with a date format."""
        key = (s, kind)
        if key in self._cache:
            return self._cache[key]
        if self.is_date(s) and kind != "duration":
            self._cache[key] = s
            return s
        code = _FORMATS[kind]
        known = {**self.formats, **self.new_formats}
        fmt = next((i for i, c in known.items() if c == code), None)
        if fmt is None:
            fmt = max([163, *known]) + 1
            self.new_formats[fmt] = code
        base = (self.xfs + self.new_xfs)[s] if s < len(self.xfs) + len(self.new_xfs) else (
            b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>')
        base = re.sub(rb'\s(numFmtId|applyNumberFormat)\s*=\s*"[^"]*"', b"", base)
        xf = re.sub(rb"^<((?:[A-Za-z_][\w.\-]*:)?xf)\b", lambda m: b"<" + m.group(1)
                    + f' numFmtId="{fmt}" applyNumberFormat="1"'.encode(), base)
        self.new_xfs.append(xf)
        self.changed = True
        new = len(self.xfs) + len(self.new_xfs) - 1
        self._cache[key] = new
        return new

    def to_bytes(self) -> bytes:
        data = self.data
        if self.new_formats:
            add = b"".join(f'<numFmt numFmtId="{i}" formatCode="{c}"/>'.encode() for i, c in self.new_formats.items())
            m = re.search(rb"(<(?:[A-Za-z_][\w.\-]*:)?numFmts\b[^>]*>)(.*?)(</(?:[A-Za-z_][\w.\-]*:)?numFmts>)", data, re.S)
            if m:
                count = len(_NUMFMT.findall(m.group(2))) + len(self.new_formats)
                start = _set_count(m.group(1), count)
                data = data[:m.start()] + start + m.group(2) + add + m.group(3) + data[m.end():]
            else:
                root = re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?styleSheet\b[^>]*>", data)
                data = (data[:root.end()] + f'<numFmts count="{len(self.new_formats)}">'.encode() + add
                        + b"</numFmts>" + data[root.end():])
        m = _CELLXFS.search(data)
        start = _set_count(m.group(1), len(self.xfs) + len(self.new_xfs))
        return data[:m.start()] + start + m.group(2) + b"".join(self.new_xfs) + m.group(3) + data[m.end():]


def _set_count(tag: bytes, count: int) -> bytes:
    if re.search(rb'\scount\s*=\s*"', tag):
        return re.sub(rb'(\scount\s*=\s*")[^"]*(")', lambda m: m.group(1) + str(count).encode() + m.group(2), tag)
    return tag[:-1] + f' count="{count}">'.encode()


# ---- the zip writer ---------------------------------------------------------------------------


class _Spool:
    """A new part, deflated as it is written into a temporary file."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self._z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
        self.crc = self.size = self.compressed = 0

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        out = self._z.compress(data)
        if out:
            self.file.write(out)

    def finish(self) -> _Spool:
        self.file.write(self._z.flush())
        self.compressed = self.file.tell()
        self.file.seek(0)
        return self

    def chunks(self) -> Iterator[bytes]:
        while data := self.file.read(1 << 20):
            yield data

    def close(self) -> None:
        self.file.close()


def _dos(date_time: tuple) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((max(y, 1980) - 1980) << 9) | (mo << 5) | d


def _name_bytes(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    try:
        return info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), info.flag_bits | 0x800


class _ZipOut:
    """Writes zip entries: copied as stored, or new from a spool; then the central directory."""

    def __init__(self, f):
        self.f = f
        self.central: list[bytes] = []

    def _entry(self, info: zipfile.ZipInfo, method: int, crc: int, csize: int, usize: int, chunks: Iterable[bytes]):
        if max(csize, usize, self.f.tell()) >= 0xFFFFFFFF:
            raise InvalidInput("the workbook would exceed 4 GB, which this writer does not support")
        name, flags = _name_bytes(info)
        flags &= ~0x08  # sizes go in the header, no data descriptor
        dostime, dosdate = _dos(info.date_time)
        offset = self.f.tell()
        version = max(info.extract_version, 20)
        self.f.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, flags, method, dostime, dosdate,
                                 crc, csize, usize, len(name), 0) + name)
        for data in chunks:
            self.f.write(data)
        comment = info.comment or b""
        self.central.append(struct.pack(
            "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", info.create_version, info.create_system, version, flags,
            method, dostime, dosdate, crc, csize, usize, len(name), 0, len(comment), 0, info.internal_attr,
            info.external_attr, offset) + name + comment)

    def copy(self, pkg: Package, info: zipfile.ZipInfo) -> None:
        self._entry(info, info.compress_type, info.CRC, info.compress_size, info.file_size, pkg.raw_chunks(info))

    def add(self, info: zipfile.ZipInfo, data: bytes | _Spool) -> None:
        if isinstance(data, bytes):
            spool = _Spool()
            spool.write(data)
            data = spool.finish()
        try:
            self._entry(info, zipfile.ZIP_DEFLATED, data.crc, data.compressed, data.size, data.chunks())
        finally:
            data.close()

    def close(self, comment: bytes = b"") -> None:
        start = self.f.tell()
        for rec in self.central:
            self.f.write(rec)
        size = self.f.tell() - start
        n = len(self.central)
        if n >= 0xFFFF:
            raise InvalidInput("too many parts for this writer")
        self.f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, size, start, len(comment)) + comment)


def _write_package(pkg: Package, target: Path, changes: dict[str, bytes | _Spool], drop: set[str]) -> None:
    """Write pkg to target with changed parts replaced and dropped parts left out, atomically.

    Every other part is copied as stored (same compressed bytes, same order).  The new file is
    written beside target, fsynced, then moved over it; on any failure target is untouched.
    """
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".~{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        _close(changes)
        raise _write_error(pkg, target, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            out = _ZipOut(f)
            for info in pkg.entries:
                if info.filename in drop:
                    continue
                if info.filename in changes:
                    out.add(info, changes.pop(info.filename))
                else:
                    out.copy(pkg, info)
            for name in list(changes):  # parts the source did not have
                out.add(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), changes.pop(name))
            out.close(pkg.comment)
            f.flush()
            os.fsync(f.fileno())
        like = target if target.exists() else Path(pkg.fp.name)
        os.chmod(tmp, stat.S_IMODE(os.stat(like).st_mode))
        pkg.close()  # Windows cannot replace a file that is still open
        os.replace(tmp, target)
    except BaseException as e:
        _close(changes)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, _Refused):
            raise pkg.refuse(e.key, **e.kw) from None
        if isinstance(e, OSError):
            raise _write_error(pkg, target, e) from None
        raise
    _fsync_dir(folder)


def _close(changes: dict) -> None:
    for data in changes.values():
        if isinstance(data, _Spool):
            data.close()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows has no directory fsync; os.replace is already durable there
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(pkg: Package, target: Path, e: OSError) -> InvalidFile:
    if isinstance(e, PermissionError):
        return InvalidFile(_tr(pkg.lang, f"无法写入“{target.name}”：没有权限，或文件正在 Excel 中打开；请关闭文件后重试，原文件未改动",
                               f'cannot write "{target.name}": permission denied, or the file is open in Excel; '
                               "close it and try again (the original is unchanged)"))
    return InvalidFile(_tr(pkg.lang, f"无法写入“{target.name}”：{e.strerror or e}；原文件未改动",
                           f'cannot write "{target.name}": {e.strerror or e} (the original is unchanged)'))


def _worksheet(pkg: Package, name: str) -> Sheet:
    """Return the worksheet called name; raise NotFound if there is none."""
    sheet = pkg.sheet(name)
    if sheet is None:
        raise NotFound(_tr(pkg.lang, f"“{pkg.name}”中没有工作表“{name}”；现有：{'、'.join(s.name for s in pkg.sheets)}",
                           f'"{pkg.name}" has no sheet {name!r}; it has: ' + ", ".join(s.name for s in pkg.sheets)))
    if sheet.kind != "worksheet":
        raise InvalidInput(_tr(pkg.lang, f"“{pkg.name}”中的“{sheet.name}”不是普通工作表（{sheet.kind}）",
                               f'{sheet.name!r} in "{pkg.name}" is not a worksheet ({sheet.kind})'))
    return sheet
