"""Python values to worksheet cell XML: inline text, numbers, booleans, dates as serials.

The hot path (``write_rows``) writes plain str/int/float without a function call per cell;
everything else goes through ``cell_xml``, which refuses what Excel would silently change (over 15
digits, infinities, timezones, over-long text) with a message naming the row and column.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from .errors import InvalidInput
from .xlsx_limits import col_letters, say

if TYPE_CHECKING:
    from .xlsx_sheet import Template
    from .xlsx_styles import Styles
    from .xlsx_zip import Spool

EXCEL_MAX_CHARS = 32_767


_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")
# Characters XML 1.0 cannot hold: written as Excel's _xHHHH_ escapes, which Excel and calamine
# read back as the character (so nothing is dropped silently; validation reports them).
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NOT_TEXT = re.compile("[\ud800-\udfff\ufffe\uffff]")  # lone surrogates, noncharacters
_XESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")
_EPOCH_1900 = dt.datetime(1899, 12, 30)
_EPOCH_1904 = dt.datetime(1904, 1, 1)
MAX_EXACT = 10 ** 15  # Excel keeps 15 significant digits


def escape_text(text: str) -> str:
    """Return text escaped for a worksheet's XML, losslessly (control characters as ``_xHHHH_``)."""
    text = _XESCAPE.sub(r"_x005F_\1", text)  # Excel reads _x000D_ as an escape: keep a literal one literal
    text = _UNWRITABLE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def where(lang: str | None, row: int, col: int) -> str:
    return say(lang, f"第 {row} 行 {col_letters(col)} 列", f"row {row}, column {col_letters(col)}")


def bad_value(lang: str | None, row: int, col: int, zh: str, en: str) -> InvalidInput:
    return InvalidInput(say(lang, f"{where(lang, row, col)}：{zh}", f"{where(lang, row, col)}: {en}"))


def date_serial(value: dt.date | dt.datetime | dt.time, date1904: bool, lang, row: int, col: int) -> str:
    """Return an Excel date serial for a date, datetime or time."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise bad_value(lang, row, col, "带时区的时间无法写入 Excel，请先转换为本地时间",
                             "a time with a timezone cannot go into Excel; convert it to local time first")
        secs = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return repr(secs / 86400)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise bad_value(lang, row, col, "带时区的日期时间无法写入 Excel，请先转换为本地时间",
                             "a datetime with a timezone cannot go into Excel; convert it to local time first")
        moment = value
    else:
        moment = dt.datetime(value.year, value.month, value.day)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    if moment < (epoch if date1904 else dt.datetime(1900, 1, 1)):
        raise bad_value(lang, row, col, f"日期 {value} 早于 Excel 能表示的最早日期",
                         f"the date {value} is earlier than Excel can hold")
    delta = moment - epoch
    days = delta.days - (1 if not date1904 and moment < dt.datetime(1900, 3, 1) else 0)  # Excel's 1900-02-29
    if not (delta.seconds or delta.microseconds):
        return str(days)
    return repr(days + (delta.seconds + delta.microseconds / 1e6) / 86400)


def number_text(value: object, lang, row: int, col: int) -> str | None:
    """Return the XML text of a number, None for NaN (an empty cell); raise for what Excel would change."""
    if isinstance(value, float):
        if value != value:
            return None
        if math.isinf(value):
            raise bad_value(lang, row, col, "无穷大无法写入 Excel", "infinity cannot go into Excel")
        return float.__repr__(value)  # not repr(): numpy 2 writes np.float64(2.5)
    if isinstance(value, int):
        if abs(value) >= MAX_EXACT:
            raise bad_value(lang, row, col, f"数字 {value} 超过 15 位，Excel 会丢失精度；请作为文本保存",
                             f"the number {value} has over 15 digits and Excel would lose some; store it as text")
        return int.__repr__(value)  # an IntEnum's str() is its name
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if not value.is_finite() or Decimal(repr(float(value))) != value:
            raise bad_value(lang, row, col, f"数字 {value} 无法在 Excel 中精确保存；请作为文本保存",
                             f"the number {value} cannot be held exactly by Excel; store it as text")
        return repr(float(value))
    raise TypeError(value)


def cell_xml(ref: str, value: object, s: int, styles: Styles, date1904: bool, lang, row: int, col: int) -> str:
    """Return the XML of one cell holding value with style s ("" for an empty unstyled cell)."""
    sattr = f' s="{s}"' if s else ""
    if value is None or (isinstance(value, str) and not value) or type(value).__name__ == "NAType":
        return f'<c r="{ref}"{sattr}/>' if s else ""
    if isinstance(value, str):
        return text_cell_xml(ref, sattr, str.__str__(value), lang, row, col)  # a StrEnum: its value
    if isinstance(value, bool):
        return f'<c r="{ref}"{sattr} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float, Decimal)):
        text = number_text(value, lang, row, col)
        if text is None:
            return f'<c r="{ref}"{sattr}/>' if s else ""
        return f'<c r="{ref}"{sattr}><v>{text}</v></c>'
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        if value != value:  # pandas NaT
            return f'<c r="{ref}"{sattr}/>' if s else ""
        kind = "time" if isinstance(value, dt.time) else "datetime" if isinstance(value, dt.datetime) else "date"
        s = styles.date_style(s, kind)
        return f'<c r="{ref}" s="{s}"><v>{date_serial(value, date1904, lang, row, col)}</v></c>'
    if isinstance(value, dt.timedelta):
        s = styles.date_style(s, "duration")
        return f'<c r="{ref}" s="{s}"><v>{repr(value.total_seconds() / 86400)}</v></c>'
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return cell_xml(ref, item(), s, styles, date1904, lang, row, col)
    raise bad_value(lang, row, col, f"无法写入 {type(value).__name__} 类型的值 {value!r:.40}",
                     f"cannot write a value of type {type(value).__name__} ({value!r:.40})")


def text_cell_xml(ref: str, sattr: str, value: str, lang, row: int, col: int) -> str:
    chars = len(value)
    if chars > EXCEL_MAX_CHARS:
        raise bad_value(lang, row, col, f"文本有 {chars} 个字符，超过 Excel 单元格上限 {EXCEL_MAX_CHARS}",
                        f"the text has {chars} characters, over Excel's cell limit of {EXCEL_MAX_CHARS}")
    space = ' xml:space="preserve"' if value[:1] in " \t\n" or value[-1:] in " \t\n" else ""
    if _SPECIAL.search(value):
        if m := _NOT_TEXT.search(value):
            raise bad_value(lang, row, col, f"文本含有无法保存的字符 U+{ord(m.group()):04X}（损坏的 Unicode 文本）",
                            f"the text holds U+{ord(m.group()):04X}, which cannot be stored (damaged Unicode text)")
        value = escape_text(value)
    return f'<c r="{ref}"{sattr} t="inlineStr"><is><t{space}>{value}</t></is></c>'


def write_rows(spool: Spool, rows: Sequence[Sequence[object]], start_row: int, template: Template,
               styles: Styles, date1904: bool, lang, prefix: bytes = b"",
               styled: Mapping[tuple[int, int], Callable[[int, int], int]] | None = None) -> None:
    """Stream rows as ``<row>`` elements into spool (the hot path: plain str/float/int inline).

    :param prefix: the namespace prefix of a sheet written as ``<x:row>`` (b"x:"), else b"".
    :param styled: (index in rows from 0, column from 1) → a function of (the cell's style, its
        column's style) giving the style that cell takes instead (a link, a marked cell).
    """
    from .xlsx_sheet import with_prefix

    width = max((len(r) for r in rows), default=0)
    letters = [col_letters(c + 1) for c in range(width)]
    style = [template.style(c + 1) for c in range(width)]
    sattr = [f' s="{s}"' if s else "" for s in style]
    empty = [template.empty_attr(c + 1) for c in range(width)]
    special, limit = _SPECIAL.search, EXCEL_MAX_CHARS
    styled_rows: dict[int, int] = {}  # row index → its last styled column
    for i, c in styled or ():
        styled_rows[i] = max(styled_rows.get(i, 0), c)
    batch: list[str] = []
    for i, values in enumerate(rows):
        r = start_row + i
        rs = str(r)
        batch.append(f'<row r="{rs}">')
        if i in styled_rows:
            cols = max(len(values), styled_rows[i])
            for j in range(cols):
                v = values[j] if j < len(values) else None
                s = style[j] if j < width else template.style(j + 1)
                op = styled.get((i, j + 1))
                if op is not None:
                    s = op(s, template.col.get(j + 1, 0))
                xml = cell_xml(f"{col_letters(j + 1)}{rs}", v, s, styles, date1904, lang, r, j + 1)
                if not xml and j < width and empty[j] and op is None:
                    xml = f'<c r="{letters[j]}{rs}"{empty[j]}/>'
                batch.append(xml)
            batch.append("</row>")
            continue
        for j, v in enumerate(values):
            t = type(v)
            if t is str and v and len(v) <= limit and not special(v):
                sp = ' xml:space="preserve"' if v[0] in " \t\n" or v[-1] in " \t\n" else ""
                batch.append(f'<c r="{letters[j]}{rs}"{sattr[j]} t="inlineStr"><is><t{sp}>{v}</t></is></c>')
            elif v is None or (t is str and not v):
                if empty[j]:
                    batch.append(f'<c r="{letters[j]}{rs}"{empty[j]}/>')
            elif (t is float and v == v and v not in (math.inf, -math.inf)) or (t is int and -MAX_EXACT < v < MAX_EXACT):
                batch.append(f'<c r="{letters[j]}{rs}"{sattr[j]}><v>{v!r}</v></c>')
            else:
                xml = cell_xml(f"{letters[j]}{rs}", v, style[j], styles, date1904, lang, r, j + 1)
                if not xml and empty[j]:
                    xml = f'<c r="{letters[j]}{rs}"{empty[j]}/>'
                batch.append(xml)
        batch.append("</row>")
        if len(batch) > 20_000:
            spool.write(with_prefix("".join(batch).encode("utf-8"), prefix))
            batch.clear()
    spool.write(with_prefix("".join(batch).encode("utf-8"), prefix))
