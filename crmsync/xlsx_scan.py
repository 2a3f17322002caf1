"""Streaming scans of a workbook's XML parts, within Limits, before any parser sees them.

Each part is inflated in bounded chunks (``Package.chunks``) and fed through ``_Stream``, which
cuts buffers just before a ``<`` so no tag is split, and refuses a ``<!DOCTYPE``/``<!ENTITY``
anywhere and any text run longer than Excel's cell limit.  On top of that:

- ``scan_sheet`` finds the extent of a worksheet as python-calamine would place its cells (the
  ``<dimension>`` claim, row tags, cell references — out-of-order ones included) and refuses a
  grid calamine could not allocate;
- ``scan_shared_strings`` refuses a table claiming far more strings than it holds (calamine
  reserves room for the claim first);
- ``scan_generic`` checks every other XML part for entities and encoding.

Every refusal is a ``_Refused`` that xlsx_safety turns into one message naming the file.
"""

from __future__ import annotations

import re
from functools import lru_cache
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.parsers import expat

from .xlsx_limits import MiB, Limits, _Refused, _size, col_letters, col_number, parse_ref

if TYPE_CHECKING:
    from .xlsx_safety import Package


@dataclass
class SheetScan:
    """What the streaming scan learned about one worksheet part."""

    max_row: int = 0
    max_col: int = 0
    dimension: str | None = None
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, "#N/A"), 1-based



_DOCTYPE = re.compile(rb"<!\s*(?i:doctype|entity)")
_ENTITY = re.compile(rb"&(?:#x[0-9A-Fa-f]+|#\d+|\w+);")
_MAX_ELEMENT = 8 * MiB  # one tag or text run; beyond it the part is abnormal
_SCAN_CHUNK = 4 * MiB  # inflated bytes per buffer: fewer, larger buffers scan faster


class _Stream:
    """Feeds an inflated part to a scanner as buffers that each end just before a '<'.

    So no tag is split between buffers, and a text run longer than Excel's cell limit is caught
    even when it spans many chunks.
    """

    def __init__(self, pkg: Package, info: zipfile.ZipInfo, sheet: str | None = None):
        self.pkg, self.info, self.sheet = pkg, info, sheet
        self.limit = pkg.limits.max_cell_chars

    def buffers(self, check_text: bool) -> Iterator[bytes]:
        rest = b""
        first = True
        for chunk in self.pkg.chunks(self.info, _SCAN_CHUNK):
            buf = rest + chunk if rest else chunk
            if first:
                check_encoding(buf, self.info.filename)
                first = False
            cut = buf.rfind(b"<")
            if cut <= 0:  # no tag starts in this chunk: one long element or text run so far
                rest = buf
                if len(rest) > _MAX_ELEMENT:
                    if check_text:
                        self._check_run(rest)
                    raise _Refused("long_element", part=self.info.filename, limit=_size(_MAX_ELEMENT))
                continue
            rest = buf[cut:]
            yield self._checked(buf[:cut], check_text)
        if rest:
            yield self._checked(rest, check_text)

    def _checked(self, buf: bytes, check_text: bool) -> bytes:
        if b"!" in buf and _DOCTYPE.search(buf):  # one byte: a memchr, where "<!" would crawl
            raise _Refused("doctype", part=self.info.filename)
        if check_text and len(buf) > self.limit:
            self._check_runs(buf)
        return buf

    def _check_runs(self, buf: bytes) -> None:
        # A run longer than the limit fills at least one whole window of half its length: look
        # only at windows holding no '<' (a normal sheet has none).
        step = max(self.limit // 2, 1)
        k = 0
        while k < len(buf):
            if buf.find(b"<", k, k + step) >= 0:
                k += step
                continue
            start = max(buf.rfind(b"<", 0, k), 0)
            end = buf.find(b"<", k + step)
            end = len(buf) if end < 0 else end
            self._check_run(buf[start:end])
            k = end

    def _check_run(self, run: bytes) -> None:
        gt = run.find(b">")
        if gt < 0:
            return  # all tag (a long attribute), no cell text
        text = run[gt + 1:]
        if len(text) <= self.limit:
            return  # a character is at least one byte
        chars = len(text.decode("utf-8", "replace"))
        chars -= sum(len(e) - 1 for e in _ENTITY.findall(text))
        if chars > self.limit:
            raise _Refused("long_text", n=chars, limit=self.limit, **_where(self.sheet, self.info.filename))


def _where(sheet: str | None, part: str) -> dict[str, str]:
    """Name where a text is: a worksheet by its name, else the part."""
    if sheet is not None:
        return {"where": f"工作表“{sheet}”", "where_en": f"the sheet {sheet}"}
    if part.casefold().endswith("sharedstrings.xml"):
        return {"where": "共享字符串表", "where_en": "the shared-string table"}
    return {"where": f"部件“{part}”", "where_en": f"the part {part}"}


def check_encoding(buf: bytes, part: str) -> None:
    """Refuse a part that is not UTF-8 XML (a BOM of UTF-16, or another declared encoding)."""
    if buf.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")):
        raise _Refused("encoding", part=part)
    buf = buf.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    if buf.startswith(b"<?xml"):
        decl = buf[:buf.find(b"?>") + 2]
        m = re.search(rb"encoding\s*=\s*[\"']([^\"']*)", decl)
        if m and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            raise _Refused("encoding", part=part)


def scan_generic(pkg: Package, info: zipfile.ZipInfo) -> None:
    """Check an XML part for entity declarations and its encoding."""
    for _ in _Stream(pkg, info).buffers(check_text=False):
        pass


_SST_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*:)?sst\b([^>]*)>")
_UNIQUE_COUNT = re.compile(rb"\suniqueCount\s*=\s*[\"']\s*(-?\d+)")


def scan_shared_strings(pkg: Package, info: zipfile.ZipInfo) -> None:
    """Check the shared-string table: text lengths, and the count it claims against what it holds."""
    claimed, actual, prefix = None, 0, None
    for buf in _Stream(pkg, info).buffers(check_text=True):
        if prefix is None and (m := _SST_TAG.search(buf)):
            prefix = m.group(1) or b""
            if c := _UNIQUE_COUNT.search(m.group(2)):
                claimed = int(c.group(1))
        tag = b"<" + (prefix or b"") + b"si"
        actual += buf.count(tag + b">") + buf.count(tag + b"/>") + buf.count(tag + b" ")
    # calamine reserves room for uniqueCount strings before it reads one: a lie aborts the process.
    if claimed is not None and claimed > actual + 1000:
        raise _Refused("sst_count", claimed=claimed, actual=actual)


_CELL_LAST = re.compile(rb'<c r="[A-Za-z]+(\d+)"')
_CELL_REF = re.compile(rb'<c r="([A-Za-z]+)(\d+)')
_CELL_ODD = re.compile(rb'<c(?=[\s/>])(?! r=")')  # a cell not written as <c r="A1"
_PREFIX_HINT = re.compile(rb":(?:c|row)[\s/>]")
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.\-]*:(?:c|row)[\s/>]")
_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?dimension\b[^>]*?\sref\s*=\s*[\"']([^\"']*)")
_ERROR_CELL = re.compile(rb'<c r="([A-Za-z]+)(\d+)"[^>]*?\st="e"[^>]*>(?:(?!</c>).)*?<v>([^<]*)</v>', re.S)


def scan_sheet(pkg: Package, info: zipfile.ZipInfo, label: str, collect_errors: bool) -> SheetScan:
    """Return the extent of a worksheet as calamine would place its cells, refusing what is over the limits.

    Fast path: every cell written as ``<c r="A1"`` (Excel, openpyxl, this package).  Anything
    else (cells without r, prefixed elements) is placed by a full parse that counts as calamine does.
    """
    limits = pkg.limits
    scan = SheetScan()
    seen_data = False
    for buf in _Stream(pkg, info, label).buffers(check_text=True):
        if not seen_data:
            if scan.dimension is None and (m := _DIMENSION.search(buf)):
                scan.dimension = m.group(1).decode("ascii", "replace")
                _check_dimension(scan.dimension, label, limits)
            seen_data = b"sheetData" in buf
        if _PREFIX_HINT.search(buf) and _PREFIXED.search(buf):
            return _scan_sheet_structured(pkg, info, label, collect_errors)
        # calamine places a cell with a reference there, whatever its row tag says: the grid is
        # the cells' extent.  Cells normally come in order, so the last one bounds this buffer;
        # only cells beyond it (or beyond the widest column so far) are looked at one by one.
        # The same pass finds a cell written without ``r="…"`` (then every cell is placed by a parse).
        top = scan.max_row
        last = buf.rfind(b'<c r="')
        if last >= 0 and (m := _CELL_LAST.match(buf, last)):
            top = max(top, int(m.group(1)))
        _check_extent(top, 1, label, limits)
        pos, hits = 0, 0
        while m := _beyond(scan.max_col, top).search(buf, pos):
            if m.end() - m.start() == 2:  # "<c" alone: a cell without a plain reference
                return _scan_sheet_structured(pkg, info, label, collect_errors)
            hits += 1
            if hits > _MAX_HITS:  # cells out of order: one pass over all of them instead
                if _CELL_ODD.search(buf, m.start()):
                    return _scan_sheet_structured(pkg, info, label, collect_errors)
                top, scan.max_col = _extent_of_all(buf, top, scan.max_col)
                _check_extent(top, scan.max_col, label, limits)
                break
            ref = _CELL_REF.match(buf, m.start())
            row, col = int(ref.group(2)), col_number(ref.group(1))
            _check_extent(row, col, label, limits)
            top, scan.max_col = max(top, row), max(scan.max_col, col)
            pos = m.end()
        scan.max_row = top
        if collect_errors and b' t="e"' in buf:
            for m in _ERROR_CELL.finditer(buf):
                scan.errors.append((int(m.group(2)), col_number(m.group(1)), m.group(3).decode("utf-8", "replace")))
    _check_grid(scan, label, limits)
    return scan


# Each cell found beyond the extent so far costs a new pattern; past this many in one buffer the
# cells are out of order (a normal sheet has one per new column), and one linear pass is cheaper.
_MAX_HITS = 128


def _extent_of_all(buf: bytes, max_row: int, max_col: int) -> tuple[int, int]:
    """Return the largest row and column of every ``<c r="...">`` in buf (and the ones given)."""
    refs = _CELL_REF.findall(buf)
    if refs:
        max_row = max(max_row, max(int(r) for _, r in refs))
        letters = max((c for c, _ in refs), key=lambda c: (len(c), c.upper()))
        max_col = max(max_col, col_number(letters))
    return max_row, max_col


def _check_extent(row: int, col: int, label: str, limits: Limits) -> None:
    if row > limits.max_rows or col > limits.max_cols:
        raise _Refused("cell_ref", sheet=label, row=row, col=col, max_rows=limits.max_rows, max_cols=limits.max_cols)


def _check_grid(scan: SheetScan, label: str, limits: Limits) -> None:
    if scan.max_row * scan.max_col > limits.max_cells:
        raise _Refused("grid", sheet=label, rows=scan.max_row, cols=scan.max_col, limit=limits.max_cells)


def _check_dimension(ref: str, label: str, limits: Limits) -> None:
    pos = parse_ref(ref.split(":")[-1])
    if pos is None:
        return  # calamine ignores a dimension it cannot read
    rows, cols = pos
    if rows > limits.max_rows or cols > limits.max_cols:
        raise _Refused("dimension", sheet=label, ref=ref, rows=rows, cols=cols, max_rows=limits.max_rows,
                       max_cols=limits.max_cols)


@lru_cache(maxsize=256)  # bounded: the key is each buffer's last row, new for nearly every sheet read
def _beyond(max_col: int, max_row: int) -> re.Pattern:
    """Return a pattern for a ``<c r="...">`` whose column is past max_col or whose row is past max_row,
    or (matching just ``<c``) a cell written without ``r="…"`` first — as ``_CELL_ODD`` finds."""
    return re.compile(rb'<c(?: r="(?>' + _letters_beyond(max_col) + rb"|[A-Za-z]+0*" + _digits_beyond(max_row)
                      + rb')|(?=[\s/>])(?! r="))')


def _digits_beyond(n: int) -> bytes:
    """Regex for a decimal number (without leading zeros) greater than n."""
    s = str(n)
    alts = [rb"[1-9]\d{%d,}" % len(s)]
    for i, ch in enumerate(s):
        if ch != "9":
            rest = len(s) - i - 1
            alts.append(s[:i].encode() + b"[%d-9]" % (int(ch) + 1) + (rb"\d{%d}" % rest if rest else b""))
    return b"(?:" + b"|".join(alts) + rb")(?!\d)"


def _letters_beyond(n: int) -> bytes:
    """Regex for column letters (either case) of a column greater than n."""
    if n <= 0:
        return rb"[A-Za-z]+(?=\d)"
    s = col_letters(n)
    alts = [rb"[A-Za-z]{%d,}" % (len(s) + 1)]
    for i, ch in enumerate(s):
        if ch != "Z":
            nxt = chr(ord(ch) + 1)
            head = "".join(f"[{c}{c.lower()}]" for c in s[:i])
            rest = len(s) - i - 1
            alts.append(f"{head}[{nxt}-Z{nxt.lower()}-z]{'[A-Za-z]{%d}' % rest if rest else ''}".encode())
    return b"(?:" + b"|".join(alts) + rb")(?=\d)"


def _scan_sheet_structured(pkg: Package, info: zipfile.ZipInfo, label: str, collect_errors: bool) -> SheetScan:
    """Place every row and cell as calamine does, for sheets the fast path cannot read."""
    limits = pkg.limits
    scan = SheetScan()
    # 0-based, as calamine counts: a row's r sets the row, each </row> moves to the next one,
    # a cell's r sets the column, each cell moves one column right.
    st = {"row": 0, "col": 0, "err": None, "in_v": False, "text": []}

    def start(name, attrs):
        tag = name.rsplit(":", 1)[-1]
        if tag == "c":
            r = attrs.get("r")
            if r is not None:
                pos = parse_ref(r)
                if pos is None:
                    raise _Refused("bad_ref", sheet=label)
                row, col = pos[0] - 1, pos[1] - 1
                st["col"] = col
            else:
                row, col = st["row"], st["col"]
            st["col"] += 1
            _check_extent(row + 1, col + 1, label, limits)
            scan.max_row, scan.max_col = max(scan.max_row, row + 1), max(scan.max_col, col + 1)
            st["err"] = (row + 1, col + 1) if collect_errors and attrs.get("t") == "e" else None
        elif tag == "row":
            r = attrs.get("r")
            if r is not None:
                if not r.strip().isdigit():
                    raise _Refused("bad_ref", sheet=label)
                st["row"] = int(r) - 1
                _check_extent(st["row"] + 1, 1, label, limits)
        elif tag == "v" and st["err"]:
            st["in_v"], st["text"] = True, []
        elif tag == "dimension" and scan.dimension is None:
            scan.dimension = attrs.get("ref", "")
            _check_dimension(scan.dimension, label, limits)

    def end(name):
        tag = name.rsplit(":", 1)[-1]
        if tag == "row":
            st["row"] += 1
            st["col"] = 0
        elif tag == "v" and st["in_v"]:
            st["in_v"] = False
            scan.errors.append((*st["err"], "".join(st["text"])))

    def chars(data):
        if st["in_v"]:
            st["text"].append(data)

    def doctype(*_):
        raise _Refused("doctype", part=info.filename)

    parser = expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler, parser.StartDoctypeDeclHandler = chars, doctype
    try:
        for buf in _Stream(pkg, info, label).buffers(check_text=True):
            parser.Parse(buf, False)
        parser.Parse(b"", True)
    except expat.ExpatError as e:
        raise _Refused("bad_xml", part=info.filename, detail=str(e)) from None
    _check_grid(scan, label, limits)
    return scan
