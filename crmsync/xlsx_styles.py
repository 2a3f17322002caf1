"""The workbook's cell formats (styles.xml), extended with date formats when a date needs one."""

from __future__ import annotations

import re

from .errors import InvalidFile
from .xlsx_limits import say, shown
from .xlsx_safety import Package
from .xlsx_sheet import tag_attrs, to_int


_DATE_IDS = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
_FORMATS = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss", "time": "hh:mm:ss", "duration": "[h]:mm:ss"}
_XF = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?xf\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?xf>)", re.S)
_CELLXFS = re.compile(rb"(<(?:[A-Za-z_][\w.\-]*:)?cellXfs\b[^>]*>)(.*?)(</(?:[A-Za-z_][\w.\-]*:)?cellXfs>)", re.S)
_NUMFMT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?numFmt\b([^>]*?)/?>")


def _is_date_code(code: str) -> bool:
    code = re.sub(r'"[^"]*"|\\.|\[(?!h\]|m\]|s\])[^\]]*\]', "", code.lower())
    return any(ch in code for ch in "ymdhs")


class Styles:
    """The workbook's cell formats, extended (once per base style and kind) with date formats."""

    def __init__(self, pkg: Package):
        self.pkg = pkg
        self.changed = False
        self._loaded = False
        self._cache: dict[tuple[int, str], int] = {}

    def _load(self) -> None:
        self._loaded = True
        if not self.pkg.styles:
            raise InvalidFile(say(self.pkg.lang, f"无法写入“{shown(self.pkg.name)}”：工作簿没有样式部件，无法写入日期；"
                                                 "请在 Excel 中打开并保存一次后再试",
                                  f'cannot write "{shown(self.pkg.name)}": the workbook has no styles part, so dates '
                                  "cannot be written; open and save it in Excel once, then try again"))
        self.data = self.pkg.read(self.pkg.styles)
        self.formats: dict[int, str] = {}
        for m in _NUMFMT.finditer(self.data):
            a = tag_attrs(m.group(1))
            if to_int(a.get(b"numFmtId"), -1) >= 0:
                code = a.get(b"formatCode", b"").decode("utf-8", "replace")
                self.formats[to_int(a[b"numFmtId"], 0)] = code.replace("&quot;", '"').replace("&amp;", "&")
        m = _CELLXFS.search(self.data)
        self.xfs = _XF.findall(m.group(2)) if m else []
        self.new_formats: dict[int, str] = {}
        self.new_xfs: list[bytes] = []

    def is_date(self, s: int) -> bool:
        if not self._loaded:
            self._load()
        xfs = self.xfs + self.new_xfs
        if s >= len(xfs):
            return False
        fmt = to_int(tag_attrs(xfs[s]).get(b"numFmtId"), 0)
        return fmt in _DATE_IDS or _is_date_code({**self.formats, **self.new_formats}.get(fmt, ""))

    def date_style(self, s: int, kind: str) -> int:
        """Return s if it already shows a date/time, else a style like s with a date format."""
        key = (s, kind)
        if key in self._cache:
            return self._cache[key]
        if self.is_date(s) and kind != "duration":
            self._cache[key] = s
            return s
        code = _FORMATS[kind]
        known = {**self.formats, **self.new_formats}
        fmt = next((i for i, c in known.items() if c == code), None)
        if fmt is None:
            fmt = max([163, *known]) + 1
            self.new_formats[fmt] = code
        base = (self.xfs + self.new_xfs)[s] if s < len(self.xfs) + len(self.new_xfs) else (
            b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>')
        base = re.sub(rb'\s(numFmtId|applyNumberFormat)\s*=\s*"[^"]*"', b"", base)
        xf = re.sub(rb"^<((?:[A-Za-z_][\w.\-]*:)?xf)\b", lambda m: b"<" + m.group(1)
                    + f' numFmtId="{fmt}" applyNumberFormat="1"'.encode(), base)
        self.new_xfs.append(xf)
        self.changed = True
        new = len(self.xfs) + len(self.new_xfs) - 1
        self._cache[key] = new
        return new

    def to_bytes(self) -> bytes:
        data = self.data
        if self.new_formats:
            add = b"".join(f'<numFmt numFmtId="{i}" formatCode="{c}"/>'.encode() for i, c in self.new_formats.items())
            m = re.search(rb"(<(?:[A-Za-z_][\w.\-]*:)?numFmts\b[^>]*>)(.*?)(</(?:[A-Za-z_][\w.\-]*:)?numFmts>)", data, re.S)
            if m:
                count = len(_NUMFMT.findall(m.group(2))) + len(self.new_formats)
                start = set_count(m.group(1), count)
                data = data[:m.start()] + start + m.group(2) + add + m.group(3) + data[m.end():]
            else:
                root = re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?styleSheet\b[^>]*>", data)
                data = (data[:root.end()] + f'<numFmts count="{len(self.new_formats)}">'.encode() + add
                        + b"</numFmts>" + data[root.end():])
        m = _CELLXFS.search(data)
        start = set_count(m.group(1), len(self.xfs) + len(self.new_xfs))
        return data[:m.start()] + start + m.group(2) + b"".join(self.new_xfs) + m.group(3) + data[m.end():]


def set_count(tag: bytes, count: int) -> bytes:
    if re.search(rb'\scount\s*=\s*"', tag):
        return re.sub(rb'(\scount\s*=\s*")[^"]*(")', lambda m: m.group(1) + str(count).encode() + m.group(2), tag)
    return tag[:-1] + f' count="{count}">'.encode()
