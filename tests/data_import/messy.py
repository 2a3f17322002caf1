"""A messy legacy customer list, written as .xlsx (openpyxl) and as GBK / UTF-8 CSV text.

What a company's old spreadsheet looks like: a merged title row and an export date above the
header, Chinese headers in their own words and order, phones typed as numbers (13812345678.0) or
in full-width digits, dates in four formats, an error value (#N/A), a cell merged over two rows,
stray spaces, list values by synonym, a one-cell address and a column no field knows (微信号).

``EXPECTED_PROBLEMS`` is what the import must report, ``GOOD_NAMES`` what it must store.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

TITLE = "2023年客户名单（华东销售部）"
EXPORTED = "导出日期：2023-12-31"
HEADER = ["联系电话", "公司名称", "客户等级", "首次合作日期", "地址", "客户状态", "邮箱", "微信号", "所属行业", "联系人"]

# Each row as the spreadsheet holds it (the merged 所属行业 of rows 9-10 is on row 9 only).
ROWS = [
    [13812345678.0, "杭州示例网络科技有限公司", "VIP", "2023/5/21", "浙江省杭州市西湖区文三路100号", "意向",
     "info@example.com", "wx_hz01", "软件", "张三"],
    ["１３９００００１１１１", "  上海样本贸易有限公司 ", "重要", "2023年6月1日", "上海市徐汇区漕溪北路88号", "成交",
     None, "wx_sh02", "零售", "李四"],
    ["#N/A", "南京错误值科技有限公司", "普通", "2023-07-01", "江苏省南京市玄武区中山路1号", "潜在",
     "nj@example.com", None, "其他", "王五"],
    [13700001111.0, "苏州合并单元格制造有限公司", "A类", datetime(2023, 8, 15), "江苏省苏州市工业园区星湖街5号", "意向",
     None, "wx_sz04", "制造", "赵六"],
    ["137-0000-2222", "无锡合并二号机械有限公司", "普通", "2023.9.1", "江苏省无锡市梁溪区人民路9号", "潜在",
     None, None, None, "钱七"],
    [13600003333.0, "宁波坏日期贸易有限公司", "重要", "2023-13-45", "浙江省宁波市鄞州区天童路7号", "潜在",
     None, None, "零售", "孙八"],
    ["123", "温州坏号码电子有限公司", "普通", "2023-10-10", "浙江省温州市鹿城区车站大道2号", "意向",
     "foo@", None, "软件", "周九"],
    [13500004444.0, "合肥全角ＡＢＣ科技有限公司", "普通", "2023年11月2日", "安徽省合肥市蜀山区长江西路3号", "成交",
     "hf@example.com", "wx_hf08", "软件", "吴十"],
]
FIRST_DATA_ROW = 5  # title, export date, a blank row, the header, then data
MERGED = "I8:I9"  # 所属行业 of 苏州 and 无锡 rows: one merged cell holding 制造

GOOD_NAMES = {"杭州示例网络科技有限公司", "上海样本贸易有限公司", "苏州合并单元格制造有限公司",
              "无锡合并二号机械有限公司", "合肥全角ABC科技有限公司"}
# (row, column letter, field key, code)
EXPECTED_PROBLEMS = {
    (7, "A", "mobile", "excel_error"),
    (10, "D", "first_deal_date", "invalid_date"),
    (11, "A", "mobile", "invalid_mobile"),
    (11, "G", "email", "invalid_email"),
}


def build_xlsx(path: Path) -> Path:
    """Write the messy list as a real .xlsx (merged title, merged data cell, an error value)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "客户名单"
    ws["A1"] = TITLE
    ws.merge_cells("A1:J1")
    ws["A2"] = EXPORTED
    for c, h in enumerate(HEADER, start=1):  # row 3 stays blank
        ws.cell(4, c, h)
    for r, values in enumerate(ROWS, start=FIRST_DATA_ROW):
        for c, v in enumerate(values, start=1):
            if r == 9 and c == 9:
                continue  # covered by the merge
            ws.cell(r, c, v)
    ws.merge_cells(MERGED)
    ws.cell(7, 1).value = "#N/A"  # an error cell, as Excel saves a failed look-up
    ws.cell(7, 1).data_type = "e"
    wb.save(path)
    return path


def csv_text() -> str:
    """The same data as CSV text, as Excel's 'CSV' export writes it (the merged value on both rows)."""
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([TITLE] + [""] * (len(HEADER) - 1))
    w.writerow([EXPORTED])
    w.writerow([])
    w.writerow(HEADER)
    for r, values in enumerate(ROWS, start=FIRST_DATA_ROW):
        row = list(values)
        if r == 9:
            row[8] = ROWS[3][8]
        w.writerow(["" if v is None else v.strftime("%Y-%m-%d") if isinstance(v, datetime) else v for v in row])
    return out.getvalue()


def build_csv(path: Path, encoding: str = "gbk") -> Path:
    data = csv_text().encode(encoding)
    path.write_bytes(data)
    return path
