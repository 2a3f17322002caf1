"""Reading real workbook files: sheets, header and rows with their Excel row numbers, values as typed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import hostile
import pytest

from crmsync.errors import InvalidFile, InvalidInput, NotFound
from crmsync.workbook import Limits, SheetData, list_sheets, read_sheet



def openpyxl_book(path: Path, rows: list[list[object]], *, title: str = "客户", formats: dict | None = None,
                  epoch_1904: bool = False) -> Path:
    """Write rows to a one-sheet workbook with openpyxl (shared strings, as Excel writes them)."""
    from openpyxl import Workbook

    wb = Workbook()
    if epoch_1904:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904

        wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.title = title
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                cell = ws.cell(r, c, value)
                if formats and c in formats:
                    cell.number_format = formats[c]
    wb.save(path)
    return path


# ---- the realistic workbook ---------------------------------------------------------------------

def test_list_sheets_in_workbook_order_hidden_included(realistic):
    assert list_sheets(realistic) == ["客户", "跟进记录", "xlwings.conf"]


def test_header_rows_and_row_numbers(realistic):
    data = read_sheet(realistic, "客户")
    assert isinstance(data, SheetData)
    assert data.sheet == "客户" and data.header_row == 1
    assert data.header == hostile.HEADER
    assert data.row_numbers == [2, 3, 4]
    assert [r[0] for r in data.rows] == ["C001", "C002", "C003"]
    assert all(len(r) == len(data.header) for r in data.rows)


def test_values_as_typed(realistic):
    rows = read_sheet(realistic, "客户").rows
    assert rows[0][2] == "013812345678"  # a text cell: the leading zero survives
    assert rows[2][2] == "0755-12345678"
    assert rows[0][4] == dt.date(2024, 5, 21)  # a date-formatted serial comes back as a date
    assert rows[0][5] == 1200.5 and rows[1][5] == 99.0 and rows[2][5] == 0.0
    assert rows[1][1] == "深圳市腾讯计算机系统有限公司"


def test_sheet_names_match_case_insensitively_and_report_the_real_name(realistic):
    assert read_sheet(realistic, "XLWINGS.CONF").sheet == "xlwings.conf"


def test_missing_sheet_names_the_sheets_there_are(realistic):
    with pytest.raises(NotFound) as e:
        read_sheet(realistic, "联系人")
    assert str(e.value) == "“crm.xlsm”中没有工作表“联系人”；现有：客户、跟进记录、xlwings.conf"
    with pytest.raises(NotFound) as e:
        read_sheet(realistic, "联系人", lang="en")
    assert "has no sheet '联系人'" in str(e.value)


def test_header_row_must_be_one_based(realistic):
    with pytest.raises(InvalidInput):
        read_sheet(realistic, "客户", header_row=0)


# ---- the committed workbook (built by crmsync.build) ---------------------------------------------

def test_committed_workbook_sheets_and_empty_tables(committed):
    names = list_sheets(committed)
    assert names[:3] == ["客户", "联系人", "跟进记录"] and "xlwings.conf" in names and "_lists" in names
    data = read_sheet(committed, "客户")
    assert data.header[:3] == ["客户编号", "客户名称", "客户类型"] and data.rows == []
    conf = read_sheet(committed, "xlwings.conf", header_row=1)
    keys = [conf.header[0]] + [r[0] for r in conf.rows]
    assert keys[:2] == ["UDF MODULES", "USE UDF SERVER"] and "CRMSYNC_STORE" in keys


def test_header_under_a_title_row(committed):
    """The dashboard has a title in row 1; the caller names the header row."""
    auto = read_sheet(committed, "仪表板")
    assert auto.header_row == 1 and auto.header[0] == "客户仪表板"
    data = read_sheet(committed, "仪表板", header_row=auto.row_numbers[0])
    assert data.header_row == auto.row_numbers[0] and data.row_numbers[0] > data.header_row


# ---- files written by other tools ---------------------------------------------------------------

def test_title_blank_row_then_header(tmp_path):
    path = openpyxl_book(tmp_path / "t.xlsx", [
        ["2024 年客户名单"], [None], ["客户编号", "手机号", "金额"],
        ["C001", "013812345678", 12], [None, None, None], ["C002", "13912345678", 3.5],
    ], formats={2: "@"})
    data = read_sheet(path, "客户", header_row=3)
    assert data.header == ["客户编号", "手机号", "金额"]
    assert data.rows == [["C001", "013812345678", 12.0], ["C002", "13912345678", 3.5]]
    assert data.row_numbers == [4, 6]  # the blank row 5 is left out, the numbers stay Excel's
    assert read_sheet(path, "客户").header == ["2024 年客户名单", "", ""]  # first non-empty row by default


def test_dates_numbers_booleans_and_text(tmp_path):
    path = openpyxl_book(tmp_path / "v.xlsx", [
        ["日期", "时间", "整数", "小数", "布尔", "文本数字", "空串"],
        [dt.date(2024, 2, 29), dt.datetime(2024, 5, 21, 9, 30, 15), 42, -0.125, True, "00123", ""],
    ], formats={1: "yyyy-mm-dd", 2: "yyyy-mm-dd hh:mm:ss", 6: "@"})
    row = read_sheet(path, "客户").rows[0]
    assert row[0] == dt.date(2024, 2, 29)
    assert row[1] == dt.datetime(2024, 5, 21, 9, 30, 15)
    assert row[2] == 42.0 and row[3] == -0.125 and row[4] is True and row[5] == "00123"
    assert row[6] is None


def test_1904_date_system(tmp_path):
    path = openpyxl_book(tmp_path / "mac.xlsx", [["日期"], [dt.date(2024, 5, 21)]], formats={1: "yyyy-mm-dd"},
                         epoch_1904=True)
    assert read_sheet(path, "客户").rows == [[dt.date(2024, 5, 21)]]


def test_ragged_rows_and_columns_beyond_the_header(tmp_path):
    path = openpyxl_book(tmp_path / "r.xlsx", [["甲", "乙"], ["a"], ["b", "c", "d"]])
    data = read_sheet(path, "客户")
    assert data.header == ["甲", "乙", ""] and data.rows == [["a", None, None], ["b", "c", "d"]]


def test_numeric_header_cells_are_text(tmp_path):
    path = openpyxl_book(tmp_path / "n.xlsx", [["编号", 2024, 1.5], [1, 2, 3]])
    assert read_sheet(path, "客户").header == ["编号", "2024", "1.5"]


def test_error_cells_come_back_as_their_text(tmp_path):
    sheet = hostile.sheet_xml(
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>值</t></is></c></row>'
        '<row r="2"><c r="A2" t="e"><f>NA()</f><v>#N/A</v></c><c r="B2" t="e"><v>#REF!</v></c></row>',
        "A1:B2")
    path = hostile.minimal_xlsx(tmp_path / "e.xlsx", sheet=sheet)
    assert read_sheet(path, "客户").rows == [["#N/A", "#REF!"]]


def test_formulas_give_their_cached_value_or_nothing(tmp_path):
    sheet = hostile.sheet_xml(
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><f>1+1</f><v>2</v></c><c r="C1"><f>1+2</f></c></row>',
        "A1:C1")
    path = hostile.minimal_xlsx(tmp_path / "f.xlsx", sheet=sheet)
    assert read_sheet(path, "客户").header == ["客户编号", "2"]  # C1 has no cached value: an empty column


def test_cells_written_without_references_and_with_a_namespace_prefix(tmp_path):
    """Some writers leave out r= or prefix every element; both are placed as Excel places them."""
    sheet = ('<?xml version="1.0" encoding="UTF-8"?>'
             '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
             '<x:row><x:c t="inlineStr"><x:is><x:t>名称</x:t></x:is></x:c><x:c t="inlineStr"><x:is><x:t>金额</x:t>'
             '</x:is></x:c></x:row><x:row><x:c t="inlineStr"><x:is><x:t>华为</x:t></x:is></x:c><x:c><x:v>5</x:v>'
             "</x:c></x:row></x:sheetData></x:worksheet>")
    path = hostile.minimal_xlsx(tmp_path / "p.xlsx", sheet=sheet)
    data = read_sheet(path, "客户")
    assert data.header == ["名称", "金额"] and data.rows == [["华为", 5.0]] and data.row_numbers == [2]


def test_empty_sheet(tmp_path):
    path = hostile.minimal_xlsx(tmp_path / "empty-sheet.xlsx", sheet=hostile.sheet_xml(""))
    assert read_sheet(path, "客户") == SheetData("客户", [], [], [], 0)


def test_a_sheet_too_big_for_the_limits_is_refused_before_it_is_read(tmp_path):
    path = openpyxl_book(tmp_path / "big.xlsx", [["编号"]] + [[i] for i in range(50)])
    with pytest.raises(InvalidFile) as e:
        read_sheet(path, "客户", limits=Limits(max_rows=10))
    assert "上限 10 行" in str(e.value)


def test_chart_sheet_is_not_a_worksheet(tmp_path):
    rels = hostile.WORKBOOK_RELS.replace("</Relationships>", (
        '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/chartsheet"'
        ' Target="chartsheets/sheet1.xml"/></Relationships>'))
    workbook = hostile.workbook_xml().replace("</sheets>", '<sheet name="图表" sheetId="2" r:id="rId9"/></sheets>')
    path = hostile.minimal_xlsx(tmp_path / "chart.xlsx", workbook=workbook, extra={
        "xl/_rels/workbook.xml.rels": rels,
        "xl/chartsheets/sheet1.xml": f"<chartsheet {hostile.NS}/>"})
    assert list_sheets(path) == ["客户", "图表"]
    with pytest.raises(InvalidInput) as e:
        read_sheet(path, "图表")
    assert "不是普通工作表" in str(e.value)


def test_file_changed_while_it_was_read_is_refused(tmp_path, monkeypatch):
    """A file rewritten in place between the check and the read is not trusted."""
    import crmsync.xlsx_safety as safety

    path = openpyxl_book(tmp_path / "c.xlsx", [["编号"], ["C001"]])
    monkeypatch.setattr(safety.Package, "changed_on_disk", lambda self, p=None: True)
    with pytest.raises(InvalidFile) as e:
        read_sheet(path, "客户")
    assert "被修改" in str(e.value)
