"""The 仪表板 (dashboard) sheet: key figures, the report tables, and native Excel charts over them.

``dashboard_layout`` turns the reports (reports.all_reports) into the sheet's rows and the charts
that read them: a status funnel, the deal stages, customers by industry and by region, new
customers per month, and activity per owner.  Blocks have a fixed size (list blocks show every
value of their list; top-N blocks are padded), so the chart ranges stay the same from one refresh to
the next: a refresh inside Excel (through the workbook seam) only rewrites values and the charts
already in the file follow them.

``refresh_dashboard_file`` writes all of it into a workbook file without Excel: the values through
the lossless FileBook, then the charts (xlsx_chart), replacing only the charts crmsync put there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import clock
from .i18n import tr
from .reports import UNSET, AllReports
from .seam import Report
from .xlsx_chart import Chart, Series

TOP = 10  # rows of a top-N block (the last one sums the rest)
CHART_COLS = (5, 13, 21)  # 0-based columns: charts from F to M and from N to U
CHART_ROWS = 22  # each chart is this many rows tall


@dataclass
class Layout:
    """The dashboard sheet: a header (row 1) and rows from row 2, the charts, and which rows are
    section titles and table headers (for formatting where the writer can format)."""

    sheet: str
    header: list
    rows: list[list] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    titles: set[int] = field(default_factory=set)  # Excel rows holding a section title
    heads: set[int] = field(default_factory=set)  # Excel rows holding a table header
    percents: set[tuple[int, int]] = field(default_factory=set)  # (row, col) of ratios (floats)

    def add(self, *values) -> int:
        """Append a row; return its Excel row number."""
        self.rows.append(list(values))
        return len(self.rows) + 1

    def report(self) -> Report:
        """The rows for the seam's report sheet: ratios as text (51.7%), since a report sheet's
        cells keep their column's format."""
        rows = [list(r) for r in self.rows]
        for r, c in self.percents:
            rows[r - 2][c - 1] = _pct(rows[r - 2][c - 1])
        return Report(header=list(self.header), rows=rows)


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _top(items: list[tuple[str, int]], n: int = TOP) -> list[tuple[str, int]]:
    if len(items) <= n:
        return list(items)
    rest = sum(v for _, v in items[n - 1:])
    return list(items[:n - 1]) + [(tr("其他", "Other"), rest)]


def dashboard_layout(r: AllReports, sheet: str = "仪表板", *, scope: str = "") -> Layout:
    """The dashboard's rows and charts for these reports."""
    lay = Layout(sheet, [tr("客户仪表板", "CRM dashboard")])
    lay.add(tr(f"更新时间 {clock.now_text()[:16]}  ·  范围：{scope}", f"Updated {clock.now_text()[:16]}  ·  scope: {scope}"))
    lay.add()
    lay.titles.add(lay.add(tr("关键指标", "Key figures")))
    won = r.funnel.stages[-1] if r.funnel.stages else None
    start, end = r.period
    period = f"{start:%m-%d}–{end:%m-%d}"
    figures = [
        (tr("客户总数", "Customers"), r.customers),
        (won.label if won else tr("成交客户", "Won"), won.current if won else 0),
        (tr("流失客户", "Lost"), r.funnel.lost),
        (tr(f"新增客户（{period}）", f"New customers ({period})"), sum(a.new_customers for a in r.activity)),
        (tr(f"跟进次数（{period}）", f"Follow-ups ({period})"), sum(a.followups for a in r.activity)),
        (tr(f"成交转化（{period}）", f"Conversions ({period})"), sum(a.conversions for a in r.activity)),
        (tr("逾期未跟进", "Overdue follow-ups"), r.overdue),
        (tr("即将到期的跟进", "Follow-ups due soon"), r.due),
        (tr("交易最慢环节", "Slowest deal step"), r.deals.slowest or "—"),
    ]
    for label, value in figures:
        lay.add(label, value)
    lay.add()
    charts: list[tuple] = []  # (key, kind, title, first, last, categories, series, reverse)

    # the status funnel
    lay.titles.add(lay.add(tr("客户漏斗", "Customer funnel")))
    head = lay.add(tr("阶段", "Stage"), tr("当前客户数", "Now"), tr("累计到达", "Reached"),
                   tr("转化到下一阶段", "Conversion"), tr("停留天数（中位）", "Median days"))
    lay.heads.add(head)
    first = head + 1
    for s in r.funnel.stages:
        row = lay.add(s.label, s.current, s.reached, s.conversion, s.median_days)
        if s.conversion is not None:
            lay.percents.add((row, 4))
    last = first + len(r.funnel.stages) - 1
    lay.add(tr("流失客户", "Lost"), r.funnel.lost)
    charts.append(("funnel", "bar", tr("客户漏斗（累计到达）", "Customer funnel (reached)"), first, last,
                   [s.label for s in r.funnel.stages], [(head, 3, [s.reached for s in r.funnel.stages])], True))
    lay.add()

    # the deal stages
    lay.titles.add(lay.add(tr("交易阶段", "Deal stages")))
    head = lay.add(tr("阶段", "Stage"), tr("交易数", "Deals"), tr("累计到达", "Reached"),
                   tr("转化到下一阶段", "Conversion"), tr("停留天数（中位）", "Median days"))
    lay.heads.add(head)
    first = head + 1
    for s in r.deals.stages:
        row = lay.add(s.label, s.current, s.reached, s.conversion, s.median_days)
        if s.conversion is not None:
            lay.percents.add((row, 4))
    last = first + len(r.deals.stages) - 1
    lay.add(tr("最慢环节", "Slowest step"), r.deals.slowest or "—")
    charts.append(("deals", "bar", tr("交易阶段（累计到达）", "Deal stages (reached)"), first, last,
                   [s.label for s in r.deals.stages], [(head, 3, [s.reached for s in r.deals.stages])], True))
    lay.add()

    def block(key: str, title: str, label_head: str, items: list[tuple[str, int]], size: int,
              chart_title: str | None, kind: str = "bar") -> None:
        lay.titles.add(lay.add(title))
        h = lay.add(label_head, tr("客户数", "Customers"))
        lay.heads.add(h)
        f = h + 1
        padded = list(items) + [("", None)] * (size - len(items))
        for label, n in padded:
            lay.add(label, n)
        if chart_title:
            charts.append((key, kind, chart_title, f, f + size - 1, [p[0] for p in padded],
                           [(h, 2, [p[1] for p in padded])], kind == "bar"))
        lay.add()

    def sized(items: list[tuple[str, int]]) -> int:  # the list's values and a row for 未填
        return len(items) + (0 if any(label == UNSET for label, _ in items) else 1)

    block("industry", tr("按行业", "By industry"), tr("所属行业", "Industry"), r.industry,
          sized(r.industry), tr("客户行业分布", "Customers by industry"))
    block("region", tr("按地区（前 10）", "By region (top 10)"), tr("地区", "Region"), _top(r.region), TOP,
          tr("客户地区分布", "Customers by region"))

    lay.titles.add(lay.add(tr("每月新增客户", "New customers per month")))
    h = lay.add(tr("月份", "Month"), tr("新增客户", "New customers"))
    lay.heads.add(h)
    for month, n in r.trend:
        lay.add(month, n)
    charts.append(("trend", "line", tr("每月新增客户", "New customers per month"), h + 1, h + len(r.trend),
                   [m for m, _ in r.trend], [(h, 2, [n for _, n in r.trend])], False))
    lay.add()

    lay.titles.add(lay.add(tr(f"负责人业绩（{start}–{end}，前 10）", f"Activity per owner ({start}–{end}, top 10)")))
    h = lay.add(tr("负责人", "Owner"), tr("跟进次数", "Follow-ups"), tr("新增客户", "New customers"),
                tr("成交转化", "Conversions"))
    lay.heads.add(h)
    top = sorted(r.activity, key=lambda a: (-a.followups, -a.conversions, a.owner))[:TOP]
    rows = [(a.owner, a.followups, a.new_customers, a.conversions) for a in top]
    rows += [("", None, None, None)] * (TOP - len(rows))
    for row in rows:
        lay.add(*row)
    charts.append(("owners", "column", tr("负责人业绩", "Activity per owner"), h + 1, h + TOP, [x[0] for x in rows],
                   [(h, 2, [x[1] for x in rows]), (h, 3, [x[2] for x in rows]), (h, 4, [x[3] for x in rows])], False))
    lay.add()

    block("source", tr("按来源", "By source"), tr("客户来源", "Source"), r.source, sized(r.source), None)
    block("level", tr("按等级", "By level"), tr("客户等级", "Level"), r.level, sized(r.level), None)

    lay.titles.add(lay.add(tr("客户分层", "Segments")))
    lay.heads.add(lay.add(tr("分层", "Segment"), tr("客户数", "Customers"), tr("累计交易金额", "Total amount")))
    for s in r.segments:
        lay.add(s.label, s.customers, s.amount)
    lay.add()

    if r.quality:
        lay.titles.add(lay.add(tr("数据质量", "Data quality")))
        lay.heads.add(lay.add(tr("检查项", "Check"), tr("客户数", "Customers"), tr("示例", "Example")))
        for q in r.quality:
            lay.add(q.label, q.count, q.example or "")

    # charts: two columns of three, to the right of the tables
    for i, (key, kind, title, first, last, cats, series, reverse) in enumerate(charts):
        col = CHART_COLS[i % 2]
        row = 1 + (i // 2) * CHART_ROWS
        sers = [Series(_cell_text(lay, head_row, c), (head_row, c), c, vals) for head_row, c, vals in series]
        lay.charts.append(Chart(key, kind, title, sheet, first, last, 1, cats, sers,
                                (col, row, col + 8, row + CHART_ROWS - 1), reverse=reverse))
    return lay


def _cell_text(lay: Layout, row: int, col: int) -> str:
    values = lay.header if row == 1 else lay.rows[row - 2]
    return str(values[col - 1]) if col - 1 < len(values) and values[col - 1] is not None else ""


def scope_text(user) -> str:
    """Whose customers a dashboard covers, for its second line."""
    if user is None or user.role == "admin":
        return tr("全部客户", "all customers")
    if user.role == "manager":
        return tr(f"{user.team or ''} 团队", f"team {user.team or ''}")
    return tr(f"{user.name} 的客户", f"{user.name}'s customers")


def refresh_dashboard_file(store, path: str | Path, user: str = "admin", *, sheet: str | None = None) -> Layout:
    """Write the dashboard (values, then charts) into the workbook file at path; return its layout.

    Only the dashboard sheet's rows, its drawing and the charts crmsync put there change.
    Raises InvalidFile / NotFound as FileBook does; the file is then unchanged.
    """
    from .actions import report_sheet_name
    from .book_file import FileBook
    from .reports import all_reports
    from .xlsx_chart import write_charts

    actor = store.user(user)
    with FileBook(path) as book:
        name = sheet or report_sheet_name("dashboard", book.sheet_names())
        lay = dashboard_layout(all_reports(store, actor), name, scope=scope_text(actor))
        book.replace_report(name, lay.report())
        book.save()
    write_charts(path, lay.sheet, lay.charts)
    return lay
