"""One worksheet part as a stream: its head, its rows, its tail; and the ranges that follow its rows.

``SheetStream`` walks a worksheet's XML without parsing it whole (a 100,000-row sheet is ~0.3 GB),
``OldSheet`` keeps what replace_sheet_rows keeps of it, and the range helpers move the
``<dimension>``, validation, conditional-format, autofilter and table ranges to new data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import InvalidFile, InvalidInput
from .xlsx_cells import cell_xml, where
from .xlsx_limits import col_letters, parse_ref, say, shown
from .xlsx_safety import Package, Sheet, resolve_target

if TYPE_CHECKING:
    from .xlsx_styles import Styles


_SHEETDATA_OPEN = re.compile(rb"<([A-Za-z_][\w.\-]*:)?sheetData\b[^>]*?(/?)>")
_ROW_NUMBER = re.compile(rb"\sr\s*=\s*[\"']\s*(\d+)")
_WS = b" \t\r\n"


class SheetStream:
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
        name = shown(self.pkg.name)
        return InvalidFile(say(self.pkg.lang, f"无法写入“{name}”：工作表“{self.sheet.name}”结构异常（{what}），原文件未改动",
                               f'cannot write "{name}": the sheet {self.sheet.name!r} is malformed ({what}); '
                               "the original is unchanged"))

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


def tag_attrs(tag: bytes) -> dict[bytes, bytes]:
    """Return the attributes of a start tag, names and values as written."""
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(tag)}


def to_int(value: bytes | None, default: int) -> int:
    """Return an attribute as a non-negative int, or default when it is missing or not a number."""
    if value is None:
        return default
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 10 else default


def row_cells(row_el: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Return (column, attributes, element) for each cell of a row element."""
    out, col = [], 0
    body_start = row_el.find(b">") + 1
    for m in _CELL.finditer(row_el, body_start):
        attrs = tag_attrs(m.group(1))
        pos = parse_ref(attrs[b"r"].decode("ascii", "replace")) if b"r" in attrs else None
        col = pos[1] if pos else col + 1
        out.append((col, attrs, m.group(0)))
    return out


class OldSheet:
    """The parts of the old worksheet that replace_sheet_rows keeps, and the style of its data rows."""

    head: bytes
    prefix = b""
    kept: list[bytes]
    kept_numbers: list[int]
    tail: bytes
    kept_width = 0
    kept_last = 0
    last_row = 0
    removed_formulas = False
    template_row: bytes | None = None

    @classmethod
    def read(cls, pkg: Package, sheet: Sheet, start_row: int) -> OldSheet:
        self = cls()
        stream = SheetStream(pkg.chunks(pkg.info(sheet.part)), pkg, sheet)
        self.head = stream.head()
        self.prefix = stream.prefix
        self.kept = []
        self.kept_numbers = []
        for number, el in stream.rows():
            if number < start_row:
                self.kept.append(el)
                self.kept_numbers.append(number)
                self.kept_last = number
                cells = row_cells(el)
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

    def template(self, styles: Styles) -> Template:
        """Return the per-column styles new rows take: old first data row, else ``<col>``."""
        col = column_styles(self.head)
        cell: dict[int, int] = {}
        if self.template_row is not None:
            for c, attrs, _ in row_cells(self.template_row):
                cell[c] = to_int(attrs.get(b"s"), 0)
        return Template(col, cell, styles)


_COL = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?col\b([^>]*)>")


def column_styles(head: bytes) -> dict[int, int]:
    """Return column → style id from the ``<cols>`` of a worksheet head."""
    out: dict[int, int] = {}
    for m in _COL.finditer(head):
        a = tag_attrs(m.group(1))
        if b"style" in a:
            lo, hi = to_int(a.get(b"min"), 1), to_int(a.get(b"max"), 1)
            for c in range(lo, min(hi, 16_384) + 1):
                out[c] = to_int(a[b"style"], 0)
    return out


class Template:
    """Per column: the style attribute a value cell takes, and the one an empty cell needs."""

    def __init__(self, col: dict[int, int], cell: dict[int, int], styles: Styles):
        self.col, self.cell, self.styles = col, cell, styles

    def style(self, c: int) -> int:
        return self.cell.get(c, self.col.get(c, 0))

    def empty_attr(self, c: int) -> str:
        # An absent cell shows its column's style; write an empty cell only to keep a different one.
        s = self.cell.get(c)
        return f' s="{s}"' if s is not None and s != self.col.get(c, 0) else ""


def edit_row(el: bytes | None, number: int, values: dict[int, object], col_styles: dict[int, int],
              styles: Styles, date1904: bool, prefix: bytes, lang) -> tuple[bytes, bool]:
    """Return a row element with the given cells set (and whether a replaced cell held a formula)."""
    if el is None:
        start, cells = b"<" + prefix + f'row r="{number}">'.encode(), []
    else:
        gt = el.find(b">")
        start = el[:gt + 1]
        if start.endswith(b"/>"):
            start = start[:-2].rstrip() + b">"
        start = re.sub(rb'\sspans\s*=\s*"[^"]*"', b"", start)  # a hint only; stale once cells change
        cells = row_cells(el)
    had_formula = False
    by_col = {c: (attrs, xml) for c, attrs, xml in cells}
    for c, value in values.items():
        if c in by_col:
            attrs, xml = by_col[c]
            had_formula |= _FORMULA.search(xml) is not None
            if _SHARED_MASTER.search(xml):
                raise InvalidInput(say(lang, f"{where(lang, number, c)} 是其他单元格共用公式的来源，不能直接覆盖；请在 Excel 中修改",
                                       f"{where(lang, number, c)} holds a formula other cells share; change it in Excel"))
            s = to_int(attrs.get(b"s"), 0)
        else:
            s = col_styles.get(c, 0)
        by_col[c] = ({}, cell_xml(f"{col_letters(c)}{number}", value, s, styles, date1904, lang, number, c).encode("utf-8"))
    body = b"".join(xml for _, (_, xml) in sorted(by_col.items()))
    return start + with_prefix(body, prefix) + b"</" + prefix + b"row>", had_formula


_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?f[\s/>]")
_SHARED_MASTER = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?f\b(?=[^>]*\st=[\"']shared[\"'])(?=[^>]*\sref=)")
_OUR_TAGS = re.compile(rb"<(/?)(row|c|v|is|t)\b")


def with_prefix(xml: bytes, prefix: bytes) -> bytes:
    """Return cell XML this package wrote (unprefixed) with a prefixed sheet's prefix on its elements.

    Text in it is escaped, so every ``<`` starts one of our own tags.
    """
    if not prefix:
        return xml
    return _OUR_TAGS.sub(lambda m: b"<" + m.group(1) + prefix + m.group(2), xml)


_DIMENSION_REF = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?dimension\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")")


def set_dimension(head: bytes, cols: int, rows: int) -> bytes:
    ref = b"A1" if cols <= 1 and rows <= 1 else f"A1:{col_letters(max(cols, 1))}{max(rows, 1)}".encode()
    return _DIMENSION_REF.sub(lambda m: m.group(1) + ref + m.group(3), head, count=1)


_SQREF_ATTR = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?(?:conditionalFormatting|dataValidation)\b[^>]*?\ssqref\s*=\s*\")"
                         rb"([^\"]*)(\")")
_SQREF_ELEMENT = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?sqref>)([^<]*)(</)")
AUTOFILTER_REF = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?autoFilter\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")")


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


def extend_tail(tail: bytes, start_row: int, old_end: int, new_end: int) -> bytes:
    def sqref(m: re.Match) -> bytes:
        return m.group(1) + _extend_ranges(m.group(2).decode("ascii", "replace"), old_end, new_end).encode() + m.group(3)

    def autofilter(m: re.Match) -> bytes:
        return m.group(1) + resize_ref(m.group(2).decode("ascii", "replace"), start_row, new_end, 1).encode() + m.group(3)

    tail = _SQREF_ATTR.sub(sqref, tail)
    tail = _SQREF_ELEMENT.sub(sqref, tail)
    return AUTOFILTER_REF.sub(autofilter, tail)


def resize_ref(ref: str, start_row: int, new_last: int, header_rows: int) -> str:
    """Return a table/autofilter ref whose header sits just above start_row, ending at new_last."""
    a, _, b = ref.partition(":")
    first, last = parse_ref(a), parse_ref(b)
    if not (first and last) or first[0] + header_rows != start_row:
        return ref  # not on the replaced rows
    bottom = max(new_last, first[0] + header_rows)  # a table keeps at least one data row
    return f"{col_letters(first[1])}{first[0]}:{col_letters(last[1])}{bottom}"


_TABLE_TAG = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?table\b[^>]*>")


def sheet_tables(pkg: Package, sheet: Sheet) -> list[tuple[str, str, int]]:
    """(name, ref, header row count) of each table (ListObject) on the sheet."""
    out = []
    for _, typ, target in pkg.rels(sheet.part):
        if not typ.endswith("/table") or pkg.info(target) is None:
            continue
        m = _TABLE_TAG.search(pkg.read(target))
        if m:
            a = tag_attrs(m.group(0))
            out.append((a.get(b"name", b"").decode("utf-8", "replace"), a.get(b"ref", b"").decode("ascii", "replace"),
                        to_int(a.get(b"headerRowCount"), 1)))
    return out


def table_bottom(pkg: Package, sheet: Sheet, start_row: int) -> int | None:
    """The last row of the sheet's table whose data starts at start_row (None: no such table)."""
    for _name, ref, header_rows in sheet_tables(pkg, sheet):
        first, _, last = ref.partition(":")
        top, bottom = parse_ref(first), parse_ref(last)
        if top and bottom and top[0] + header_rows == start_row:
            return bottom[0]
    return None


def resize_tables(pkg: Package, sheet: Sheet, start_row: int, new_last: int, lang, *,
                  grow_only: bool = False) -> dict[str, bytes]:
    """Return the new bytes of each table on the sheet whose rows are being replaced.

    :param grow_only: rows are being added under the data: a table already reaching new_last
        keeps its range (it never shrinks).
    """
    out = {}
    for _, typ, target in pkg.rels(sheet.part):
        if not typ.endswith("/table") or pkg.info(target) is None:
            continue
        data = pkg.read(target)
        m = _TABLE_TAG.search(data)
        if not m:
            continue
        a = tag_attrs(m.group(0))
        header_rows = to_int(a.get(b"headerRowCount"), 1)
        ref = a.get(b"ref", b"").decode("ascii", "replace")
        first = parse_ref(ref.partition(":")[0])
        if not first or first[0] + header_rows != start_row:
            continue  # not on the replaced rows
        if to_int(a.get(b"totalsRowCount"), 0) > 0:
            raise InvalidInput(say(lang, f"工作表“{sheet.name}”的表格“{a.get(b'name', b'').decode()}”有汇总行，"
                                         "不能整体替换数据行；请先在 Excel 中关闭汇总行",
                                   f"the table {a.get(b'name', b'').decode()!r} on {sheet.name!r} has a totals row; "
                                   "turn it off in Excel before its rows are replaced"))
        bottom_now = parse_ref(ref.partition(":")[2])
        if grow_only and bottom_now and bottom_now[0] >= new_last:
            continue
        new_ref = resize_ref(ref, start_row, new_last, header_rows)
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

        data = AUTOFILTER_REF.sub(refit, data)
        data = re.sub(rb"(<(?:[A-Za-z_][\w.\-]*:)?sortState\b[^>]*?\sref\s*=\s*\")([^\"]*)(\")", refit, data)
        out[pkg.info(target).filename] = data
    return out


def drop_calc_chain(pkg: Package, changes: dict) -> set[str]:
    """Return the parts to drop so Excel rebuilds its calculation chain (formulas were removed)."""
    if not pkg.calc_chain:
        return set()
    part = pkg.calc_chain
    folder, base = os.path.split(pkg.workbook_part)
    rels_part = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
    rels = pkg.read(rels_part)

    def keep(m: re.Match) -> bytes:
        target = tag_attrs(m.group(0)).get(b"Target", b"").decode()
        return b"" if resolve_target(folder, target) == part else m.group(0)

    changes[rels_part] = re.sub(rb"<Relationship\b[^>]*?calcChain[^>]*?/>", keep, rels)
    types = pkg.read("[Content_Types].xml")
    changes["[Content_Types].xml"] = re.sub(rb'<Override\b[^>]*?PartName="/' + re.escape(part.encode()) + rb'"[^>]*/>',
                                            b"", types)
    return {part}
