"""Writing a workbook's zip: parts copied exactly as stored, new parts deflated, atomic replace.

``write_package`` copies every entry of the source package it is not told to change — the stored,
compressed bytes, in the same order, with the same names and timestamps — writes the changed
parts from memory or from a ``Spool`` (a part deflated into a temporary file as it is produced),
and moves the result over the target with ``os.replace`` after an fsync.  On any failure the
target is untouched and no temporary file is left.
"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import InvalidFile, InvalidInput
from .xlsx_limits import _Refused, say, shown
from .xlsx_safety import Package

_LEVEL = 1  # deflate level for new parts: sheet XML is repetitive, level 1 is ~4× faster than 6


class Spool:
    """A new part, deflated into a temporary file as it is written (closed on exit when used with ``with``).

    A small part is deflated in one go by ``finish``.  A large one is cut into 8 MB segments,
    each deflated by a pool of worker threads (zlib lets go of the GIL, so they run on every
    core while the caller goes on producing the part) and ended with a sync flush; the
    segments, written in order and closed by an empty final block, make one deflate stream —
    as pigz makes its output.  The CRC is taken in order as segments are handed over.
    """

    _BATCH = 8 << 20
    _WORKERS = 2

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.crc = self.size = self.compressed = 0
        self._pending: list = []
        self._pending_size = 0
        self._pool: ThreadPoolExecutor | None = None
        self._segments: deque = deque()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, data) -> None:
        """Add bytes (or a memoryview, kept alive until deflated) to the part."""
        if not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self._BATCH:
            self._hand_over()

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        return data

    def _hand_over(self) -> None:
        segment = self._take()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._WORKERS, thread_name_prefix="crmsync-deflate")
        self._segments.append(self._pool.submit(_deflate_segment, segment))
        while len(self._segments) > self._WORKERS + 1:  # bounded memory: write the oldest when it is done
            self.file.write(self._segments.popleft().result())

    def finish(self) -> Spool:
        if self._pool is None:
            z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
            self.file.write(z.compress(self._take()) + z.flush())
        else:
            if self._pending:
                self._hand_over()
            while self._segments:
                self.file.write(self._segments.popleft().result())
            self.file.write(_FINAL_BLOCK)
            self._pool.shutdown()
            self._pool = None
        self.compressed = self.file.tell()
        self.file.seek(0)
        return self

    def chunks(self) -> Iterator[bytes]:
        while data := self.file.read(1 << 20):
            yield data

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
        finally:
            self._pending, self._segments = [], deque()
            self.file.close()


_FINAL_BLOCK = b"\x03\x00"  # an empty, final, fixed-Huffman block: ends a stream of sync-flushed segments


def _deflate_segment(data: bytes) -> bytes:
    z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def _dos(date_time: tuple) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((max(y, 1980) - 1980) << 9) | (mo << 5) | d


def _name_bytes(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    try:
        return info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), info.flag_bits | 0x800


class ZipOut:
    """Writes zip entries: copied as stored, or new from a spool; then the central directory."""

    def __init__(self, f):
        self.f = f
        self.central: list[bytes] = []

    def _entry(self, info: zipfile.ZipInfo, method: int, crc: int, csize: int, usize: int, chunks: Iterable[bytes]):
        if max(csize, usize, self.f.tell()) >= 0xFFFFFFFF:
            raise InvalidInput(say(None, "写入后的工作簿将超过 4 GB，无法写入", "the workbook would exceed 4 GB; not written"))
        name, flags = _name_bytes(info)
        flags &= ~0x08  # sizes go in the header, no data descriptor
        dostime, dosdate = _dos(info.date_time)
        offset = self.f.tell()
        version = max(info.extract_version, 20)
        self.f.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, flags, method, dostime, dosdate,
                                 crc, csize, usize, len(name), 0) + name)
        for data in chunks:
            self.f.write(data)
        comment = info.comment or b""
        self.central.append(struct.pack(
            "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", info.create_version, info.create_system, version, flags,
            method, dostime, dosdate, crc, csize, usize, len(name), 0, len(comment), 0, info.internal_attr,
            info.external_attr, offset) + name + comment)

    def copy(self, pkg: Package, info: zipfile.ZipInfo) -> None:
        self._entry(info, info.compress_type, info.CRC, info.compress_size, info.file_size, pkg.raw_chunks(info))

    def add(self, info: zipfile.ZipInfo, data: bytes | Spool) -> None:
        if isinstance(data, bytes):
            spool = Spool()
            spool.write(data)
            data = spool.finish()
        try:
            self._entry(info, zipfile.ZIP_DEFLATED, data.crc, data.compressed, data.size, data.chunks())
        finally:
            data.close()

    def close(self, comment: bytes = b"") -> None:
        start = self.f.tell()
        for rec in self.central:
            self.f.write(rec)
        size = self.f.tell() - start
        n = len(self.central)
        if n >= 0xFFFF:
            raise InvalidInput(say(None, "工作簿部件过多，无法写入", "the workbook has too many parts; not written"))
        self.f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, size, start, len(comment)) + comment)


def write_package(pkg: Package, target: Path, changes: dict[str, bytes | Spool], drop: set[str]) -> None:
    """Write pkg to target with changed parts replaced and dropped parts left out, atomically.

    Every other part is copied as stored (same compressed bytes, same order).  The new file is
    written beside target, fsynced, then moved over it; on any failure target is untouched, and
    so it is when the file was saved by someone else (Excel) since it was read: that save is kept.
    """
    folder = target.parent
    same = _same_file(target, Path(pkg.fp.name))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".~{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        _close(changes)
        raise _write_error(pkg, target, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            out = ZipOut(f)
            for info in pkg.entries:
                if info.filename in drop:
                    continue
                if info.filename in changes:
                    out.add(info, changes.pop(info.filename))
                else:
                    out.copy(pkg, info)
            for name in list(changes):  # parts the source did not have
                out.add(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), changes.pop(name))
            out.close(pkg.comment)
            f.flush()
            os.fsync(f.fileno())
        like = target if target.exists() else Path(pkg.fp.name)
        os.chmod(tmp, stat.S_IMODE(os.stat(like).st_mode))
        if same and pkg.changed_on_disk(target):
            raise InvalidFile(say(pkg.lang, f"无法写入“{shown(target.name)}”：文件在写入期间被其他程序保存过（例如 Excel），"
                                            "为保留那次保存，未写入任何内容；请重试",
                                  f'cannot write "{shown(target.name)}": another program (Excel?) saved it meanwhile; '
                                  "nothing was written so that save is kept; try again"))
        pkg.close()  # Windows cannot replace a file that is still open
        os.replace(tmp, target)
    except BaseException as e:
        _close(changes)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, _Refused):
            raise pkg.refuse(e.key, **e.kw) from None
        if isinstance(e, OSError):
            raise _write_error(pkg, target, e) from None
        raise
    _fsync_dir(folder)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _close(changes: dict) -> None:
    for data in changes.values():
        if isinstance(data, Spool):
            data.close()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows has no directory fsync; os.replace is already durable there
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(pkg: Package, target: Path, e: OSError) -> InvalidFile:
    name = shown(target.name)
    if isinstance(e, PermissionError):
        return InvalidFile(say(pkg.lang, f"无法写入“{name}”：没有权限，或文件正在 Excel 中打开；请关闭文件后重试，原文件未改动",
                               f'cannot write "{name}": permission denied, or the file is open in Excel; '
                               "close it and try again (the original is unchanged)"))
    return InvalidFile(say(pkg.lang, f"无法写入“{name}”：{e.strerror or e}；原文件未改动",
                           f'cannot write "{name}": {e.strerror or e} (the original is unchanged)'))
