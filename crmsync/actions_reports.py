"""The 刷新提醒, 刷新仪表板, 新增跟进 and 导出 buttons (crmsync/reports.py, dashboard.py, followups, export.py)."""

from __future__ import annotations

from typing import Any

from . import i18n
from .actions import _customer_rows, _is_file, _report_context, _report_header, _sync_context, _t, field_columns, report_sheet_name
from .schema import ENTITIES
from .seam import Link, Report, as_seam


def refresh_reminders(book: Any, *, store: str | None = None, user: str | None = None,
                      lang: str | None = None) -> str:
    """刷新提醒: list the user's reminders on the 提醒 sheet, per owner, overdue first, each customer
    id linking to its row on the 客户 sheet."""
    from .reports import KIND_LABELS, reminders
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    location, who = _report_context(book, seam, store, user)
    with Store(location) as s:
        found = reminders(s, s.user(who))
        enums = s.enums()
    names = seam.sheet_names()
    rows_of = _customer_rows(seam)
    cust = ENTITIES["customer"]
    cust_sheet = next((n for n in (cust.zh, cust.en) if n in names), cust.label(lang))
    header = _report_header("reminders", lang) + [_t(lang, "提醒类型", "Kind"), _t(lang, "说明", "Detail")]
    report = Report(header=header, rows=[])
    for r in found:
        if r.customer_id in rows_of:
            report.links[(len(report.rows), 1)] = Link(cust_sheet, rows_of[r.customer_id], 1)
        report.rows.append([r.customer_id, r.customer_name, r.owner,
                            enums.label("priority", r.priority, lang) if r.priority else None,
                            r.when if r.kind in ("due", "overdue") else None, r.last_contact, r.days_overdue,
                            KIND_LABELS[r.kind][1 if lang == "en" else 0],
                            (r.when if r.kind == "date" else "") + ("  " if r.kind == "date" else "") + r.detail])
    seam.replace_report(report_sheet_name("reminders", names), report)
    seam.save()
    overdue = sum(1 for r in found if r.kind == "overdue")
    text = _t(lang, f"提醒已刷新：{len(found)} 条，其中已逾期 {overdue} 条", f"Reminders refreshed: {len(found)}, {overdue} overdue")
    seam.status(text)
    return text


def refresh_dashboard(book: Any, *, store: str | None = None, user: str | None = None,
                      lang: str | None = None) -> str:
    """刷新仪表板: key figures and report tables on the 仪表板 sheet; on a file, its charts too.

    Inside Excel the values are rewritten through the seam and the charts already in the workbook
    (put there by ``crmsync report --book``) follow them: the blocks keep their place and size.
    """
    from .dashboard import dashboard_layout, scope_text
    from .reports import all_reports
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    location, who = _report_context(book, seam, store, user)
    sheet = report_sheet_name("dashboard", seam.sheet_names())
    with Store(location) as s:
        actor = s.user(who)
        figures = all_reports(s, actor)
        lay = dashboard_layout(figures, sheet, scope=scope_text(actor))
    seam.replace_report(sheet, lay.report())
    seam.save()
    if _is_file(seam):
        from .xlsx_chart import write_charts

        write_charts(seam.path, sheet, lay.charts)
    text = _t(lang, f"仪表板已刷新：{figures.customers} 个客户，{len(lay.charts)} 个图表",
              f"Dashboard refreshed: {figures.customers} customers, {len(lay.charts)} charts")
    seam.status(text)
    return text


def new_followup(book: Any, customer_id: str | None = None, *, user: str | None = None,
                 lang: str | None = None) -> str:
    """新增跟进: a new row on the 跟进记录 sheet for the selected customer (time and user filled in),
    ready to type the content; the next sync stores it.

    The customer is ``customer_id``, else the one on the selected row of the customer sheet
    (``seam.selected_row``: the active cell's row in Excel, the row a FileBook was given).
    """
    import os

    from . import clock
    from .errors import InvalidInput

    seam = as_seam(book)
    lang = lang or i18n.lang()
    names = seam.sheet_names()
    if customer_id is None:
        cust = ENTITIES["customer"]
        cust_sheet = next((n for n in (cust.zh, cust.en) if n in names), None)
        row = seam.selected_row(cust_sheet) if cust_sheet is not None else None
        if row is not None:
            customer_id = {n: cid for cid, n in _customer_rows(seam).items()}.get(row)
    if not customer_id:
        raise InvalidInput(_t(lang, "请先在“客户”表中选中一个客户所在的行", "select a customer's row on the Customers sheet first"))
    fu = ENTITIES["followup"]
    sheet = next((n for n in (fu.zh, fu.en) if n in names), None)
    if sheet is None:
        raise InvalidInput(_t(lang, "工作簿中没有“跟进记录”表", "the workbook has no Follow-ups sheet"))
    table = seam.read_table(sheet)
    cols = field_columns(fu, table)
    row = max(table.row_numbers, default=table.header_row) + 1
    values = {"customer_id": customer_id, "user": user or os.environ.get("CRMSYNC_USER"),
              "follow_time": clock.now().strftime("%Y-%m-%d %H:%M")}
    cells = {(row, cols[k] + 1): v for k, v in values.items() if k in cols and v}
    seam.write_cells(sheet, cells)
    seam.save()
    text = _t(lang, f"已在“{sheet}”第 {row} 行为客户 {customer_id} 新增跟进，请填写跟进内容后同步",
              f"New follow-up for {customer_id} on row {row} of {sheet}: type the content, then sync")
    seam.status(text)
    return text


def export_workbook(book: Any, *, store: str | None = None, user: str | None = None, out: str | None = None,
                    lang: str | None = None) -> str:
    """导出: the customers the user may export, to an .xlsx beside the workbook (sensitive fields
    masked by role, formula-safe, audited); return where it went."""
    from pathlib import Path

    from . import clock
    from .export import export_customers
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    # An export leaves the store and is audited under a name: it needs a real user, never the
    # admin that reading falls back to when no one is set.
    location, who = _sync_context(book, seam, store, user)
    folder = Path(getattr(seam, "path", None) or getattr(book, "fullname", None) or ".").resolve().parent
    target = Path(out) if out else folder / f"{_t(lang, '客户导出', 'customers')}-{clock.now():%Y%m%d-%H%M%S}.xlsx"
    with Store(location) as s:
        result = export_customers(s, who, target)
    text = _t(lang, f"已导出 {result.rows} 个客户到 {target.name}", f"Exported {result.rows} customers to {target.name}")
    seam.status(text)
    return text
