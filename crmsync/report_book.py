"""``crmsync report --out report.xlsx``: a standalone report workbook with the dashboard's charts.

The workbook is new, so nothing in it must be kept: XlsxWriter writes its sheets (it writes a new
file ~2.5× faster than openpyxl, never turns a text into a formula when asked not to, and formats
cells), and the charts are added afterwards by the same code that puts them on the 仪表板 sheet of
crm_workbook.xlsm (xlsx_chart), so both show the same charts over the same layout.

Sheets: 仪表板 (key figures, tables, charts), 提醒 (the reminder list), 负责人业绩 (every owner),
地区分布 (every region), 客户分层 (segments with their rules), 数据质量.
"""

from __future__ import annotations

import os
from pathlib import Path

from .export import _atomic
from .dashboard import Layout, dashboard_layout, scope_text
from .i18n import tr
from .reports import KIND_LABELS, Reminder, all_reports, reminders
from .xlsx_chart import write_charts


def write_report_book(store, out: str | Path, user: str = "admin", *, start=None, end=None) -> Path:
    """Write the report workbook for ``user`` to ``out`` (atomically); return its path."""
    import xlsxwriter

    out = Path(out)
    actor = store.user(user)
    reports = all_reports(store, actor, start=start, end=end)
    due = reminders(store, actor)
    sheet = tr("仪表板", "Dashboard")
    lay = dashboard_layout(reports, sheet, scope=scope_text(actor))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic(out, ".crmsync-report-")
    try:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        fmt = _Formats(wb)
        _dashboard_sheet(wb, fmt, lay)
        _reminder_sheet(wb, fmt, due, store.enums())
        _table_sheet(wb, fmt, tr("负责人业绩", "Activity"),
                     [tr("负责人", "Owner"), tr("跟进次数", "Follow-ups"), tr("新增客户", "New customers"),
                      tr("成交转化", "Conversions")],
                     [[a.owner, a.followups, a.new_customers, a.conversions] for a in reports.activity],
                     [16, 12, 12, 12])
        _table_sheet(wb, fmt, tr("地区分布", "Regions"), [tr("地区", "Region"), tr("客户数", "Customers")],
                     [list(x) for x in reports.region], [20, 12])
        _table_sheet(wb, fmt, tr("客户分层", "Segments"),
                     [tr("分层", "Segment"), tr("客户数", "Customers"), tr("累计交易金额", "Total amount"), tr("规则", "Rule")],
                     [[s.label, s.customers, s.amount, s.rule] for s in reports.segments], [14, 12, 16, 90])
        _table_sheet(wb, fmt, tr("数据质量", "Data quality"),
                     [tr("检查项", "Check"), tr("客户数", "Customers"), tr("示例", "Example")],
                     [[q.label, q.count, q.example or ""] for q in reports.quality], [26, 12, 18])
        wb.close()
        write_charts(tmp, sheet, lay.charts)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


class _Formats:
    def __init__(self, wb):
        self.title = wb.add_format({"bold": True, "font_size": 16, "font_color": "#1F3864"})
        self.note = wb.add_format({"italic": True, "font_color": "#808080"})
        self.section = wb.add_format({"bold": True, "font_size": 12, "font_color": "#1F3864", "bottom": 1})
        self.head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        self.text = wb.add_format({"num_format": "@"})
        self.int = wb.add_format({"num_format": "#,##0"})
        self.money = wb.add_format({"num_format": "#,##0"})
        self.percent = wb.add_format({"num_format": "0.0%"})


def _write(ws, fmt: _Formats, r: int, c: int, v, style=None) -> None:
    if v is None or v == "":
        return
    if isinstance(v, str):
        ws.write_string(r, c, v, style or fmt.text)
    elif isinstance(v, float) and not v.is_integer():
        ws.write_number(r, c, v, style)
    else:
        ws.write_number(r, c, v, style or fmt.int)


def _dashboard_sheet(wb, fmt: _Formats, lay: Layout) -> None:
    ws = wb.add_worksheet(lay.sheet)
    ws.set_column(0, 0, 24)
    ws.set_column(1, 3, 13)
    ws.set_column(4, 4, 17)
    ws.write_string(0, 0, str(lay.header[0]), fmt.title)
    for i, row in enumerate(lay.rows):
        excel_row = i + 2
        style = fmt.section if excel_row in lay.titles else fmt.head if excel_row in lay.heads else None
        if excel_row == 2:
            style = fmt.note
        for j, v in enumerate(row):
            if (excel_row, j + 1) not in lay.percents:
                _write(ws, fmt, excel_row - 1, j, v, style)
    for r, c in lay.percents:
        ws.write_number(r - 1, c - 1, lay.rows[r - 2][c - 1], fmt.percent)
    ws.hide_gridlines(2)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # the tables and the charts side by side on a printed page
    ws.activate()


def _reminder_sheet(wb, fmt: _Formats, due: list[Reminder], enums) -> None:
    from .i18n import lang

    header = [tr("提醒类型", "Kind"), tr("客户编号", "Customer ID"), tr("客户名称", "Customer"), tr("负责人", "Owner"),
              tr("跟进优先级", "Priority"), tr("时间", "When"), tr("最近联系时间", "Last contact"),
              tr("逾期天数", "Days overdue"), tr("说明", "Detail")]
    en = lang() == "en"
    rows = [[KIND_LABELS[r.kind][1 if en else 0], r.customer_id, r.customer_name, r.owner,
             enums.label("priority", r.priority, lang()) if r.priority else None, r.when,
             r.last_contact, r.days_overdue, r.detail] for r in due]
    _table_sheet(wb, fmt, tr("提醒", "Reminders"), header, rows, [10, 16, 28, 10, 10, 18, 18, 10, 30])


def _table_sheet(wb, fmt: _Formats, name: str, header: list[str], rows: list[list], widths: list[int]) -> None:
    ws = wb.add_worksheet(name)
    for j, (h, w) in enumerate(zip(header, widths)):
        ws.write_string(0, j, h, fmt.head)
        ws.set_column(j, j, w)
    for i, row in enumerate(rows, start=1):
        for j, v in enumerate(row):
            _write(ws, fmt, i, j, v)
    ws.freeze_panes(1, 0)
    if rows:
        ws.autofilter(0, 0, len(rows), len(header) - 1)
