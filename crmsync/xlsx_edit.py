"""One write of a workbook file carrying every change collected for it: cells, marks, report sheets.

``save_changes`` takes what a ``FileBook`` collected — per sheet: cell values, marks (a fill and a
note) to set or take off, a report to replace the sheet's rows with — and writes the file once:

- an entity sheet is patched sparsely (xlsx_patch): only rows with a changed cell are rewritten;
- a report sheet gets its rows replaced (xlsx_write.rows_part), its header row rewritten only
  where it differs, internal ``<hyperlinks>`` for its links (no relationship needed);
- notes go to the sheet's comments part and VML drawing (xlsx_notes), created when missing;
- styles.xml changes only when a fill or link variant of a format has to be added;
- ``[Content_Types].xml`` and the sheet's relationships only when a notes part is created.

Every other part is copied byte for byte and the file is replaced atomically (xlsx_zip).  When
nothing differs from what the file holds, nothing is written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .xlsx_limits import Limits, col_letters, parse_ref
from .xlsx_notes import ContentTypes, NotesEdit, PartNames, comment_text
from .xlsx_patch import KEEP, Edit, SheetText, edit_cells, find_tail_element, patch_sheet, set_tail_element
from .xlsx_safety import Package, Sheet
from .xlsx_sheet import extend_tail, resize_tables, row_cells, table_bottom, tag_attrs, to_int
from .xlsx_styles import Styles
from .xlsx_write import check_size, drop_calc_chain, rows_part
from .xlsx_zip import Spool, write_package

Cell = tuple[int, int]
_REL_NS = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass
class SheetChanges:
    """What is to change on one sheet."""

    cells: dict[Cell, object] = field(default_factory=dict)
    notes: dict[Cell, str | None] = field(default_factory=dict)  # a mark's note text; None takes the mark off
    report: tuple[list, list[list], dict[Cell, str]] | None = None  # header, rows, links (row index, col) → target
    grow_to: int = 0  # rows were added under the data: the table (and ranges that ran to its end) reach this row


def save_changes(pkg: Package, target: Path, sheets: Mapping[str, SheetChanges], *, fill: str,
                 is_ours: Callable[[str], bool], limits: Limits, lang: str | None,
                 texts: Mapping[str, SheetText] | None = None) -> bool:
    """Write pkg to target with every sheet's changes; return False when nothing differed (no write).

    A mark is a cell format with the solid ``fill`` plus a note; a note ``is_ours`` rejects (one
    a person wrote) is never changed, and its cell is neither filled nor cleared.
    :param texts: worksheet parts already inflated (part → SheetText), used instead of the file.
    """
    styles = Styles(pkg)
    names = PartNames(pkg)
    types = ContentTypes(pkg.read("[Content_Types].xml"))
    changes: dict[str, bytes | Spool] = {}
    removed = False
    try:
        for name, ch in sheets.items():
            sh = pkg.worksheet(name)
            text = (texts or {}).get(sh.part)
            removed |= _sheet(pkg, sh, ch, styles, names, types, changes, fill, is_ours, limits, lang, text)
        drop: set[str] = set()
        if removed and pkg.calc_chain:
            drop = _drop_calc_chain(pkg, changes, types)
        if styles.changed:
            changes[pkg.styles] = styles.to_bytes()
        if types.changed:
            changes["[Content_Types].xml"] = types.data
    except BaseException:
        for data in changes.values():
            if isinstance(data, Spool):
                data.close()
        raise
    if not changes:
        return False
    write_package(pkg, target, changes, drop)
    return True


def _sheet(pkg: Package, sh: Sheet, ch: SheetChanges, styles: Styles, names: PartNames, types: ContentTypes,
           changes: dict, fill: str, is_ours, limits: Limits, lang, text: SheetText | None) -> bool:
    """Add the parts one sheet's changes rewrite to changes; return whether formulas were removed."""
    notes = NotesEdit(pkg, sh, names, types) if ch.notes else None
    marks = dict(ch.notes)
    if notes is not None:
        people = {c for c, text in notes.existing().items() if not is_ours(text)}
        marks = {c: t for c, t in marks.items() if c not in people}

    def mark(s: int, col: int) -> int:
        return styles.fill_style(s, fill)

    def unmark(s: int, col: int) -> int:
        return styles.unfill_style(s, fill, prefer=col)

    ops = {cell: (mark if text is not None else unmark) for cell, text in marks.items()}

    def tail(rest: bytes, prefix: bytes) -> bytes:
        if notes is None:
            return rest
        legacy = find_tail_element(rest, "legacyDrawing")
        rid = None
        if legacy is not None and (m := re.search(rb'\s[\w.\-]+:id\s*=\s*"([^"]*)"', legacy)):
            rid = m.group(1).decode("utf-8", "replace")
        new_rid = notes.apply(marks, rid, is_ours)
        if new_rid is not None:
            element = b'<%slegacyDrawing xmlns:r="%s" r:id="%s"/>' % (prefix, _REL_NS, new_rid.encode())
            rest = set_tail_element(rest, "legacyDrawing", element)
        return rest

    spool = Spool()
    try:
        if ch.report is not None:
            changed, removed = True, _report(pkg, sh, ch, ops, styles, spool, tail, changes, limits, lang)
        else:
            edits: dict[int, dict[int, Edit]] = {}
            for (r, c), value in ch.cells.items():
                edits.setdefault(r, {})[c] = (value, ops.get((r, c)))
            for (r, c), op in ops.items():
                edits.setdefault(r, {}).setdefault(c, (KEEP, op))
            extent = (0, 0)
            if ch.grow_to:
                tail = _grown_tail(pkg, sh, ch.grow_to, tail, changes, lang)
                extent = (ch.grow_to, max((c for _r, c in ch.cells), default=0))
            changed, removed = patch_sheet(pkg, sh, edits, styles, spool, lang, tail, extent=extent, text=text)
    except BaseException:
        spool.close()
        raise
    if changed:
        changes[sh.part] = spool.finish()
    else:
        spool.close()
    if notes is not None:
        changes.update(notes.changes)
    return removed


def _report(pkg: Package, sh: Sheet, ch: SheetChanges, ops: dict, styles: Styles, spool: Spool, notes_tail,
            changes: dict, limits: Limits, lang) -> bool:
    """Write a report sheet: header in row 1 (kept where it matches), rows from 2, links."""
    header, rows, links = ch.report
    scan = pkg.scans.get(sh.part)
    start = 2 if scan and scan.max_row >= 1 else 1  # an empty sheet: the header is the first row written
    if start == 1:
        rows = [list(header)] + rows
        links = {(i + 1, c): t for (i, c), t in links.items()}
    check_size(rows, start, limits, lang)
    styled: dict[Cell, Callable[[int, int], int]] = {}
    for (r, c), op in ops.items():
        if r >= start and r - start < len(rows):
            styled[(r - start, c)] = op
    for (i, c) in links:
        styled[(i, c)] = _then(styled.get((i, c)), styles.link_style)

    def kept(number: int, el: bytes, prefix: bytes) -> bytes:
        if number != 1:
            return el
        edits = _header_edits(pkg, el, header)
        for (r, c), op in ops.items():
            if r == 1:
                edits[c] = (edits.get(c, (KEEP, None))[0], op)
        if not edits:
            return el
        cells = row_cells(el)
        col_styles, last = {}, 0
        for c in range(1, max([len(header), *edits]) + 1):  # a new header cell looks like the one before it
            found = next((to_int(a.get(b"s"), 0) for col, a, _ in cells if col == c), None)
            last = found if found is not None else last
            col_styles[c] = last
        new, _ = edit_cells(el, 1, edits, col_styles, styles, pkg.date1904, prefix, lang)
        return new if new is not None else el

    def tail(rest: bytes, prefix: bytes) -> bytes:
        rest = _links_tail(rest, prefix, rows, links, start)
        return notes_tail(rest, prefix)

    tables, removed = rows_part(pkg, sh, rows, start, styles, spool, lang, kept=kept, styled=styled, tail=tail)
    changes.update(tables)
    return removed


def _grown_tail(pkg: Package, sh: Sheet, grow_to: int, tail, changes: dict, lang) -> Callable[[bytes, bytes], bytes]:
    """Rows added under an entity sheet's data: its table grows to grow_to (into changes), and the
    validations and conditional formats that ran to the table's old end follow; then ``tail``."""
    old_end = table_bottom(pkg, sh, 2) or 1
    changes.update(resize_tables(pkg, sh, 2, grow_to, lang, grow_only=True))

    def grown(rest: bytes, prefix: bytes) -> bytes:
        return tail(extend_tail(rest, 2, old_end, grow_to), prefix)

    return grown


def _then(first: Callable[[int, int], int] | None, then: Callable[[int], int]) -> Callable[[int, int], int]:
    if first is None:
        return lambda s, col: then(s)
    return lambda s, col: then(first(s, col))


def _header_edits(pkg: Package, el: bytes, header: list) -> dict[int, Edit]:
    """The cells of the header row that must change to show header (none when it already does)."""
    texts = {c: _cell_text(pkg, attrs, xml) for c, attrs, xml in row_cells(el)}
    edits: dict[int, Edit] = {}
    for c, label in enumerate(header, start=1):
        want = "" if label is None else str(label)
        if texts.get(c, "") != want:
            edits[c] = (label, None)
    for c, text in texts.items():
        if c > len(header) and text:
            edits[c] = (None, None)
    return edits


def _cell_text(pkg: Package, attrs: dict[bytes, bytes], xml: bytes) -> str:
    t = attrs.get(b"t", b"n")
    if t == b"inlineStr":
        return comment_text(xml)
    v = re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?v>([^<]*)<", xml)
    if v is None:
        return ""
    if t == b"s":
        return _shared_strings(pkg)[to_int(v.group(1), -1)] if to_int(v.group(1), -1) < len(_shared_strings(pkg)) else ""
    text = html.unescape(v.group(1).decode("utf-8", "replace"))
    if t == b"n":
        try:
            number = float(text)
            return str(int(number)) if number.is_integer() else text
        except ValueError:
            return text
    return text


def _shared_strings(pkg: Package) -> list[str]:
    cached = getattr(pkg, "_crm_strings", None)
    if cached is None:
        cached = []
        if pkg.shared_strings:
            data = pkg.read(pkg.shared_strings, limit=1 << 30)
            si = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?si\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?si>)", re.S)
            cached = [comment_text(m.group(0)) for m in si.finditer(data)]
        pkg._crm_strings = cached
    return cached


_HYPERLINK = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?hyperlink\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?hyperlink>)", re.S)


def _links_tail(rest: bytes, prefix: bytes, rows: list[list], links: Mapping[Cell, str], start: int) -> bytes:
    """The tail with the report rows' hyperlinks: old ones on replaced rows gone, ours added."""
    old = find_tail_element(rest, "hyperlinks")
    kept = []
    if old is not None:
        for m in _HYPERLINK.finditer(old):
            ref = tag_attrs(m.group(0)[:m.group(0).find(b">")]).get(b"ref", b"").decode("ascii", "replace")
            pos = parse_ref(ref.split(":")[0])
            if pos is not None and pos[0] < start:
                kept.append(m.group(0))
    ours = []
    for (i, c), location in sorted(links.items()):
        value = rows[i][c - 1] if c - 1 < len(rows[i]) else None
        display = "" if value is None else (str(int(value)) if isinstance(value, float) and value.is_integer() else str(value))
        ours.append(b'<%shyperlink ref="%s" location="%s" display="%s"/>' % (
            prefix, f"{col_letters(c)}{start + i}".encode(), _attr(location), _attr(display)))
    if not kept and not ours:
        return set_tail_element(rest, "hyperlinks", None)
    return set_tail_element(rest, "hyperlinks", b"<%shyperlinks>%s</%shyperlinks>" % (prefix, b"".join(kept + ours), prefix))


def _attr(text: str) -> bytes:
    from .xlsx_cells import escape_text

    return escape_text(text).replace('"', "&quot;").encode("utf-8")


def _drop_calc_chain(pkg: Package, changes: dict, types: ContentTypes) -> set[str]:
    """drop_calc_chain, with its content-type edit made on the content types being built."""
    found: dict = {}
    drop = drop_calc_chain(pkg, found)
    for part, data in found.items():
        if part != "[Content_Types].xml":
            changes[part] = data
    part = pkg.calc_chain.encode()
    types.data = re.sub(rb'<Override\b[^>]*?PartName="/' + re.escape(part) + rb'"[^>]*/>', b"", types.data)
    types.changed = True
    return drop


__all__ = ["SheetChanges", "save_changes"]
