"""`crmsync` commands: followup add, remind, report, export.  Registered by importing this module at the end of cli.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import i18n
from .cli import LangOpt, StoreOpt, UserOpt, _table, _user, app, command, console, open_store
from .errors import InvalidInput
from .i18n import tr

followup_app = typer.Typer(help="跟进记录 follow-ups: add", no_args_is_help=True)
app.add_typer(followup_app, name="followup")

REPORTS = ("all", "funnel", "deals", "distribution", "activity", "segments", "quality", "rebuild")


@command(followup_app, "add")
def followup_add(customer_id: str,
                 content: Annotated[str, typer.Option("--content", help="跟进内容")],
                 method: Annotated[str, typer.Option(help="跟进方式：电话/拜访/邮件/微信/其他")] = "电话",
                 time: Annotated[Optional[str], typer.Option("--time", help="跟进时间（默认现在）")] = None,
                 next_step: Annotated[Optional[str], typer.Option("--next-step", help="下一步计划")] = None,
                 next_time: Annotated[Optional[str], typer.Option("--next-time", help="下次跟进时间")] = None,
                 status: Annotated[Optional[str], typer.Option(help="同时改客户状态，如 意向客户")] = None,
                 lost_reason: Annotated[Optional[str], typer.Option("--lost-reason", help="流失原因")] = None,
                 reason: Annotated[Optional[str], typer.Option(help="状态变更原因（默认用跟进内容）")] = None,
                 store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Add a follow-up; the customer's next follow-up and last contact move with it.

    Example: crmsync followup add C202405210001 --content "电话确认预算" --next-time "2024-05-24 10:00" --status 意向客户
    """
    from .followups import add_followup

    values = {"method": method, "content": content, "next_step": next_step, "next_time": next_time}
    if time:
        values["follow_time"] = time
    with open_store(store) as s:
        f = add_followup(s, _user(user), customer_id, {k: v for k, v in values.items() if v is not None},
                         status=status, lost_reason=lost_reason, reason=reason)
        console.print(f["follow_id"])


@command(app, "remind")
def remind(days: Annotated[Optional[int], typer.Option(help="几天内到期（默认设置 remind_days）")] = None,
           no_contact_days: Annotated[Optional[int], typer.Option("--no-contact-days", help="多少天未联系算长期未联系")] = None,
           owner: Annotated[Optional[str], typer.Option(help="只看该负责人的客户")] = None,
           ics: Annotated[Optional[Path], typer.Option("--ics", help="另存为日历文件 (.ics)")] = None,
           store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """List reminders: overdue and due follow-ups, remindable dates, customers not contacted lately.

    Example: crmsync remind --user zhangwei --days 7 --ics zhangwei.ics
    """
    from .ics import write_calendar
    from .reports import KIND_LABELS, reminders

    with open_store(store) as s:
        actor = s.user(_user(user))
        found = reminders(s, actor, days=days, no_contact_days=no_contact_days, owner=owner)
        en = i18n.lang() == "en"
        table = _table(tr("类型", "Kind"), tr("客户编号", "Customer ID"), tr("客户名称", "Customer"),
                       tr("负责人", "Owner"), tr("时间", "When"), tr("逾期天数", "Days overdue"), tr("说明", "Detail"))
        for r in found:
            table.add_row(KIND_LABELS[r.kind][1 if en else 0], r.customer_id, r.customer_name, r.owner or "",
                          (r.when or "")[:16], str(r.days_overdue or ""), r.detail)
        console.print(table)
        console.print(tr(f"共 {len(found)} 条提醒", f"{len(found)} reminders"))
        if ics:
            write_calendar(ics, found)
            console.print(tr(f"日历文件：{ics}", f"Calendar file: {ics}"))


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(tr(f"日期“{text}”应写作 2024-05-21", f"date '{text}' should look like 2024-05-21")) from None


@command(app, "report")
def report(kind: Annotated[str, typer.Argument(help="all | funnel | deals | distribution | activity | segments | quality | rebuild")] = "all",
           by: Annotated[str, typer.Option(help="distribution: industry | region | source | customer_level | status")] = "industry",
           start: Annotated[Optional[str], typer.Option("--from", help="activity: 开始日期 2024-05-01")] = None,
           end: Annotated[Optional[str], typer.Option("--to", help="activity: 结束日期（含）")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="写出独立的报表工作簿 (.xlsx)，含图表")] = None,
           book: Annotated[Optional[Path], typer.Option("--book", help="刷新该工作簿的“仪表板”（含图表）")] = None,
           store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Show reports; --out writes a report workbook, --book refreshes a workbook's dashboard.

    `crmsync report rebuild` (admin) recomputes the report tables from the records and the audit
    log, for a store edited outside crmsync.

    Example: crmsync report funnel;  crmsync report --out report.xlsx;  crmsync report --book crm_workbook.xlsm
    """
    from . import reports as R

    if kind not in REPORTS:
        raise InvalidInput(tr(f"未知报表“{kind}”：可选 {', '.join(REPORTS)}", f"unknown report '{kind}': use one of {', '.join(REPORTS)}"))
    with open_store(store) as s:
        actor = s.user(_user(user))
        if kind == "rebuild":
            counters, stays = s.rebuild_report_tables(actor.name)
            console.print(tr(f"已重建报表数据：{counters} 个计数，{stays} 段阶段停留",
                             f"Rebuilt the report tables: {counters} counters, {stays} stage stays"))
            return
        if out:
            from .report_book import write_report_book

            write_report_book(s, out, actor.name, start=_date(start), end=_date(end))
            console.print(tr(f"报表工作簿：{out}", f"Report workbook: {out}"))
        if book:
            from .dashboard import refresh_dashboard_file

            lay = refresh_dashboard_file(s, book, actor.name)
            console.print(tr(f"已刷新 {book.name} 的“{lay.sheet}”（{len(lay.charts)} 个图表）",
                             f"Refreshed {lay.sheet} of {book.name} ({len(lay.charts)} charts)"))
        if out or book:
            return
        if kind in ("all", "funnel"):
            _print_funnel(tr("客户漏斗", "Customer funnel"), R.status_funnel(s, actor))
        if kind in ("all", "deals"):
            f = R.deal_funnel(s, actor)
            _print_funnel(tr("交易阶段", "Deal stages"), f)
            console.print(tr(f"最慢环节：{f.slowest or '—'}", f"Slowest step: {f.slowest or '—'}"))
        if kind in ("all", "distribution"):
            for field in (["industry", "region", "source", "customer_level"] if kind == "all" else [by]):
                t = _table(field, tr("客户数", "Customers"))
                for label, n in R.distribution(s, actor, field):
                    t.add_row(label, str(n))
                console.print(t)
        if kind in ("all", "activity"):
            acts = R.owner_activity(s, actor, _date(start), _date(end))
            t = _table(tr("负责人", "Owner"), tr("跟进次数", "Follow-ups"), tr("新增客户", "New customers"),
                       tr("成交转化", "Conversions"))
            for a in acts:
                t.add_row(a.owner, str(a.followups), str(a.new_customers), str(a.conversions))
            console.print(t)
        if kind in ("all", "segments"):
            t = _table(tr("客户分层", "Segment"), tr("客户数", "Customers"), tr("累计交易金额", "Total amount"))
            for seg in R.segments(s, actor):
                t.add_row(seg.label, str(seg.customers), f"{seg.amount:,.2f}")
            console.print(t)
        if kind in ("all", "quality"):
            t = _table(tr("检查项", "Check"), tr("客户数", "Customers"), tr("示例", "Example"))
            for q in R.data_quality(s, actor):
                t.add_row(q.label, str(q.count), q.example or "")
            console.print(t)


def _print_funnel(title: str, f) -> None:
    t = _table(title, tr("当前", "Now"), tr("累计到达", "Reached"), tr("转化率", "Conversion"),
               tr("停留天数（中位）", "Median days"))
    for st in f.stages:
        t.add_row(st.label, str(st.current), str(st.reached),
                  "" if st.conversion is None else f"{st.conversion * 100:.1f}%",
                  "" if st.median_days is None else f"{st.median_days:g}")
    console.print(t)
    if f.lost:
        console.print(tr(f"流失客户：{f.lost}", f"Lost: {f.lost}"))


@command(app, "export")
def export(out: Annotated[Path, typer.Option("--out", help="输出文件 (.csv / .xlsx)")],
           fields: Annotated[Optional[str], typer.Option(help="字段，逗号分隔：customer_id,客户名称,手机号")] = None,
           where: Annotated[Optional[str], typer.Option(help="筛选：行业=智能制造 and 标签=高预算 and 最近3个月联系过")] = None,
           format: Annotated[Optional[str], typer.Option("--format", help="csv | xlsx（默认按扩展名）")] = None,
           password: Annotated[Optional[str], typer.Option(help="xlsx 打开密码")] = None,
           mask: Annotated[bool, typer.Option("--mask", help="无论角色，敏感字段一律打码")] = False,
           store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Export customers (CSV with BOM or xlsx): chosen fields, filters, masking, formula-safe.

    Example: crmsync export --fields customer_id,客户名称,手机号 --where "行业=智能制造 and contacted in the last 3 months" --out list.csv
    """
    from .export import export_customers

    with open_store(store) as s:
        r = export_customers(s, _user(user), out, fields=fields, where=where, fmt=format, password=password, mask=mask)
        masked = tr(f"；已打码：{'、'.join(r.masked)}", f"; masked: {', '.join(r.masked)}") if r.masked else ""
        console.print(tr(f"已导出 {r.rows} 个客户到 {out}{masked}", f"Exported {r.rows} customers to {out}{masked}"))
