"""The bounds a workbook file must stay within, and the one-line refusals when it does not.

Shared by the safety check (xlsx_safety, xlsx_scan) and the writer (xlsx_write): ``Limits``, the
message table, A1 references, and ``shown`` — how a file, sheet or part name is printed so that
control characters and right-to-left marks in it can neither break the line nor disguise it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from . import i18n

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
    "no_workbook": ("不是 Excel 工作簿（文件中没有工作簿部件，可能是改了扩展名的 Word 或其他 Office 文件）",
                    "not an Excel workbook (the package holds no workbook part: a renamed Word or other Office file?)"),
    "sheet_name": (
        "工作表名“{sheet}”含有控制字符或不可见的文字方向符（{chars}），可能用来伪装名称；请在 Excel 中重命名该工作表",
        "the sheet name {sheet} holds control or invisible direction characters ({chars}), which can disguise "
        "a name; rename the sheet in Excel",
    ),
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
    "long_text": ("{where}中有一段文本长达 {n} 个字符以上，超过 Excel 单元格的上限 {limit} 个字符",
                  "{where_en} holds a text of {n}+ characters, over Excel's cell limit of {limit}"),
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
    """Return the one-line refusal for key, naming the file, in the user's language.

    Names (the file's, a sheet's, a part's) are passed through ``shown``.
    """
    zh, en = _MESSAGES[key]
    kw = {k: shown(v) if isinstance(v, str) else v for k, v in kw.items()}
    if (lang or i18n.lang()) == "en":
        return f'Cannot read "{shown(name)}": ' + en.format(**kw)
    return f"无法读取“{shown(name)}”：" + zh.format(**kw)


def say(lang: str | None, zh: str, en: str) -> str:
    """Return zh or en for lang (None: the user's language)."""
    return en if (lang or i18n.lang()) == "en" else zh


# Cc control, Cf format (bidi marks and overrides, zero-width), Cs lone surrogates (undecodable
# bytes in a file name), Zl/Zp line and paragraph separators.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def hidden_chars(text: str) -> list[str]:
    """Return the control, invisible-format and line-separator characters of text, in order."""
    return [ch for ch in text if unicodedata.category(ch) in _HIDDEN]


def shown(text: str) -> str:
    """Return text with every control or invisible character written as ``\\uXXXX``.

    So a name in a message stays on one line and shows what it really holds: "报价\\u202excod.xlsm",
    not a right-to-left override that makes it read "报价mslx.docx".
    """
    if text.isprintable():
        return text
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


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


