"""The 仪表板 sheet and the report workbook: figures from a real store written into real workbooks,
native charts present and reading the right cells; the 刷新提醒 / 刷新仪表板 buttons on a file and in
(fake) Excel."""

from __future__ import annotations

import subprocess
import zipfile

import pytest
from typer.testing import CliRunner

from crmsync import macros
from crmsync.book_file import FileBook
from crmsync.cli import app
from crmsync.copies import fill_workbook
from crmsync.dashboard import refresh_dashboard_file
from crmsync.report_book import write_report_book
from crmsync.xlsx_chart import read_charts
from fake_excel import fake_excel  # noqa: F401  (the fixture)
from test_reports_fixture import build_fixture
from workbook_fixtures import soffice_or_skip

CHARTS = {"crmsync:funnel": "bar", "crmsync:deals": "bar", "crmsync:industry": "bar", "crmsync:region": "bar",
          "crmsync:trend": "line", "crmsync:owners": "column"}


@pytest.fixture
def fx(team_store):
    return team_store, build_fixture(team_store)


def _cells(path, sheet: str) -> dict[tuple[int, int], object]:
    table = FileBook(path).read_table(sheet)
    grid = {(1, c + 1): v for c, v in enumerate(table.header)}
    for n, row in zip(table.row_numbers, table.rows):
        grid.update({(n, c + 1): v for c, v in enumerate(row)})
    return grid


def _range(ref: str) -> tuple[str, int, int, int]:
    """'仪表板'!$A$17:$A$19 → (sheet, column, first row, last row)."""
    import re

    sheet, cells = ref.rsplit("!", 1)
    m = re.findall(r"\$([A-Z]+)\$(\d+)", cells)
    col = ord(m[0][0]) - 64
    return sheet.strip("'"), col, int(m[0][1]), int(m[-1][1])


def _series(path, sheet: str, chart: dict) -> tuple[list, list[list]]:
    """A chart's categories and each series' values, read from the cells its ranges name."""
    grid = _cells(path, sheet)
    refs = chart["refs"]
    cats, values = None, []
    for i in range(0, len(refs), 3):  # per series: name, categories, values
        s, col, first, last = _range(refs[i + 1])
        assert s == sheet
        cats = [grid.get((r, col)) for r in range(first, last + 1)]
        s, col, first, last = _range(refs[i + 2])
        values.append([grid.get((r, col)) for r in range(first, last + 1)])
    return cats, values


def test_dashboard_sheet_gets_figures_and_native_charts(fx, committed):
    store, ids = fx
    before = zipfile.ZipFile(committed)
    kept = {n: before.read(n) for n in before.namelist() if "vbaProject" in n or "customUI" in n or "sheet1.xml" in n}
    lay = refresh_dashboard_file(store, committed, "admin")
    charts = {c["name"]: c for c in read_charts(committed, "仪表板")}
    assert {n: c["kind"] for n, c in charts.items()} == CHARTS

    cats, (reached,) = _series(committed, "仪表板", charts["crmsync:funnel"])
    assert cats == ["潜在客户", "意向客户", "成交客户"] and reached == [6, 4, 2]
    cats, (deals,) = _series(committed, "仪表板", charts["crmsync:deals"])
    assert cats == ["线索", "需求确认", "报价", "签约", "回款"] and deals == [2, 2, 2, 1, 0]
    cats, (industry,) = _series(committed, "仪表板", charts["crmsync:industry"])
    assert dict(zip(cats, industry))["智能制造"] == 3 and dict(zip(cats, industry))["软件开发"] == 1
    cats, (region,) = _series(committed, "仪表板", charts["crmsync:region"])
    assert dict((c, v) for c, v in zip(cats, region) if c) == {"（未填）": 3, "上海市": 1, "浙江省 宁波市": 1,
                                                              "浙江省 杭州市": 1}
    cats, (trend,) = _series(committed, "仪表板", charts["crmsync:trend"])
    assert cats[0] == "2023-06" and cats[-1] == "2024-05"
    assert dict(zip(cats, trend)) == {**{c: 0 for c in cats}, "2024-01": 5, "2024-05": 1}
    cats, (follow, new, won) = _series(committed, "仪表板", charts["crmsync:owners"])
    assert (cats[0], follow[0], new[0], won[0]) == ("zhang", 4, 1, 0)

    grid = _cells(committed, "仪表板")
    figures = {grid.get((r, 1)): grid.get((r, 2)) for r in range(1, 20)}
    assert figures["客户总数"] == 6 and figures["逾期未跟进"] == 1 and figures["交易最慢环节"] == "报价 → 签约"
    assert len(lay.charts) == 6
    after = zipfile.ZipFile(committed)
    assert {n: after.read(n) for n in kept} == kept  # ribbon, VBA and the customer sheet untouched


def test_refreshing_again_replaces_the_charts_it_put_there(fx, committed):
    store, ids = fx
    refresh_dashboard_file(store, committed, "admin")
    store.update("customer", ids["D"], {"industry": "金融服务"})
    refresh_dashboard_file(store, committed, "zhang")
    names = zipfile.ZipFile(committed).namelist()
    assert len([n for n in names if n.startswith("xl/charts/chart")]) == 6
    assert len([n for n in names if n.startswith("xl/drawings/drawing")]) == 1
    charts = {c["name"]: c for c in read_charts(committed, "仪表板")}
    cats, (industry,) = _series(committed, "仪表板", charts["crmsync:industry"])
    assert dict(zip(cats, industry))["智能制造"] == 1  # zhang's view: A only
    types = zipfile.ZipFile(committed).read("[Content_Types].xml").decode()
    assert all(f"/{n}" in types for n in names if n.startswith("xl/charts/"))
    assert FileBook(committed).read_table("客户").header[0] == "客户编号"  # still a readable workbook


def test_report_workbook_has_the_same_charts(fx, tmp_path):
    store, _ = fx
    out = write_report_book(store, tmp_path / "report.xlsx", "wang")
    book = FileBook(out)
    assert book.sheet_names() == ["仪表板", "提醒", "负责人业绩", "地区分布", "客户分层", "数据质量"]
    charts = {c["name"]: c for c in read_charts(out, "仪表板")}
    assert {n: c["kind"] for n, c in charts.items()} == CHARTS
    cats, (reached,) = _series(out, "仪表板", charts["crmsync:funnel"])
    assert reached == [6, 4, 2]
    reminders = book.read_table("提醒")
    assert [r[0] for r in reminders.rows] == ["长期未联系", "长期未联系", "已逾期", "即将到期", "重要日期", "重要日期"]


@pytest.mark.slow
def test_report_workbook_renders_in_libreoffice(fx, tmp_path):
    soffice = soffice_or_skip()
    store, _ = fx
    out = write_report_book(store, tmp_path / "report.xlsx", "admin")
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/lo", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(out)], check=True, capture_output=True, timeout=120)
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_cli_report(fx, store_path, tmp_path, committed):
    runner = CliRunner()
    result = runner.invoke(app, ["report", "deals", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    assert "最慢环节：报价 → 签约" in result.output
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "r.xlsx"), "--book", str(committed),
                                 "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    assert len(read_charts(tmp_path / "r.xlsx", "仪表板")) == 6 and len(read_charts(committed, "仪表板")) == 6
    bad = runner.invoke(app, ["report", "nope", "--store", str(store_path)])
    assert bad.exit_code == 1 and "未知报表" in bad.output
    result = runner.invoke(app, ["remind", "--store", str(store_path), "--user", "zhang", "--ics",
                                 str(tmp_path / "z.ics")])
    assert result.exit_code == 0 and "共 4 条提醒" in result.output
    assert (tmp_path / "z.ics").read_bytes().startswith(b"BEGIN:VCALENDAR\r\n")


def test_buttons_on_a_file(fx, store_path, committed, monkeypatch):
    store, ids = fx
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    fill_workbook(store, committed, "zhang")
    text = macros.on_ribbon("reminders", book=committed)
    assert text == "提醒已刷新：4 条，其中已逾期 1 条"
    table = FileBook(committed).read_table("提醒")
    assert [r[0] for r in table.rows] == [ids["A"], ids["B"], ids["A"], ids["B"]]
    assert table.rows[0][-2:] == ["已逾期", None] or table.rows[0][-2] == "已逾期"
    with zipfile.ZipFile(committed) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        linked = [z.read(n) for n in sheets if b"location=\"'\xe5\xae\xa2\xe6\x88\xb7'!A" in z.read(n)]
    assert linked  # each customer id links to its row on 客户
    text = macros.on_ribbon("dashboard", book=committed)
    assert text == "仪表板已刷新：3 个客户，6 个图表"
    assert len(read_charts(committed, "仪表板")) == 6
    text = macros.on_ribbon("export", book=committed)
    assert text.startswith("已导出 3 个客户到 客户导出-20240521-100000.xlsx")
    assert (committed.parent / "客户导出-20240521-100000.xlsx").exists()


def test_buttons_in_excel(fx, store_path, committed, fake_excel, monkeypatch):  # noqa: F811
    store, ids = fx
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    monkeypatch.setenv("CRMSYNC_USER", "li")
    fill_workbook(store, committed, "li")
    refresh_dashboard_file(store, committed, "li")  # the charts, once, from the command line
    book = fake_excel.open(committed)
    assert macros.on_ribbon("reminders", book=book) == "提醒已刷新：2 条，其中已逾期 0 条"
    rows = fake_excel.sheet(book, "提醒").rows(2)
    assert [r[0] for r in rows] == [ids["D"], ids["F"]]
    assert macros.on_ribbon("dashboard", book=book) == "仪表板已刷新：3 个客户，6 个图表"
    sheet = fake_excel.sheet(book, "仪表板")
    values = [r[:2] for r in sheet.rows(2)]
    assert ["客户总数", 3.0] in [list(v) for v in values]


def test_export_button_needs_a_user_of_its_own(fx, store_path, committed, monkeypatch):
    """Reading falls back to the admin when no user is set; an export, audited under a name, does not."""
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    monkeypatch.delenv("CRMSYNC_USER", raising=False)
    text = macros.on_ribbon("export", book=committed)
    assert "CRMSYNC_USER" in text
    assert not list(committed.parent.glob("客户导出-*.xlsx"))
