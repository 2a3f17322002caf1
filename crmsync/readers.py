"""Reading a legacy file for import: .xlsx/.xlsm, .xls and .csv, as one grid of cell values.

Every reader returns a ``RawSheet``: the rows of one sheet from A1 (``grid[i]`` is Excel row i + 1,
rows may be ragged), empty cells as None, error cells as their text (``#N/A``), merged cells
filled down (a value merged over several rows belongs to each of them), and notes for the user.

Safety (notes/input-safety.md):

- .xlsx/.xlsm are checked by ``xlsx_safety.open_package`` (zip bombs, entities, huge grids that
  make calamine abort the process) and then read by python-calamine from the same open file;
- .xls is an OLE compound file that no pre-check can bound the way a zip can, so calamine reads
  it in a child process under a memory and time limit: a hostile file kills the child, never the
  importer; an encrypted .xls is named as such;
- .csv is decoded with a strict cascade (BOM, UTF-8, GBK, GB18030) and charset-normalizer only for
  anything else; the encoding used is reported.  The file is streamed, never held decoded.  Strict UTF-8 almost never accepts GBK bytes (a
  GBK Chinese character is two bytes of 0x81–0xFE, which UTF-8 reads as broken sequences), so
  the order is safe, deterministic and fast; a statistical detector alone mislabels short
  Chinese files (GBK read as Big5 or Shift-JIS).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import InvalidFile, InvalidInput, NotFound
from .i18n import tr
from .xlsx_limits import DEFAULT_LIMITS, Limits, col_letters, message, shown

__all__ = ["RawSheet", "read_file", "decode_text", "SUFFIXES"]

SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".txt")
_XLS_MEMORY = 2 << 30  # the child reading an .xls may use 2 GiB of address space
_XLS_SECONDS = 120


@dataclass
class RawSheet:
    """One sheet of a file as a grid of values; ``grid[i]`` is row i + 1 of the file."""

    file: str  # the file's name as shown in messages
    sheet: str  # the sheet's name ("" for a CSV)
    grid: list[list[object]]
    encoding: str | None = None  # a CSV's encoding
    notes: list[str] = field(default_factory=list)  # what was done to the data (merged cells…)
    sheets: list[str] = field(default_factory=list)  # every sheet of the workbook

    def where(self) -> str:
        """The file (and sheet) for messages: “客户.xlsx”工作表“客户”."""
        if not self.sheet:
            return f"“{shown(self.file)}”"
        return tr(f"“{shown(self.file)}”工作表“{shown(self.sheet)}”",
                  f"'{shown(self.file)}' sheet '{shown(self.sheet)}'")


def read_file(path: str | Path, sheet: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> RawSheet:
    """Return one sheet of a .xlsx/.xlsm/.xls/.csv file as a RawSheet.

    :param sheet: the sheet's name (or 1-based number); default the first visible one.
    Raises InvalidFile (missing, unreadable, hostile, encrypted, undecodable), NotFound (no such
    sheet), InvalidInput (an unsupported file type).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidFile(message("missing" if not path.exists() else "not_file", path.name))
    if suffix in (".csv", ".txt"):
        return _read_csv(path, limits)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet, limits)
    if suffix == ".xls":
        return _read_xls(path, sheet, limits)
    raise InvalidInput(tr(f"“{shown(path.name)}”: 不支持的文件类型 {suffix or '(无扩展名)'}；可导入 .xlsx .xlsm .xls .csv",
                          f"'{shown(path.name)}': unsupported file type {suffix or '(none)'}; "
                          "import .xlsx, .xlsm, .xls or .csv"))


# ---- CSV ---------------------------------------------------------------------------------------

# UTF-32 before UTF-16: a UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS = ((b"\xef\xbb\xbf", "utf-8", "UTF-8 (BOM)"), (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 LE"),
         (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 BE"), (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
         (b"\xfe\xff", "utf-16-be", "UTF-16 BE"))
_STRICT = (("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030"))
_CHUNK = 1 << 20  # bytes decoded at a time: a file is never held decoded in memory just to sniff it


def sniff_encoding(fp: BinaryIO, name: str = "") -> tuple[str, str, int]:
    """Return (codec, label, BOM length) of the text file fp; raise InvalidFile when none fits.

    BOM first, then the first of UTF-8, GBK, GB18030 that decodes the whole file strictly (chunk by
    chunk, so a 100 MB file costs a chunk of memory, not the file three times over);
    charset-normalizer on the first chunk for anything else.
    """
    fp.seek(0)
    head = fp.read(4)
    for bom, codec, label in _BOMS:
        # FF FE 00 00 is also UTF-16 LE's BOM and a NUL: UTF-32 only when the rest is UTF-32
        if head.startswith(bom) and (not codec.startswith("utf-32") or _decodes(fp, codec, len(bom), whole=True)):
            return codec, label, len(bom)
    for codec, label in _STRICT:
        if _decodes(fp, codec):
            return codec, label, 0
    fp.seek(0)
    sample = fp.read(_CHUNK)
    if b"\x00" not in sample[:4096]:
        from charset_normalizer import from_bytes

        best = from_bytes(sample).best()
        if best is not None:
            return best.encoding, best.encoding.upper(), 0
    raise InvalidFile(tr(f"无法读取“{shown(name)}”：无法识别文本编码（支持 UTF-8、GBK、GB18030、UTF-16、UTF-32），"
                         "请在 Excel 中另存为“CSV UTF-8”后再试",
                         f"cannot read '{shown(name)}': unknown text encoding (UTF-8, GBK, GB18030, UTF-16 and "
                         "UTF-32 are supported); save it as 'CSV UTF-8' in Excel and try again"))


def _decodes(fp: BinaryIO, codec: str, start: int = 0, *, whole: bool = False) -> bool:
    """Whether fp from start decodes strictly as codec (``whole``: to at least one character)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    fp.seek(start)
    some = False
    try:
        while chunk := fp.read(_CHUNK):
            some = some or bool(decoder.decode(chunk))
        some = bool(decoder.decode(b"", final=True)) or some
    except UnicodeDecodeError:
        return False
    return some or not whole


def decode_text(data: bytes, name: str = "") -> tuple[str, str]:
    """Return (text, encoding label) of a text file's bytes; raise InvalidFile when none fits."""
    codec, label, skip = sniff_encoding(io.BytesIO(data), name)
    try:
        return data[skip:].decode(codec), label
    except UnicodeDecodeError as e:
        raise InvalidFile(_undecodable(name, label, data[skip:skip + e.start].count(b"\n") + 1)) from None


def _undecodable(name: str, label: str, line: int) -> str:
    return tr(f"无法读取“{shown(name)}”第 {line} 行：文件开头是 {label} 编码，这一行却不是；请在 Excel 中另存为“CSV UTF-8”后再试",
              f"cannot read '{shown(name)}' line {line}: the file starts as {label} but this line is not; "
              "save it as 'CSV UTF-8' in Excel and try again")


def _bad_line(fp: BinaryIO, codec: str, skip: int) -> int:
    """Return the line on which fp stops decoding as codec (the reader buffers ahead, so it cannot say)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    fp.seek(skip)
    line = 1
    while chunk := fp.read(_CHUNK):
        try:
            line += decoder.decode(chunk).count("\n")
        except UnicodeDecodeError as e:
            return line + chunk[:e.start].decode(codec, errors="ignore").count("\n")
    return line


def _read_csv(path: Path, limits: Limits) -> RawSheet:
    size = path.stat().st_size
    if size == 0:
        raise InvalidFile(message("empty", path.name))
    if size > limits.max_file_bytes:
        raise InvalidFile(message("file_big", path.name, size=f"{size >> 20} MiB",
                                  limit=f"{limits.max_file_bytes >> 20} MiB"))
    with open(path, "rb") as fp:
        codec, encoding, skip = sniff_encoding(fp, path.name)
        fp.seek(skip)
        sample = fp.read(65536).decode(codec, errors="ignore")[:20000]
        fp.seek(skip)
        delimiter = max((",", "\t", ";", "|"), key=lambda d: sample.count(d)) if sample else ","
        # Streamed: the csv module refuses a cell past the limit as soon as it gets there, so a
        # 100 MB cell costs 32 KB, not the file decoded.
        csv.field_size_limit(limits.max_cell_chars)
        grid: list[list[object]] = []
        reader = csv.reader(io.TextIOWrapper(fp, encoding=codec, newline=""), delimiter=delimiter)
        try:
            for row in reader:
                if len(grid) >= limits.max_rows or len(row) > limits.max_cols:
                    raise InvalidFile(message("dimension", path.name, sheet=path.name, ref="",
                                              rows=len(grid) + 1, cols=len(row), max_rows=limits.max_rows,
                                              max_cols=limits.max_cols))
                grid.append([v if v.strip() else None for v in row] if row else [])
        except UnicodeDecodeError:
            raise InvalidFile(_undecodable(path.name, encoding, _bad_line(fp, codec, skip))) from None
        except csv.Error as e:
            if "field limit" in str(e):
                where = tr(f"第 {reader.line_num} 行", f"line {reader.line_num}")
                raise InvalidFile(message("long_text", path.name, where=where, where_en=where,
                                          n=limits.max_cell_chars, limit=limits.max_cell_chars)) from None
            raise InvalidFile(tr(f"无法读取“{shown(path.name)}”第 {reader.line_num} 行：{e}",
                                 f"cannot read '{shown(path.name)}' line {reader.line_num}: {e}")) from None
    return RawSheet(path.name, "", grid, encoding=encoding)


# ---- .xlsx / .xlsm -----------------------------------------------------------------------------

def _read_xlsx(path: Path, sheet: str | None, limits: Limits) -> RawSheet:
    from .xlsx_safety import open_package

    with open_package(path, limits, errors_of=True) as pkg:
        names = [s.name for s in pkg.sheets]
        visible = [s.name for s in pkg.sheets if s.state == "visible" and s.kind == "worksheet"]
        name = _pick_sheet(path.name, sheet, names, visible)
        grid, merged = _calamine_grid(pkg, name)
    raw = RawSheet(path.name, name, grid, sheets=names)
    _fill_merged(raw, merged)
    return raw


def _calamine_grid(pkg, name: str) -> tuple[list[list[object]], list]:
    """Return (grid, merged ranges) of a checked sheet, read once by calamine.

    As workbook.read_grid (whose rules it follows: from the checked file object, error cells put
    back as their text, "" as None), plus calamine's merged ranges of the same sheet object, so
    the sheet is parsed once.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    found = pkg.worksheet(name)
    pkg.fp.seek(0)
    try:
        book = CalamineWorkbook.from_filelike(pkg.fp)
        try:
            ws = book.get_sheet_by_name(found.name)
            grid = ws.to_python(skip_empty_area=False)
            try:
                merged = list(ws.merged_cell_ranges or [])
            except Exception:  # merged ranges are a convenience; the data is what matters
                merged = []
        finally:
            book.close()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # CalamineError, and a Rust panic (a BaseException)
        if not isinstance(e, (CalamineError, Exception)) and type(e).__name__ != "PanicException":
            raise
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InvalidFile(message("corrupt", pkg.name, detail=detail)) from None
    if pkg.changed_on_disk():
        raise pkg.refuse("changed")
    scan = pkg.scans.get(found.part)
    for r, c, text in scan.errors if scan else ():
        if r <= len(grid) and c <= len(grid[r - 1]) and grid[r - 1][c - 1] == "":
            grid[r - 1][c - 1] = text
    for row in grid:  # in place, cell by cell: most rows have an empty cell or two, not many
        if "" in row:
            j = row.index("")
            try:
                while True:
                    row[j] = None
                    j = row.index("", j + 1)
            except ValueError:
                pass
    return grid, merged


def _pick_sheet(file: str, sheet: str | None, names: list[str], visible: list[str]) -> str:
    if sheet is None:
        if not (visible or names):
            raise InvalidFile(tr(f"“{shown(file)}”中没有工作表", f"'{shown(file)}' has no worksheet"))
        return (visible or names)[0]
    for n in names:
        if n == sheet or n.strip().casefold() == sheet.strip().casefold():
            return n
    if sheet.isdigit() and 1 <= int(sheet) <= len(names):
        return names[int(sheet) - 1]
    raise NotFound(tr(f"“{shown(file)}”中没有工作表“{shown(sheet)}”；可选：{'、'.join(map(shown, names))}",
                      f"'{shown(file)}' has no sheet '{shown(sheet)}'; choose one of: "
                      f"{', '.join(map(shown, names))}"))


def _fill_merged(raw: RawSheet, merged: list) -> None:
    """Copy a merged cell's value down the rows it spans (its first column), and note it."""
    grid = raw.grid
    for (r0, c0), (r1, c1) in merged:
        if r1 <= r0 or r0 >= len(grid) or c0 >= len(grid[r0]):
            continue  # a merge within one row (a title across columns) holds no per-row data
        value = grid[r0][c0]
        if value is None:
            continue
        for r in range(r0 + 1, min(r1, len(grid) - 1) + 1):
            row = grid[r]
            if len(row) <= c0:
                row.extend([None] * (c0 + 1 - len(row)))
            row[c0] = value
        ref = f"{col_letters(c0 + 1)}{r0 + 1}:{col_letters(c1 + 1)}{r1 + 1}"
        raw.notes.append(tr(f"合并单元格 {ref} 的值“{value}”已填入第 {r0 + 1}–{r1 + 1} 行",
                            f"merged cells {ref}: the value '{value}' was filled into rows {r0 + 1}–{r1 + 1}"))


# ---- .xls (legacy BIFF) ------------------------------------------------------------------------

def _read_xls(path: Path, sheet: str | None, limits: Limits) -> RawSheet:
    size = path.stat().st_size
    if size == 0:
        raise InvalidFile(message("empty", path.name))
    if size > limits.max_file_bytes:
        raise InvalidFile(message("file_big", path.name, size=f"{size >> 20} MiB",
                                  limit=f"{limits.max_file_bytes >> 20} MiB"))
    with open(path, "rb") as fp:
        head = fp.read(8)
        if head.startswith(b"PK"):  # an .xlsx renamed to .xls: read it as what it is
            return _read_xlsx(path, sheet, limits)
        if head != b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise InvalidFile(message("not_zip", path.name))
        from .xlsx_safety import _ole_kind

        kind = _ole_kind(fp, size)
    if kind != "xls":
        raise InvalidFile(message(kind, path.name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run([sys.executable, "-c", "from crmsync.readers import _xls_child; _xls_child()"],
                              input=pickle.dumps((str(path), sheet)), capture_output=True,
                              timeout=_XLS_SECONDS, env=env,
                              preexec_fn=_limit_child if os.name == "posix" else None)
    except subprocess.TimeoutExpired:
        raise InvalidFile(tr(f"无法读取“{shown(path.name)}”：读取超过 {_XLS_SECONDS} 秒，已停止",
                             f"cannot read '{shown(path.name)}': reading took over {_XLS_SECONDS} s; stopped")) from None
    if done.returncode != 0 or not done.stdout:
        detail = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["killed"])[-1][:200]
        raise InvalidFile(message("corrupt", path.name, detail=detail))
    status, payload = pickle.loads(done.stdout)  # our own child's answer
    if status == "missing_sheet":
        names = payload
        _pick_sheet(path.name, sheet, names, names)  # raises NotFound with the choices
    if status != "ok":
        raise InvalidFile(message("corrupt", path.name, detail=str(payload)[:200]))
    name, names, grid, merged = payload
    raw = RawSheet(path.name, name, grid, sheets=names)
    _fill_merged(raw, merged)
    return raw


def _limit_child() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (_XLS_MEMORY, _XLS_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (_XLS_SECONDS, _XLS_SECONDS))


def _xls_child() -> None:  # pragma: no cover - runs in a child process
    """Read one sheet of an .xls named on stdin and write the pickled answer to stdout."""
    from python_calamine import CalamineWorkbook

    path, sheet = pickle.loads(sys.stdin.buffer.read())
    try:
        book = CalamineWorkbook.from_path(path)
        names = list(book.sheet_names)
        if sheet is None:
            visible = [m.name for m in book.sheets_metadata if str(m.visible).endswith("Visible")]
            name = (visible or names or [None])[0]
        else:
            name = next((n for n in names if n.strip().casefold() == sheet.strip().casefold()), None)
            if name is None and sheet.isdigit() and 1 <= int(sheet) <= len(names):
                name = names[int(sheet) - 1]
        if name is None:
            answer = ("missing_sheet", names)
        else:
            ws = book.get_sheet_by_name(name)
            grid = ws.to_python(skip_empty_area=False)
            merged = list(ws.merged_cell_ranges or [])
            for r, c, text in _xls_errors(path, name):  # calamine gives an error cell as ""
                if r < len(grid) and c < len(grid[r]) and grid[r][c] == "":
                    grid[r][c] = text
            grid = [[None if v == "" else _xls_value(v) for v in row] for row in grid]
            answer = ("ok", (name, names, grid, merged))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
        answer = ("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    sys.stdout.buffer.write(pickle.dumps(answer))


def _xls_value(v: object) -> object:
    """Return a plain picklable value (calamine may give error objects)."""
    if v is None or isinstance(v, (str, int, float, bool)) or type(v).__module__ == "datetime":
        return v
    text = str(v)
    return text if text.startswith("#") else f"#{text.upper()}" if text else None


_XLS_ERRORS = {0x00: "#NULL!", 0x07: "#DIV/0!", 0x0F: "#VALUE!", 0x17: "#REF!", 0x1D: "#NAME?",
               0x24: "#NUM!", 0x2A: "#N/A", 0x2B: "#GETTING_DATA"}


def _xls_errors(path: str, sheet: str) -> list[tuple[int, int, str]]:  # pragma: no cover - in the child
    """Return (row, col, error text), 0-based, of a BIFF8 sheet's error cells.

    calamine reads them as empty; the importer must report them.  Walks the Workbook stream's
    records: BOUNDSHEET gives each sheet's offset; in that sheet's substream BOOLERR cells with
    the error flag and FORMULA cells whose cached result is an error.
    """
    import struct

    import olefile

    ole = olefile.OleFileIO(path)
    try:
        stream = next((s for s in ("Workbook", "Book") if ole.exists(s)), None)
        if stream is None:
            return []
        data = ole.openstream(stream).read()
    finally:
        ole.close()
    offsets: dict[str, int] = {}
    pos = 0
    while pos + 4 <= len(data):
        kind, size = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4:pos + 4 + size]
        if kind == 0x0085 and len(body) >= 8:  # BOUNDSHEET
            cch, high = body[6], body[7] & 1
            raw = body[8:8 + cch * (2 if high else 1)]
            offsets[raw.decode("utf-16-le" if high else "latin-1", "replace")] = struct.unpack_from("<I", body)[0]
        elif kind == 0x000A:  # EOF of the globals
            break
        pos += 4 + size
    pos = offsets.get(sheet)
    if pos is None:
        return []
    found = []
    while pos + 4 <= len(data):
        kind, size = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4:pos + 4 + size]
        if kind == 0x0205 and len(body) >= 8 and body[7] == 1:  # BOOLERR holding an error
            r, c = struct.unpack_from("<HH", body)
            found.append((r, c, _XLS_ERRORS.get(body[6], "#N/A")))
        elif kind == 0x0006 and len(body) >= 14 and body[12:14] == b"\xff\xff" and body[6] == 2:  # FORMULA → error
            r, c = struct.unpack_from("<HH", body)
            found.append((r, c, _XLS_ERRORS.get(body[8], "#N/A")))
        elif kind == 0x000A:  # EOF of the sheet
            break
        pos += 4 + size
    return found
