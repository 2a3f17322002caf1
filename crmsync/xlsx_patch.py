"""Sparse edits of a worksheet part in one pass: a few cells' values and styles, tail elements.

Validation touches 1–2 % of a 100,000-row sheet: parsing every row to change a few would cost
seconds.  ``patch_sheet`` finds the rows it must change with one regex pass over large buffers
(``<row r="N"`` — how Excel, openpyxl and this package write rows) and copies everything between
them as it is; only the rows with edits are parsed and rewritten.  A sheet written any other way
(rows without ``r``, out of order, comments in ``<sheetData>``) takes the exact row-by-row path of
``SheetStream`` instead, with the same result.  A large sheet that was read has usually been
inflated and indexed already (``SheetText``, in a worker thread while calamine parsed it): then
its edited rows are found by their index and the part is written from memory, or not at all
when no row changed.

An edit of a cell is a value (``KEEP`` leaves the value) and a style operation (a function of the
cell's style and its column's style, or None); a row left unchanged keeps its bytes.

The tail helpers put an element (``<hyperlinks>``, ``<legacyDrawing>``) into a worksheet's tail in
the order the schema requires, replacing one that is there.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache
import threading
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .errors import InvalidInput
from .xlsx_cells import cell_xml, where
from .xlsx_limits import col_letters, say
from .xlsx_safety import Package, Sheet
from .xlsx_sheet import (_FORMULA, _SHARED_MASTER, _SHEETDATA_OPEN, SheetStream, column_styles, row_cells,
                         set_dimension, to_int, with_prefix)

if TYPE_CHECKING:
    from .xlsx_styles import Styles
    from .xlsx_zip import Spool

KEEP = object()  # an edit that leaves the cell's value as it is

StyleOp = Callable[[int, int], int]  # (cell's style, column's style) → new style
Edit = tuple[object, StyleOp | None]  # (value or KEEP, style operation or None)

_S_ATTR = re.compile(rb'\ss\s*=\s*"[^"]*"')
_REGION = 8 << 20  # bytes of sheet XML looked at per pass


def set_style(cell: bytes, s: int) -> bytes:
    """Return a cell element with style s (no ``s`` attribute for 0), the rest as written."""
    gt = cell.find(b">")
    start = cell[:gt + 1]
    closing = start.endswith(b"/>")
    head = _S_ATTR.sub(b"", start[:-2] if closing else start[:-1])
    if s:
        head += b' s="%d"' % s
    return head + (b"/>" if closing else b">") + cell[gt + 1:]


def edit_cells(el: bytes | None, number: int, edits: Mapping[int, Edit], col_styles: dict[int, int], styles: Styles,
               date1904: bool, prefix: bytes, lang) -> tuple[bytes | None, bool]:
    """Return (the row element with the edits applied, whether a replaced cell held a formula).

    The element is None when a row that does not exist needs no cell (say, taking a mark off
    an empty cell); it is ``el`` itself when no cell changed.  Only the edited cells are parsed:
    the others are copied as written.
    """
    spans = _cell_spans(el, prefix) if el is not None else []
    if spans is None:  # cells written without references: parse the whole row
        return _edit_parsed(el, number, edits, col_styles, styles, date1904, prefix, lang)
    if el is None:
        start, body_at = b"<" + prefix + b'row r="%d">' % number, 0
        el_body = b""
    else:
        gt = el.find(b">")
        start = el[:gt + 1]
        if start.endswith(b"/>"):
            start, el_body = start[:-2].rstrip() + b">", b""
        else:
            el_body = el[gt + 1:el.rfind(b"</")]
        body_at = gt + 1
    by_col = {key: i for i, (key, _, _) in enumerate(spans)}
    keys = [key for key, _, _ in spans]
    splices: list[tuple[int, int, bytes]] = []  # (start, end, new bytes) in the body
    had_formula = False
    for c, (value, op) in sorted(edits.items()):
        letters = col_letters(c).encode()
        key = (len(letters), letters)
        i = by_col.get(key)
        cell = el_body[spans[i][1] - body_at:spans[i][2] - body_at] if i is not None else None
        col_s = col_styles.get(c, 0)
        s = _style_of(cell) if cell is not None else col_s
        new_s = op(s, col_s) if op is not None else s
        if value is KEEP:
            if new_s == s:
                continue
            new = set_style(cell, new_s) if cell is not None else b'<%sc r="%s%d" s="%d"/>' % (
                prefix, col_letters(c).encode(), number, new_s)
        else:
            if cell is not None:
                had_formula |= _FORMULA.search(cell) is not None
                if _SHARED_MASTER.search(cell):
                    raise InvalidInput(say(lang, f"{where(lang, number, c)} 是其他单元格共用公式的来源，不能直接覆盖；请在 Excel 中修改",
                                           f"{where(lang, number, c)} holds a formula other cells share; change it in Excel"))
            new = with_prefix(cell_xml(f"{col_letters(c)}{number}", value, new_s, styles, date1904, lang, number, c)
                              .encode("utf-8"), prefix)
        if i is not None:
            splices.append((spans[i][1] - body_at, spans[i][2] - body_at, new))
        else:
            k = bisect.bisect_left(keys, key)
            at = spans[k][1] - body_at if k < len(spans) else len(el_body)
            splices.append((at, at, new))
    if not splices:
        return el, False
    start = re.sub(rb'\sspans\s*=\s*"[^"]*"', b"", start)  # a hint only; stale once cells change
    out, cursor = [start], 0
    for a, b, new in sorted(splices, key=lambda x: (x[0], x[1])):
        out.append(el_body[cursor:a])
        out.append(new)
        cursor = b
    out.append(el_body[cursor:])
    body = b"".join(out[1:])
    if el is None and not body:
        return None, False
    return start + body + b"</" + prefix + b"row>", had_formula


@lru_cache(maxsize=32)  # one per namespace prefix (almost always none): bounded whatever files come
def _cell_at(prefix: bytes) -> re.Pattern:
    return re.compile(rb"<" + re.escape(prefix) + rb'c r="([A-Za-z]{1,3})\d+"[\s>/]')


_STYLE_ATTR = re.compile(rb'\ss\s*=\s*"\s*(\d+)\s*"')


def _cell_spans(el: bytes, prefix: bytes) -> list[tuple[tuple[int, bytes], int, int]] | None:
    """((letters' length, upper-case letters), start, end) of each cell of a row element — ordered
    as the columns are — or None when a cell has no plain reference or cells are out of order."""
    found = [(m.start(), m.group(1)) for m in _cell_at(prefix).finditer(el)]
    tag = b"<" + prefix + b"c"
    if len(found) != el.count(tag) and len(found) != (  # <charset>, <color>… of rich text also start so
            el.count(tag + b" ") + el.count(tag + b">") + el.count(tag + b"/") + el.count(tag + b"\t")
            + el.count(tag + b"\n") + el.count(tag + b"\r")):
        return None
    end_row = el.rfind(b"</")
    out = []
    for k, (at, letters) in enumerate(found):
        stop = found[k + 1][0] if k + 1 < len(found) else end_row
        seg_end = el.rfind(b">", at, stop) + 1
        letters = letters.upper()
        out.append(((len(letters), letters), at, seg_end))
    keys = [key for key, _, _ in out]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        return None  # cells out of order: the parsed path sorts them
    return out


def _style_of(cell: bytes) -> int:
    m = _STYLE_ATTR.search(cell, 0, cell.find(b">"))
    return int(m.group(1)) if m else 0


def _edit_parsed(el: bytes, number: int, edits: Mapping[int, Edit], col_styles: dict[int, int], styles: Styles,
                 date1904: bool, prefix: bytes, lang) -> tuple[bytes | None, bool]:
    """edit_cells for a row whose cells must be parsed one by one."""
    gt = el.find(b">")
    start = el[:gt + 1]
    if start.endswith(b"/>"):
        start = start[:-2].rstrip() + b">"
    by_col = {c: (attrs, xml) for c, attrs, xml in row_cells(el)}
    changed = had_formula = False
    for c, (value, op) in sorted(edits.items()):
        attrs, xml = by_col.get(c, (None, None))
        col_s = col_styles.get(c, 0)
        s = to_int(attrs.get(b"s"), 0) if attrs is not None else col_s
        new_s = op(s, col_s) if op is not None else s
        if value is KEEP:
            if new_s == s:
                continue
            new = set_style(xml, new_s) if xml is not None else f'<c r="{col_letters(c)}{number}" s="{new_s}"/>'.encode()
        else:
            if xml is not None:
                had_formula |= _FORMULA.search(xml) is not None
                if _SHARED_MASTER.search(xml):
                    raise InvalidInput(say(lang, f"{where(lang, number, c)} 是其他单元格共用公式的来源，不能直接覆盖；请在 Excel 中修改",
                                           f"{where(lang, number, c)} holds a formula other cells share; change it in Excel"))
            new = cell_xml(f"{col_letters(c)}{number}", value, new_s, styles, date1904, lang, number, c).encode("utf-8")
        by_col[c] = ({}, with_prefix(new, prefix) if xml is None or value is not KEEP else new)
        changed = True
    if not changed:
        return el, False
    start = re.sub(rb'\sspans\s*=\s*"[^"]*"', b"", start)
    body = b"".join(xml for _, (_, xml) in sorted(by_col.items()))
    return start + body + b"</" + prefix + b"row>", had_formula


class _Fallback(Exception):
    """The sheet is not written the way the fast path expects."""


class SheetText:
    """A worksheet part inflated by a worker thread, with the place and number of each row.

    Started when a sheet is read: python-calamine lets go of the GIL while it parses, so the
    part is inflated and indexed meanwhile on the other core, and a later ``patch_sheet`` only
    rewrites the edited rows and deflates.  The compressed bytes are read from the file here,
    in the caller's thread; the worker never touches the file.  A part that does not inflate to
    its declared size and CRC, or whose rows are not all written ``<row r="N"`` in order, is not
    used (``ready`` gives None) and the part is streamed from the file as usual.
    """

    def __init__(self, pkg: Package, part: str):
        self.part = part
        self.ok = False
        self._thread: threading.Thread | None = None
        try:
            info = pkg.info(part)
            raw = b"".join(pkg.raw_chunks(info))
        except Exception:  # the streaming path reads the part again and names the problem
            return
        self._thread = threading.Thread(target=self._work, args=(info, raw), name="crmsync-inflate", daemon=True)
        self._thread.start()

    def _work(self, info: zipfile.ZipInfo, raw: bytes) -> None:
        try:
            if info.compress_type == zipfile.ZIP_STORED:
                data = raw
            else:
                z = zlib.decompressobj(-15)
                data = z.decompress(raw, info.file_size + 1)  # never more than declared (and checked)
                if not z.eof:
                    return
            del raw
            if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
                return
            m = _SHEETDATA_OPEN.search(data)
            if m is None or m.group(2):
                return
            prefix = m.group(1) or b""
            close = data.find(b"</" + prefix + b"sheetData>", m.end())
            if close < 0 or data.find(b"<!--", m.end(), close) >= 0:
                return
            row_at = re.compile(rb"<" + re.escape(prefix) + rb'row(?: r="(\d+)")?[\s>/]')
            starts, numbers = [], []
            for r in row_at.finditer(data, m.end(), close):
                if not r.group(1):
                    return  # a row written otherwise: the exact path places it
                starts.append(r.start())
                numbers.append(int(r.group(1)))
            if any(a >= b for a, b in zip(numbers, numbers[1:])):
                return
            self.data, self.prefix, self.body, self.close = data, prefix, m.end(), close
            self.starts, self.numbers = starts, numbers
            self.ok = True
        except Exception:
            return

    def ready(self) -> SheetText | None:
        """Wait for the worker; return self when the part can be patched from memory, else None."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self if self.ok else None


def _patch_text(text: SheetText, pkg: Package, sheet: Sheet, edits, styles: Styles, spool: Spool, lang, tail_fn,
                extent) -> tuple[bool, bool]:
    """patch_sheet from an inflated, indexed part: every edit first, then one write (or none)."""
    data, prefix, starts, numbers = text.data, text.prefix, text.starts, text.numbers
    head = data[:text.body]
    col_styles = column_styles(head)
    new_head = _head(head, pkg, sheet, edits, extent)
    pieces: list[tuple[int, int, bytes]] = []
    formula = False
    n = len(numbers)
    for t in sorted(edits):
        i = bisect.bisect_left(numbers, t)
        if i < n and numbers[i] == t:
            pos = starts[i]
            k = data.rfind(b">", pos, starts[i + 1] if i + 1 < n else text.close) + 1
            el = data[pos:k]
            new, had = edit_cells(el, t, edits[t], col_styles, styles, pkg.date1904, prefix, lang)
            if new is not el:
                pieces.append((pos, k, new))
                formula |= had
        else:
            at = starts[i] if i < n else text.close
            new, _ = edit_cells(None, t, edits[t], col_styles, styles, pkg.date1904, prefix, lang)
            if new is not None:
                pieces.append((at, at, new))
    rest = data[text.close:]
    new_rest = tail_fn(rest, prefix) if tail_fn is not None else rest
    if not pieces and new_head == head and new_rest == rest:
        return False, False
    view = memoryview(data)
    spool.write(new_head)
    cursor = text.body
    for a, b, new in pieces:
        spool.write(view[cursor:a])
        spool.write(new)
        cursor = b
    spool.write(view[cursor:text.close])
    spool.write(new_rest)
    return True, formula


def _head(head: bytes, pkg: Package, sheet: Sheet, edits, extent) -> bytes:
    """The sheet's head with its ``<dimension>`` covering the edits."""
    scan = pkg.scans.get(sheet.part)
    new_rows = [r for r, row in edits.items() if any(v is not KEEP or op is not None for v, op in row.values())]
    max_row = max([scan.max_row if scan else 0, extent[0], *new_rows])
    max_col = max([scan.max_col if scan else 0, extent[1], *(c for row in edits.values() for c in row)])
    return set_dimension(head, max_col, max_row)


def patch_sheet(pkg: Package, sheet: Sheet, edits: Mapping[int, Mapping[int, Edit]], styles: Styles, spool: Spool,
                lang, tail: Callable[[bytes, bytes], bytes] | None = None,
                extent: tuple[int, int] = (0, 0), text: SheetText | None = None) -> tuple[bool, bool]:
    """Write the sheet with edits (row → column → edit) into spool; return (changed, removed a formula).

    :param tail: called with (the tail from ``</sheetData>`` on, the sheet's prefix); returns the new tail.
    :param extent: (rows, columns) the sheet must reach at least (the ``<dimension>``).
    :param text: the part already inflated (``SheetText``), when a read started that.
    When nothing changed, the part need not be replaced (and spool may hold nothing).
    """
    if text is not None and text.ready() is not None:
        return _patch_text(text, pkg, sheet, edits, styles, spool, lang, tail, extent)
    try:
        return _patch(pkg, sheet, edits, styles, spool, lang, tail, extent, fast=True)
    except _Fallback:
        spool.close()
        spool.__init__()  # a fresh spool: the fast pass had written part of the sheet
        return _patch(pkg, sheet, edits, styles, spool, lang, tail, extent, fast=False)


def _patch(pkg, sheet, edits, styles, spool, lang, tail_fn, extent, fast: bool) -> tuple[bool, bool]:
    stream = SheetStream(pkg.chunks(pkg.info(sheet.part)), pkg, sheet)
    head = stream.head()
    prefix = stream.prefix
    col_styles = column_styles(head)
    new_head = _head(head, pkg, sheet, edits, extent)
    changed = new_head != head
    spool.write(new_head)
    state = {"changed": changed, "formula": False}

    def edit(el: bytes | None, number: int) -> bytes | None:
        new, had = edit_cells(el, number, edits[number], col_styles, styles, pkg.date1904, prefix, lang)
        if new is not el:
            state["changed"] = True
            state["formula"] |= had
        return new

    targets = sorted(edits)
    rest = _fast_rows(stream, targets, edit, spool.write) if fast else _slow_rows(stream, targets, edit, spool.write)
    if tail_fn is not None:
        new_rest = tail_fn(rest, prefix)
        state["changed"] |= new_rest != rest
        rest = new_rest
    spool.write(rest)
    return state["changed"], state["formula"]


def _slow_rows(stream: SheetStream, targets: list[int], edit, write) -> bytes:
    pending = targets[::-1]  # popped from the end: smallest row first
    batch: list[bytes] = []
    for number, el in stream.rows():
        while pending and pending[-1] < number:
            new = edit(None, pending.pop())
            if new is not None:
                batch.append(new)
        if pending and pending[-1] == number:
            pending.pop()
            el = edit(el, number)
        batch.append(el)
        if len(batch) >= 5000:
            write(b"".join(batch))
            batch.clear()
    while pending:
        new = edit(None, pending.pop())
        if new is not None:
            batch.append(new)
    write(b"".join(batch))
    return stream.tail()


def _fast_rows(stream: SheetStream, targets: list[int], edit, write) -> bytes:
    """Copy the rows between the edited ones as they are; return the tail (from ``</sheetData>``)."""
    if stream._self_closed:
        return _slow_rows(stream, targets, edit, write)
    p = re.escape(stream.prefix)
    row_at = re.compile(rb"<" + p + rb'row(?: r="(\d+)")?[\s>/]')  # group empty: a row written otherwise
    any_row = re.compile(rb"<" + p + rb"row[\s>/]")
    close_data = b"</" + stream.prefix + b"sheetData>"
    buf = stream.buf[stream.pos:]
    chunks = stream._chunks
    ti, last = 0, 0
    eof = False
    while True:
        parts, size = [buf], len(buf)
        while not eof and size < _REGION and close_data not in parts[-1]:
            chunk = next(chunks, None)
            if chunk is None:
                eof = True
            else:
                parts.append(chunk)
                size += len(chunk)
        buf = b"".join(parts) if len(parts) > 1 else buf
        end = buf.find(close_data)
        final = end >= 0
        if not final:
            if eof:
                raise stream._bad("unterminated sheetData")
            end = _last_row_start(buf, any_row)
            if end <= 0:  # one row longer than the region: read on
                chunk = next(chunks, None)
                if chunk is None:
                    raise stream._bad("unterminated sheetData")
                buf += chunk
                continue
        region = memoryview(buf)[:end]
        found = row_at.findall(buf, 0, end)
        if b"" in found:
            raise _Fallback
        numbers = [int(n) for n in found]
        if (buf.find(b"<!--", 0, end) >= 0
                or (numbers and numbers[0] <= last) or any(a >= b for a, b in zip(numbers, numbers[1:]))):
            raise _Fallback
        cursor = 0
        find_from = 0
        top = numbers[-1] if numbers else last
        while ti < len(targets) and (targets[ti] <= top or final):
            t = targets[ti]
            ti += 1
            i = bisect.bisect_left(numbers, t)
            if i < len(numbers):
                pos = buf.find(b"<" + stream.prefix + b'row r="%d"' % numbers[i], find_from, end)
                find_from = pos
            else:
                pos = end
            write(region[cursor:pos])
            cursor = pos
            if i < len(numbers) and numbers[i] == t:
                nxt = buf.find(b"<" + stream.prefix + b'row r="%d"' % numbers[i + 1], pos, end) if i + 1 < len(numbers) else end
                whole = buf[pos:nxt]
                k = whole.rfind(b">") + 1
                new = edit(whole[:k], t)
                write(new)
                cursor = pos + k
            else:
                new = edit(None, t)
                if new is not None:
                    write(new)
        write(region[cursor:])
        last = top
        if final:
            return buf[end:] + b"".join(chunks)
        buf = buf[end:]


def _last_row_start(buf: bytes, any_row: re.Pattern) -> int:
    """Index of the last row start tag in buf that is followed by enough bytes to recognise it."""
    at = len(buf)
    while True:
        at = buf.rfind(b"<", 0, at)
        if at < 0:
            return -1
        if any_row.match(buf, at):
            return at


# ---- tail elements ---------------------------------------------------------------------------------

_TAIL_ORDER = ["sheetCalcPr", "sheetProtection", "protectedRanges", "scenarios", "autoFilter", "sortState",
               "dataConsolidate", "customSheetViews", "mergeCells", "phoneticPr", "conditionalFormatting",
               "dataValidations", "hyperlinks", "printOptions", "pageMargins", "pageSetup", "headerFooter",
               "rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing",
               "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
               "webPublishItems", "tableParts", "extLst"]
_RANK = {name: i for i, name in enumerate(_TAIL_ORDER)}
_TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)\b[^>]*?(/?)>|<!--.*?-->|<\?.*?\?>", re.S)


def tail_elements(tail: bytes) -> list[tuple[str, int, int]]:
    """Return (local name, start, end) of each top-level element after ``</sheetData>``."""
    out = []
    depth, start, name = 0, 0, ""
    begin = tail.find(b">") + 1  # past </sheetData>
    for m in _TAG.finditer(tail, begin):
        if m.group(2) is None:
            continue  # a comment or processing instruction
        closing, local, empty = m.group(1), m.group(2).decode("ascii", "replace"), m.group(3)
        if closing:
            depth -= 1
            if depth < 0:
                break  # </worksheet>
            if depth == 0:
                out.append((name, start, m.end()))
        elif empty:
            if depth == 0:
                out.append((local, m.start(), m.end()))
        else:
            if depth == 0:
                name, start = local, m.start()
            depth += 1
    return out


def _rank(tail: bytes, name: str, start: int, end: int) -> int | None:
    if name in _RANK:
        return _RANK[name]
    for m in _TAG.finditer(tail, start + 1, end):  # mc:AlternateContent: ranked by what it wraps
        if m.group(2) and m.group(2).decode("ascii", "replace") in _RANK:
            return _RANK[m.group(2).decode("ascii", "replace")]
    return None


def find_tail_element(tail: bytes, name: str) -> bytes | None:
    for local, start, end in tail_elements(tail):
        if local == name:
            return tail[start:end]
    return None


def set_tail_element(tail: bytes, name: str, element: bytes | None) -> bytes:
    """Return tail with its top-level ``name`` element replaced by element (None: removed), or
    element inserted where the schema puts it."""
    found = tail_elements(tail)
    for local, start, end in found:
        if local == name:
            return tail[:start] + (element or b"") + tail[end:]
    if element is None:
        return tail
    mine = _RANK[name]
    for local, start, end in found:
        rank = _rank(tail, local, start, end)
        if rank is not None and rank > mine:
            return tail[:start] + element + tail[start:]
    close = tail.rfind(b"</")
    return tail[:close] + element + tail[close:]


__all__ = ["KEEP", "SheetText", "edit_cells", "find_tail_element", "patch_sheet", "set_style", "set_tail_element",
           "tail_elements"]
