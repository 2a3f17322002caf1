"""Checking a workbook file before any parser touches it, and reading its parts within limits.

python-calamine aborts the whole process (SIGABRT, which no ``except`` catches) when a sheet claims
a huge grid or the shared-string table claims a huge count, and zip's bzip2/LZMA members inflate
without bound.  So a file is checked here first, streaming, against ``Limits``:

1. not a file / empty / too big; OLE compound files (encrypted workbook or legacy .xls) and text
   files are named as what they are;
2. the zip's central directory: member count, compression method (stored or deflate only), declared
   sizes, total and ratio — before anything is inflated;
3. every XML part, inflated by our own counting inflater (declared sizes can lie, so inflating past
   the declared size is refused): no ``<!DOCTYPE`` (entity bombs, external entities), UTF-8 only;
4. every worksheet: the ``<dimension>`` claim, the largest row and column any row or cell reaches
   (as calamine would place it), the rows × columns grid calamine would allocate, text runs longer
   than Excel's cell limit; the shared-string table's declared count against the strings it holds;
5. no sheet named ``*.py`` (it switches xlwings RunPython into its paid embedded-code mode).

Every refusal is one ``InvalidFile`` message naming the file.  ``Package`` is the checked, opened
file that workbook.py and xlsx_write.py read parts from.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat as stat_mod
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree as ET
from xml.parsers import expat

from . import i18n
from .errors import InvalidFile

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """The bounds a workbook file must stay within to be read at all.

    Defaults, and why:

    - ``max_file_bytes`` 1 GiB: the file on disk (100,000 customer rows × 40 columns is ~30 MB);
    - ``max_members`` 10,000 zip parts (a real workbook has tens to a few hundred);
    - ``max_member_bytes`` 1 GiB inflated per part (the 100,000-row customer sheet written with
      inline strings is ~0.3 GB of XML);
    - ``max_total_bytes`` 2 GiB inflated for the whole file;
    - ``max_ratio`` 200: inflated/compressed size of any part over 1 MiB (sheet XML compresses
      8–20×; zip bombs ~1000×);
    - ``max_rows`` 1,000,000 and ``max_cols`` 1,000: the last row/column any cell, row or
      ``<dimension>`` may claim (Excel's own grid is 1,048,576 × 16,384);
    - ``max_cells`` 50,000,000: rows × columns of the grid calamine allocates (~32 bytes a cell,
      so ~1.6 GB at the limit);
    - ``max_cell_chars`` 32,767: Excel's limit for one cell's text;
    - ``max_seconds`` 20: the whole check; a normal 100,000-row workbook takes about a second.
    """

    max_file_bytes: int = 1 * GiB
    max_members: int = 10_000
    max_member_bytes: int = 1 * GiB
    max_total_bytes: int = 2 * GiB
    max_ratio: int = 200
    max_rows: int = 1_000_000
    max_cols: int = 1_000
    max_cells: int = 50_000_000
    max_cell_chars: int = 32_767
    max_seconds: float = 20.0


DEFAULT_LIMITS = Limits()

# One refusal each: (Chinese, English); {name} is always the file.
_MESSAGES = {
    "missing": ("找不到文件", "file not found"),
    "not_file": ("不是文件（可能是文件夹）", "not a file (a folder?)"),
    "unreadable": ("无法打开文件（{detail}）", "the file cannot be opened ({detail})"),
    "empty": ("文件是空的（0 字节）", "the file is empty (0 bytes)"),
    "file_big": ("文件大小 {size}，超过上限 {limit}", "the file is {size}, over the limit of {limit}"),
    "encrypted": (
        "工作簿设置了打开密码（已加密）。请在 Excel 中选择“文件 → 信息 → 保护工作簿 → 用密码进行加密”，"
        "清空密码并保存后再试",
        "the workbook is password-protected (encrypted). In Excel choose File → Info → Protect "
        "Workbook → Encrypt with Password, clear the password, save, and try again",
    ),
    "xls": (
        "这是旧版 Excel 97-2003 工作簿（.xls）。请在 Excel 中“另存为” .xlsx 或 .xlsm 后再试",
        "this is a legacy Excel 97-2003 workbook (.xls). Save it as .xlsx or .xlsm in Excel and try again",
    ),
    "ole": ("这是 Office 复合文档（如 Word .doc），不是 Excel 工作簿",
            "this is an Office compound document (such as a Word .doc), not an Excel workbook"),
    "text": ("这是文本文件（如 CSV），不是 Excel 工作簿；CSV 文件请用导入功能",
             "this is a text file (such as CSV), not an Excel workbook; bring CSV files in with import"),
    "not_zip": ("不是 Excel 工作簿（.xlsx/.xlsm 文件应为 zip 格式）",
                "not an Excel workbook (an .xlsx/.xlsm file is a zip package)"),
    "truncated": ("文件不完整或已损坏（可能没有下载或复制完整），请重新获取该文件",
                  "the file is incomplete or damaged (perhaps not fully downloaded or copied); get it again"),
    "corrupt": ("文件已损坏（{detail}）", "the file is damaged ({detail})"),
    "members": ("文件含有 {n} 个部件，超过上限 {limit}", "the file has {n} parts, over the limit of {limit}"),
    "duplicate": ("部件“{part}”出现了两次（文件被篡改或损坏）",
                  "the part {part} appears twice (tampered or damaged file)"),
    "method": ("部件“{part}”使用了 Excel 不使用的压缩方式（{method}），已拒绝",
               "the part {part} uses a compression Excel never writes ({method}); refused"),
    "zip_crypt": ("部件“{part}”被 zip 加密，无法读取", "the part {part} is zip-encrypted and cannot be read"),
    "member_big": ("部件“{part}”解压后为 {size}，超过上限 {limit}（可能是压缩炸弹）",
                   "the part {part} inflates to {size}, over the limit of {limit} (a zip bomb?)"),
    "total_big": ("文件解压后共 {size}，超过上限 {limit}（可能是压缩炸弹）",
                  "the file inflates to {size} in all, over the limit of {limit} (a zip bomb?)"),
    "ratio": ("部件“{part}”的压缩比为 {ratio}:1，超过上限 {limit}:1（可能是压缩炸弹）",
              "the part {part} is compressed {ratio}:1, over the limit of {limit}:1 (a zip bomb?)"),
    "size_lie": ("部件“{part}”解压后的实际大小与声明的不符（文件损坏或被篡改）",
                 "the part {part} inflates to a size other than the one declared (damaged or tampered)"),
    "doctype": ("部件“{part}”含有 DTD 声明（<!DOCTYPE>），Excel 从不写入它，可能是 XML 实体攻击，已拒绝",
                "the part {part} holds a DTD (<!DOCTYPE>), which Excel never writes (an XML entity "
                "attack?); refused"),
    "encoding": ("部件“{part}”不是 UTF-8 编码的 XML", "the part {part} is not UTF-8 XML"),
    "bad_xml": ("部件“{part}”不是有效的 XML（{detail}）", "the part {part} is not valid XML ({detail})"),
    "missing_part": ("缺少部件“{part}”（文件不完整或已损坏）",
                     "the part {part} is missing (incomplete or damaged file)"),
    "no_workbook": ("文件中没有工作簿部件，不是 Excel 工作簿", "the package holds no workbook part; not an Excel workbook"),
    "dimension": (
        "工作表“{sheet}”声称使用到 {ref}（{rows} 行 × {cols} 列），超过上限 {max_rows} 行 / {max_cols} 列；"
        "请删除表格末尾或右侧多余的行、列后保存再试",
        "the sheet {sheet} claims to reach {ref} ({rows} rows × {cols} columns), over the limit of "
        "{max_rows} rows / {max_cols} columns; delete the stray rows or columns at the end, save, and try again",
    ),
    "cell_ref": (
        "工作表“{sheet}”中有单元格位于第 {row} 行、第 {col} 列，超过上限 {max_rows} 行 / {max_cols} 列；"
        "请删除表格末尾或右侧多余的内容后保存再试",
        "the sheet {sheet} has a cell at row {row}, column {col}, over the limit of {max_rows} rows / "
        "{max_cols} columns; delete the stray content at the end, save, and try again",
    ),
    "grid": ("工作表“{sheet}”的数据区域为 {rows} 行 × {cols} 列，超过上限 {limit} 个单元格",
             "the sheet {sheet} spans {rows} rows × {cols} columns, over the limit of {limit} cells"),
    "long_text": ("部件“{part}”中有一段 {n} 个字符的文本，超过 Excel 单元格的上限 {limit} 个字符",
                  "the part {part} holds a text of {n} characters, over Excel's cell limit of {limit}"),
    "long_element": ("部件“{part}”中有一个超过 {limit} 的元素（文件异常）",
                     "the part {part} holds a single element over {limit} (abnormal file)"),
    "sst_count": ("共享字符串表声称有 {claimed} 个字符串，实际只有 {actual} 个（文件损坏或被篡改）",
                  "the shared-string table claims {claimed} strings but holds {actual} (damaged or tampered)"),
    "bad_ref": ("工作表“{sheet}”中有无效的单元格地址（文件损坏或被篡改）",
                "the sheet {sheet} has an invalid cell reference (damaged or tampered)"),
    "py_sheet": (
        "工作簿有名为“{sheet}”的工作表：以 .py 结尾的工作表名会让 xlwings 切换到付费的嵌入代码模式，请重命名该工作表",
        "the workbook has a sheet named {sheet}: a sheet name ending in .py switches xlwings into its "
        "paid embedded-code mode; rename the sheet",
    ),
    "timeout": ("检查文件超过 {seconds} 秒仍未完成，已停止（文件过大或结构异常）",
                "checking the file took over {seconds} s and was stopped (too large or abnormal)"),
    "changed": ("文件在读取过程中被修改，请稍后重试", "the file changed while it was being read; try again"),
}


def message(key: str, name: str, lang: str | None = None, **kw) -> str:
    """Return the one-line refusal for key, naming the file, in the user's language."""
    zh, en = _MESSAGES[key]
    if (lang or i18n.lang()) == "en":
        return f'Cannot read "{name}": ' + en.format(**kw)
    return f"无法读取“{name}”：" + zh.format(**kw)


def _size(n: int) -> str:
    for unit, scale in (("GB", GiB), ("MB", MiB), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class _Refused(Exception):
    """Internal: a refusal before the file name and language are attached."""

    def __init__(self, key: str, **kw):
        super().__init__(key)
        self.key, self.kw = key, kw


# ---- references -------------------------------------------------------------------------------

_REF = re.compile(r"^\$?([A-Za-z]{1,7})\$?(\d{1,10})$")


def col_letters(n: int) -> str:
    """Return the column letters of 1-based column n (1 → A, 27 → AA)."""
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def col_number(letters: str | bytes) -> int:
    """Return the 1-based column number of column letters (A → 1, XFD → 16384)."""
    if isinstance(letters, bytes):
        letters = letters.decode("ascii")
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def parse_ref(ref: str) -> tuple[int, int] | None:
    """Return (row, col), 1-based, of an A1 reference, or None if it is not one."""
    m = _REF.match(ref.strip())
    if not m:
        return None
    return int(m.group(2)), col_number(m.group(1))


# ---- the zip container --------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 1 * MiB
_SMALL_PART = 32 * MiB  # parts parsed whole (workbook.xml, rels, styles, tables)
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_NS_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


@dataclass
class Sheet:
    """One sheet of the workbook: its name, its part in the zip, and whether it is hidden."""

    name: str
    part: str
    state: str = "visible"
    kind: str = "worksheet"


@dataclass
class SheetScan:
    """What the streaming scan learned about one worksheet part."""

    max_row: int = 0
    max_col: int = 0
    dimension: str | None = None
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, "#N/A"), 1-based


class Package:
    """An opened workbook file that passed the check: its zip entries, parts and sheets.

    Parts are read through a counting inflater, so even after the check no part can inflate past
    its declared size.  Use as a context manager; the file is closed on exit.
    """

    def __init__(self, fp: BinaryIO, name: str, limits: Limits, lang: str | None):
        self.fp, self.name, self.limits, self.lang = fp, name, limits, lang
        self.size = 0
        self.entries: list[zipfile.ZipInfo] = []
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        self.workbook_part = "xl/workbook.xml"
        self.sheets: list[Sheet] = []
        self.scans: dict[str, SheetScan] = {}
        self.shared_strings: str | None = None
        self.styles: str | None = None
        self.calc_chain: str | None = None
        self.date1904 = False
        self.comment = b""
        self._deadline = float("inf")

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.fp.close()

    def refuse(self, key: str, **kw) -> InvalidFile:
        return InvalidFile(message(key, self.name, self.lang, **kw))

    # -- parts --

    def info(self, part: str) -> zipfile.ZipInfo | None:
        """Return the zip entry of a part name (exact, then case-insensitive), or None."""
        return self.by_name.get(part) or self.by_name.get(part.casefold())

    def raw_chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """Yield the compressed bytes of a member exactly as stored."""
        self.fp.seek(info.header_offset)
        head = self.fp.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise _Refused("corrupt", detail=f"bad local header for {info.filename}")
        n, m = struct.unpack("<HH", head[26:30])
        pos = info.header_offset + 30 + n + m
        left = info.compress_size
        if pos + left > self.size:
            raise _Refused("truncated")
        while left:
            self.fp.seek(pos)
            data = self.fp.read(min(_CHUNK, left))
            if not data:
                raise _Refused("truncated")
            pos += len(data)
            left -= len(data)
            yield data

    def chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """Yield the inflated bytes of a member, refusing it the moment it passes its declared size."""
        total, crc = 0, 0
        if info.compress_type == zipfile.ZIP_STORED:
            for data in self.raw_chunks(info):
                total += len(data)
                crc = zlib.crc32(data, crc)
                if time.monotonic() > self._deadline:
                    raise _Refused("timeout", seconds=self.limits.max_seconds)
                yield data
        else:
            inflater = zlib.decompressobj(-15)
            for raw in self.raw_chunks(info):
                while raw:
                    try:
                        data = inflater.decompress(raw, _CHUNK)
                    except zlib.error as e:
                        raise _Refused("corrupt", detail=f"{info.filename}: {e}") from None
                    raw = inflater.unconsumed_tail
                    total += len(data)
                    if total > info.file_size:
                        raise _Refused("size_lie", part=info.filename)
                    crc = zlib.crc32(data, crc)
                    if time.monotonic() > self._deadline:
                        raise _Refused("timeout", seconds=self.limits.max_seconds)
                    yield data
                    if inflater.eof:
                        break
            if not inflater.eof:
                raise _Refused("truncated")
        if total != info.file_size:
            raise _Refused("size_lie", part=info.filename)
        if crc != info.CRC:
            raise _Refused("corrupt", detail=f"CRC {info.filename}")

    def read(self, part: str | zipfile.ZipInfo) -> bytes:
        """Return a small part's inflated bytes (workbook.xml, rels, styles, tables)."""
        info = part if isinstance(part, zipfile.ZipInfo) else self.info(part)
        if info is None:
            raise self.refuse("missing_part", part=part)
        if info.file_size > _SMALL_PART:
            raise self.refuse("member_big", part=info.filename, size=_size(info.file_size),
                              limit=_size(_SMALL_PART))
        try:
            return b"".join(self.chunks(info))
        except _Refused as r:
            raise self.refuse(r.key, **r.kw) from None

    def rels(self, part: str) -> list[tuple[str, str, str]]:
        """Return (id, type, resolved target part) for each relationship of part."""
        folder, base = posixpath.split(part)
        rels_part = posixpath.join(folder, "_rels", base + ".rels")
        if self.info(rels_part) is None:
            return []
        root = _parse_xml(self.read(rels_part), rels_part, self)
        out = []
        for el in root:
            if el.tag.rsplit("}", 1)[-1] != "Relationship" or el.get("TargetMode") == "External":
                continue
            out.append((el.get("Id", ""), el.get("Type", ""), resolve_target(folder, el.get("Target", ""))))
        return out

    def sheet(self, name: str) -> Sheet | None:
        """Return the sheet with this name (case-insensitive, as Excel compares), or None."""
        for s in self.sheets:
            if s.name == name:
                return s
        for s in self.sheets:
            if s.name.casefold() == name.casefold():
                return s
        return None


def resolve_target(folder: str, target: str) -> str:
    """Return the zip part name a relationship target points to, relative to folder."""
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(folder, target))


def _parse_xml(data: bytes, part: str, pkg: Package) -> ET.Element:
    if b"<!DOCTYPE" in data.upper():
        raise pkg.refuse("doctype", part=part)
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise pkg.refuse("bad_xml", part=part, detail=str(e)) from None


# ---- opening and checking ---------------------------------------------------------------------


def check_package(path: str | Path, limits: Limits = DEFAULT_LIMITS, *, lang: str | None = None) -> None:
    """Return None if the workbook file is safe to hand to a parser; raise InvalidFile otherwise.

    The one message names the file and says what is wrong and what to do, in Chinese unless
    ``lang="en"`` (default: the user's language, see i18n).  Runs in bounded time and memory
    whatever the file holds; see ``Limits`` for the bounds.

        check_package("客户.xlsx")          # raises InvalidFile("无法读取“客户.xlsx”：…")
    """
    with open_package(path, limits, lang=lang):
        pass


def open_package(path: str | Path, limits: Limits = DEFAULT_LIMITS, *, lang: str | None = None,
                 errors_of: str | None = None) -> Package:
    """Return the checked, opened Package of a workbook file; raise InvalidFile if it fails the check.

    :param errors_of: a sheet name whose error cells (#N/A, #REF!…) the scan should collect.
    """
    path = Path(path)
    name = path.name
    try:
        fp = open(path, "rb")
    except FileNotFoundError:
        raise InvalidFile(message("missing", name, lang)) from None
    except IsADirectoryError:
        raise InvalidFile(message("not_file", name, lang)) from None
    except OSError as e:
        raise InvalidFile(message("unreadable", name, lang, detail=e.strerror or e)) from None
    pkg = Package(fp, name, limits, lang)
    try:
        _check(pkg, errors_of)
    except _Refused as r:
        pkg.close()
        raise pkg.refuse(r.key, **r.kw) from None
    except BaseException:
        pkg.close()
        raise
    return pkg


def _check(pkg: Package, errors_of: str | None) -> None:
    limits, fp = pkg.limits, pkg.fp
    pkg._deadline = time.monotonic() + limits.max_seconds
    st = os.fstat(fp.fileno())
    if not stat_mod.S_ISREG(st.st_mode):
        raise _Refused("not_file")
    pkg.size = st.st_size
    if pkg.size == 0:
        raise _Refused("empty")
    if pkg.size > limits.max_file_bytes:
        raise _Refused("file_big", size=_size(pkg.size), limit=_size(limits.max_file_bytes))
    head = fp.read(8)
    if head == _OLE_MAGIC:
        raise _Refused(_ole_kind(fp, pkg.size))
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise _Refused("text" if _looks_like_text(fp) else "not_zip")
    _check_directory(pkg)
    _check_parts(pkg, errors_of)


def _ole_kind(fp: BinaryIO, size: int) -> str:
    """Return "encrypted", "xls" or "ole" for an OLE compound file."""
    try:
        import olefile  # optional: reads the directory properly

        fp.seek(0)
        ole = olefile.OleFileIO(fp)
        try:
            names = {"/".join(entry).casefold() for entry in ole.listdir(streams=True, storages=True)}
        finally:
            ole.close()
        if "encryptioninfo" in names or "encryptedpackage" in names:
            return "encrypted"
        return "xls" if names & {"workbook", "book"} else "ole"
    except Exception:  # not installed, or a directory olefile cannot read: search the bytes
        pass
    found = set()
    wanted = {k: k.encode("utf-16-le") for k in ("EncryptionInfo", "Workbook", "Book")}
    fp.seek(0)
    tail = b""
    for _ in range(min(size, 64 * MiB) // _CHUNK + 1):  # directory entries sit near the start
        chunk = fp.read(_CHUNK)
        if not chunk:
            break
        buf = tail + chunk
        found |= {k for k, v in wanted.items() if v in buf}
        tail = buf[-40:]
    if "EncryptionInfo" in found:
        return "encrypted"
    return "xls" if found & {"Workbook", "Book"} else "ole"


def _looks_like_text(fp: BinaryIO) -> bool:
    fp.seek(0)
    sample = fp.read(4096)
    if sample.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if b"\x00" in sample:
        return False
    for enc in ("utf-8", "gb18030"):
        try:
            sample.decode(enc)
            return True
        except UnicodeDecodeError as e:
            if e.start > len(sample) - 4:  # cut in the middle of a character
                return True
    return False


def _check_directory(pkg: Package) -> None:
    """Check the central directory (count, methods, declared sizes) before inflating anything."""
    limits, fp = pkg.limits, pkg.fp
    tail_len = min(pkg.size, 22 + 65535 + 20)
    fp.seek(pkg.size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _Refused("truncated")
    entries, cd_size = struct.unpack("<xxxxxxxxxxHI", tail[at:at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: read the real counts
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0:
            raise _Refused("truncated")
        (eocd64,) = struct.unpack("<Q", tail[loc + 8:loc + 16])
        if eocd64 + 56 > pkg.size:
            raise _Refused("truncated")
        fp.seek(eocd64)
        rec = fp.read(56)
        if rec[:4] != b"PK\x06\x06":
            raise _Refused("truncated")
        entries, cd_size = struct.unpack("<32xQQ8x", rec)
    if entries > limits.max_members:
        raise _Refused("members", n=entries, limit=limits.max_members)
    if cd_size > limits.max_members * 1200:  # a directory entry is 46 bytes + name + extra
        raise _Refused("corrupt", detail="central directory")
    fp.seek(0)
    try:
        zf = zipfile.ZipFile(fp)
    except zipfile.BadZipFile:
        raise _Refused("truncated") from None
    except (OSError, ValueError, EOFError, struct.error) as e:
        raise _Refused("corrupt", detail=str(e)) from None
    pkg.entries = zf.infolist()
    pkg.comment = zf.comment
    if len(pkg.entries) > limits.max_members:
        raise _Refused("members", n=len(pkg.entries), limit=limits.max_members)
    total = 0
    for info in pkg.entries:
        key = info.filename.casefold()
        if key in pkg.by_name:
            raise _Refused("duplicate", part=info.filename)
        pkg.by_name[key] = info
        pkg.by_name[info.filename] = info
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = {12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ"}.get(
                info.compress_type, str(info.compress_type))
            raise _Refused("method", part=info.filename, method=method)
        if info.flag_bits & 0x1:
            raise _Refused("zip_crypt", part=info.filename)
        if info.file_size > limits.max_member_bytes:
            raise _Refused("member_big", part=info.filename, size=_size(info.file_size),
                           limit=_size(limits.max_member_bytes))
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Refused("size_lie", part=info.filename)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MiB and ratio > limits.max_ratio:
            raise _Refused("ratio", part=info.filename, ratio=int(ratio), limit=limits.max_ratio)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _Refused("total_big", size=_size(total) + "+", limit=_size(limits.max_total_bytes))


_SHEET_TYPES = ("worksheet", "chartsheet", "dialogsheet", "xlMacrosheet", "xlIntlMacrosheet")


def _check_parts(pkg: Package, errors_of: str | None) -> None:
    """Scan every XML part, then read the workbook's sheet list from the scanned parts."""
    root_rels = [r for r in pkg.rels("") if r[1].endswith("/officeDocument")] if pkg.info("_rels/.rels") else []
    if root_rels:
        pkg.workbook_part = root_rels[0][2]
    if pkg.info(pkg.workbook_part) is None:
        raise _Refused("no_workbook")
    wb_root = _parse_xml(pkg.read(pkg.workbook_part), pkg.workbook_part, pkg)
    rels = {rid: (typ, target) for rid, typ, target in pkg.rels(pkg.workbook_part)}
    r_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    r_ns_strict = "{http://purl.oclc.org/ooxml/officeDocument/relationships}id"
    for el in wb_root.iter():
        if el.tag.rsplit("}", 1)[-1] != "sheet":
            continue
        name = el.get("name", "")
        typ, target = rels.get(el.get(r_ns) or el.get(r_ns_strict) or "", ("", ""))
        kind = typ.rsplit("/", 1)[-1]
        if name.strip().casefold().endswith(".py"):
            raise _Refused("py_sheet", sheet=name)
        if not target:
            continue
        if pkg.info(target) is None:
            raise _Refused("missing_part", part=target)
        pkg.sheets.append(Sheet(name, pkg.info(target).filename, el.get("state", "visible"), kind))
    for typ, target in rels.values():
        kind = typ.rsplit("/", 1)[-1]
        if kind == "sharedStrings" and pkg.info(target):
            pkg.shared_strings = pkg.info(target).filename
        elif kind == "styles" and pkg.info(target):
            pkg.styles = pkg.info(target).filename
        elif kind == "calcChain" and pkg.info(target):
            pkg.calc_chain = pkg.info(target).filename
    for el in wb_root.iter():
        if el.tag.rsplit("}", 1)[-1] == "workbookPr":
            pkg.date1904 = el.get("date1904", "").lower() in ("1", "true")
    sheet_parts = {s.part: s for s in pkg.sheets}
    want_errors = None
    if errors_of is not None and (s := pkg.sheet(errors_of)):
        want_errors = s.part
    for info in pkg.entries:
        lower = info.filename.casefold()
        sheet = sheet_parts.get(info.filename)
        is_sheet = sheet is not None or lower.startswith(
            ("xl/worksheets/", "xl/chartsheets/", "xl/dialogsheets/", "xl/macrosheets/"))
        is_sst = info.filename == pkg.shared_strings or lower.endswith("sharedstrings.xml")
        if not (is_sheet or is_sst or lower.endswith(_XML_SUFFIXES)) or info.is_dir():
            continue
        label = sheet.name if sheet else info.filename
        if is_sheet and not lower.endswith(".rels"):
            pkg.scans[info.filename] = _scan_sheet(pkg, info, label, info.filename == want_errors)
        elif is_sst:
            _scan_shared_strings(pkg, info)
        else:
            _scan_generic(pkg, info)


# ---- streaming scanners -----------------------------------------------------------------------

_DOCTYPE = re.compile(rb"<!\s*(?i:doctype|entity)")
_ENTITY = re.compile(rb"&(?:#x[0-9A-Fa-f]+|#\d+|\w+);")
_MAX_ELEMENT = 8 * MiB  # one tag or text run; beyond it the part is abnormal


class _Stream:
    """Feeds an inflated part to a scanner as buffers that each end just before a '<'.

    So no tag is split between buffers, and a text run longer than Excel's cell limit is caught
    even when it spans many chunks.
    """

    def __init__(self, pkg: Package, info: zipfile.ZipInfo, label: str):
        self.pkg, self.info, self.label = pkg, info, label
        self.limit = pkg.limits.max_cell_chars

    def buffers(self, check_text: bool) -> Iterator[bytes]:
        rest = b""
        first = True
        for chunk in self.pkg.chunks(self.info):
            buf = rest + chunk if rest else chunk
            if first:
                _check_encoding(buf, self.info.filename)
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
        if b"<!" in buf and _DOCTYPE.search(buf):
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
            raise _Refused("long_text", part=self.label, n=chars, limit=self.limit)


def _check_encoding(buf: bytes, part: str) -> None:
    if buf.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")):
        raise _Refused("encoding", part=part)
    if buf.startswith(b"<?xml"):
        decl = buf[:buf.find(b"?>") + 2]
        m = re.search(rb"encoding\s*=\s*[\"']([^\"']*)", decl)
        if m and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            raise _Refused("encoding", part=part)


def _scan_generic(pkg: Package, info: zipfile.ZipInfo) -> None:
    for _ in _Stream(pkg, info, info.filename).buffers(check_text=False):
        pass


_SST_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*:)?sst\b([^>]*)>")
_UNIQUE_COUNT = re.compile(rb"\suniqueCount\s*=\s*[\"']\s*(-?\d+)")


def _scan_shared_strings(pkg: Package, info: zipfile.ZipInfo) -> None:
    claimed, actual, prefix = None, 0, None
    for buf in _Stream(pkg, info, info.filename).buffers(check_text=True):
        if prefix is None and (m := _SST_TAG.search(buf)):
            prefix = m.group(1) or b""
            if c := _UNIQUE_COUNT.search(m.group(2)):
                claimed = int(c.group(1))
        tag = b"<" + (prefix or b"") + b"si"
        actual += buf.count(tag + b">") + buf.count(tag + b"/>") + buf.count(tag + b" ")
    # calamine reserves room for uniqueCount strings before it reads one: a lie aborts the process.
    if claimed is not None and claimed > actual + 1000:
        raise _Refused("sst_count", claimed=claimed, actual=actual)


_ROW_TAG = re.compile(rb'<row r="(\d+)"')
_CELL_LAST = re.compile(rb'<c r="[A-Za-z]+(\d+)"')
_CELL_REF = re.compile(rb'<c r="([A-Za-z]+)(\d+)"')
_CELL_ODD = re.compile(rb'<c(?=[\s/>])(?! r=")')  # a cell not written as <c r="A1"
_PREFIX_HINT = re.compile(rb":(?:c|row)[\s/>]")
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.\-]*:(?:c|row)[\s/>]")
_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?dimension\b[^>]*?\sref\s*=\s*[\"']([^\"']*)")
_ERROR_CELL = re.compile(rb'<c r="([A-Za-z]+)(\d+)"[^>]*?\st="e"[^>]*>(?:(?!</c>).)*?<v>([^<]*)</v>', re.S)


def _scan_sheet(pkg: Package, info: zipfile.ZipInfo, label: str, collect_errors: bool) -> SheetScan:
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
        if buf.count(b"<c") != buf.count(b'<c r="') and _CELL_ODD.search(buf):
            return _scan_sheet_structured(pkg, info, label, collect_errors)
        if _PREFIX_HINT.search(buf) and _PREFIXED.search(buf):
            return _scan_sheet_structured(pkg, info, label, collect_errors)
        # Rows normally come in order: the largest row tag and the last cell bound this buffer;
        # only cells beyond that bound (or beyond the widest column so far) are looked at one by one.
        top = scan.max_row
        rows = _ROW_TAG.findall(buf)
        if rows:
            top = max(top, max(map(int, rows)))
        last = buf.rfind(b'<c r="')
        if last >= 0 and (m := _CELL_LAST.match(buf, last)):
            top = max(top, int(m.group(1)))
        _check_extent(top, 1, label, limits)
        pos = 0
        while m := _beyond(scan.max_col, top).search(buf, pos):
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


_BEYOND: dict[tuple[int, int], re.Pattern] = {}


def _beyond(max_col: int, max_row: int) -> re.Pattern:
    """Return a pattern for a ``<c r="...">`` whose column is past max_col or whose row is past max_row."""
    key = (max_col, max_row)
    pattern = _BEYOND.get(key)
    if pattern is None:
        if len(_BEYOND) > 4096:
            _BEYOND.clear()
        pattern = _BEYOND[key] = re.compile(
            rb'<c r="(?:' + _letters_beyond(max_col) + rb"|[A-Za-z]+0*" + _digits_beyond(max_row) + rb")")
    return pattern


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
