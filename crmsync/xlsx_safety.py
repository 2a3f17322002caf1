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
5. no sheet named ``*.py`` (it switches xlwings RunPython into its paid embedded-code mode), and
   no sheet name holding control characters or invisible direction marks (they disguise a name);
   the package's main part must be a workbook (not a renamed Word file).

Names in messages go through ``shown``: a file called "报价\\u202excod.xlsm" is named as written, on
one line, never reversed on screen.  The check's own time limit covers the check; reading and
writing a checked package afterwards are bounded by the sizes the check verified.

Every refusal is one ``InvalidFile`` message naming the file.  ``Package`` is the checked, opened
file that workbook.py and xlsx_write.py read parts from.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mod
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree as ET

from .errors import InvalidFile, InvalidInput, NotFound
from .xlsx_limits import (DEFAULT_LIMITS, GiB, Limits, MiB, _Refused, _size, col_letters, col_number, hidden_chars,
                          message, parse_ref, say, shown)
from .xlsx_scan import _DOCTYPE, SheetScan, check_encoding, scan_generic, scan_shared_strings, scan_sheet

__all__ = [
    "DEFAULT_LIMITS", "GiB", "Limits", "MiB", "Package", "Sheet", "SheetScan", "check_package", "col_letters",
    "col_number", "message", "open_package", "parse_ref", "resolve_target", "say", "shown",
]


# ---- the zip container --------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 1 * MiB
_SMALL_PART = 32 * MiB  # parts read whole (styles, tables)
_TREE_PART = 8 * MiB  # parts parsed into a tree (workbook.xml, rels): ~10× their size in memory
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_NS_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


@dataclass
class Sheet:
    """One sheet of the workbook: its name, its part in the zip, and whether it is hidden."""

    name: str
    part: str
    state: str = "visible"
    kind: str = "worksheet"


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
        self.stat: os.stat_result | None = None
        self._deadline = float("inf")

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.fp.close()

    def refuse(self, key: str, **kw) -> InvalidFile:
        return InvalidFile(message(key, self.name, self.lang, **kw))

    def changed_on_disk(self, path: str | Path | None = None) -> bool:
        """Return whether the file (or path, when given) is no longer the one that was checked."""
        try:
            now = os.stat(path) if path is not None else os.fstat(self.fp.fileno())
        except OSError:
            return True
        was = self.stat
        return was is None or (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
            was.st_ino, was.st_dev, was.st_size, was.st_mtime_ns)

    # -- parts --

    def info(self, part: str) -> zipfile.ZipInfo | None:
        """Return the zip entry of a part name (exact, then case-insensitive), or None."""
        return self.by_name.get(part) or self.by_name.get(part.casefold())

    def raw_chunks(self, info: zipfile.ZipInfo, size: int = _CHUNK) -> Iterator[bytes]:
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
            data = self.fp.read(min(size, left))
            if not data:
                raise _Refused("truncated")
            pos += len(data)
            left -= len(data)
            yield data

    def chunks(self, info: zipfile.ZipInfo, size: int = _CHUNK) -> Iterator[bytes]:
        """Yield the inflated bytes of a member, refusing it the moment it passes its declared size."""
        total, crc = 0, 0
        if info.compress_type == zipfile.ZIP_STORED:
            for data in self.raw_chunks(info, size):
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
                        data = inflater.decompress(raw, size)
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

    def read(self, part: str | zipfile.ZipInfo, limit: int = _SMALL_PART) -> bytes:
        """Return a small part's inflated bytes (workbook.xml, rels, styles, tables)."""
        info = part if isinstance(part, zipfile.ZipInfo) else self.info(part)
        if info is None:
            raise self.refuse("missing_part", part=part)
        if info.file_size > limit:
            raise self.refuse("member_big", part=info.filename, size=_size(info.file_size),
                              limit=_size(limit))
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
        root = _parse_xml(self.read(rels_part, _TREE_PART), rels_part, self)
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

    def worksheet(self, name: str) -> Sheet:
        """Return the worksheet called name; raise NotFound if there is none, InvalidInput if it is a chart sheet."""
        found = self.sheet(name)
        file = shown(self.name)
        if found is None:
            names = [shown(s.name) for s in self.sheets]
            raise NotFound(say(self.lang, f"“{file}”中没有工作表“{shown(name)}”；现有：{'、'.join(names)}",
                               f'"{file}" has no sheet {shown(name)!r}; it has: ' + ", ".join(names)))
        if found.kind != "worksheet":
            raise InvalidInput(say(self.lang, f"“{file}”中的“{found.name}”不是普通工作表（{found.kind}）",
                                   f'{found.name!r} in "{file}" is not a worksheet ({found.kind})'))
        return found


def resolve_target(folder: str, target: str) -> str:
    """Return the zip part name a relationship target points to, relative to folder."""
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(folder, target))


def _parse_xml(data: bytes, part: str, pkg: Package) -> ET.Element:
    """Return the root of a small XML part (no DTD, UTF-8 only); refuse it if it is not that."""
    if _DOCTYPE.search(data):
        raise pkg.refuse("doctype", part=part)
    try:
        check_encoding(data, part)
        return ET.fromstring(data)
    except _Refused as r:
        raise pkg.refuse(r.key, **r.kw) from None
    except (ET.ParseError, LookupError, ValueError) as e:  # LookupError: an encoding Python does not know
        raise pkg.refuse("bad_xml", part=part, detail=str(e)[:200]) from None


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
                 errors_of: str | bool | None = None) -> Package:
    """Return the checked, opened Package of a workbook file; raise InvalidFile if it fails the check.

    :param errors_of: a sheet name whose error cells (#N/A, #REF!…) the scan should collect, or
        True for every sheet's.
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
        pkg._deadline = float("inf")  # the limit was for the check; later reads are bounded by size
    except _Refused as r:
        pkg.close()
        raise pkg.refuse(r.key, **r.kw) from None
    except BaseException:
        pkg.close()
        raise
    return pkg


def _check(pkg: Package, errors_of: str | bool | None) -> None:
    limits, fp = pkg.limits, pkg.fp
    pkg._deadline = time.monotonic() + limits.max_seconds
    st = pkg.stat = os.fstat(fp.fileno())
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


def _check_parts(pkg: Package, errors_of: str | bool | None) -> None:
    """Scan every XML part, then read the workbook's sheet list from the scanned parts."""
    root_rels = [r for r in pkg.rels("") if r[1].endswith("/officeDocument")] if pkg.info("_rels/.rels") else []
    if root_rels:
        pkg.workbook_part = root_rels[0][2]
    if pkg.info(pkg.workbook_part) is None:
        raise _Refused("no_workbook")
    wb_root = _parse_xml(pkg.read(pkg.workbook_part, _TREE_PART), pkg.workbook_part, pkg)
    if wb_root.tag.rsplit("}", 1)[-1] != "workbook":  # a .docx or .pptx renamed: its main part is another
        raise _Refused("no_workbook")
    rels = {rid: (typ, target) for rid, typ, target in pkg.rels(pkg.workbook_part)}
    r_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    r_ns_strict = "{http://purl.oclc.org/ooxml/officeDocument/relationships}id"
    for el in wb_root.iter():
        if el.tag.rsplit("}", 1)[-1] != "sheet":
            continue
        name = el.get("name", "")
        typ, target = rels.get(el.get(r_ns) or el.get(r_ns_strict) or "", ("", ""))
        kind = typ.rsplit("/", 1)[-1]
        if bad := hidden_chars(name):
            raise _Refused("sheet_name", sheet=name, chars=" ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(bad)))
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
    want_errors: set[str] = set()
    if errors_of is True:
        want_errors = set(sheet_parts)
    elif isinstance(errors_of, str) and (s := pkg.sheet(errors_of)):
        want_errors = {s.part}
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
            pkg.scans[info.filename] = scan_sheet(pkg, info, label, info.filename in want_errors)
        elif is_sst:
            scan_shared_strings(pkg, info)
        else:
            scan_generic(pkg, info)


