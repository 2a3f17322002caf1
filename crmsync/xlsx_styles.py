"""The workbook's cell formats (styles.xml), extended only as far as a write needs.

- a date format, when a date goes into a cell whose style is not a date format;
- a fill variant of a cell format (a marked cell: the same format with a light-red fill, number
  format, font, border and alignment kept), and the way back to the format without it;
- a link variant (the same format with a blue underlined font) for hyperlink cells.

Every variant is looked up among the existing formats first, so running the same write twice
adds nothing the second time and styles.xml stays byte-identical.
"""

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
_P = rb"(?:[A-Za-z_][\w.\-]*:)?"
_FILLS = re.compile(rb"(<" + _P + rb"fills\b[^>]*?)(/>|>(.*?)</" + _P + rb"fills>)", re.S)
_FILL = re.compile(rb"<" + _P + rb"fill\b[^>]*?(?:/>|>.*?</" + _P + rb"fill>)", re.S)
_FONTS = re.compile(rb"(<" + _P + rb"fonts\b[^>]*?)(/>|>(.*?)</" + _P + rb"fonts>)", re.S)
_FONT = re.compile(rb"<" + _P + rb"font\b[^>]*?(?:/>|>.*?</" + _P + rb"font>)", re.S)
_XF_HEAD = re.compile(rb"^<((?:[A-Za-z_][\w.\-]*:)?xf)\b([^>]*?)(/?)>")
_LINK_COLOR = b"FF0563C1"  # Excel's Hyperlink cell style colour


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

    # -- fill and font variants (marks and links) --

    def _load_parts(self) -> None:
        if not self._loaded:
            self._load()
        if hasattr(self, "fills"):
            return
        m = _FILLS.search(self.data)
        self.fills = _FILL.findall(m.group(3) or b"") if m else []
        m = _FONTS.search(self.data)
        self.fonts = _FONT.findall(m.group(3) or b"") if m else []
        self.new_fills: list[bytes] = []
        self.new_fonts: list[bytes] = []

    def _xf(self, s: int) -> tuple[bytes, dict[bytes, bytes], bytes]:
        """Return (tag name, attributes, inner XML) of cell format s."""
        xfs = self.xfs + self.new_xfs
        xf = xfs[s] if 0 <= s < len(xfs) else b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        m = _XF_HEAD.match(xf)
        inner = b"" if m.group(3) else xf[m.end():xf.rfind(b"</")]
        return m.group(1), tag_attrs(m.group(2)), inner

    @staticmethod
    def _same(a: dict[bytes, bytes], b: dict[bytes, bytes], ignore: tuple[bytes, ...]) -> bool:
        return ({k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore})

    def _find_or_add(self, name: bytes, attrs: dict[bytes, bytes], inner: bytes, ignore: tuple[bytes, ...]) -> int:
        """Return the index of a cell format equal to this one (ignoring ``apply*`` flags given), else add it."""
        for i in range(len(self.xfs) + len(self.new_xfs)):
            _, a, n = self._xf(i)
            if n == inner and self._same(a, attrs, ignore):
                return i
        body = b"".join(b" " + k + b'="' + v + b'"' for k, v in attrs.items())
        self.new_xfs.append(b"<" + name + body + (b">" + inner + b"</" + name + b">" if inner else b"/>"))
        self.changed = True
        return len(self.xfs) + len(self.new_xfs) - 1

    def _fill_is(self, fill_id: int, rgb: str) -> bool:
        fills = self.fills + self.new_fills
        if not 0 <= fill_id < len(fills):
            return False
        f = fills[fill_id]
        m = re.search(rb'<(?:[A-Za-z_][\w.\-]*:)?fgColor\b[^>]*?\brgb\s*=\s*"([0-9A-Fa-f]{6,8})"', f)
        return bool(m and re.search(rb'patternType\s*=\s*"solid"', f)
                    and m.group(1)[-6:].upper() == rgb.upper().encode())

    def _fill_id(self, rgb: str) -> int:
        for i in range(len(self.fills) + len(self.new_fills)):
            if self._fill_is(i, rgb):
                return i
        p = _prefix_of(self.fills[0] if self.fills else b"<fill>")
        self.new_fills.append(b"<%sfill><%spatternFill patternType=\"solid\"><%sfgColor rgb=\"FF%s\"/>"
                              b"<%sbgColor indexed=\"64\"/></%spatternFill></%sfill>"
                              % (p, p, p, rgb.upper().encode(), p, p, p))
        self.changed = True
        return len(self.fills) + len(self.new_fills) - 1

    def has_fill(self, s: int, rgb: str) -> bool:
        """Return whether cell format s has the solid fill rgb ("FFC7CE")."""
        self._load_parts()
        return self._fill_is(to_int(self._xf(s)[1].get(b"fillId"), 0), rgb)

    def fill_style(self, s: int, rgb: str) -> int:
        """Return a cell format like s (number format, font, border, alignment) with the solid fill rgb."""
        key = (s, "fill:" + rgb)
        if key not in self._cache:
            self._load_parts()
            name, attrs, inner = self._xf(s)
            fill = self._fill_id(rgb)
            if to_int(attrs.get(b"fillId"), 0) != fill:
                attrs = {**attrs, b"fillId": str(fill).encode(), b"applyFill": b"1"}
                s = self._find_or_add(name, attrs, inner, (b"applyFill",))
            self._cache[key] = s
        return self._cache[key]

    def unfill_style(self, s: int, rgb: str, prefer: int | None = None) -> int:
        """Return the cell format s had before ``fill_style(…, rgb)``: s itself when it lacks that fill.

        The way back is a format equal to s in everything but its fill (the column's own format
        ``prefer`` first, then one without a fill); failing that, s without a fill.
        """
        key = (s, "unfill:" + rgb, prefer)
        if key not in self._cache:
            self._load_parts()
            name, attrs, inner = self._xf(s)
            back = s
            if self._fill_is(to_int(attrs.get(b"fillId"), 0), rgb):
                ignore = (b"fillId", b"applyFill")
                found = []
                for i in range(len(self.xfs) + len(self.new_xfs)):
                    _, a, n = self._xf(i)
                    if n == inner and self._same(a, attrs, ignore) and not self._fill_is(to_int(a.get(b"fillId"), 0), rgb):
                        found.append((i != prefer, to_int(a.get(b"fillId"), 0) != 0, i))
                if found:
                    back = min(found)[2]
                else:
                    plain = {k: v for k, v in attrs.items() if k != b"applyFill"}
                    back = self._find_or_add(name, {**plain, b"fillId": b"0"}, inner, (b"applyFill",))
            self._cache[key] = back
        return self._cache[key]

    def link_style(self, s: int) -> int:
        """Return a cell format like s whose font is blue and underlined (a hyperlink)."""
        key = (s, "link")
        if key not in self._cache:
            self._load_parts()
            name, attrs, inner = self._xf(s)
            fonts = self.fonts + self.new_fonts
            fid = to_int(attrs.get(b"fontId"), 0)
            base = fonts[fid] if fid < len(fonts) else b"<font/>"
            p = _prefix_of(base)
            body = re.sub(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:u|color)\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?(?:u|color)>)",
                          b"", base, flags=re.S)
            add = b'<%su val="single"/><%scolor rgb="%s"/>' % (p, p, _LINK_COLOR)
            if body.endswith(b"/>"):
                font = body[:-2].rstrip() + b">" + add + b"</" + p + b"font>"
            else:
                at = body.rfind(b"</")
                font = body[:at] + add + body[at:]
            new = fonts.index(font) if font in fonts else None
            if new is None:
                self.new_fonts.append(font)
                self.changed = True
                new = len(fonts)
            if new != fid:
                attrs = {**attrs, b"fontId": str(new).encode(), b"applyFont": b"1"}
                s = self._find_or_add(name, attrs, inner, (b"applyFont",))
            self._cache[key] = s
        return self._cache[key]

    def to_bytes(self) -> bytes:
        data = self.data
        if getattr(self, "new_fills", None):
            data = _append_children(data, _FILLS, self.new_fills, len(self.fills), b"fills")
        if getattr(self, "new_fonts", None):
            data = _append_children(data, _FONTS, self.new_fonts, len(self.fonts), b"fonts")
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


def _prefix_of(element: bytes) -> bytes:
    m = re.match(rb"<([A-Za-z_][\w.\-]*:)?", element)
    return (m.group(1) or b"") if m else b""


def _append_children(data: bytes, pattern: re.Pattern, add: list[bytes], old: int, name: bytes) -> bytes:
    """Return data with elements appended to the collection pattern finds (or a new one), count updated."""
    m = pattern.search(data)
    if m is None:  # no collection at all: Excel always writes one, so this is a hand-made file
        root = re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?styleSheet\b[^>]*>", data)
        return data[:root.end()] + b'<%s count="%d">' % (name, len(add)) + b"".join(add) + b"</%s>" % name + data[root.end():]
    start = set_count(m.group(1) + b">", old + len(add))
    prefix = _prefix_of(m.group(1))
    body = m.group(3) or b""
    return data[:m.start()] + start + body + b"".join(add) + b"</" + prefix + name + b">" + data[m.end():]
