"""FileBook, the workbook seam over a file, on real workbooks: reads, writes, marks, report, validation.

Every test works on a copy of the committed crm_workbook.xlsm (or the realistic .xlsm of
tests/hostile.py, which carries a note a person wrote) whose sheets were filled with the file
layer, and checks the result with independent readers: the raw zip entries, openpyxl,
python-calamine, and LibreOffice when it is installed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import hostile
import pytest
from workbook_fixtures import soffice_or_skip

from crmsync.actions import validate_workbook
from crmsync.book_file import FileBook
from crmsync.errors import InvalidFile, InvalidInput, NotFound
from crmsync.schema import CUSTOMER
from crmsync.seam import MARK_FILL, MARK_PREFIX, Link, Report, SheetTable, WorkbookSeam
from crmsync.workbook import read_sheet, replace_sheet_rows, update_cells
from crmsync.xlsx_patch import set_tail_element, tail_elements

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "crm_workbook.xlsm"
SHEET1 = "xl/worksheets/sheet1.xml"  # 客户
REPORT = "xl/worksheets/sheet9.xml"  # 校验结果
NOTES_PARTS = {"xl/comments1.xml", "xl/drawings/vmlDrawing1.vml", "xl/worksheets/_rels/sheet1.xml.rels",
               "[Content_Types].xml"}
COL = {f.key: i + 1 for i, f in enumerate(CUSTOMER.fields)}  # 1-based columns of the built 客户 sheet
STATUS_COL = 36  # AJ: the hidden 校验状态 column


def customer(i: int, **fields) -> list:
    """A valid 客户 row (labels as the workbook shows them), with fields replaced."""
    values = {"customer_id": f"C2024052100{i:03d}", "customer_name": f"测试科技有限公司{i}", "customer_type": "企业客户",
              "contact_name": "张伟", "mobile": f"138{i:08d}", "email": f"user{i}@example.com",
              "status": "潜在客户", "first_deal_date": dt.date(2023, 3, i % 28 + 1), "total_amount": 1000.5 * i}
    values.update(fields)
    return [values.get(f.key) for f in CUSTOMER.fields]


ROWS = [
    customer(1),                                  # row 2: valid
    customer(2, mobile="1381234"),                # row 3: mobile too short
    customer(3, email="bad@"),                    # row 4: email without domain
    customer(4, status="流失客户"),                # row 5: lost without a reason
    [None] * len(CUSTOMER.fields),                # row 6: empty, skipped on reading
    customer(6),                                  # row 7: valid
]


@pytest.fixture
def book_path(tmp_path) -> Path:
    path = Path(shutil.copy(COMMITTED, tmp_path / "crm_workbook.xlsm"))
    replace_sheet_rows(path, "客户", ROWS)
    return path


@pytest.fixture
def realistic(tmp_path) -> Path:
    return hostile.realistic_xlsm(tmp_path)


def raw_entries(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Return name → (method, CRC, stored bytes) of each zip entry."""
    out = {}
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            head = f.read(30)
            n, m = struct.unpack("<HH", head[26:30])
            f.seek(info.header_offset + 30 + n + m)
            out[info.filename] = (info.compress_type, info.CRC, f.read(info.compress_size))
    return out


def changed_parts(before: dict, after: Path) -> set[str]:
    now = raw_entries(after)
    return {name for name in set(before) | set(now) if before.get(name) != now.get(name)}


def xml(path: Path, part: str) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(part).decode("utf-8")


def calamine_rows(path: Path, sheet: str) -> list[list]:
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def openpyxl_sheet(path: Path, sheet: str):
    import openpyxl

    return openpyxl.load_workbook(path, keep_vba=True)[sheet]


def fill_of(cell) -> str | None:
    """The solid fill colour of an openpyxl cell (RRGGBB), or None."""
    if cell.fill is None or cell.fill.patternType != "solid":
        return None
    return str(cell.fill.fgColor.rgb)[-6:].upper()


# ---- reading ---------------------------------------------------------------------------------------

def test_is_a_seam_and_reads_sheets(book_path):
    book = FileBook(book_path)
    assert isinstance(book, WorkbookSeam)
    assert book.name == "crm_workbook.xlsm"
    assert book.sheet_names()[:3] == ["客户", "联系人", "跟进记录"] and "校验结果" in book.sheet_names()
    table = book.read_table("客户")
    assert isinstance(table, SheetTable) and table.sheet == "客户" and table.header_row == 1
    assert table.header[:3] == ["客户编号", "客户名称", "客户类型"] and table.header[STATUS_COL - 1] == "校验状态"
    assert table.row_numbers == [2, 3, 4, 5, 7]  # the empty row 6 is left out
    assert all(len(row) == len(table.header) for row in table.rows)
    row = table.rows[1]
    assert row[COL["customer_id"] - 1] == "C2024052100002"
    assert row[COL["mobile"] - 1] == "1381234"  # text stays text
    assert row[COL["first_deal_date"] - 1] in (dt.date(2023, 3, 3), dt.datetime(2023, 3, 3))
    assert row[COL["total_amount"] - 1] == 2001.0
    assert row[COL["credit_code"] - 1] is None  # empty cells are None
    assert table.column("手机号") == COL["mobile"]


def test_sheet_names_match_as_excel_matches_them(book_path):
    book = FileBook(book_path)
    assert book.read_table("XLWINGS.CONF").sheet == "xlwings.conf"
    book.write_cells("XLWINGS.conf", {(9, 1): "KEY"})
    assert book.read_table("xlwings.conf").rows[-1][0] == "KEY"


def test_a_cell_written_and_marked_at_once_gets_both(book_path):
    book = FileBook(book_path)
    cell = (3, COL["mobile"])
    book.write_cells("客户", {cell: "12345"})
    book.mark_cells("客户", {cell: "还是不对"})
    book.save()
    ws = openpyxl_sheet(book_path, "客户")
    assert ws.cell(*cell).value == "12345" and fill_of(ws.cell(*cell)) == MARK_FILL
    assert ws.cell(*cell).number_format == "@" and ws.cell(*cell).comment.text == MARK_PREFIX + "还是不对"


# ---- writing cells -----------------------------------------------------------------------------

def test_write_cells_is_seen_before_save_and_written_once(book_path):
    before = raw_entries(book_path)
    book = FileBook(book_path)
    book.write_cells("客户", {(3, COL["mobile"]): "13900000000", (7, COL["total_amount"]): 12,
                             (9, COL["customer_name"]): "新公司", (2, COL["email"]): None})
    table = book.read_table("客户")
    assert table.row_numbers == [2, 3, 4, 5, 7, 9]  # a new row appears where it will be
    assert table.rows[1][COL["mobile"] - 1] == "13900000000"
    assert table.rows[4][COL["total_amount"] - 1] == 12.0  # as the file will give it back
    assert table.rows[0][COL["email"] - 1] is None
    assert changed_parts(before, book_path) == set()  # nothing on disk yet
    book.save()
    assert changed_parts(before, book_path) == {SHEET1}
    data = read_sheet(book_path, "客户")
    assert data.row_numbers == [2, 3, 4, 5, 7, 9]
    assert data.rows[1][COL["mobile"] - 1] == "13900000000" and data.rows[5][COL["customer_name"] - 1] == "新公司"
    ws = openpyxl_sheet(book_path, "客户")
    assert ws.cell(3, COL["mobile"]).number_format == "@"  # the cell keeps its text format
    assert ws.cell(7, COL["total_amount"]).value == 12


def test_save_with_nothing_to_do_writes_nothing(book_path):
    stat = book_path.stat()
    book = FileBook(book_path)
    book.read_table("客户")
    book.status("只是看看")
    book.save()
    book.mark_cells("客户", {}, clear=[(3, 2)])  # no mark there: nothing differs
    book.save()
    assert book_path.stat().st_mtime_ns == stat.st_mtime_ns
    assert book.messages == ["只是看看"]


def test_status_calls_back_and_keeps_messages(book_path):
    seen = []
    book = FileBook(book_path, on_status=seen.append)
    book.status("一")
    book.status("二")
    assert seen == ["一", "二"] and book.messages == ["一", "二"]


# ---- marks -----------------------------------------------------------------------------------------

def test_mark_fills_and_notes_cells_keeping_formats(book_path):
    before = raw_entries(book_path)
    book = FileBook(book_path)
    mobile, date, empty = (3, COL["mobile"]), (4, COL["first_deal_date"]), (5, COL["lost_reason"])
    book.mark_cells("客户", {mobile: MARK_PREFIX + "手机号不对", date: "日期不对", empty: MARK_PREFIX + "必填\n第二行"})
    assert book.marked_cells("客户") == {mobile: MARK_PREFIX + "手机号不对", date: MARK_PREFIX + "日期不对",
                                          empty: MARK_PREFIX + "必填\n第二行"}
    book.save()
    assert changed_parts(before, book_path) == {SHEET1, "xl/styles.xml"} | NOTES_PARTS
    ws = openpyxl_sheet(book_path, "客户")
    for (r, c), text in ((mobile, "手机号不对"), (date, "日期不对"), (empty, "必填\n第二行")):
        cell = ws.cell(r, c)
        assert fill_of(cell) == MARK_FILL, (r, c)
        assert cell.comment is not None and cell.comment.text == MARK_PREFIX + text
    assert ws.cell(*mobile).number_format == "@" and ws.cell(*date).number_format == "yyyy-mm-dd"
    assert fill_of(ws.cell(2, COL["mobile"])) is None and ws.cell(2, COL["mobile"]).comment is None
    grid = calamine_rows(book_path, "客户")  # values untouched, still readable
    assert grid[2][COL["mobile"] - 1] == "1381234" and grid[1][0] == "C2024052100001"
    assert FileBook(book_path).marked_cells("客户") == {mobile: MARK_PREFIX + "手机号不对", date: MARK_PREFIX + "日期不对",
                                                        empty: MARK_PREFIX + "必填\n第二行"}
    sheet = xml(book_path, SHEET1)
    assert re.search(r'<legacyDrawing [^>]*r:id="rId\d+"/><tableParts', sheet)  # in schema order
    types = xml(book_path, "[Content_Types].xml")
    assert '<Override PartName="/xl/comments1.xml"' in types and 'Extension="vml"' in types


def test_clear_restores_the_cell_format_and_removes_only_our_note(book_path):
    book = FileBook(book_path)
    a, b = (3, COL["mobile"]), (4, COL["first_deal_date"])
    book.mark_cells("客户", {a: "一", b: "二"})
    book.save()
    styles_after_mark = raw_entries(book_path)["xl/styles.xml"]
    book.mark_cells("客户", {}, clear=[a])
    assert book.marked_cells("客户") == {b: MARK_PREFIX + "二"}
    book.save()
    ws = openpyxl_sheet(book_path, "客户")
    assert fill_of(ws.cell(*a)) is None and ws.cell(*a).comment is None
    assert ws.cell(*a).number_format == "@"  # back to the column's text format
    assert fill_of(ws.cell(*b)) == MARK_FILL and ws.cell(*b).comment.text == MARK_PREFIX + "二"
    assert raw_entries(book_path)["xl/styles.xml"] == styles_after_mark  # clearing adds no format
    cell_a = re.search(r'<c r="G3"[^>]*>', xml(book_path, SHEET1)).group(0)
    assert ' s="2"' in cell_a  # exactly the format the row's other text cells in that column have
    book.mark_cells("客户", {}, clear=[b])
    book.save()
    ws = openpyxl_sheet(book_path, "客户")
    assert fill_of(ws.cell(*b)) is None and ws.cell(*b).number_format == "yyyy-mm-dd"
    assert FileBook(book_path).marked_cells("客户") == {}


def test_marking_again_changes_nothing(book_path):
    book = FileBook(book_path)
    book.mark_cells("客户", {(3, COL["mobile"]): "一"})
    book.save()
    before = raw_entries(book_path)
    book.mark_cells("客户", {(3, COL["mobile"]): MARK_PREFIX + "一"})
    book.save()
    assert changed_parts(before, book_path) == set()


def _person_note(path: Path, cell: tuple[int, int], text: str) -> None:
    """Give a cell a note a person wrote, and no fill (written by crmsync, then edited as in Excel)."""
    from crmsync.xlsx_limits import col_letters

    tag = re.compile(rf'<c r="{col_letters(cell[1])}{cell[0]}"[^>]*?/?>'.encode())
    original = tag.search(zipfile.ZipFile(path).read(SHEET1))
    book = FileBook(path)
    book.mark_cells("客户", {cell: "临时"})
    book.save()
    with zipfile.ZipFile(path) as src:
        data = {n: src.read(n) for n in src.namelist()}
    data["xl/comments1.xml"] = data["xl/comments1.xml"].replace((MARK_PREFIX + "临时").encode(), text.encode())
    data[SHEET1] = tag.sub(lambda m: original.group(0) if original else m.group(0).replace(b' s="', b' x="'), data[SHEET1])
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info, data[info.filename])
    os.replace(tmp, path)


def test_a_persons_note_is_never_touched(book_path):
    mobile, other = (3, COL["mobile"]), (2, COL["customer_name"])
    _person_note(book_path, other, "王经理：重点客户，月底前回访")
    _person_note(book_path, mobile, "李四：号码待确认")  # on a cell validation will mark
    comments = xml(book_path, "xl/comments1.xml")
    person = re.search(r'<comment ref="G3".*?</comment>', comments).group(0)
    message = validate_workbook(FileBook(book_path), lang="zh")
    assert "共 3 处" in message
    comments = xml(book_path, "xl/comments1.xml")
    assert person in comments and "王经理：重点客户，月底前回访" in comments
    ws = openpyxl_sheet(book_path, "客户")
    assert ws.cell(*mobile).comment.text == "李四：号码待确认"
    assert ws.cell(*other).comment.text == "王经理：重点客户，月底前回访"
    assert fill_of(ws.cell(*mobile)) is None  # the person's cell is not ours to colour
    assert fill_of(ws.cell(4, COL["email"])) == MARK_FILL
    report = read_sheet(book_path, "校验结果")
    assert [r[1] for r in report.rows] == [3.0, 4.0, 5.0]  # still listed on the report
    assert set(FileBook(book_path).marked_cells("客户")) == {(4, COL["email"]), (5, COL["lost_reason"])}
    book = FileBook(book_path)
    book.mark_cells("客户", {}, clear=[mobile, other])
    book.save()
    assert person in xml(book_path, "xl/comments1.xml")


def test_marks_next_to_notes_of_another_writer(realistic):
    """The realistic workbook's note (openpyxl wrote it, with its own VML prefixes) stays as it was."""
    before = raw_entries(realistic)
    names = zipfile.ZipFile(realistic).namelist()
    comments = next(n for n in names if "comments" in n and n.endswith(".xml"))
    vml = next(n for n in names if n.endswith(".vml"))
    old_note = re.search(r"<comment .*?</comment>", xml(realistic, comments)).group(0)
    book = FileBook(realistic)
    book.mark_cells("客户", {(3, 3): "号码不对"})
    book.save()
    assert changed_parts(before, realistic) == {"xl/worksheets/sheet1.xml", "xl/styles.xml", comments, vml}
    assert old_note in xml(realistic, comments)
    ws = openpyxl_sheet(realistic, "客户")
    assert ws["B2"].comment.text.startswith("重点客户") and fill_of(ws["B2"]) is None
    assert ws["C3"].comment.text == MARK_PREFIX + "号码不对" and fill_of(ws["C3"]) == MARK_FILL
    drawing = xml(realistic, vml)
    assert drawing.count("ObjectType=\"Note\"") == 2 and "<v:shape" not in drawing  # its own prefixes used
    book.mark_cells("客户", {}, clear=[(3, 3)])
    book.save()
    assert xml(realistic, vml).count("ObjectType=\"Note\"") == 1
    assert openpyxl_sheet(realistic, "客户")["B2"].comment.text.startswith("重点客户")


def test_marks_on_two_sheets_get_their_own_parts_and_shape_ids(book_path):
    book = FileBook(book_path)
    book.mark_cells("客户", {(3, 2): "一"})
    book.mark_cells("联系人", {(2, 2): "二"})
    book.save()
    names = zipfile.ZipFile(book_path).namelist()
    assert {"xl/comments1.xml", "xl/comments2.xml", "xl/drawings/vmlDrawing1.vml", "xl/drawings/vmlDrawing2.vml"} <= set(names)
    blocks = [re.search(r'idmap [^>]*data="([^"]*)"', xml(book_path, f"xl/drawings/vmlDrawing{i}.vml")).group(1)
              for i in (1, 2)]
    assert blocks[0] != blocks[1]
    assert openpyxl_sheet(book_path, "联系人")["B2"].comment.text == MARK_PREFIX + "二"


def test_many_marks_spill_into_more_shape_id_blocks(book_path):
    book = FileBook(book_path)
    marks = {(r, c): f"第{r}行" for r in range(2, 402) for c in (2, 7, 9)}  # 1,200 notes
    book.mark_cells("客户", marks)
    book.save()
    drawing = xml(book_path, "xl/drawings/vmlDrawing1.vml")
    ids = re.findall(r'id="_x0000_s(\d+)"', drawing)
    assert len(ids) == len(set(ids)) == 1200
    blocks = [int(b) for b in re.search(r'data="([^"]*)"', drawing).group(1).split(",")]
    assert len(blocks) == 2 and all(b * 1024 < int(i) < (b + 1) * 1024 for i in ids for b in [int(i) // 1024])
    assert len(FileBook(book_path).marked_cells("客户")) == 1200


# ---- the report sheet --------------------------------------------------------------------------

def test_replace_report_writes_rows_and_internal_links(book_path):
    before = raw_entries(book_path)
    header = ["工作表", "行号", "字段", "值", "问题", "级别"]
    report = Report(header, [["客户", 3, "手机号", "1381234", "不对", "错误"], ["客户", 5, "流失原因", None, "必填", "错误"]],
                    {(0, 2): Link("客户", 3, 7), (1, 2): Link("客户", 5, 13)})
    book = FileBook(book_path)
    book.replace_report("校验结果", report)
    assert book.read_table("校验结果").rows[0][:2] == ["客户", 3.0]
    book.save()
    changed = changed_parts(before, book_path)
    assert changed <= {REPORT, "xl/styles.xml"} and REPORT in changed
    sheet = xml(book_path, REPORT)
    assert '<c r="A1" s="12" t="inlineStr"><is><t>工作表</t></is></c>' in sheet  # the header row as built
    ws = openpyxl_sheet(book_path, "校验结果")
    assert [c.value for c in ws[2]] == ["客户", 3, "手机号", "1381234", "不对", "错误"]
    assert ws["B2"].hyperlink.location == "'客户'!G3" and ws["B3"].hyperlink.location == "'客户'!M5"
    assert ws["B2"].font.u == "single"  # shown as a link
    assert ws["A2"].hyperlink is None
    # a shorter report: old rows and links go
    book.replace_report("校验结果", Report(header, [["联系人", 2, "手机号", "1", "不对", "错误"]],
                                         {(0, 2): Link("联系人", 2, 5)}))
    book.save()
    ws = openpyxl_sheet(book_path, "校验结果")
    assert ws.max_row == 2 and ws["B2"].hyperlink.location == "'联系人'!E2"
    assert xml(book_path, REPORT).count("<hyperlink ") == 1
    book.replace_report("校验结果", Report(header, []))
    book.save()
    assert "<hyperlinks" not in xml(book_path, REPORT) and read_sheet(book_path, "校验结果").rows == []


def test_report_header_in_another_language_replaces_the_header_cells(book_path):
    book = FileBook(book_path)
    book.replace_report("校验结果", Report(["Sheet", "Row", "Field", "Value", "Problem"], [["客户", 2, "a", "b", "c"]]))
    book.save()
    data = read_sheet(book_path, "校验结果")
    assert data.header == ["Sheet", "Row", "Field", "Value", "Problem"]  # the 6th built header cell emptied
    assert 's="12"' in re.search(r'<c r="A1"[^>]*>', xml(book_path, REPORT)).group(0)  # header style kept


# ---- the 校验 action end to end ----------------------------------------------------------------------

def test_validate_marks_reports_and_clears_fixed_cells(book_path):
    seen = []
    book = FileBook(book_path, on_status=seen.append)
    message = validate_workbook(book, lang="zh")
    assert message == "校验完成：5 行中 3 行有问题，共 3 处，见“校验结果”"
    assert seen[0] == "正在校验 客户…" and seen[-1] == message and book.messages == seen
    expected = {(3, COL["mobile"]), (4, COL["email"]), (5, COL["lost_reason"])}
    again = FileBook(book_path)
    assert set(again.marked_cells("客户")) == expected
    ws = openpyxl_sheet(book_path, "客户")
    for r, c in expected:
        assert fill_of(ws.cell(r, c)) == MARK_FILL and ws.cell(r, c).comment.text.startswith(MARK_PREFIX)
    assert "1381234" in ws.cell(3, COL["mobile"]).comment.text
    status = {r: ws.cell(r, STATUS_COL).value for r in (2, 3, 4, 5, 7)}
    assert status == {2: None, 3: "1 个问题", 4: "1 个问题", 5: "1 个问题", 7: None}
    report = openpyxl_sheet(book_path, "校验结果")
    rows = [[c.value for c in row] for row in report.iter_rows(min_row=2)]
    assert [(r[0], r[1], r[2]) for r in rows] == [("客户", 3, "手机号"), ("客户", 4, "邮箱"), ("客户", 5, "流失原因")]
    links = [report.cell(r, 2).hyperlink.location for r in range(2, 5)]
    assert links == ["'客户'!G3", "'客户'!I4", "'客户'!M5"]
    # the person fixes the mobile; the next check takes that mark off and keeps the others
    update_cells(book_path, "客户", {(3, COL["mobile"]): "13812345678"})
    message = validate_workbook(FileBook(book_path), lang="zh")
    assert message == "校验完成：5 行中 2 行有问题，共 2 处，见“校验结果”"
    assert set(FileBook(book_path).marked_cells("客户")) == expected - {(3, COL["mobile"])}
    ws = openpyxl_sheet(book_path, "客户")
    assert fill_of(ws.cell(3, COL["mobile"])) is None and ws.cell(3, COL["mobile"]).comment is None
    assert ws.cell(3, COL["mobile"]).number_format == "@"
    assert ws.cell(3, STATUS_COL).value is None and ws.cell(4, STATUS_COL).value == "1 个问题"
    assert read_sheet(book_path, "校验结果").row_numbers == [2, 3]
    # everything fixed: no marks, an empty report
    update_cells(book_path, "客户", {(4, COL["email"]): "ok@example.com", (5, COL["lost_reason"]): "价格过高"})
    assert validate_workbook(FileBook(book_path), lang="zh") == "校验通过：5 行没有发现问题"
    assert FileBook(book_path).marked_cells("客户") == {}
    assert read_sheet(book_path, "校验结果").rows == []


def test_validate_changes_only_what_it_means_to(book_path):
    before = raw_entries(book_path)
    validate_workbook(FileBook(book_path), lang="zh")
    changed = changed_parts(before, book_path)
    assert changed == {SHEET1, REPORT, "xl/styles.xml"} | NOTES_PARTS
    for part in ("xl/vbaProject.bin", "customUI/customUI14.xml", "xl/workbook.xml", "_rels/.rels",
                 "xl/worksheets/sheet2.xml", "xl/tables/table1.xml", "docProps/core.xml"):
        assert part in before and part not in changed, part
    names = [i.filename for i in zipfile.ZipFile(book_path).infolist()]
    assert names[:len(before)] == list(before)  # same order, new parts at the end
    # a second run with nothing fixed writes the same bytes
    again = raw_entries(book_path)
    validate_workbook(FileBook(book_path), lang="zh")
    assert changed_parts(again, book_path) == set()


def test_a_clean_workbook_gets_no_notes_parts(tmp_path):
    path = Path(shutil.copy(COMMITTED, tmp_path / "crm_workbook.xlsm"))
    replace_sheet_rows(path, "客户", [customer(1), customer(2)])
    before = raw_entries(path)
    assert validate_workbook(FileBook(path), lang="zh") == "校验通过：2 行没有发现问题"
    assert changed_parts(before, path) <= {REPORT}


# ---- bad input -------------------------------------------------------------------------------------

def test_a_missing_sheet_is_one_clear_error_and_the_file_is_unchanged(book_path):
    data = book_path.read_bytes()
    book = FileBook(book_path)
    for call in (lambda: book.read_table("订单"), lambda: book.write_cells("订单", {(2, 2): "x"}),
                 lambda: book.mark_cells("订单", {(2, 2): "x"}), lambda: book.marked_cells("订单"),
                 lambda: book.replace_report("订单", Report(["a"], []))):
        with pytest.raises(NotFound) as e:
            call()
        assert str(e.value).startswith("“crm_workbook.xlsm”中没有工作表“订单”；现有：客户、联系人")
    book.save()
    assert book_path.read_bytes() == data


@pytest.mark.parametrize("content, says", [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "复合文档"),
    (b"PK\x03\x04" + b"\0" * 100, "不完整或已损坏"),
    ("客户编号,客户名称\nC001,华为\n".encode("gbk"), "CSV"),
    (b"", "空的"),
])
def test_a_file_that_is_not_a_workbook_is_refused_in_chinese(tmp_path, content, says):
    path = tmp_path / "客户.xlsm"
    path.write_bytes(content)
    with pytest.raises(InvalidFile) as e:
        FileBook(path)
    assert str(e.value).startswith("无法读取“客户.xlsm”：") and says in str(e.value)
    assert path.read_bytes() == content
    with pytest.raises(InvalidFile, match="找不到文件"):
        FileBook(tmp_path / "没有.xlsm")


def test_a_value_excel_cannot_hold_fails_the_save_and_changes_nothing(book_path):
    data = book_path.read_bytes()
    book = FileBook(book_path)
    book.mark_cells("客户", {(3, 2): "x"})
    book.write_cells("客户", {(4, 3): object()})
    with pytest.raises(InvalidInput, match="第 4 行 C 列"):
        book.save()
    assert book_path.read_bytes() == data
    assert sorted(p.name for p in book_path.parent.iterdir()) == ["crm_workbook.xlsm"]
    with pytest.raises(InvalidInput):
        book.write_cells("客户", {(0, 1): "x"})
    with pytest.raises(InvalidInput):
        book.replace_report("校验结果", Report(["a"], [["b"]], {(3, 1): Link("客户", 2, 2)}))


def test_a_file_saved_by_someone_else_meanwhile_is_not_overwritten(book_path):
    book = FileBook(book_path)
    book.mark_cells("客户", {(3, 2): "x"})
    update_cells(book_path, "客户", {(2, 2): "别人刚改的"})  # Excel saved the file in between
    theirs = book_path.read_bytes()
    with pytest.raises(InvalidFile, match="其他程序保存"):
        book.save()
    assert book_path.read_bytes() == theirs


# ---- the writer's pieces on unusual sheets ------------------------------------------------------------

def test_rows_written_without_references_take_the_exact_path(book_path):
    """A sheet whose rows carry no r="…" (other writers) is patched row by row with the same result."""
    parts = {n: zipfile.ZipFile(book_path).read(n) for n in zipfile.ZipFile(book_path).namelist()}
    parts[SHEET1] = re.sub(rb'<row r="\d+"', b"<row", parts[SHEET1])
    parts[SHEET1] = parts[SHEET1].replace(b"<row><c r=\"A7\"", b"<row r=\"7\"><c r=\"A7\"")  # after the gap
    with zipfile.ZipFile(book_path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    book = FileBook(book_path)
    assert book.read_table("客户").row_numbers == [2, 3, 4, 5, 7]
    book.mark_cells("客户", {(3, 7): "x", (7, 2): "y"})
    book.write_cells("客户", {(4, 2): "改", (8, 1): "C999"})
    book.save()
    data = read_sheet(book_path, "客户")
    assert data.row_numbers == [2, 3, 4, 5, 7, 8] and data.rows[2][1] == "改" and data.rows[5][0] == "C999"
    ws = openpyxl_sheet(book_path, "客户")
    assert fill_of(ws["G3"]) == MARK_FILL and fill_of(ws["B7"]) == MARK_FILL


@pytest.mark.parametrize("fix", [False, True])
def test_a_sheet_inflated_ahead_is_patched_to_the_same_bytes(book_path, tmp_path, monkeypatch, fix):
    """Large sheets are inflated while calamine parses them and patched from memory: same result."""
    from crmsync import book_file

    other = Path(shutil.copy(book_path, tmp_path / "ahead.xlsm"))
    if fix:  # a second run, where marks exist and one cell was fixed
        for path in (book_path, other):
            validate_workbook(FileBook(path), lang="zh")
            update_cells(path, "客户", {(3, COL["mobile"]): "13812345678", (8, 2): "新行"})
    validate_workbook(FileBook(book_path), lang="zh")  # small sheet: streamed from the file
    monkeypatch.setattr(book_file, "_BULK", 0)
    from crmsync import xlsx_patch

    used = []
    monkeypatch.setattr(xlsx_patch, "_patch_text", lambda *a, _f=xlsx_patch._patch_text: used.append(1) or _f(*a))
    book = FileBook(other)
    validate_workbook(book, lang="zh")
    assert used  # the sheets were patched from memory
    assert book._texts == {}  # handed back once saved
    with zipfile.ZipFile(book_path) as a, zipfile.ZipFile(other) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), name


def test_streaming_in_small_regions_writes_what_patching_from_memory_writes(tmp_path, monkeypatch):
    """The streamed patch (regions cut anywhere) and the in-memory one agree byte for byte."""
    from crmsync import book_file, xlsx_patch

    rows = [customer(i) if i % 17 else [None] * len(CUSTOMER.fields) for i in range(1, 301)]  # gaps: empty rows
    paths = []
    for name in ("streamed", "memory"):
        path = Path(shutil.copy(COMMITTED, tmp_path / f"{name}.xlsm"))
        replace_sheet_rows(path, "客户", rows)
        paths.append(path)
    marks = {(r, c): f"第{r}行" for r in (2, 3, 50, 51, 150, 301) for c in (2, COL["mobile"])}
    cells = {(18, 2): "空行里写", (69, 3): "另一个", (305, 1): "C-末尾", (2, STATUS_COL): "1 个问题"}
    from crmsync.xlsx_safety import Package

    whole = Package.chunks

    def small_chunks(self, info, size=1 << 20):  # the part arrives in pieces cut anywhere
        for chunk in whole(self, info, size):
            yield from (chunk[i:i + 700] for i in range(0, len(chunk), 700))

    slow = []
    monkeypatch.setattr(xlsx_patch, "_slow_rows", lambda *a, _f=xlsx_patch._slow_rows: slow.append(1) or _f(*a))
    for path, ahead in zip(paths, (1 << 40, 0)):
        monkeypatch.setattr(book_file, "_BULK", ahead)
        monkeypatch.setattr(xlsx_patch, "_REGION", 1500)  # a few rows per region
        monkeypatch.setattr(Package, "chunks", small_chunks if ahead else whole)
        book = FileBook(path)
        book.read_table("客户")
        book.mark_cells("客户", marks)
        book.write_cells("客户", cells)
        book.save()
    assert slow == []  # the regions were patched, not parsed row by row
    with zipfile.ZipFile(paths[0]) as a, zipfile.ZipFile(paths[1]) as b:
        assert a.read(SHEET1) == b.read(SHEET1)
    data = read_sheet(paths[0], "客户")
    assert data.row_numbers[-1] == 305 and 18 in data.row_numbers and 69 in data.row_numbers
    ws = openpyxl_sheet(paths[0], "客户")
    assert fill_of(ws.cell(150, COL["mobile"])) == MARK_FILL and ws.cell(305, 1).value == "C-末尾"


def test_tail_elements_go_where_the_schema_puts_them():
    tail = (b'</sheetData><conditionalFormatting sqref="A1"><cfRule type="expression"><formula>1</formula></cfRule>'
            b'</conditionalFormatting><pageMargins left="1"/><tableParts count="1"><tablePart r:id="rId1"/></tableParts>'
            b"</worksheet>")
    assert [n for n, _, _ in tail_elements(tail)] == ["conditionalFormatting", "pageMargins", "tableParts"]
    with_links = set_tail_element(tail, "hyperlinks", b"<hyperlinks/>")
    assert with_links.index(b"<hyperlinks/>") < with_links.index(b"<pageMargins")
    assert with_links.index(b"<hyperlinks/>") > with_links.index(b"</conditionalFormatting>")
    drawn = set_tail_element(with_links, "legacyDrawing", b"<legacyDrawing/>")
    assert drawn.index(b"<pageMargins") < drawn.index(b"<legacyDrawing/>") < drawn.index(b"<tableParts")
    assert set_tail_element(drawn, "hyperlinks", None).count(b"hyperlinks") == 0
    assert set_tail_element(b"</sheetData></worksheet>", "extLst", b"<extLst/>") == b"</sheetData><extLst/></worksheet>"


# ---- LibreOffice: the marked file opens, and keeps our marks through its own import ----------------------

@pytest.mark.slow
def test_libreoffice_reads_the_marked_workbook(book_path, tmp_path):
    soffice = soffice_or_skip()
    validate_workbook(FileBook(book_path), lang="zh")
    out = tmp_path / "out"
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    for target in ("pdf", "xlsx"):
        done = subprocess.run([soffice, profile, "--headless", "--convert-to", target, "--outdir", str(out),
                               str(book_path)], capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        assert "Error" not in done.stderr, done.stderr
    assert (out / "crm_workbook.pdf").read_bytes()[:5] == b"%PDF-"
    import openpyxl

    wb = openpyxl.load_workbook(out / "crm_workbook.xlsx")  # as LibreOffice understood our file
    ws = wb["客户"]
    assert ws.cell(3, COL["mobile"]).comment.text.startswith(MARK_PREFIX)
    assert fill_of(ws.cell(3, COL["mobile"])) == MARK_FILL
    assert ws.cell(3, COL["mobile"]).value == "1381234"
    assert wb["校验结果"]["B2"].hyperlink is not None
