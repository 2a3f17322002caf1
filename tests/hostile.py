"""Workbooks for the workbook tests: one realistic .xlsm, and hostile or broken files.

Each builder writes into a folder and returns the path.  The realistic workbook has what a
user's finished workbook has and openpyxl would drop: a VBA project, a ribbon (customUI14 part
and its root relationship), a table, data validation, conditional formatting, a comment, a
second sheet and a hidden xlwings.conf sheet.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RIBBON_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
RIBBON_XML = (
    '<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui"><ribbon><tabs>'
    '<tab id="crm" label="CRM"><group id="g" label="同步"><button id="sync" label="同步" onAction="OnSync"/>'
    "</group></tab></tabs></ribbon></customUI>"
)
VBA = 'Sub OnSync(control As IRibbonControl)\n    RunPython "import crmsync.macros as m; m.on_ribbon(\'sync\')"\nEnd Sub\n'

HEADER = ["客户编号", "客户名称", "手机号", "客户状态", "首次合作时间", "累计交易金额"]
ROWS = [
    ["C001", "华为技术有限公司", "013812345678", "潜在客户", dt.datetime(2024, 5, 21), 1200.5],
    ["C002", "深圳市腾讯计算机系统有限公司", "13912345678", "成交客户", dt.datetime(2023, 1, 2), 99.0],
    ["C003", "阿里巴巴（中国）有限公司", "0755-12345678", "流失客户", dt.datetime(2022, 12, 31), 0.0],
]


def realistic_xlsm(folder: Path, name: str = "crm.xlsm") -> Path:
    """Write a realistic macro workbook (VBA, ribbon, table, validation, formats, comment)."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.worksheet.table import Table, TableStyleInfo

    wb = Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in ROWS:
        ws.append(row)
    for r in range(2, 2 + len(ROWS)):
        ws.cell(r, 1).number_format = "@"
        ws.cell(r, 3).number_format = "@"  # mobiles are text: leading zeros must survive
        ws.cell(r, 5).number_format = "yyyy-mm-dd"
        ws.cell(r, 6).number_format = "#,##0.00"
    ws.column_dimensions["B"].width = 30
    ws.freeze_panes = "A2"
    table = Table(displayName="客户表", ref=f"A1:F{1 + len(ROWS)}")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    ws.add_table(table)
    dv = DataValidation(type="list", formula1='"潜在客户,成交客户,流失客户"', allow_blank=True)
    dv.add(f"D2:D{1 + len(ROWS)}")
    ws.add_data_validation(dv)
    ws.conditional_formatting.add(f"F2:F{1 + len(ROWS)}",
                                  CellIsRule(operator="greaterThan", formula=["1000"],
                                             fill=PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")))
    ws["B2"].comment = Comment("重点客户", "销售")

    follow = wb.create_sheet("跟进记录")
    follow.append(["跟进编号", "客户编号", "跟进内容"])
    follow.append(["F001", "C001", "电话沟通，客户有意向"])
    conf = wb.create_sheet("xlwings.conf")
    conf.append(["INTERPRETER_WIN", r"C:\Python\python.exe"])
    conf.append(["CRMSYNC_LANG", "zh"])
    conf.sheet_state = "hidden"

    plain = folder / (name + ".tmp.xlsm")
    wb.save(plain)
    from pyopenvba import ExcelFile

    book = ExcelFile(plain)
    book.add_vba_project().add_module("Ribbon", VBA)
    book.save()
    book.close()
    path = folder / name
    _add_ribbon(plain, path)
    plain.unlink()
    return path


def _add_ribbon(src: Path, dst: Path) -> None:
    """Copy src to dst with the ribbon part, its root relationship and the .xlsm content type."""
    with zipfile.ZipFile(src) as z:
        parts = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml")
            elif info.filename == "_rels/.rels":
                rel = f'<Relationship Id="rIdUI" Type="{RIBBON_REL}" Target="customUI/customUI14.xml"/>'
                data = data.replace(b"</Relationships>", rel.encode() + b"</Relationships>")
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("customUI/customUI14.xml", RIBBON_XML)


def members(path: Path) -> dict[str, bytes]:
    """Return every zip member's inflated bytes by name."""
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


# ---- a minimal workbook whose parts a test chooses ----------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)


def workbook_xml(sheet_name: str = "客户") -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook {NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def sheet_xml(sheet_data: str, dimension: str | None = "A1") -> str:
    """A worksheet part; dimension None leaves the <dimension> claim out (some writers do)."""
    claim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet {NS}>{claim}<sheetData>{sheet_data}</sheetData></worksheet>')


def sst_xml(strings: list[str], unique_count: int | None = None) -> str:
    n = len(strings) if unique_count is None else unique_count
    return (f'<sst {NS} count="{len(strings)}" uniqueCount="{n}">'
            + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>")


def minimal_xlsx(path: Path, *, sheet: str | bytes | None = None, sst: str | bytes | None = None,
                 workbook: str | None = None, extra: dict[str, bytes | str] | None = None,
                 method: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write a tiny workbook from the given parts (defaults: one sheet 客户 with one cell)."""
    parts = _parts(sheet=sheet, sst=sst, workbook=workbook)
    parts.update(extra or {})
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def _parts(*, sheet: str | bytes | None = None, sst: str | bytes | None = None,
           workbook: str | None = None) -> dict[str, bytes | str]:
    return {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": workbook or workbook_xml(),
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": sheet if sheet is not None else sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'),
        "xl/sharedStrings.xml": sst if sst is not None else sst_xml(["客户编号"]),
    }


# ---- hostile files ---------------------------------------------------------------------------


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """Return the CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""

    def times(mat: list[int], vec: int) -> int:
        s, i = 0, 0
        while vec:
            if vec & 1:
                s ^= mat[i]
            vec >>= 1
            i += 1
        return s

    def square(mat: list[int]) -> list[int]:
        return [times(mat, mat[n]) for n in range(32)]

    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = square(odd)
    odd = square(even)
    while True:
        even = square(odd)
        if len2 & 1:
            crc1 = times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = square(even)
        if len2 & 1:
            crc1 = times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def repeated_deflate(head: bytes, block: bytes, times: int, tail: bytes) -> tuple[bytes, int, int]:
    """Return (raw deflate data, CRC-32, size) of head + block * times + tail, without inflating it.

    A full flush makes each compressed block independent of what came before, so the compressed
    block can simply be repeated: a 2 GB sheet costs a few milliseconds and ~2 MB.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    middle = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    last = comp.compress(tail) + comp.flush(zlib.Z_FINISH)
    crc, size = zlib.crc32(head), len(head)
    block_crc, n = zlib.crc32(block), len(block)
    rep_crc, rep_len, k = 0, 0, times  # crc of block * times, by doubling
    pow_crc, pow_len = block_crc, n
    while k:
        if k & 1:
            rep_crc = _crc32_combine(rep_crc, pow_crc, pow_len) if rep_len else pow_crc
            rep_len += pow_len
        pow_crc = _crc32_combine(pow_crc, pow_crc, pow_len)
        pow_len *= 2
        k >>= 1
    if rep_len:
        crc = _crc32_combine(crc, rep_crc, rep_len)
        size += rep_len
    crc = _crc32_combine(crc, zlib.crc32(tail), len(tail))
    size += len(tail)
    return first + middle * times + last, crc, size


_SHEET_HEAD = sheet_xml("").encode()[:-len(b"</sheetData></worksheet>")]
_SHEET_TAIL = b"</sheetData></worksheet>"


def zip_bomb(folder: Path) -> Path:
    """A 2 MB file whose sheet inflates to 2 GB of whitespace (declared honestly, valid CRC)."""
    path = folder / "bomb.xlsx"
    data, crc, size = repeated_deflate(_SHEET_HEAD, b" " * (1 << 20), 2048, _SHEET_TAIL)
    minimal_xlsx(path)
    _swap_member(path, "xl/worksheets/sheet1.xml", data, crc, size)
    return path


def lying_bomb(folder: Path) -> Path:
    """A sheet declaring 2 KB but inflating to 300 MB (the ratio check passes: it trusts the header)."""
    path = folder / "lying.xlsx"
    head = _SHEET_HEAD + b'<row r="1"><c r="A1"><v>1</v></c></row>'
    data, _, _ = repeated_deflate(head, b" " * (1 << 20), 300, _SHEET_TAIL)
    minimal_xlsx(path)
    _swap_member(path, "xl/worksheets/sheet1.xml", data, 0, 2048)
    return path


def many_members_bomb(folder: Path, n: int = 20) -> Path:
    """Twenty 150 MB sheets, each within the per-part limits (~180:1), 3 GB in all: the total stops it."""
    path = folder / "members.xlsx"
    rnd = random.Random(1)
    block = bytearray(b" " * (1 << 20))
    for i in range(0, len(block), 500):  # a letter every 500 bytes keeps the ratio under 200:1
        block[i] = rnd.choice(b"abcdefghijklmnop")
    data, crc, size = repeated_deflate(_SHEET_HEAD, bytes(block), 150, _SHEET_TAIL)
    extra = {f"xl/worksheets/sheet{i}.xml": "" for i in range(2, n + 1)}
    minimal_xlsx(path, extra=extra)
    _swap_members(path, {f"xl/worksheets/sheet{i}.xml": (data, crc, size) for i in range(1, n + 1)})
    return path


def _swap_member(path: Path, name: str, deflated: bytes, crc: int, declared: int) -> None:
    """Replace one member's stored data and declared sizes (raw zip surgery)."""
    _swap_members(path, {name: (deflated, crc, declared)})


def _swap_members(path: Path, new: dict[str, tuple[bytes, int, int]]) -> None:
    """Replace members' deflated data, CRC and declared size (raw zip surgery)."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        blobs = {i.filename: _raw(path, i) for i in infos}
    out = io.BytesIO()
    central = []
    for info in infos:
        data, c, usize = new.get(info.filename) or (blobs[info.filename], info.CRC, info.file_size)
        method = zipfile.ZIP_DEFLATED if info.filename in new else info.compress_type
        fname = info.filename.encode()
        offset = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21,
                              c, len(data), usize, len(fname), 0) + fname + data)
        central.append(struct.pack("<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 3, 20, 0, method, 0,
                                   0x21, c, len(data), usize, len(fname), 0, 0, 0, 0, 0, offset) + fname)
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central),
                          out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())


def _raw(path: Path, info: zipfile.ZipInfo) -> bytes:
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        n, m = struct.unpack("<HH", head[26:30])
        f.seek(info.header_offset + 30 + n + m)
        return f.read(info.compress_size)


def bzip2_member(folder: Path) -> Path:
    """A sheet stored with bzip2 (Excel never writes it; Python inflates it without bound)."""
    return minimal_xlsx(folder / "bzip2.xlsx", method=zipfile.ZIP_BZIP2)


def lzma_member(folder: Path) -> Path:
    return minimal_xlsx(folder / "lzma.xlsx", method=zipfile.ZIP_LZMA)


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    + f']><sst {NS} count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
)


def billion_laughs(folder: Path) -> Path:
    return minimal_xlsx(folder / "laughs.xlsx", sst=BILLION_LAUGHS)


def external_entity(folder: Path) -> Path:
    """A sheet whose DTD pulls in a local file."""
    sheet = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
             f'<worksheet {NS}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
             "</sheetData></worksheet>")
    return minimal_xlsx(folder / "xxe.xlsx", sheet=sheet)


def huge_dimension(folder: Path) -> Path:
    return minimal_xlsx(folder / "dimension.xlsx",
                        sheet=sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>', dimension="A1:XFD1048576"))


def far_cell(folder: Path) -> Path:
    """One cell at XFD1048576: calamine would allocate ~512 GB for the grid and abort."""
    return minimal_xlsx(folder / "farcell.xlsx", sheet=sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'))


def wide_row(folder: Path, cols: int = 16_384) -> Path:
    """A row of 16,384 cells, written without r attributes (placed by counting)."""
    cells = "<c><v>1</v></c>" * cols
    return minimal_xlsx(folder / "wide.xlsx", sheet=sheet_xml(f"<row>{cells}</row>"))


def out_of_order(folder: Path, rows: int = 200_000, far: str | None = None) -> Path:
    """Rows 1..rows in order, then one cell back at A1 (and, if given, one far cell in the middle).

    Each cell then lies beyond the extent the last cell suggests: a scan that works cell by cell
    from there must still take linear time.
    """
    middle = rows // 2
    body = "".join(f'<row r="{r}"><c r="A{r}"><v>1</v></c><c r="B{r}"><v>2</v></c>'
                   + (f'<c r="{far}"><v>3</v></c>' if far and r == middle else "") + "</row>"
                   for r in range(1, rows + 1))
    body += f'<row r="{rows + 1}"><c r="A1"><v>0</v></c></row>'
    name = "out-of-order-far.xlsx" if far else "out-of-order.xlsx"
    return minimal_xlsx(folder / name, sheet=sheet_xml(body, dimension=None))


def bloated_workbook_xml(folder: Path) -> Path:
    """A workbook part of ~30 MB (600,000 defined names): parsed into a tree, it would take ~200 MB."""
    names = "".join(f'<definedName name="n{i}">A{i}</definedName>' for i in range(600_000))
    return minimal_xlsx(folder / "bloated-workbook.xlsx",
                        workbook=workbook_xml().replace("</workbook>", f"<definedNames>{names}</definedNames></workbook>"))


def bloated_rels(folder: Path) -> Path:
    """A relationships part of ~30 MB (500,000 relationships)."""
    rels = "".join(f'<Relationship Id="x{i}" Type="t" Target="a{i}.xml"/>' for i in range(500_000))
    return minimal_xlsx(folder / "bloated-rels.xlsx", extra={
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS.replace("</Relationships>", rels + "</Relationships>")})


def sst_count_lie(folder: Path) -> Path:
    """A shared-string table claiming 100 million strings (calamine reserves them and aborts)."""
    return minimal_xlsx(folder / "sstcount.xlsx", sst=sst_xml(["客户编号"], unique_count=100_000_000))


def long_string(folder: Path, chars: int) -> Path:
    """A shared string of the given length (random-ish Chinese, so it does not compress away)."""
    import random

    rnd = random.Random(chars)
    text = "".join(chr(rnd.randint(0x4E00, 0x9FA5)) for _ in range(chars))
    return minimal_xlsx(folder / f"long{chars}.xlsx", sst=sst_xml([text]))


def huge_string(folder: Path, mb: int = 100) -> Path:
    """A 100 MB string cell that compresses ~1000:1 (the ratio limit is what stops it)."""
    path = folder / "hugestring.xlsx"
    head = f'<sst {NS} count="1" uniqueCount="1"><si><t>'.encode()
    data, crc, size = repeated_deflate(head, b"a" * (1 << 20), mb, b"</t></si></sst>")
    minimal_xlsx(path)
    _swap_member(path, "xl/sharedStrings.xml", data, crc, size)
    return path


def huge_string_stored(folder: Path, mb: int = 100) -> Path:
    """A 100 MB inline-string cell stored uncompressed (ratio 1:1): the streaming text check stops it."""
    path = folder / "hugestring-stored.xlsx"
    parts = _parts()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in parts.items():
            if name != "xl/worksheets/sheet1.xml":
                z.writestr(name, data)
        with z.open("xl/worksheets/sheet1.xml", "w") as m:
            m.write(_SHEET_HEAD + b'<row r="1"><c r="A1" t="inlineStr"><is><t>')
            text = ("客户名称" * (1 << 16)).encode()  # 768 KB of 3-byte characters
            for _ in range((mb << 20) // len(text) + 1):
                m.write(text)
            m.write(b"</t></is></c></row>" + _SHEET_TAIL)
    return path


def full_rows(folder: Path, rows: int = 1_048_576) -> Path:
    """A sheet that really has Excel's 1,048,576 rows (one number each), streamed: ~45 MB of XML.

    No <dimension> claim, so only the streaming scan of the rows can find out.
    """
    path = folder / "fullrows.xlsx"
    parts = _parts()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in parts.items():
            if name != "xl/worksheets/sheet1.xml":
                z.writestr(name, data)
        with z.open("xl/worksheets/sheet1.xml", "w") as m:
            m.write(sheet_xml("", dimension=None).encode()[:-len(_SHEET_TAIL)])
            for lo in range(1, rows + 1, 65_536):
                hi = min(lo + 65_536, rows + 1)
                m.write("".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(lo, hi)).encode())
            m.write(_SHEET_TAIL)
    return path


def full_columns(folder: Path, cols: int = 16_384) -> Path:
    """A row with a value in each of Excel's 16,384 columns, A1 to XFD1, with references, no <dimension>."""
    from crmsync.xlsx_safety import col_letters

    cells = "".join(f'<c r="{col_letters(c)}1"><v>{c}</v></c>' for c in range(1, cols + 1))
    return minimal_xlsx(folder / "fullcols.xlsx", sheet=sheet_xml(f'<row r="1">{cells}</row>', dimension=None))


def sparse_grid(folder: Path) -> Path:
    """Two cells, A1 and ALL1000000: each within the row and column limits, but the grid calamine
    would allocate for them is 10⁹ cells (~32 GB)."""
    return minimal_xlsx(folder / "sparse.xlsx", sheet=sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="1000000"><c r="ALL1000000"><v>1</v></c></row>'))


def cell_beyond_rows(folder: Path) -> Path:
    """Rows tagged 1 and 2, but the second row's cell claims row 1,048,576 (calamine follows the cell)."""
    return minimal_xlsx(folder / "cellrow.xlsx", sheet=sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="B1048576"><v>1</v></c></row>'))


def encrypted(folder: Path) -> Path:
    """A password-protected workbook: real encryption if msoffcrypto is installed, else a stand-in."""
    path = folder / "encrypted.xlsx"
    try:
        import msoffcrypto.format.ooxml as ooxml

        plain = minimal_xlsx(folder / "plain-for-encryption.xlsx")
        with open(plain, "rb") as src, open(path, "wb") as dst:
            ooxml.OOXMLFile(src).encrypt("secret", dst)
        plain.unlink()
    except Exception:  # a minimal OLE header with the stream name is what detection reads
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le")
                         + b"\x00" * 2000)
    return path


def legacy_xls(folder: Path) -> Path:
    """An OLE compound file with a Workbook stream and no encryption (a .xls)."""
    path = folder / "legacy.xls"
    try:
        import olefile  # noqa: F401
        path.write_bytes(_ole_with_stream("Workbook", b"\x09\x08" + b"\x00" * 4094))
    except ImportError:
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "Workbook".encode("utf-16-le") + b"\x00" * 2000)
    return path


def _ole_with_stream(name: str, data: bytes) -> bytes:
    """A minimal valid compound file (v3, 512-byte sectors) holding one stream of >= 4096 bytes."""
    sector = 512
    n_data = (len(data) + sector - 1) // sector
    data = data.ljust(n_data * sector, b"\x00")
    # sectors: 0 = FAT, 1 = directory, 2.. = stream data
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [3 + i if i < n_data - 1 else 0xFFFFFFFE for i in range(n_data)]
    fat_sector = struct.pack(f"<{sector // 4}I", *(fat + [0xFFFFFFFF] * (sector // 4 - len(fat))))

    def entry(nm: str, typ: int, start: int, size: int, child: int = 0xFFFFFFFF) -> bytes:
        raw = nm.encode("utf-16-le") + b"\x00\x00"
        return (raw.ljust(64, b"\x00") + struct.pack("<HBB", len(raw), typ, 1)
                + struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, child) + b"\x00" * 16 + b"\x00" * 4 + b"\x00" * 16
                + struct.pack("<IQ", start, size)[:8] + b"\x00" * 4)

    root = entry("Root Entry", 5, 0xFFFFFFFE, 0, child=1)
    stream = entry(name, 2, 2, len(data))
    directory = (root + stream).ljust(sector, b"\x00")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\x00" * 6 + struct.pack("<IIIIIIII", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE)
              + struct.pack("<I", 0) + struct.pack("<I", 0))
    header = header[:76] + struct.pack("<I", 0) + struct.pack("<108I", *([0xFFFFFFFF] * 108))
    header = header[:0x44] + struct.pack("<I", 0) + header[0x48:]
    return header.ljust(sector, b"\x00") + fat_sector + directory + data


def truncated(folder: Path, source: Path | None = None, keep: float = 0.5, name: str = "truncated.xlsx") -> Path:
    """The first part (keep, a fraction) of a workbook: source, or a small generated one."""
    path = folder / name
    if source is None:
        rows = "".join(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>客户{r:05d}</t></is></c>'
                       f'<c r="B{r}"><v>{r * 7}</v></c></row>' for r in range(1, 2001))
        source = minimal_xlsx(folder / f".{name}.src", sheet=sheet_xml(rows, "A1:B2000"))
        data = source.read_bytes()
        source.unlink()
    else:
        data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def text_as_xlsm(folder: Path) -> Path:
    path = folder / "客户名单.xlsm"
    path.write_text("客户名称,手机号\n华为,13812345678\n", encoding="utf-8")
    return path


def gbk_csv_as_xlsx(folder: Path) -> Path:
    path = folder / "导出.xlsx"
    path.write_bytes("客户名称,手机号\r\n华为,13812345678\r\n".encode("gb18030"))
    return path


def png_as_xlsm(folder: Path) -> Path:
    path = folder / "截图.xlsm"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    return path


def random_bytes(folder: Path) -> Path:
    path = folder / "random.xlsm"
    path.write_bytes(random.Random(3).randbytes(20_000))
    return path


def docx_as_xlsm(folder: Path) -> Path:
    """A zip package that is not a workbook (a Word document's parts)."""
    path = folder / "合同.xlsm"
    rels = ROOT_RELS.replace("xl/workbook.xml", "word/document.xml")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", '<w:document xmlns:w="http://schemas.openxmlformats.org/'
                                        'wordprocessingml/2006/main"><w:body/></w:document>')
    return path


def folder_as_xlsm(folder: Path) -> Path:
    path = folder / "文件夹.xlsm"
    path.mkdir(exist_ok=True)
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.xlsx"
    path.write_bytes(b"")
    return path


def py_sheet(folder: Path) -> Path:
    return minimal_xlsx(folder / "pysheet.xlsx", workbook=workbook_xml("evil.py"))


# ---- names with control characters and right-to-left marks ------------------------------------

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "报价\u202excod.xlsm" shows as "报价mslx.docx"


def rtl_sheet_name(folder: Path) -> Path:
    """A sheet whose name carries a right-to-left override (it displays as another name)."""
    return minimal_xlsx(folder / "rtlsheet.xlsx", workbook=workbook_xml(f"客户{RLO}表"))


def control_sheet_name(folder: Path) -> Path:
    """A sheet whose name carries a C1 control character and a zero-width space (legal in XML)."""
    return minimal_xlsx(folder / "ctrlsheet.xlsx", workbook=workbook_xml("客户\u0085\u200b"))


def rtl_file_name(folder: Path) -> Path:
    """A damaged workbook whose file name carries a right-to-left override and a line break."""
    return truncated(folder, name=f"报价{RLO}xcod\n.xlsm")


def names_with_marks(folder: Path) -> Path:
    """A valid workbook whose customer names carry RLO, zero-width, C0 control (as _x0007_) and
    line-break characters: readable; the reader hands them on unchanged for validation to report."""
    rows = ('<row r="1"><c r="A1" t="inlineStr"><is><t>客户名称</t></is></c></row>'
            f'<row r="2"><c r="A2" t="inlineStr"><is><t>华为{RLO}公司</t></is></c></row>'
            '<row r="3"><c r="A3" t="inlineStr"><is><t>腾讯\u200b科技_x0007_</t></is></c></row>'
            '<row r="4"><c r="A4" t="inlineStr"><is><t xml:space="preserve">阿里\n巴巴 </t></is></c></row>')
    return minimal_xlsx(folder / "marks.xlsx", sheet=sheet_xml(rows, "A1:A4"))


#: name → builder(folder) for the parametrised hostile-file tests; each must be refused
HOSTILE = {
    "zip_bomb": zip_bomb,
    "lying_bomb": lying_bomb,
    "many_members_bomb": many_members_bomb,
    "bzip2": bzip2_member,
    "lzma": lzma_member,
    "billion_laughs": billion_laughs,
    "external_entity": external_entity,
    "huge_dimension": huge_dimension,
    "far_cell": far_cell,
    "full_rows": full_rows,
    "full_columns": full_columns,
    "wide_row": wide_row,
    "sparse_grid": sparse_grid,
    "cell_beyond_rows": cell_beyond_rows,
    "sst_count_lie": sst_count_lie,
    "far_cell_out_of_order": lambda folder: out_of_order(folder, far="A1048576"),
    "bloated_workbook_xml": bloated_workbook_xml,
    "bloated_rels": bloated_rels,
    "long_string": lambda folder: long_string(folder, 40_000),
    "huge_string": huge_string,
    "huge_string_stored": huge_string_stored,
    "encrypted": encrypted,
    "legacy_xls": legacy_xls,
    "truncated": truncated,
    "text_as_xlsm": text_as_xlsm,
    "gbk_csv_as_xlsx": gbk_csv_as_xlsx,
    "png_as_xlsm": png_as_xlsm,
    "random_bytes": random_bytes,
    "docx_as_xlsm": docx_as_xlsm,
    "folder_as_xlsm": folder_as_xlsm,
    "empty": empty_file,
    "py_sheet": py_sheet,
    "rtl_sheet_name": rtl_sheet_name,
    "control_sheet_name": control_sheet_name,
    "rtl_file_name": rtl_file_name,
}
