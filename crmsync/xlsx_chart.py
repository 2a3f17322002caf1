"""Native Excel charts put on a worksheet of an existing file, losslessly.

A chart in a workbook is three parts and three links: the chart (``xl/charts/chartN.xml``, DrawingML
chart XML whose series point at cell ranges), a drawing (``xl/drawings/drawingN.xml``) anchoring a
graphic frame per chart to cells, and the sheet's ``<drawing r:id>`` — with a relationship from the
sheet to the drawing, from the drawing to each chart, and a content type for each new part.

``write_charts`` puts a set of charts on a sheet: charts it put there before (their frames are
named ``crmsync:…``) are replaced, every other shape of the drawing is kept as written, and every
other part of the file is copied byte for byte (xlsx_zip.write_package, atomic).  The series carry
a cache of their values, so Excel and LibreOffice show them before any recalculation.

    write_charts("crm_workbook.xlsm", "仪表板", [Chart("funnel", "bar", "客户漏斗", ...)])
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from .xlsx_cells import escape_text
from .xlsx_limits import col_letters
from .xlsx_notes import ContentTypes, PartNames, add_relationship, rels_part_of
from .xlsx_patch import find_tail_element, set_tail_element
from .xlsx_safety import DEFAULT_LIMITS, Limits, Package, open_package
from .xlsx_zip import write_package

DRAWING_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/drawing"
CHART_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/chart"
DRAWING_TYPE = "application/vnd.openxmlformats-officedocument.drawing+xml"
CHART_TYPE = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_C_NS = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
_XDR_NS = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
NAME_PREFIX = "crmsync:"
PALETTE = ("4472C4", "ED7D31", "70AD47", "FFC000", "5B9BD5", "A5A5A5")


@dataclass
class Series:
    """One series: its name cell and its values, a column of rows first…last (1-based)."""

    name: str
    name_cell: tuple[int, int]  # (row, col) holding the series name
    col: int
    values: list[float]


@dataclass
class Chart:
    """A chart over a block of a sheet: categories in ``cat_col`` rows first…last, one or more series."""

    key: str  # the frame is named "crmsync:<key>"
    kind: str  # "bar" (horizontal), "column" or "line"
    title: str
    sheet: str
    first_row: int
    last_row: int
    cat_col: int
    categories: list[str]
    series: list[Series]
    anchor: tuple[int, int, int, int]  # (from col, from row, to col, to row), 0-based as DrawingML
    reverse: bool = False  # first category on top (funnels)
    number_format: str = "General"
    colors: tuple[str, ...] = field(default=PALETTE)


# ---- chart XML -------------------------------------------------------------------------------------

def _x(text: str) -> str:
    return escape_text(str(text))


def _ref(sheet: str, col: int, first: int, last: int | None = None) -> str:
    quoted = "'" + sheet.replace("'", "''") + "'"
    a = f"${col_letters(col)}${first}"
    return f"{quoted}!{a}" if last is None else f"{quoted}!{a}:${col_letters(col)}${last}"


def _str_cache(values: list[str]) -> str:
    pts = "".join(f'<c:pt idx="{i}"><c:v>{_x(v)}</c:v></c:pt>' for i, v in enumerate(values) if v not in (None, ""))
    return f'<c:strCache><c:ptCount val="{len(values)}"/>{pts}</c:strCache>'


def _num_cache(values: list, fmt: str) -> str:
    pts = "".join(f'<c:pt idx="{i}"><c:v>{float(v):g}</c:v></c:pt>' for i, v in enumerate(values) if v not in (None, ""))
    return f'<c:numCache><c:formatCode>{_x(fmt)}</c:formatCode><c:ptCount val="{len(values)}"/>{pts}</c:numCache>'


def _title(text: str, size: int = 1200) -> str:
    return (f'<c:title><c:tx><c:rich><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="{size}" b="1"/></a:pPr>'
            f'<a:r><a:rPr lang="zh-CN" sz="{size}" b="1"/><a:t>{_x(text)}</a:t></a:r></a:p></c:rich></c:tx>'
            '<c:overlay val="0"/></c:title>')


def chart_xml(chart: Chart) -> bytes:
    """The DrawingML chart part of one chart."""
    n = chart.last_row - chart.first_row + 1
    cats = (chart.categories + [""] * n)[:n]
    cat = (f'<c:cat><c:strRef><c:f>{_x(_ref(chart.sheet, chart.cat_col, chart.first_row, chart.last_row))}</c:f>'
           f'{_str_cache(cats)}</c:strRef></c:cat>')
    labels = ('<c:dLbls><c:spPr><a:noFill/><a:ln><a:noFill/></a:ln></c:spPr><c:txPr><a:bodyPr/><a:lstStyle/>'
              '<a:p><a:pPr><a:defRPr sz="900"/></a:pPr><a:endParaRPr lang="zh-CN"/></a:p></c:txPr>'
              '<c:showLegendKey val="0"/><c:showVal val="1"/><c:showCatName val="0"/><c:showSerName val="0"/>'
              '<c:showPercent val="0"/><c:showBubbleSize val="0"/></c:dLbls>')
    sers = []
    for i, s in enumerate(chart.series):
        color = chart.colors[i % len(chart.colors)]
        values = (list(s.values) + [None] * n)[:n]
        tx = (f'<c:tx><c:strRef><c:f>{_x(_ref(chart.sheet, s.name_cell[1], s.name_cell[0]))}</c:f>'
              f'{_str_cache([s.name])}</c:strRef></c:tx>')
        val = (f'<c:val><c:numRef><c:f>{_x(_ref(chart.sheet, s.col, chart.first_row, chart.last_row))}</c:f>'
               f'{_num_cache(values, chart.number_format)}</c:numRef></c:val>')
        if chart.kind == "line":
            sp = (f'<c:spPr><a:ln w="28575" cap="rnd"><a:solidFill><a:srgbClr val="{color}"/></a:solidFill>'
                  '<a:round/></a:ln></c:spPr>')
            marker = (f'<c:marker><c:symbol val="circle"/><c:size val="5"/><c:spPr><a:solidFill><a:srgbClr val="{color}"/>'
                      '</a:solidFill></c:spPr></c:marker>')
            sers.append(f'<c:ser><c:idx val="{i}"/><c:order val="{i}"/>{tx}{sp}{marker}{labels}{cat}{val}'
                        '<c:smooth val="0"/></c:ser>')
        else:
            sp = f'<c:spPr><a:solidFill><a:srgbClr val="{color}"/></a:solidFill></c:spPr>'
            sers.append(f'<c:ser><c:idx val="{i}"/><c:order val="{i}"/>{tx}{sp}<c:invertIfNegative val="0"/>'
                        f'{labels}{cat}{val}</c:ser>')
    ax_cat, ax_val = 500000 + 2 * _stable(chart.key), 500001 + 2 * _stable(chart.key)
    horizontal = chart.kind == "bar"
    if chart.kind == "line":
        plot = (f'<c:lineChart><c:grouping val="standard"/><c:varyColors val="0"/>{"".join(sers)}'
                f'<c:marker val="1"/><c:axId val="{ax_cat}"/><c:axId val="{ax_val}"/></c:lineChart>')
    else:
        plot = (f'<c:barChart><c:barDir val="{"bar" if horizontal else "col"}"/><c:grouping val="clustered"/>'
                f'<c:varyColors val="0"/>{"".join(sers)}<c:gapWidth val="60"/>'
                f'<c:axId val="{ax_cat}"/><c:axId val="{ax_val}"/></c:barChart>')
    reverse = chart.reverse and horizontal
    small = '<c:txPr><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="900"/></a:pPr><a:endParaRPr lang="zh-CN"/></a:p></c:txPr>'
    cat_ax = (f'<c:catAx><c:axId val="{ax_cat}"/><c:scaling><c:orientation val="{"maxMin" if reverse else "minMax"}"/>'
              f'</c:scaling><c:delete val="0"/><c:axPos val="{"l" if horizontal else "b"}"/>'
              '<c:numFmt formatCode="General" sourceLinked="0"/><c:majorTickMark val="none"/><c:minorTickMark val="none"/>'
              f'<c:tickLblPos val="nextTo"/>{small}<c:crossAx val="{ax_val}"/><c:crosses val="autoZero"/>'
              '<c:auto val="1"/><c:lblAlgn val="ctr"/><c:lblOffset val="100"/><c:noMultiLvlLbl val="0"/></c:catAx>')
    val_ax = (f'<c:valAx><c:axId val="{ax_val}"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
              f'<c:delete val="0"/><c:axPos val="{"b" if horizontal else "l"}"/>'
              '<c:majorGridlines><c:spPr><a:ln w="6350"><a:solidFill><a:srgbClr val="D9D9D9"/></a:solidFill></a:ln>'
              f'</c:spPr></c:majorGridlines><c:numFmt formatCode="{_x(chart.number_format)}" sourceLinked="0"/>'
              f'<c:majorTickMark val="out"/><c:minorTickMark val="none"/><c:tickLblPos val="nextTo"/>{small}'
              # reversed categories: the value axis crosses at the last one, so it stays at the bottom
              f'<c:crossAx val="{ax_cat}"/><c:crosses val="{"max" if reverse else "autoZero"}"/>'
              f'<c:crossBetween val="{"midCat" if chart.kind == "line" else "between"}"/></c:valAx>')
    legend = ('<c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend>' if len(chart.series) > 1 else "")
    xml = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           f'<c:chartSpace xmlns:c="{_C_NS}" xmlns:a="{_A_NS}" xmlns:r="{_R_NS}">'
           '<c:roundedCorners val="0"/>'
           f'<c:chart>{_title(chart.title)}<c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>{plot}{cat_ax}{val_ax}'
           f'</c:plotArea>{legend}<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart>'
           '<c:spPr><a:solidFill><a:srgbClr val="FFFFFF"/></a:solidFill><a:ln w="9525"><a:solidFill>'
           '<a:srgbClr val="D9D9D9"/></a:solidFill></a:ln></c:spPr>'
           '<c:txPr><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr><a:latin typeface="等线"/><a:ea typeface="等线"/>'
           '</a:defRPr></a:pPr><a:endParaRPr lang="zh-CN"/></a:p></c:txPr>'
           '</c:chartSpace>')
    return xml.encode("utf-8")


def _stable(key: str) -> int:
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(key)) % 10000


# ---- the drawing ---------------------------------------------------------------------------------

_ANCHOR = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(twoCellAnchor|oneCellAnchor|absoluteAnchor)\b.*?</(?:[A-Za-z_][\w.\-]*:)?\1>", re.S)
_CNVPR = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?cNvPr\b[^>]*>", re.S)


def _anchor(chart: Chart, shape_id: int, rid: str) -> bytes:
    c1, r1, c2, r2 = chart.anchor
    return (f'<xdr:twoCellAnchor editAs="oneCell">'
            f'<xdr:from><xdr:col>{c1}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r1}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>'
            f'<xdr:to><xdr:col>{c2}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r2}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>'
            f'<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="{shape_id}" name="{NAME_PREFIX}{_x(chart.key)}" '
            f'descr="{_x(chart.title)}"/><xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr>'
            '<xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/></xdr:xfrm>'
            f'<a:graphic><a:graphicData uri="{_C_NS}"><c:chart xmlns:c="{_C_NS}" xmlns:r="{_R_NS}" r:id="{rid}"/>'
            '</a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/></xdr:twoCellAnchor>').encode("utf-8")


def _new_drawing() -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xdr:wsDr xmlns:xdr="{_XDR_NS}" '
            f'xmlns:a="{_A_NS}"></xdr:wsDr>').encode("utf-8")


def _ours(anchor: bytes) -> bool:
    m = _CNVPR.search(anchor)
    return bool(m and re.search(rb'\bname\s*=\s*"' + re.escape(NAME_PREFIX.encode()) + rb'', m.group(0)))


def _chart_rid(anchor: bytes) -> str | None:
    m = re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?chart\b[^>]*?\b[\w.\-]+:id\s*=\s*\"([^\"]*)\"", anchor)
    return m.group(1).decode() if m else None


def _drop_rel(rels: bytes, rid: str) -> bytes:
    return re.sub(rb'<(?:[A-Za-z_][\w.\-]*:)?Relationship\b[^>]*\bId\s*=\s*"' + re.escape(rid.encode()) + rb'"[^>]*/>', b"", rels)


def chart_parts(pkg: Package, sheet_name: str, charts: list[Chart]) -> tuple[dict[str, bytes], set[str]]:
    """The parts to write (name → bytes) and to drop so that sheet shows charts (ours replaced)."""
    sh = pkg.worksheet(sheet_name)
    names = PartNames(pkg)
    types = ContentTypes(pkg.read("[Content_Types].xml"))
    changes: dict[str, bytes] = {}
    drop: set[str] = set()
    sheet_xml = pkg.read(sh.part, limit=64 << 20)
    sheet_rels_part = rels_part_of(sh.part)
    sheet_rels = pkg.read(sheet_rels_part) if pkg.info(sheet_rels_part) else None
    end = re.search(rb"</(?:[A-Za-z_][\w.\-]*:)?sheetData>|<(?:[A-Za-z_][\w.\-]*:)?sheetData\s*/>", sheet_xml)
    head, tail = sheet_xml[:end.start()], sheet_xml[end.start():]
    existing = find_tail_element(tail, "drawing")
    drawing_part = None
    if existing is not None:
        m = re.search(rb'\b[\w.\-]+:id\s*=\s*"([^"]*)"', existing)
        rid = m.group(1).decode() if m else None
        drawing_part = next((t for i, typ, t in pkg.rels(sh.part) if i == rid and typ == DRAWING_REL), None)
    if drawing_part is None:
        drawing_part = names.new("xl/drawings/drawing{}.xml")
        drawing = _new_drawing()
        drawing_rels = None
        sheet_rels, rid = add_relationship(sheet_rels, DRAWING_REL, "../drawings/" + posixpath.basename(drawing_part))
        changes[sheet_rels_part] = sheet_rels
        root = re.search(rb"<(?:([A-Za-z_][\w.\-]*):)?worksheet\b", head)
        prefix = (root.group(1) + b":") if root and root.group(1) else b""
        element = b'<%sdrawing xmlns:r="%s" r:id="%s"/>' % (prefix, _R_NS.encode(), rid.encode())
        changes[sh.part] = head + set_tail_element(tail, "drawing", element)
        types.override(drawing_part, DRAWING_TYPE)
    else:
        drawing = pkg.read(drawing_part)
        drawing_rels = pkg.read(rels_part_of(drawing_part)) if pkg.info(rels_part_of(drawing_part)) else None
        targets = {i: t for i, typ, t in pkg.rels(drawing_part)}
        for m in reversed(list(_ANCHOR.finditer(drawing))):
            if _ours(m.group(0)):
                rid = _chart_rid(m.group(0))
                if rid and drawing_rels is not None:
                    drawing_rels = _drop_rel(drawing_rels, rid)
                    if rid in targets:
                        drop.add(targets[rid])
                        drop.add(rels_part_of(targets[rid]))
                drawing = drawing[:m.start()] + drawing[m.end():]
    ids = [int(x) for x in re.findall(rb'<(?:[A-Za-z_][\w.\-]*:)?cNvPr\b[^>]*?\bid\s*=\s*"(\d+)"', drawing)]
    next_id = max(ids, default=1) + 1
    anchors = []
    for chart in charts:
        part = names.new("xl/charts/chart{}.xml")
        changes[part] = chart_xml(chart)
        types.override(part, CHART_TYPE)
        drawing_rels, rid = add_relationship(drawing_rels, CHART_REL, "../charts/" + posixpath.basename(part))
        anchors.append(_anchor(chart, next_id, rid))
        next_id += 1
    close = drawing.rfind(b"</")
    drawing = drawing[:close] + b"".join(anchors) + drawing[close:]
    # the xdr/a/c prefixes our anchors use must be declared on the root of a drawing someone else wrote
    root_end = drawing.find(b">", drawing.find(b"wsDr"))
    root = drawing[:root_end]
    for pfx, ns in ((b"xdr", _XDR_NS), (b"a", _A_NS)):
        if b"xmlns:" + pfx + b"=" not in root:
            drawing = drawing[:root_end] + b' xmlns:%s="%s"' % (pfx, ns.encode()) + drawing[root_end:]
            root_end = drawing.find(b">", drawing.find(b"wsDr"))
    changes[drawing_part] = drawing
    if drawing_rels is not None:
        changes[rels_part_of(drawing_part)] = drawing_rels
    drop = {d for d in drop if pkg.info(d) is not None}
    for d in drop:  # their content-type overrides go with them
        types.data = re.sub(rb'<Override\b[^>]*PartName="/' + re.escape(d.encode()) + rb'"[^>]*/>', b"", types.data)
        types.changed = True
    if types.changed:
        changes["[Content_Types].xml"] = types.data
    return changes, drop


def write_charts(path: str | Path, sheet: str, charts: list[Chart], *, out: str | Path | None = None,
                 limits: Limits = DEFAULT_LIMITS, lang: str | None = None) -> None:
    """Put charts on a sheet of the workbook at path (replacing the ones crmsync put there before).

    Raises InvalidFile / NotFound as open_package and Package.worksheet do; the file is then unchanged.
    """
    target = Path(out) if out is not None else Path(path)
    with open_package(path, limits, lang=lang) as pkg:
        changes, drop = chart_parts(pkg, sheet, charts)
        write_package(pkg, target, changes, drop)


def read_charts(path: str | Path, sheet: str) -> list[dict]:
    """The charts on a sheet, as {name, kind, title, refs} (tests and checks).

    ``refs`` lists every cell range the chart's series read, in order (categories, names, values).
    """
    out = []
    with open_package(path) as pkg:
        sh = pkg.worksheet(sheet)
        for _, typ, drawing in pkg.rels(sh.part):
            if typ != DRAWING_REL:
                continue
            targets = {i: t for i, ty, t in pkg.rels(drawing) if ty == CHART_REL}
            data = pkg.read(drawing)
            for m in _ANCHOR.finditer(data):
                rid = _chart_rid(m.group(0))
                if rid not in targets:
                    continue
                cnv = _CNVPR.search(m.group(0)).group(0)
                name = re.search(rb'name="([^"]*)"', cnv).group(1).decode()
                xml = pkg.read(targets[rid]).decode("utf-8")
                kind = re.search(r"<c:(barChart|lineChart|pieChart|areaChart)", xml)
                bar_dir = re.search(r'<c:barDir val="(\w+)"', xml)
                title = "".join(re.findall(r"<a:t>([^<]*)</a:t>", xml.split("</c:title>")[0]))
                out.append({"name": name, "part": targets[rid],
                            "kind": ("bar" if bar_dir and bar_dir.group(1) == "bar" else "column") if kind and kind.group(1) == "barChart" else "line",
                            "title": title, "refs": re.findall(r"<c:f>([^<]*)</c:f>", xml)})
    return out
