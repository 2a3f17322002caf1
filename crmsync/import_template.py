"""The blank customer import template: one column per field a person types, drop-downs from the
enumerations, and an instructions sheet.

Everything comes from schema.py (fields, labels, required, types) and the store's enumerations, so
a field or list value the admin adds shows up in the next template.  The template imports as it
is: its headers are the fields' labels (required ones marked with *, which header matching
ignores), and phone-like columns are formatted as text so Excel keeps every digit.
"""

from __future__ import annotations

from pathlib import Path

from .enums import Enums
from .normalise import default_enums
from .schema import CUSTOMER, Entity, Field

__all__ = ["write_import_template", "template_fields"]

_TEXT_TYPES = {"mobile", "phone", "credit_code", "id_number", "text", "name", "longtext", "email"}
_EXAMPLES = {
    "customer_name": "杭州示例网络科技有限公司", "credit_code": "91330106MA2XXXXX0X", "contact_name": "张三",
    "mobile": "13812345678", "phone": "0571-88886666", "email": "name@example.com", "tags": "重点,华东",
    "province": "浙江省", "city": "杭州市", "district": "西湖区", "address": "文三路100号",
    "first_deal_date": "2024-05-21", "total_amount": "12000.50", "next_follow_up": "2024-06-01 09:30",
}
_FORMATS = {
    "mobile": ("11位手机号，可带 +86、空格或横线", "11-digit mobile; +86, spaces and dashes are fine"),
    "phone": ("区号-号码，如 010-12345678", "area code and number, e.g. 010-12345678"),
    "email": ("邮箱地址", "email address"),
    "credit_code": ("18位统一社会信用代码", "18-character unified social credit code"),
    "id_number": ("18位身份证号码", "18-character ID number"),
    "date": ("日期，如 2024-05-21、2024/5/21、2024年5月21日", "a date: 2024-05-21, 2024/5/21, 2024年5月21日"),
    "datetime": ("日期时间，如 2024-05-21 14:30", "date and time, e.g. 2024-05-21 14:30"),
    "money": ("金额，如 1234.50 或 1.2万", "an amount: 1234.50 or 1.2万"),
    "int": ("整数", "a whole number"), "bool": ("是 / 否", "yes / no"),
    "tags": ("多个标签用逗号分隔", "several tags separated by commas"),
    "user": ("系统用户名", "a user name"), "team": ("团队名称", "a team name"),
}


def template_fields(entity: Entity = CUSTOMER) -> list[Field]:
    """Return the fields of the template, in schema order: everything a person types."""
    return [f for f in entity.fields if not f.system]


def write_import_template(path: str | Path, *, enums: Enums | None = None, entity: Entity | None = None,
                          lang: str = "zh") -> Path:
    """Write the blank import template to ``path`` (.xlsx) and return the path."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    enums = enums or default_enums()
    entity = entity or CUSTOMER
    en = lang == "en"
    fields = template_fields(entity)
    wb = Workbook()
    ws = wb.active
    ws.title = "Customers" if en else "客户导入"
    lists = wb.create_sheet("Lists" if en else "下拉列表")
    about = wb.create_sheet("Instructions" if en else "填写说明", 1)
    head_fill = PatternFill("solid", fgColor="FFDDEBF7")
    rows = 2000  # validations cover this many rows (grow with Excel's own table if more are typed)
    list_col = 0
    for j, f in enumerate(fields, start=1):
        letter = get_column_letter(j)
        cell = ws.cell(1, j, f.label(lang) + ("*" if f.required else ""))
        cell.font = Font(bold=True, color="FFC00000" if f.required else "FF000000")
        cell.fill = head_fill
        cell.alignment = Alignment(horizontal="center")
        cell.comment = Comment(_help(f, enums, lang), "crmsync", width=300, height=100)
        ws.column_dimensions[letter].width = max(12, min(40, len(f.label(lang)) * (1.2 if en else 2.2) + 4))
        target = f"{letter}2:{letter}{rows + 1}"
        if f.type in _TEXT_TYPES:
            for r in range(2, 3):
                ws.cell(r, j).number_format = "@"
            ws.column_dimensions[letter].number_format = "@"
        if f.enum:
            list_col += 1
            values = enums.labels(f.enum, lang)
            lc = get_column_letter(list_col)
            lists.cell(1, list_col, f.label(lang))
            for i, v in enumerate(values, start=2):
                lists.cell(i, list_col, v)
            ref = f"{quote_sheetname(lists.title)}!${lc}$2:${lc}${len(values) + 1}"
            dv = DataValidation(type="list", formula1=ref, allow_blank=not f.required, showErrorMessage=True,
                                errorTitle=f.label(lang), error=_choose(f, values, lang))
        elif f.type in ("date", "datetime"):
            dv = DataValidation(type="date", operator="greaterThan", formula1="1", allow_blank=True,
                                showErrorMessage=True, errorTitle=f.label(lang),
                                error=("Enter a date" if en else "请填写日期，如 2024-05-21"))
        elif f.type == "bool":
            dv = DataValidation(type="list", formula1='"是,否"' if not en else '"yes,no"', allow_blank=True)
        elif f.max_length:
            dv = DataValidation(type="textLength", operator="lessThanOrEqual", formula1=str(f.max_length),
                                allow_blank=True, showErrorMessage=True, errorTitle=f.label(lang),
                                error=(f"At most {f.max_length} characters" if en else f"最多 {f.max_length} 个字符"))
        else:
            continue
        ws.add_data_validation(dv)
        dv.add(target)
    ws.freeze_panes = "A2"
    lists.sheet_state = "hidden"
    _write_about(about, fields, enums, lang)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _choose(f: Field, values: list[str], lang: str) -> str:
    text = ("、" if lang != "en" else ", ").join(values)
    return (f"Choose from the list: {text}" if lang == "en" else f"请从下拉列表中选择：{text}")[:250]


def _help(f: Field, enums: Enums, lang: str) -> str:
    en = lang == "en"
    parts = [("Required" if en else "必填") if f.required else ("Optional" if en else "选填")]
    if f.enum:
        parts.append(_choose(f, enums.labels(f.enum, lang), lang))
    elif f.type in _FORMATS:
        parts.append(_FORMATS[f.type][1 if en else 0])
    if f.max_length:
        parts.append(f"≤ {f.max_length} " + ("characters" if en else "个字符"))
    if f.default is not None and f.enum:
        parts.append(("Empty means " if en else "留空即为 ") + enums.label(f.enum, str(f.default), lang))
    return "; ".join(parts) if en else "；".join(parts)


def _write_about(ws, fields: list[Field], enums: Enums, lang: str) -> None:
    from openpyxl.styles import Alignment, Font

    en = lang == "en"
    intro = [
        "How to fill in this template" if en else "客户导入模板填写说明",
        ("One customer per row on the first sheet, from row 2. Columns marked * are required. "
         "Lists offer drop-downs; phones may be typed with +86, spaces or dashes; dates as 2024-05-21, "
         "2024/5/21 or 2024年5月21日. Columns may be reordered and extra columns added: extra columns "
         "are kept with each customer.") if en else
        ("在第一个工作表中每行填写一个客户（从第 2 行开始）。带 * 的列必填。选项列有下拉列表；手机号可带 +86、空格或横线；"
         "日期可写 2024-05-21、2024/5/21 或 2024年5月21日。列的顺序可以调整，也可以增加其他列，多出的列会作为附加数据保存。"),
        ("Import: crmsync import FILE --dry-run (check only), then crmsync import FILE. Rows with problems "
         "go to an error workbook with every problem marked; fix them there and import that file.") if en else
        ("导入：先运行 crmsync import 文件 --dry-run 检查，再运行 crmsync import 文件。有问题的行会写入错误工作簿并逐格标出，"
         "在其中改正后再次导入该文件即可。"),
        "",
    ]
    for line in intro:
        ws.append([line])
    ws["A1"].font = Font(bold=True, size=14)
    header = (["Column", "Required", "Format / choices", "Example"] if en else ["列名", "是否必填", "格式 / 可选值", "示例"])
    ws.append(header)
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    for f in fields:
        if f.enum:
            fmt = ("、" if not en else ", ").join(enums.labels(f.enum, lang))
        else:
            fmt = _FORMATS.get(f.type, ("文本", "text"))[1 if en else 0]
        if f.max_length:
            fmt += f" (≤ {f.max_length})" if en else f"（≤ {f.max_length} 字）"
        example = _EXAMPLES.get(f.key) or (enums.labels(f.enum, lang)[0] if f.enum and enums.labels(f.enum, lang) else "")
        ws.append([f.label(lang), ("yes" if en else "是") if f.required else ("no" if en else "否"), fmt, example])
    for col, width in zip("ABCD", (18, 10, 60, 28)):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2, max_row=3):
        for c in row:
            c.alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 60
