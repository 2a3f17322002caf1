"""Writing into real workbook files: only what is meant to change changes, atomically.

Every test writes into a copy of a finished workbook (the committed crm_workbook.xlsm, or a
realistic .xlsm with VBA, ribbon, table, validation, conditional format and comment) and then
checks the result with independent readers: the raw zip entries, openpyxl, python-calamine, and
LibreOffice when it is installed.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import stat
import struct
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import hostile
import pytest
from workbook_fixtures import COMMITTED, soffice_or_skip

from crmsync.errors import InvalidFile, InvalidInput, NotFound
from crmsync.workbook import list_sheets, read_sheet, replace_sheet_rows, update_cells, write_key_values

ROOT = Path(__file__).resolve().parents[1]
SHEET1 = "xl/worksheets/sheet1.xml"


def raw_entries(path: Path) -> list[tuple[str, int, int, bytes]]:
    """Return (name, method, CRC, stored bytes) of each zip entry, in order."""
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            head = f.read(30)
            n, m = struct.unpack("<HH", head[26:30])
            f.seek(info.header_offset + 30 + n + m)
            out.append((info.filename, info.compress_type, info.CRC, f.read(info.compress_size)))
    return out


def assert_only_changed(before: Path | list, after: Path, changed: set[str]) -> None:
    """Every entry not in changed is byte for byte the same stored entry, in the same order."""
    old = before if isinstance(before, list) else raw_entries(before)
    new = raw_entries(after)
    assert [e[0] for e in new] == [e[0] for e in old]
    differ = {o[0] for o, n in zip(old, new) if o != n}
    assert differ <= changed, differ - changed
    for o, n in zip(old, new):
        if o[0] not in changed:
            assert o == n, o[0]


def xml(path: Path, part: str) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(part).decode("utf-8")


def opens_everywhere(path: Path, sheet: str) -> list[list[object]]:
    """Open with openpyxl (keeping VBA) and python-calamine; return openpyxl's values of sheet."""
    import openpyxl
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    for name in book.sheet_names:
        book.get_sheet_by_name(name).to_python()
    wb = openpyxl.load_workbook(path, keep_vba=path.suffix == ".xlsm")
    return [list(r) for r in wb[sheet].iter_rows(values_only=True)]


def customers(n: int) -> list[list[object]]:
    return [[f"C{i:03d}", f"公司{i}", f"0{13800000000 + i}", "潜在客户", dt.date(2024, 1, 1) + dt.timedelta(i),
             i * 1.5] for i in range(1, n + 1)]


# ---- replace_sheet_rows --------------------------------------------------------------------------

def test_replace_rows_grows_the_table_validation_and_format_ranges(realistic):
    before = raw_entries(realistic)
    assert replace_sheet_rows(realistic, "客户", customers(10)) == 10
    assert_only_changed(before, realistic, {SHEET1, "xl/tables/table1.xml"})
    table = xml(realistic, "xl/tables/table1.xml")
    assert 'ref="A1:F11"' in table and '<autoFilter ref="A1:F11"' in table
    sheet = xml(realistic, SHEET1)
    assert '<dimension ref="A1:F11"' in sheet
    assert '<dataValidation sqref="D2:D11"' in sheet and 'formula1>"潜在客户,成交客户,流失客户"<' in sheet
    assert '<conditionalFormatting sqref="F2:F11"' in sheet
    assert 'state="frozen"' in sheet  # the frozen header stays
    data = read_sheet(realistic, "客户")
    assert data.header == hostile.HEADER and data.row_numbers == list(range(2, 12))
    assert data.rows[0] == ["C001", "公司1", "013800000001", "潜在客户", dt.date(2024, 1, 2), 1.5]


def test_replace_rows_shrinks_the_table(realistic):
    replace_sheet_rows(realistic, "客户", customers(1))
    assert 'ref="A1:F2"' in xml(realistic, "xl/tables/table1.xml")
    assert read_sheet(realistic, "客户").row_numbers == [2]
    assert opens_everywhere(realistic, "客户")[1][0] == "C001"


def test_replace_with_no_rows_keeps_one_empty_table_row(realistic):
    assert replace_sheet_rows(realistic, "客户", []) == 0
    assert 'ref="A1:F2"' in xml(realistic, "xl/tables/table1.xml")  # Excel needs a data row in a table
    data = read_sheet(realistic, "客户")
    assert data.rows == [] and data.header == hostile.HEADER


def test_ribbon_vba_styles_comment_are_byte_identical(realistic):
    before = {e[0]: e for e in raw_entries(realistic)}
    replace_sheet_rows(realistic, "客户", customers(5))
    after = {e[0]: e for e in raw_entries(realistic)}
    for part in ("xl/vbaProject.bin", "customUI/customUI14.xml", "xl/styles.xml", "_rels/.rels",
                 "[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml"):
        assert after[part] == before[part], part
    comments = [p for p in before if "comments" in p or p.endswith(".vml")]
    assert comments and all(after[p] == before[p] for p in comments)


def test_written_file_opens_in_openpyxl_and_calamine(realistic):
    replace_sheet_rows(realistic, "客户", customers(3))
    values = opens_everywhere(realistic, "客户")
    assert values[0] == tuple(hostile.HEADER) or list(values[0]) == hostile.HEADER
    assert values[1][:4] == ["C001", "公司1", "013800000001", "潜在客户"]
    assert values[1][4] == dt.datetime(2024, 1, 2)  # openpyxl: a date-formatted serial
    import openpyxl

    ws = openpyxl.load_workbook(realistic, keep_vba=True)["客户"]
    assert ws.cell(2, 3).number_format == "@"  # the text format of the column survives
    assert ws.cell(2, 5).number_format == "yyyy-mm-dd"
    assert ws.freeze_panes == "A2"
    assert "客户表" in ws.tables
    assert [str(dv.sqref) for dv in ws.data_validations.dataValidation] == ["D2:D4"]


def test_leading_zeros_special_text_and_control_characters_round_trip(realistic):
    texts = ["007", "  前后空格  ", "a & b < c > d", "第一行\n第二行", "回车\r换行", "_x000D_ 原样",
             "华为\u202e公司\u200b", "响铃\x07退格\x08", "表情😀"]
    replace_sheet_rows(realistic, "客户", [[t] for t in texts])
    assert [r[0] for r in read_sheet(realistic, "客户").rows] == texts
    assert [r[0] for r in opens_everywhere(realistic, "客户")[1:]][:4] == texts[:4]


def test_numbers_booleans_and_empties(realistic):
    import numpy as np

    row = [12, -0.5, Decimal("1234.25"), True, False, math.nan, None, "", np.int64(7), np.float64(2.5)]
    replace_sheet_rows(realistic, "客户", [row])
    assert read_sheet(realistic, "客户").rows == [[12.0, -0.5, 1234.25, True, False, None, None, None, 7.0, 2.5]]


def test_dates_in_a_general_column_get_a_date_format(realistic):
    """Column B has no date format: styles.xml gains one, dates and times come back as such."""
    before = raw_entries(realistic)
    when = dt.datetime(2024, 5, 21, 9, 30)
    replace_sheet_rows(realistic, "客户", [["C1", when, None, None, dt.date(1900, 1, 1), dt.time(8, 15)]])
    assert_only_changed(before, realistic, {SHEET1, "xl/tables/table1.xml", "xl/styles.xml"})
    row = read_sheet(realistic, "客户").rows[0]
    assert row[1] == when and row[4] == dt.date(1900, 1, 1)
    assert row[5] in (dt.time(8, 15), dt.timedelta(hours=8, minutes=15))


@pytest.mark.parametrize("value, words", [
    (10 ** 15, "15 位"),
    (math.inf, "无穷大"),
    (dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "时区"),
    (dt.date(1800, 1, 1), "最早"),
    ("长" * 32_768, "32767"),
    ("坏\ud800", "U+D800"),
    ("\ufffe", "U+FFFE"),
    (object(), "object"),
])
def test_a_value_excel_cannot_hold_is_refused_naming_the_cell_and_nothing_changes(realistic, value, words):
    before = realistic.read_bytes()
    with pytest.raises(InvalidInput) as e:
        replace_sheet_rows(realistic, "客户", customers(40) + [["C041", "x", value]])
    assert str(e.value).startswith("第 42 行 C 列："), str(e.value)
    assert words in str(e.value)
    assert realistic.read_bytes() == before
    assert [p.name for p in realistic.parent.iterdir()] == ["crm.xlsm"]  # no temp file left


def test_header_under_a_title_row_and_its_table(tmp_path):
    """start_row=4: a title, a blank row, the header in row 3 and a table A3:C5 on it."""
    from openpyxl import Workbook
    from openpyxl.worksheet.table import Table

    path = tmp_path / "title.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "客户"
    ws["A1"] = "2024 年客户名单"
    for r, row in enumerate([["编号", "名称", "金额"], ["C1", "甲", 1], ["C2", "乙", 2]], start=3):
        for c, v in enumerate(row, start=1):
            ws.cell(r, c, v)
    ws.add_table(Table(displayName="t1", ref="A3:C5"))
    wb.save(path)
    replace_sheet_rows(path, "客户", [["C9", "丙", 9], ["C8", "丁", 8], ["C7", "戊", 7]], start_row=4)
    assert 'ref="A3:C6"' in xml(path, "xl/tables/table1.xml")
    data = read_sheet(path, "客户", header_row=3)
    assert data.rows == [["C9", "丙", 9.0], ["C8", "丁", 8.0], ["C7", "戊", 7.0]] and data.row_numbers == [4, 5, 6]
    assert read_sheet(path, "客户").header == ["2024 年客户名单", "", ""]


def test_a_table_with_a_totals_row_is_refused(tmp_path):
    from openpyxl import Workbook
    from openpyxl.worksheet.table import Table

    path = tmp_path / "totals.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.append(["编号", "金额"])
    ws.append(["C1", 1])
    ws.append(["合计", 1])
    ws.add_table(Table(displayName="t", ref="A1:B3", totalsRowCount=1))
    wb.save(path)
    with pytest.raises(InvalidInput) as e:
        replace_sheet_rows(path, "Sheet", [["C2", 2]])
    assert "汇总行" in str(e.value)


def test_prefixed_sheet_and_self_closed_sheet_data(tmp_path):
    prefixed = ('<?xml version="1.0" encoding="UTF-8"?><x:worksheet '
                'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:dimension ref="A1"/>'
                '<x:sheetData><x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>编号</x:t></x:is></x:c></x:row>'
                "</x:sheetData></x:worksheet>")
    path = hostile.minimal_xlsx(tmp_path / "p.xlsx", sheet=prefixed)
    replace_sheet_rows(path, "客户", [["C1"], ["C2"]])
    update_cells(path, "客户", {(3, 2): "改"})
    assert read_sheet(path, "客户").rows == [["C1", None], ["C2", "改"]]
    assert opens_everywhere(path, "客户") == [["编号", None], ["C1", None], ["C2", "改"]]  # openpyxl reads namespaces
    assert "<row" not in xml(path, SHEET1) and "<c " not in xml(path, SHEET1)  # every element prefixed
    empty = hostile.minimal_xlsx(tmp_path / "e.xlsx", sheet=f"<worksheet {hostile.NS}><sheetData/></worksheet>")
    replace_sheet_rows(empty, "客户", [["甲", "乙"], ["1", "2"]], start_row=1)
    assert read_sheet(empty, "客户").rows == [["1", "2"]]
    assert opens_everywhere(empty, "客户") == [["甲", "乙"], ["1", "2"]]


def test_removing_formulas_drops_the_calculation_chain(tmp_path):
    sheet = hostile.sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
                              '<row r="2"><c r="A2"><f>1+1</f><v>2</v></c></row>', "A1:A2")
    types = hostile.CONTENT_TYPES.replace("</Types>", '<Override PartName="/xl/calcChain.xml" ContentType='
                                          '"application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain'
                                          '+xml"/></Types>')
    rels = hostile.WORKBOOK_RELS.replace("</Relationships>", (
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'calcChain" Target="calcChain.xml"/></Relationships>'))
    path = hostile.minimal_xlsx(tmp_path / "calc.xlsx", sheet=sheet, extra={
        "[Content_Types].xml": types, "xl/_rels/workbook.xml.rels": rels,
        "xl/calcChain.xml": f'<calcChain {hostile.NS}><c r="A2" i="1"/></calcChain>'})
    replace_sheet_rows(path, "客户", [["无公式"]])
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert "xl/calcChain.xml" not in names
        assert b"calcChain" not in z.read("[Content_Types].xml")
        assert b"calcChain" not in z.read("xl/_rels/workbook.xml.rels")
    assert read_sheet(path, "客户").rows == [["无公式"]]


def test_writes_are_deterministic_and_keep_file_permissions(realistic, tmp_path):
    os.chmod(realistic, 0o640)
    other = Path(shutil.copy(realistic, tmp_path / "other.xlsm"))
    os.chmod(other, 0o640)
    replace_sheet_rows(realistic, "客户", customers(7))
    replace_sheet_rows(other, "客户", customers(7))
    assert realistic.read_bytes() == other.read_bytes()
    assert stat.S_IMODE(os.stat(realistic).st_mode) == 0o640


def test_out_writes_elsewhere_and_leaves_the_source(realistic, tmp_path):
    before = realistic.read_bytes()
    target = tmp_path / "副本.xlsm"
    replace_sheet_rows(realistic, "客户", customers(2), out=target)
    assert realistic.read_bytes() == before
    assert read_sheet(target, "客户").row_numbers == [2, 3]


def test_missing_sheet(realistic):
    with pytest.raises(NotFound):
        replace_sheet_rows(realistic, "联系人", [])


# ---- update_cells --------------------------------------------------------------------------------

def test_update_cells_keeps_styles_creates_rows_and_empties(realistic):
    before = raw_entries(realistic)
    n = update_cells(realistic, "客户", {(3, 2): "腾讯", (3, 6): None, (2, 3): "0139", (8, 1): "C008",
                                         (3, 8): dt.date(2024, 6, 1)})
    assert n == 5
    assert_only_changed(before, realistic, {SHEET1, "xl/styles.xml"})
    data = read_sheet(realistic, "客户")
    assert data.row_numbers == [2, 3, 4, 8]
    assert data.rows[0][2] == "0139" and data.rows[1][1] == "腾讯" and data.rows[1][5] is None
    assert data.rows[1][7] == dt.date(2024, 6, 1) and data.rows[3][0] == "C008"
    assert '<dimension ref="A1:H8"' in xml(realistic, SHEET1)
    import openpyxl

    ws = openpyxl.load_workbook(realistic, keep_vba=True)["客户"]
    assert ws.cell(2, 3).number_format == "@"  # replaced in place: the cell keeps its style
    assert ws.cell(3, 6).number_format == "#,##0.00"  # emptied, still styled
    assert ws["B2"].comment.text == "重点客户"


def test_update_cells_refuses_positions_outside_the_grid(realistic):
    with pytest.raises(InvalidInput):
        update_cells(realistic, "客户", {(0, 1): "x"})
    with pytest.raises(InvalidInput):
        update_cells(realistic, "客户", {(1, 16_385): "x"})


def test_update_cells_refuses_to_overwrite_a_shared_formula_master(tmp_path):
    sheet = hostile.sheet_xml('<row r="1"><c r="A1"><f t="shared" ref="A1:A2" si="0">1+1</f><v>2</v></c></row>'
                              '<row r="2"><c r="A2"><f t="shared" si="0"/><v>2</v></c></row>', "A1:A2")
    path = hostile.minimal_xlsx(tmp_path / "shared.xlsx", sheet=sheet)
    with pytest.raises(InvalidInput) as e:
        update_cells(path, "客户", {(1, 1): 5})
    assert "共用公式" in str(e.value)


# ---- write_key_values (xlwings.conf) -------------------------------------------------------------

def test_write_key_values_on_the_committed_workbook(committed):
    before = raw_entries(committed)
    conf_part = next(s.part for s in _sheets(committed) if s.name == "xlwings.conf")
    write_key_values(committed, "xlwings.conf", {"CRMSYNC_STORE": "/srv/crm/crm.db", "interpreter_win":
                                                 r"C:\Python311\python.exe", "CRMSYNC_USER": "张三"})
    assert_only_changed(before, committed, {conf_part})
    conf = read_sheet(committed, "xlwings.conf", header_row=1)
    pairs = dict([conf.header] + [r[:2] for r in conf.rows])
    assert pairs["CRMSYNC_STORE"] == "/srv/crm/crm.db"
    assert pairs["INTERPRETER_WIN"] == r"C:\Python311\python.exe"  # matched as xlwings reads keys: upper-cased
    assert pairs["CRMSYNC_USER"] == "张三"  # a new key, appended right under the others
    keys = [conf.header[0]] + [r[0] for r in conf.rows]
    assert keys[-1] == "CRMSYNC_USER" and conf.row_numbers == list(range(2, len(keys) + 1))
    assert pairs["UDF MODULES"] == "crmsync.udfs"


def test_write_key_values_twice_changes_nothing_more(committed):
    write_key_values(committed, "xlwings.conf", {"CRMSYNC_STORE": "/a.db"})
    once = committed.read_bytes()
    write_key_values(committed, "xlwings.conf", {"CRMSYNC_STORE": "/a.db"})
    assert committed.read_bytes() == once


def test_write_key_values_only_sees_the_keys_xlwings_reads(tmp_path):
    """xlwings reads column A from A1 to the first gap: a key after the gap is not a setting, and
    filling the gap would join it to the settings (a duplicate key makes xlwings fail)."""
    sheet = hostile.sheet_xml(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>A</t></is></c><c r="B1" t="inlineStr"><is><t>1</t></is></c></row>'
        '<row r="4"><c r="A4" t="inlineStr"><is><t>B</t></is></c><c r="B4" t="inlineStr"><is><t>old</t></is></c></row>',
        "A1:B4")
    path = hostile.minimal_xlsx(tmp_path / "conf.xlsx", sheet=sheet, workbook=hostile.workbook_xml("xlwings.conf"))
    write_key_values(path, "xlwings.conf", {"a": "2", "b": "new"})
    data = read_sheet(path, "xlwings.conf", header_row=1)
    assert data.header == ["A", "2"] and data.rows == [["b", "new"], ["B", "old"]] and data.row_numbers == [2, 4]
    before = path.read_bytes()
    with pytest.raises(InvalidInput) as e:
        write_key_values(path, "xlwings.conf", {"C": "x"})  # row 3 would join row 4's B to the keys
    assert "第 4 行" in str(e.value)
    assert path.read_bytes() == before


def test_place_workbook_points_the_copy_at_the_store(tmp_path):
    from crmsync.project import place_workbook

    target = place_workbook(tmp_path / "crm_workbook.xlsm", tmp_path / "crm.db")
    conf = read_sheet(target, "xlwings.conf", header_row=1)
    pairs = dict([conf.header] + [r[:2] for r in conf.rows])
    assert pairs["CRMSYNC_STORE"] == str((tmp_path / "crm.db").resolve()) and pairs["CRMSYNC_LANG"] == "zh"
    assert list_sheets(target) == list_sheets(COMMITTED)


def _sheets(path: Path):
    from crmsync.xlsx_safety import open_package

    with open_package(path) as pkg:
        return pkg.sheets


# ---- the committed workbook: the customer table grows and shrinks ----------------------------------

def test_committed_workbook_customer_table(committed):
    header = read_sheet(committed, "客户").header
    before = raw_entries(committed)
    rows = [[f"C2024052100{i:02d}", f"测试公司{i}"] + [None] * (len(header) - 2) for i in range(1, 6)]
    replace_sheet_rows(committed, "客户", rows)
    assert_only_changed(before, committed, {SHEET1, "xl/tables/table1.xml"})
    assert re.search(r'<table [^>]*ref="A1:AL6"', xml(committed, "xl/tables/table1.xml"))
    sheet = xml(committed, SHEET1)
    assert 'conditionalFormatting sqref="A2:AL1048576"' in sheet  # whole-column ranges stay whole
    assert sheet.count("<dataValidation ") == 30
    assert [r[1] for r in read_sheet(committed, "客户").rows] == [f"测试公司{i}" for i in range(1, 6)]
    replace_sheet_rows(committed, "客户", rows[:2])
    assert re.search(r'<table [^>]*ref="A1:AL3"', xml(committed, "xl/tables/table1.xml"))
    opens_everywhere(committed, "客户")


# ---- atomic writes ---------------------------------------------------------------------------------

def test_a_failure_at_the_last_step_leaves_the_original(realistic, monkeypatch):
    before = realistic.read_bytes()

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InvalidFile) as e:
        replace_sheet_rows(realistic, "客户", customers(3))
    assert str(e.value) == "无法写入“crm.xlsm”：No space left on device；原文件未改动"
    assert realistic.read_bytes() == before
    assert [p.name for p in realistic.parent.iterdir()] == ["crm.xlsm"]


def test_a_failure_while_writing_leaves_the_original(realistic, monkeypatch):
    import crmsync.xlsx_zip as xz

    before = realistic.read_bytes()
    real = xz.ZipOut.copy

    def copy(self, pkg, info):
        if info.filename == "xl/vbaProject.bin":
            raise OSError(5, "Input/output error")
        real(self, pkg, info)

    monkeypatch.setattr(xz.ZipOut, "copy", copy)
    with pytest.raises(InvalidFile):
        update_cells(realistic, "客户", {(2, 2): "x"})
    assert realistic.read_bytes() == before
    assert [p.name for p in realistic.parent.iterdir()] == ["crm.xlsm"]


def test_an_unwritable_folder_gives_one_message(realistic, monkeypatch):
    import tempfile

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", deny)
    with pytest.raises(InvalidFile) as e:
        write_key_values(realistic, "xlwings.conf", {"A": "1"})
    assert "没有权限" in str(e.value) and "原文件未改动" in str(e.value)


def test_a_save_by_excel_during_the_write_is_kept(realistic, monkeypatch):
    """If someone saves the file while we write it, their save wins and we say so."""
    import crmsync.xlsx_zip as xz

    real = xz.ZipOut.close

    def close(self, comment=b""):
        real(self, comment)
        shutil.copy(realistic, realistic.with_suffix(".tmp-save"))
        os.replace(realistic.with_suffix(".tmp-save"), realistic)  # a save: new file, same name
        os.utime(realistic, ns=(1, 1))

    monkeypatch.setattr(xz.ZipOut, "close", close)
    before = realistic.read_bytes()
    with pytest.raises(InvalidFile) as e:
        replace_sheet_rows(realistic, "客户", customers(2))
    assert "保存" in str(e.value)
    assert realistic.read_bytes() == before
    assert sorted(p.name for p in realistic.parent.iterdir()) == ["crm.xlsm"]


# ---- LibreOffice: a written file still converts without error --------------------------------------

@pytest.mark.slow
def test_libreoffice_converts_written_workbooks(committed, realistic, tmp_path):
    soffice = soffice_or_skip()
    header = read_sheet(committed, "客户").header
    replace_sheet_rows(committed, "客户", [["C202405210001", "华为技术有限公司"] + [None] * (len(header) - 2)])
    write_key_values(committed, "xlwings.conf", {"CRMSYNC_STORE": "/srv/crm.db"})
    replace_sheet_rows(realistic, "客户", customers(4))
    out = tmp_path / "out"
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    csv = "csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,false,false,false,1"  # first sheet
    done = subprocess.run([soffice, profile, "--headless", "--convert-to", csv, "--outdir", str(out),
                           str(committed), str(realistic)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "Error" not in done.stderr, done.stderr
    first = (out / "crm_workbook-客户.csv").read_text(encoding="utf-8").splitlines()
    assert first[0].split(",")[:2] == ["客户编号", "客户名称"]
    assert first[1].split(",")[:2] == ["C202405210001", "华为技术有限公司"]
    lines = (out / "crm-客户.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1].split(",")[:3] == ["C001", "公司1", "013800000001"] and len(lines) == 5
