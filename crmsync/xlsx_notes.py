"""Cell notes (Excel's legacy comments) of a worksheet: read them, and set or remove some.

A note is two parts Excel keeps in step: the text in ``xl/commentsN.xml`` (a ``<comment ref="G5">``
per cell, with the authors list) and a hidden text-box shape in a VML drawing
(``xl/drawings/vmlDrawingN.vml``: ``<v:shape>`` whose ``<x:ClientData ObjectType="Note">`` names the
cell's 0-based ``<x:Row>`` and ``<x:Column>``).  The sheet points at the comments part through a
relationship of type ``…/comments`` and at the drawing through ``<legacyDrawing r:id>`` plus a
relationship of type ``…/vmlDrawing``; ``[Content_Types].xml`` declares the comments part (an
Override) and the ``vml`` extension (a Default).

``NotesEdit`` changes only the notes it is told to: every other comment element is kept as
written (threaded-comment fallbacks, people's rich text), every other shape too (buttons, other
notes).  New parts are named as Excel names them and shape ids come from id blocks no other
drawing of the workbook uses.  Parts are edited as text, never re-serialised.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping

from .xlsx_cells import escape_text
from .xlsx_limits import col_letters, parse_ref
from .xlsx_safety import Package, Sheet
from .xlsx_sheet import tag_attrs

COMMENTS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments"
VML_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/vmlDrawing"
COMMENTS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
VML_TYPE = "application/vnd.openxmlformats-officedocument.vmlDrawing"
RELS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_V, _NS_O, _NS_X = "urn:schemas-microsoft-com:vml", "urn:schemas-microsoft-com:office:office", \
    "urn:schemas-microsoft-com:office:excel"
AUTHOR = "crmsync"

Cell = tuple[int, int]
_P = rb"(?:[A-Za-z_][\w.\-]*:)?"
_XESC = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _element(name: bytes, prefix: bytes = _P) -> re.Pattern:
    """A pattern for one element (self-closed or with content, not nested in itself)."""
    return re.compile(rb"<" + prefix + name + rb"\b[^>]*?(?:/>|>.*?</" + prefix + name + rb">)", re.S)


_COMMENT = _element(b"comment")
_AUTHORS = _element(b"authors")
_AUTHOR = re.compile(rb"<" + _P + rb"author\b[^>]*?(?:/>|>(.*?)</" + _P + rb"author>)", re.S)
_COMMENT_LIST = _element(b"commentList")
_TEXT_RUN = re.compile(rb"<" + _P + rb"t\b[^>]*?(?:/>|>(.*?)</" + _P + rb"t>)", re.S)
_PHONETIC = _element(b"rPh")


def _xml_text(raw: bytes) -> str:
    """Element text as written in XML (entities, and Excel's _xHHHH_ escapes) to the string it holds."""
    text = html.unescape(raw.decode("utf-8", "replace"))
    if "_x" in text:
        text = _XESC.sub(lambda m: chr(int(m.group(1), 16)), text.replace("_x005F_", "\0")).replace("\0", "_")
    return text


def comment_text(element: bytes) -> str:
    """The plain text of a ``<comment>`` element: every run of its ``<text>``, phonetic hints left out."""
    body = _PHONETIC.sub(b"", element)
    return "".join(_xml_text(m.group(1) or b"") for m in _TEXT_RUN.finditer(body))


class Comments:
    """A comments part, split into the bytes around its authors and comment list, and its comments."""

    def __init__(self, data: bytes | None):
        if data is None:
            data = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<comments xmlns="' + _MAIN_NS.encode()
                    + b'"><authors></authors><commentList></commentList></comments>')
        self.data = data
        root = re.search(rb"<(" + _P + rb")comments\b", data)
        self.prefix = root.group(1) if root else b""
        self.authors: list[str] = []
        if m := _AUTHORS.search(data):
            self.authors = [_xml_text(a.group(1) or b"") for a in _AUTHOR.finditer(m.group(0))]
        self.items: dict[Cell, tuple[str, bytes]] = {}  # cell → (text, element as written)
        self.order: list[Cell] = []
        if m := _COMMENT_LIST.search(data):
            for c in _COMMENT.finditer(m.group(0)):
                end = c.group(0).find(b">")
                ref = tag_attrs(c.group(0)[:end]).get(b"ref", b"").decode("ascii", "replace")
                cell = parse_ref(ref.split(":")[0]) if ref else None
                if cell is None or cell in self.items:
                    cell = (-len(self.order) - 1, 0)  # unreadable or repeated: kept as is, never matched
                self.items[cell] = (comment_text(c.group(0)), c.group(0))
                self.order.append(cell)

    def texts(self) -> dict[Cell, str]:
        return {cell: text for cell, (text, _) in self.items.items() if cell[0] > 0}

    def set(self, cell: Cell, text: str) -> None:
        if AUTHOR not in self.authors:
            self.authors.append(AUTHOR)
            self.new_author = True
        p = self.prefix
        body = escape_text(text)
        element = (b'<%scomment ref="%s" authorId="%d"><%stext><%st xml:space="preserve">%s</%st></%stext></%scomment>'
                   % (p, f"{col_letters(cell[1])}{cell[0]}".encode(), self.authors.index(AUTHOR), p, p,
                      body.encode("utf-8"), p, p, p))
        if cell not in self.items:
            self.order.append(cell)
        self.items[cell] = (text, element)

    def remove(self, cell: Cell) -> None:
        if self.items.pop(cell, None) is not None:
            self.order.remove(cell)

    new_author = False

    def to_bytes(self) -> bytes:
        p = self.prefix
        data = self.data
        if self.new_author:  # appended to the authors as written, so every authorId stays right
            author = b"<%sauthor>%s</%sauthor>" % (p, escape_text(AUTHOR).encode("utf-8"), p)
            m = _AUTHORS.search(data)
            if m is None:
                root = re.search(rb"<" + _P + rb"comments\b[^>]*>", data)
                data = data[:root.end()] + b"<%sauthors>%s</%sauthors>" % (p, author, p) + data[root.end():]
            elif m.group(0).endswith(b"/>"):
                data = data[:m.start()] + b"<%sauthors>%s</%sauthors>" % (p, author, p) + data[m.end():]
            else:
                close = m.group(0).rfind(b"</")
                data = data[:m.start() + close] + author + data[m.start() + close:]
        # Excel lists comments row by row; elements it wrote stay byte for byte as they were.
        cells = sorted(self.order, key=lambda c: (c[0] <= 0, c))
        listing = b"<%scommentList>%s</%scommentList>" % (p, b"".join(self.items[c][1] for c in cells), p)
        m = _COMMENT_LIST.search(data)
        if m:
            return data[:m.start()] + listing + data[m.end():]
        close = data.rfind(b"</")
        return data[:close] + listing + data[close:]


class ContentTypes:
    """``[Content_Types].xml`` with Overrides and Defaults added only where missing."""

    def __init__(self, data: bytes):
        self.data = data
        self.changed = False

    def override(self, part: str, content_type: str) -> None:
        name = ("/" + part).encode("utf-8")
        if re.search(rb'<' + _P + rb'Override\b[^>]*PartName\s*=\s*"' + re.escape(name) + rb'"', self.data, re.I):
            return
        self._add(b'<Override PartName="%s" ContentType="%s"/>' % (name, content_type.encode()))

    def default(self, extension: str, content_type: str) -> None:
        if re.search(rb'<' + _P + rb'Default\b[^>]*Extension\s*=\s*"' + re.escape(extension.encode()) + rb'"',
                     self.data, re.I):
            return
        element = b'<Default Extension="%s" ContentType="%s"/>' % (extension.encode(), content_type.encode())
        first = re.search(rb"<" + _P + rb"Override\b", self.data)  # Defaults first, as Excel writes them
        self._add(element, first.start() if first else None)

    def _add(self, element: bytes, at: int | None = None) -> None:
        at = self.data.rfind(b"</") if at is None else at
        self.data = self.data[:at] + element + self.data[at:]
        self.changed = True


def rels_part_of(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


def add_relationship(data: bytes | None, typ: str, target: str) -> tuple[bytes, str]:
    """Return a rels part with a new relationship (a new part when data is None) and the new id."""
    if data is None:
        data = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="'
                + _REL_NS.encode() + b'"></Relationships>')
    taken = set(re.findall(rb'\bId\s*=\s*"([^"]*)"', data))
    n = 1
    while b"rId%d" % n in taken:
        n += 1
    rid = f"rId{n}"
    element = f'<Relationship Id="{rid}" Type="{typ}" Target="{html.escape(target)}"/>'.encode("utf-8")
    close = data.rfind(b"</")
    return data[:close] + element + data[close:], rid


# ---- the VML drawing ----------------------------------------------------------------------------------

_SHAPETYPE = (b'<{o}shapelayout {v}ext="edit"><{o}idmap {v}ext="edit" data="{blocks}"/></{o}shapelayout>'
              b'<{v}shapetype id="_x0000_t202" coordsize="21600,21600" {o}spt="202" path="m,l,21600r21600,l21600,xe">'
              b'<{v}stroke joinstyle="miter"/><{v}path gradientshapeok="t" {o}connecttype="rect"/></{v}shapetype>')


def _prefixes(root_tag: bytes) -> dict[str, bytes]:
    """Namespace URI → prefix (with its colon) declared on the VML root."""
    out = {}
    for m in re.finditer(rb'xmlns:([\w.\-]+)\s*=\s*["\']([^"\']*)["\']', root_tag):
        out.setdefault(m.group(2).decode(), m.group(1) + b":")
    return out


class Drawing:
    """A VML drawing: its note shapes by cell, new shapes appended, ids from its own id blocks."""

    def __init__(self, data: bytes | None, used_blocks: Callable[[], set[int]]):
        self.used_blocks = used_blocks
        self.new = data is None
        if data is None:
            data = (f'<xml xmlns:v="{_NS_V}" xmlns:o="{_NS_O}" xmlns:x="{_NS_X}"></xml>').encode()
        self.data = data
        root = re.search(rb"<xml\b[^>]*>", data)
        self.root = root
        ns = _prefixes(root.group(0)) if root else {}
        self.declare = b""
        for uri, want in ((_NS_V, b"v"), (_NS_O, b"o"), (_NS_X, b"x")):
            if uri not in ns:  # our shapes need it: declare it on the root
                name = want
                while any(p == name + b":" for p in ns.values()):
                    name += b"_"
                ns[uri] = name + b":"
                self.declare += b' xmlns:%s="%s"' % (name, uri.encode())
        self.v, self.o, self.x = ns[_NS_V], ns[_NS_O], ns[_NS_X]
        self.shape_re = _element(b"shape", re.escape(self.v))
        self.ids = {int(i) for i in re.findall(rb'\bid\s*=\s*"_x0000_s(\d+)"', data)}
        m = re.search(rb'<' + re.escape(self.o) + rb'idmap\b[^>]*\bdata\s*=\s*"([^"]*)"', data)
        self.blocks = [int(b) for b in re.findall(rb"\d+", m.group(1))] if m else []
        self.removed: set[Cell] = set()
        self.added: dict[Cell, bytes] = {}
        self._full, self._tried = 0, 0  # blocks known full; ids below _tried in the current block are taken
        self.note_cells = set(self._notes())

    def _notes(self) -> Iterable[Cell]:
        x = re.escape(self.x)
        for m in self.shape_re.finditer(self.data):
            shape = m.group(0)
            if not re.search(rb'ObjectType\s*=\s*"Note"', shape):
                continue
            row = re.search(rb"<" + x + rb"Row>\s*(\d+)\s*<", shape)
            col = re.search(rb"<" + x + rb"Column>\s*(\d+)\s*<", shape)
            if row and col:
                yield int(row.group(1)) + 1, int(col.group(1)) + 1

    def _next_id(self) -> int:
        for k, block in enumerate(self.blocks):
            if k < self._full:
                continue
            for i in range(max(block * 1024 + 1, self._tried), block * 1024 + 1024):
                if i not in self.ids:
                    self.ids.add(i)
                    self._tried = i + 1
                    return i
            self._full = k + 1
        used = self.used_blocks()
        block = 1
        while block in used or block in self.blocks:
            block += 1
        self.blocks.append(block)
        used.add(block)
        return self._next_id()

    def add(self, cell: Cell, text: str) -> None:
        """A hidden note box for cell, sized for text (unless the cell has a note shape already)."""
        if cell in self.note_cells and cell not in self.removed:
            return
        self.removed.discard(cell)
        row0, col0 = cell[0] - 1, cell[1] - 1
        lines = sum(max(1, -(-_width(line) // 28)) for line in text.split("\n"))
        height = max(45.0, 14.25 * lines + 6)
        v, o, x = self.v, self.o, self.x
        shape_id = self._next_id()
        top = max(row0 - 1, 0)
        anchor = f"{col0 + 1}, 15, {top}, 2, {col0 + 4}, 15, {top + max(3, int(height // 15) + 1)}, 4"
        self.added[cell] = (
            b'<%sshape id="_x0000_s%d" type="#_x0000_t202" style="position:absolute;margin-left:59.25pt;'
            b'margin-top:1.5pt;width:180pt;height:%spt;z-index:%d;visibility:hidden" fillcolor="#ffffe1" '
            b'%sinsetmode="auto"><%sfill color2="#ffffe1"/><%sshadow on="t" color="black" obscured="t"/>'
            b'<%spath %sconnecttype="none"/><%stextbox style="mso-direction-alt:auto"><div style="text-align:left">'
            b'</div></%stextbox><%sClientData ObjectType="Note"><%sMoveWithCells/><%sSizeWithCells/>'
            b'<%sAnchor>%s</%sAnchor><%sAutoFill>False</%sAutoFill><%sRow>%d</%sRow><%sColumn>%d</%sColumn>'
            b'</%sClientData></%sshape>'
            % (v, shape_id, f"{height:g}".encode(), len(self.ids), o, v, v, v, o, v, v, x, x, x, x,
               anchor.encode(), x, x, x, x, row0, x, x, col0, x, x, v))

    def remove(self, cell: Cell) -> None:
        self.added.pop(cell, None)
        if cell in self.note_cells:
            self.removed.add(cell)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def to_bytes(self) -> bytes:
        data, x = self.data, re.escape(self.x)

        def keep(m: re.Match) -> bytes:
            shape = m.group(0)
            if not re.search(rb'ObjectType\s*=\s*"Note"', shape):
                return shape
            row = re.search(rb"<" + x + rb"Row>\s*(\d+)\s*<", shape)
            col = re.search(rb"<" + x + rb"Column>\s*(\d+)\s*<", shape)
            if row and col and (int(row.group(1)) + 1, int(col.group(1)) + 1) in self.removed:
                return b""
            return shape

        if self.removed:
            data = self.shape_re.sub(keep, data)
        if not self.added:
            return data
        root = re.search(rb"<xml\b[^>]*>", data)
        at = root.end() - (2 if root.group(0).endswith(b"/>") else 1)
        if self.declare:
            data = data[:at] + self.declare + data[at:]
        if data[:root.end() + len(self.declare)].endswith(b"/>"):  # <xml .../>: give it content
            end = root.end() + len(self.declare)
            data = data[:end - 2] + b"></xml>" + data[end:]
        start = re.search(rb"<xml\b[^>]*>", data).end()
        head = _SHAPETYPE.replace(b"{o}", self.o).replace(b"{v}", self.v)
        layout, shapetype = head[:head.find(b"<" + self.v + b"shapetype")], head[head.find(b"<" + self.v + b"shapetype"):]
        blocks = ",".join(str(b) for b in self.blocks).encode()
        insert = b""
        idmap = re.search(rb'(<' + re.escape(self.o) + rb'idmap\b[^>]*\bdata\s*=\s*")([^"]*)(")', data)
        if idmap is None:
            insert += layout.replace(b"{blocks}", blocks)
        elif idmap.group(2) != blocks:
            data = data[:idmap.start(2)] + blocks + data[idmap.end(2):]
        if b'"_x0000_t202"' not in data:
            insert += shapetype
        data = data[:start] + insert + data[start:]
        close = data.rfind(b"</")
        return data[:close] + b"".join(self.added[c] for c in sorted(self.added)) + data[close:]


def _width(text: str) -> int:
    """Display width in half-width characters (a CJK character counts two)."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


# ---- one sheet's notes ------------------------------------------------------------------------------


def sheet_comments(pkg: Package, sheet: Sheet) -> tuple[str | None, Comments | None]:
    """Return (comments part, parsed comments) of a worksheet; (None, None) when it has none."""
    for _, typ, target in pkg.rels(sheet.part):
        if typ == COMMENTS_REL or typ.endswith("/comments"):
            if pkg.info(target) is None:
                return target, None
            return pkg.info(target).filename, Comments(pkg.read(target))
    return None, None


class NotesEdit:
    """The parts that change when notes of one sheet are set or removed.

    ``apply`` is given the sheet's ``<legacyDrawing r:id>`` (read from the sheet as it is
    rewritten) and returns the element the sheet must gain, if any; ``changes`` holds the parts.
    """

    def __init__(self, pkg: Package, sheet: Sheet, names: PartNames, types: ContentTypes):
        self.pkg, self.sheet, self.names, self.types = pkg, sheet, names, types
        self.part, self.comments = sheet_comments(pkg, sheet)
        self.changes: dict[str, bytes] = {}

    def existing(self) -> dict[Cell, str]:
        return self.comments.texts() if self.comments else {}

    def apply(self, notes: Mapping[Cell, str | None], legacy_rid: str | None,
              mine: Callable[[str], bool]) -> str | None:
        """Set (text) or remove (None) each note; a note ``mine`` rejects is never changed.

        Return the relationship id the sheet's ``<legacyDrawing>`` must get, or None when it has
        the right one already (or nothing changed).
        """
        pkg, sheet = self.pkg, self.sheet
        comments = self.comments or Comments(None)
        old = comments.texts()
        todo = {c: t for c, t in notes.items() if c not in old or mine(old[c])}  # people's notes: never
        todo = {c: t for c, t in todo.items() if (c in old if t is None else old.get(c) != t)}
        if not todo:
            return None
        rels_part = rels_part_of(sheet.part)
        rels = self.changes.get(rels_part) or (pkg.read(rels_part) if pkg.info(rels_part) else None)
        folder = posixpath.dirname(sheet.part)
        vml_part = None
        if legacy_rid is not None:
            for rid, typ, target in pkg.rels(sheet.part):
                if rid == legacy_rid:
                    vml_part = target
        drawing = Drawing(pkg.read(vml_part) if vml_part and pkg.info(vml_part) else None, self.names.vml_blocks)
        for cell, text in todo.items():
            if text is None:
                comments.remove(cell)
                drawing.remove(cell)
            else:
                comments.set(cell, text)
                drawing.add(cell, text)
        new_rid = None
        if self.part is None:
            self.part = self.names.new("xl/comments{}.xml")
            rels, _ = add_relationship(rels, COMMENTS_REL, _relative(folder, self.part))
        if vml_part is None:
            vml_part = self.names.new("xl/drawings/vmlDrawing{}.vml")
            rels, new_rid = add_relationship(rels, VML_REL, _relative(folder, vml_part))
        self.changes[self.part] = comments.to_bytes()
        if drawing.changed or drawing.new:
            self.changes[vml_part] = drawing.to_bytes()
        if rels is not None and (pkg.info(rels_part) is None or rels != pkg.read(rels_part)):
            self.changes[rels_part] = rels
        self.types.override(self.part, COMMENTS_TYPE)
        if not _has_vml_type(self.types, vml_part):
            self.types.default("vml", VML_TYPE)
        if pkg.info(rels_part) is None:
            self.types.default("rels", RELS_TYPE)
        return new_rid


def _has_vml_type(types: ContentTypes, part: str) -> bool:
    return re.search(rb'PartName\s*=\s*"/' + re.escape(part.encode()) + rb'"', types.data, re.I) is not None


def _relative(folder: str, part: str) -> str:
    return posixpath.relpath(part, folder) if folder else part


class PartNames:
    """New part names no part of the package (or an earlier new one) has; VML id blocks in use."""

    def __init__(self, pkg: Package):
        self.pkg = pkg
        self.taken = {info.filename.casefold() for info in pkg.entries}
        self._blocks: set[int] | None = None

    def new(self, pattern: str) -> str:
        n = 1
        while pattern.format(n).casefold() in self.taken:
            n += 1
        name = pattern.format(n)
        self.taken.add(name.casefold())
        return name

    def vml_blocks(self) -> set[int]:
        """Id blocks (``<o:idmap data>``) the workbook's drawings use; shared by every Drawing."""
        if self._blocks is None:
            self._blocks = set()
            for info in self.pkg.entries:
                if info.filename.casefold().endswith(".vml"):
                    data = self.pkg.read(info)
                    for m in re.finditer(rb'idmap\b[^>]*\bdata\s*=\s*"([^"]*)"', data):
                        self._blocks.update(int(b) for b in re.findall(rb"\d+", m.group(1)))
        return self._blocks


__all__ = ["COMMENTS_REL", "VML_REL", "Comments", "ContentTypes", "Drawing", "NotesEdit", "PartNames",
           "add_relationship", "comment_text", "sheet_comments"]
