"""crmsync.excel.ExcelBook — the workbook seam inside Excel — over the fake xlwings engine.

The workbook is a copy of the committed crm_workbook.xlsm with customers written into 客户 by the
file writer; the fake engine (tests/fake_excel.py) loads it as Excel would show it (numbers as
float, dates as datetime) and records what the adapter does to it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from fake_excel import FakeComError, fake_excel  # noqa: F401  (the fixture, until conftest lists the plugin)

from crmsync import macros
from crmsync.actions import check_sheet, validate_workbook
from crmsync.errors import NotFound
from crmsync.excel import MARK_RGB, ExcelBook, excel_text, excel_value, rectangles
from crmsync.schema import ENTITIES
from crmsync.seam import MARK_FILL, MARK_PREFIX, Link, Report, SheetTable, WorkbookSeam, as_seam
from crmsync.workbook import list_sheets, read_sheet, replace_sheet_rows

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "crm_workbook.xlsm"
CUSTOMER = next(e for e in ENTITIES.values() if e.zh == "客户")
HEADER = read_sheet(COMMITTED, CUSTOMER.zh).header
REPORT = "校验结果"


def col(key: str) -> int:
    """The 1-based column of a customer field in the workbook."""
    return HEADER.index(CUSTOMER.get(key).zh) + 1


def customer_row(**values) -> list:
    row = [None] * len(HEADER)
    for key, value in values.items():
        row[col(key) - 1] = value
    return row


VALID = dict(customer_name="上海示例科技有限公司", customer_type="企业客户", contact_name="张三",
             status="潜在客户")


@pytest.fixture
def book_path(tmp_path) -> Path:
    """Rows 2–6 of 客户: valid (mobile stored as a number), two bad cells, no name, empty, valid."""
    path = tmp_path / "crm.xlsm"
    shutil.copyfile(COMMITTED, path)
    replace_sheet_rows(path, CUSTOMER.zh, [
        customer_row(customer_id="C001", mobile=13812345678, next_follow_up=dt.date(2024, 6, 3), **VALID),
        customer_row(customer_id="C002", mobile="1381234", email="not-an-email", **VALID),
        customer_row(customer_id="C003", mobile="13712345678", **{**VALID, "customer_name": None}),
        [None] * len(HEADER),
        customer_row(customer_id="C005", mobile="13912345678", total_amount=1200.5, **VALID),
    ])
    return path


@pytest.fixture
def book(fake_excel, book_path):
    """The workbook open in the fake Excel, as the xlwings Book RunPython would hand over."""
    return fake_excel.open(book_path)


# -- reading ---------------------------------------------------------------------------------


def test_excel_book_is_the_seam(book):
    seam = as_seam(book)
    assert isinstance(seam, ExcelBook) and isinstance(seam, WorkbookSeam)
    assert seam.name == "crm.xlsm"
    assert seam.sheet_names() == list_sheets(COMMITTED)


def test_read_table_gives_excel_types_and_rows(book, book_path):
    table = ExcelBook(book).read_table(CUSTOMER.zh)
    assert table.sheet == CUSTOMER.zh and table.header == HEADER
    assert table.row_numbers == [2, 3, 4, 6]  # the empty row 5 is skipped; rows are Excel's
    first = table.rows[0]
    assert first[col("mobile") - 1] == 13812345678.0 and isinstance(first[col("mobile") - 1], float)
    assert first[col("next_follow_up") - 1] == dt.datetime(2024, 6, 3)  # Excel gives datetime
    assert first[col("email") - 1] is None
    assert table.rows[1][col("mobile") - 1] == "1381234"
    assert all(len(row) == len(HEADER) for row in table.rows)
    # Same rows as the file reader, up to Excel's types (date → datetime)
    data = read_sheet(book_path, CUSTOMER.zh)
    assert data.row_numbers == table.row_numbers
    as_excel = [[dt.datetime.combine(v, dt.time()) if type(v) is dt.date else v for v in row] for row in data.rows]
    assert as_excel == table.rows


def test_the_validator_accepts_a_mobile_read_as_float(book):
    table = ExcelBook(book).read_table(CUSTOMER.zh)
    found = check_sheet(CUSTOMER, table)
    assert not [p for p in found.problems if p[0] == 2]  # 13812345678.0 is a valid mobile
    assert {(r, c) for r, c, *_ in found.problems} == {(3, col("mobile")), (3, col("email")),
                                                        (4, col("customer_name"))}


def test_read_table_reads_all_values_in_one_call(book, fake_excel):
    fake_excel.calls.clear()
    ExcelBook(book).read_table(CUSTOMER.zh)
    assert fake_excel.calls["Range.raw_value.get"] == 1


def test_read_table_of_an_empty_sheet_and_a_missing_one(book):
    book.sheets.add("空白")
    seam = ExcelBook(book)
    assert seam.read_table("空白") == SheetTable("空白", [], [], [])
    with pytest.raises(NotFound):
        seam.read_table("没有这个表")


def test_read_table_when_the_used_range_does_not_start_at_a1(book):
    book.sheets.add("偏移").range("C3").value = [["名称", "金额"], ["甲", 5], [None, None], ["乙", "=1+1"]]
    table = ExcelBook(book).read_table("偏移")
    assert table.header == ["", "", "", ""]  # row 1 is the header row, empty here
    assert table.row_numbers == [3, 4, 6]
    assert table.rows == [[None, None, "名称", "金额"], [None, None, "甲", 5.0], [None, None, "乙", None]]


# -- writing ---------------------------------------------------------------------------------


def test_rectangles_join_runs_of_contiguous_cells():
    cells = dict.fromkeys([(2, 1), (2, 2), (3, 1), (3, 2), (5, 1), (7, 4), (8, 4), (9, 4), (2, 9)])
    assert rectangles(cells) == [((2, 1), (2, 2)), ((2, 9), (1, 1)), ((5, 1), (1, 1)), ((7, 4), (3, 1))]
    assert rectangles({}) == []


def test_text_is_written_so_excel_keeps_it_text():
    assert excel_text("华为技术有限公司") == "华为技术有限公司"
    for text in ("0755", "=1+1", "+86 138-1234-5678", "-x", "@a", "TRUE", "2024-05-01", "1/2", "May 1", "'q"):
        assert excel_text(text) == "'" + text
    assert excel_value(None) is None and excel_value(5) == 5 and excel_value(True) is True
    assert excel_value(dt.time(9, 30)) == dt.datetime(1899, 12, 30, 9, 30)
    assert excel_value(Decimal("1.50")) == 1.5


def test_write_cells_round_trip(book, fake_excel):
    seam = ExcelBook(book)
    remark, status = col("remark"), col("status")
    cells = {
        (2, remark): "0755", (3, remark): "=1+1", (4, remark): "+86 138-1234-5678",
        (6, remark): "TRUE", (7, remark): "2024-05-01",
        (2, status): None,  # empties a cell that had a value
        (9, 2): 5, (9, 3): True, (9, 4): dt.date(2024, 5, 1), (9, 5): "华为",
    }
    fake_excel.calls.clear()
    seam.write_cells(CUSTOMER.zh, cells)
    sheet = fake_excel.sheet(book, CUSTOMER.zh)
    assert [sheet.value(r, remark) for r in (2, 3, 4, 6, 7)] == [
        "0755", "=1+1", "+86 138-1234-5678", "TRUE", "2024-05-01"]
    assert sheet.formulas == {}
    assert sheet.value(2, status) is None
    assert [sheet.value(9, c) for c in (2, 3, 4, 5)] == [5.0, True, dt.datetime(2024, 5, 1), "华为"]
    # remark 2–4, remark 6–7, status 2, row 9 B–E: four rectangles, four writes
    assert fake_excel.calls["Range.raw_value.set"] == 4
    table = seam.read_table(CUSTOMER.zh)
    assert table.row_numbers == [2, 3, 4, 6, 7, 9]


def test_writes_turn_screen_updating_off_and_restore_it_even_on_error(book, fake_excel, monkeypatch):
    seam = ExcelBook(book)
    app = fake_excel.app.impl
    seam.write_cells(CUSTOMER.zh, {(2, col("remark")): "x"})
    assert app.settings_log == [("screen_updating", False), ("calculation", "manual"),
                                ("calculation", "automatic"), ("screen_updating", True)]
    sheet = fake_excel.sheet(book, CUSTOMER.zh)

    def refuse(*args, **kwargs):
        raise FakeComError("refused")

    monkeypatch.setattr(sheet, "range", refuse)
    with pytest.raises(FakeComError):
        seam.write_cells(CUSTOMER.zh, {(2, col("remark")): "y"})
    assert app.screen_updating is True and app.calculation == "automatic"


def test_a_manual_calculation_setting_is_left_as_the_user_had_it(book, fake_excel):
    fake_excel.app.calculation = "manual"
    ExcelBook(book).write_cells(CUSTOMER.zh, {(2, col("remark")): "x"})
    assert fake_excel.app.calculation == "manual"


# -- marks -----------------------------------------------------------------------------------


def test_mark_clear_and_find_marks_leaving_peoples_notes(book, fake_excel):
    seam = ExcelBook(book)
    sheet = fake_excel.sheet(book, CUSTOMER.zh)
    mobile, email, name = (3, col("mobile")), (3, col("email")), (4, col("customer_name"))
    book.sheets[CUSTOMER.zh].range(email).add_note("客户要求下午联系")  # somebody's own note
    seam.mark_cells(CUSTOMER.zh, {mobile: MARK_PREFIX + "手机号不对", email: MARK_PREFIX + "邮箱不对",
                                  name: "客户名称不能为空"})
    assert MARK_RGB == (255, 199, 206) and "%02X%02X%02X" % MARK_RGB == MARK_FILL
    assert sheet.color(*mobile) == MARK_RGB and sheet.note(*mobile) == MARK_PREFIX + "手机号不对"
    assert sheet.note(*name) == MARK_PREFIX + "客户名称不能为空"  # the prefix is added
    assert sheet.note(*email) == "客户要求下午联系" and sheet.color(*email) is None
    assert seam.marked_cells(CUSTOMER.zh) == {mobile: MARK_PREFIX + "手机号不对", name: MARK_PREFIX + "客户名称不能为空"}

    seam.mark_cells(CUSTOMER.zh, {name: MARK_PREFIX + "客户名称不能为空"}, clear=[mobile, email])
    assert sheet.note(*mobile) is None and sheet.color(*mobile) is None
    assert sheet.note(*email) == "客户要求下午联系"
    assert seam.marked_cells(CUSTOMER.zh) == {name: MARK_PREFIX + "客户名称不能为空"}
    assert book.sheets[CUSTOMER.zh].range(name).note.text.startswith(MARK_PREFIX)  # through xlwings too


def test_marks_already_right_cost_no_calls(book, fake_excel):
    seam = ExcelBook(book)
    marks = {(3, col("mobile")): MARK_PREFIX + "a", (3, col("email")): MARK_PREFIX + "b"}
    seam.mark_cells(CUSTOMER.zh, marks)
    fake_excel.calls.clear()
    seam.mark_cells(CUSTOMER.zh, marks, clear=[c for c in seam.marked_cells(CUSTOMER.zh) if c not in marks])
    assert fake_excel.calls["Range.add_note"] == fake_excel.calls["Note.text.set"] == 0
    assert fake_excel.calls["Range.color.set"] == 0
    # A changed message is updated, and only that one
    fake_excel.calls.clear()
    seam.marked_cells(CUSTOMER.zh)
    seam.mark_cells(CUSTOMER.zh, {**marks, (3, col("email")): MARK_PREFIX + "c"})
    assert fake_excel.calls["Note.text.set"] == 1
    assert fake_excel.sheet(book, CUSTOMER.zh).note(3, col("email")) == MARK_PREFIX + "c"


def test_fills_are_set_per_rectangle(book, fake_excel):
    seam = ExcelBook(book)
    marks = {(r, col("mobile")): MARK_PREFIX + "x" for r in range(2, 12)}
    fake_excel.calls.clear()
    seam.mark_cells(CUSTOMER.zh, marks)
    assert fake_excel.calls["Range.color.set"] == 1 and fake_excel.calls["Range.add_note"] == 10


# -- reports and status ----------------------------------------------------------------------


def _report(n: int) -> Report:
    report = Report(header=["工作表", "行号", "字段", "值", "问题", "级别"], rows=[])
    for i in range(n):
        report.links[(i, 2)] = Link(CUSTOMER.zh, i + 2, col("mobile"))
        report.rows.append([CUSTOMER.zh, i + 2, "手机号", f"1{i}", "不对"])
    return report


def test_replace_report_writes_rows_and_links_and_clears_the_old_ones(book, fake_excel):
    seam = ExcelBook(book)
    sheet = fake_excel.sheet(book, REPORT)
    seam.replace_report(REPORT, _report(5))
    assert sheet.rows(1, 6) == [["工作表", "行号", "字段", "值", "问题", "级别"]] + [
        [CUSTOMER.zh, float(i + 2), "手机号", f"1{i}", "不对", None] for i in range(5)]
    link = sheet.link(2, 2)
    assert link.address == f"#'{CUSTOMER.zh}'!G2" and link.text == "2"
    assert sheet.value(2, 2) == 2.0  # the link keeps the number a number
    assert set(sheet.links) == {(r, 2) for r in range(2, 7)}
    assert sheet.formulas == {}

    fake_excel.calls.clear()
    seam.replace_report(REPORT, _report(1))
    assert sheet.rows(2, 6) == [[CUSTOMER.zh, 2.0, "手机号", "10", "不对", None]] + [[None] * 6] * 4
    assert set(sheet.links) == {(2, 2)}  # old links went with their rows
    assert fake_excel.calls["Range.raw_value.set"] == 1


def test_replace_report_with_no_rows_and_on_a_missing_sheet(book, fake_excel):
    seam = ExcelBook(book)
    seam.replace_report(REPORT, _report(3))
    seam.replace_report(REPORT, Report(header=["工作表"], rows=[]))
    assert fake_excel.sheet(book, REPORT).rows() == [["工作表"]]
    seam.replace_report("新报表", _report(1))
    assert seam.sheet_names()[-1] == "新报表"
    assert fake_excel.sheet(book, "新报表").link(2, 2).address == f"#'{CUSTOMER.zh}'!G2"


def test_status_goes_to_the_status_bar(book, fake_excel):
    seam = ExcelBook(book)
    seam.status("正在校验 客户…")
    seam.save()  # nothing to do in Excel
    assert fake_excel.status_bar == "正在校验 客户…"


# -- the ribbon, end to end ------------------------------------------------------------------


def test_validate_button_end_to_end(book, fake_excel):
    sheet = fake_excel.sheet(book, CUSTOMER.zh)
    email = (3, col("email"))
    book.sheets[CUSTOMER.zh].range(email).add_note("客户要求下午联系")
    text = macros.on_ribbon("validate", book=book)

    bad = {(3, col("mobile")), email, (4, col("customer_name"))}
    assert "3 处" in text and "2 行有问题" in text
    assert fake_excel.status_bar == text
    marked = {cell for cell in sheet.notes_at if sheet.note(*cell).startswith(MARK_PREFIX)}
    assert marked == bad - {email}
    assert all(sheet.color(*cell) == MARK_RGB for cell in marked) and sheet.color(*email) is None
    assert sheet.note(*email) == "客户要求下午联系"
    status = HEADER.index("校验状态") + 1
    assert [sheet.value(r, status) for r in (2, 3, 4, 6)] == [None, "2 个问题", "1 个问题", None]

    report = fake_excel.sheet(book, REPORT)
    rows = report.rows(2)
    assert len(rows) == 3
    assert {(r[1], r[2]) for r in rows} == {(3.0, "手机号"), (3.0, "邮箱"), (4.0, "客户名称")}
    targets = {report.link(i, 2).address for i in range(2, 5)}
    assert targets == {f"#'{CUSTOMER.zh}'!{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[c - 1]}{r}" for r, c in bad}

    # Fix the mobile in Excel and check again: its mark goes, the others stay.
    book.sheets[CUSTOMER.zh].range((3, col("mobile"))).value = "'13812345679"
    fake_excel.calls.clear()
    text = macros.on_ribbon("validate", book=book)
    assert "2 处" in text and fake_excel.status_bar == text
    assert sheet.note(3, col("mobile")) is None and sheet.color(3, col("mobile")) is None
    assert sheet.note(4, col("customer_name")).startswith(MARK_PREFIX)
    assert len(report.rows(2)) == 2 and set(report.links) == {(2, 2), (3, 2)}
    assert fake_excel.calls["Range.add_note"] == 0  # the unchanged mark was left alone


def test_excel_and_the_file_give_the_same_result(book_path, tmp_path, fake_excel):
    """The same button in Excel and `crmsync validate` on the file: same message, marks, report."""
    from crmsync.book_file import FileBook

    on_file = tmp_path / "file.xlsm"
    shutil.copyfile(book_path, on_file)
    book = fake_excel.open(book_path)
    in_excel = macros.on_ribbon("validate", book=book)
    assert validate_workbook(on_file) == in_excel
    assert FileBook(on_file).marked_cells(CUSTOMER.zh) == ExcelBook(book).marked_cells(CUSTOMER.zh)
    report = read_sheet(on_file, REPORT)
    assert [report.header] + report.rows == fake_excel.sheet(book, REPORT).rows()
    status = HEADER.index("校验状态")
    assert ([r[status] for r in read_sheet(on_file, CUSTOMER.zh).rows]
            == [r[status] for r in ExcelBook(book).read_table(CUSTOMER.zh).rows])


def test_marks_written_on_the_file_are_cleared_from_excel(book_path, fake_excel):
    validate_workbook(book_path)  # the CLI marked the file
    book = fake_excel.open(book_path)
    seam = ExcelBook(book)
    mobile = (3, col("mobile"))
    assert set(seam.marked_cells(CUSTOMER.zh)) == {mobile, (3, col("email")), (4, col("customer_name"))}
    book.sheets[CUSTOMER.zh].range(mobile).value = "'13812345679"
    macros.on_ribbon("validate", book=book)
    assert mobile not in seam.marked_cells(CUSTOMER.zh)
    assert fake_excel.sheet(book, CUSTOMER.zh).note(*mobile) is None


def test_validate_through_the_mock_caller_as_runpython_does(book, fake_excel):
    text = macros.on_ribbon("validate")  # no book: xw.Book.caller()
    assert fake_excel.status_bar == text and "3 处" in text
    assert validate_workbook(book) == text  # the same action called directly


def test_all_valid_says_so(fake_excel, tmp_path):
    path = tmp_path / "ok.xlsm"
    shutil.copyfile(COMMITTED, path)
    replace_sheet_rows(path, CUSTOMER.zh, [customer_row(customer_id="C1", mobile="13812345678", **VALID)])
    book = fake_excel.open(path)
    text = macros.on_ribbon("validate", book=book)
    assert text.startswith("校验通过") and fake_excel.status_bar == text
    assert fake_excel.sheet(book, REPORT).rows() == [["工作表", "行号", "字段", "值", "问题", "级别"]]


def test_an_unknown_button_changes_nothing_and_says_so(book, fake_excel):
    before = fake_excel.snapshot(book)
    text = macros.on_ribbon("rm_rf", book=book)
    assert "未知" in text and "rm_rf" in text and fake_excel.status_bar == text
    assert fake_excel.snapshot(book) == before


def _unavailable() -> list[str]:
    return [a.id for a in macros.ACTIONS.values() if a.resolve() is None]


@pytest.mark.parametrize("button", _unavailable() + ["forced"])
def test_a_button_not_implemented_yet_says_so(book, fake_excel, monkeypatch, button):
    if button == "forced":
        button = "sync"
        monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action(
            "sync", "同步", "Sync", "crmsync._not_there_:sync_workbook"))
    before = fake_excel.snapshot(book)
    text = macros.on_ribbon(button, book=book)
    assert "尚未可用" in text and fake_excel.status_bar == text
    assert fake_excel.snapshot(book) == before
    fake_excel.app.status_bar = False
    assert macros.on_ribbon(button) == text and fake_excel.status_bar == text  # via the caller


# -- the fake itself, and what must hold around it ---------------------------------------------


def test_the_fake_puts_xlwings_back_as_it_was(book_path):
    import xlwings as xw
    from fake_excel import ENGINE_NAME, installed

    active, engines = xw.engines.active, list(xw.engines)
    with installed() as fx:
        fx.open(book_path)
        assert xw.engines.active.name == ENGINE_NAME and xw.Book.caller().name == "crm.xlsm"
    assert xw.engines.active is active and list(xw.engines) == engines
    assert "_mock_caller" not in vars(xw.Book)
    assert ENGINE_NAME not in xw.engines.engines_by_name


def test_the_fake_refuses_what_excel_refuses(book):
    cell = book.sheets[CUSTOMER.zh].range("A2")
    cell.add_note("x")
    with pytest.raises(ValueError):  # xlwings checks first
        cell.add_note("y")
    with pytest.raises(FakeComError):
        cell.impl.add_note("y")
    with pytest.raises(AttributeError):  # bounded: what the adapter does not call is not there
        cell.expand()


def test_light_imports():
    """crmsync.excel and crmsync.macros import neither xlwings nor pandas."""
    code = ("import sys, crmsync.excel, crmsync.macros; "
            "bad = [m for m in ('xlwings', 'pandas', 'numpy') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout


def test_the_excel_side_passes_with_xlwings_pro_unimportable():
    """No xlwings.pro anywhere: this file's tests pass with it blocked, and nothing under it loads."""
    code = (
        "import sys\n"
        "sys.modules['xlwings.pro'] = None\n"
        "import pytest\n"
        f"code = pytest.main(['-p', 'no:cacheprovider', {str(Path(__file__))!r}, '-k', 'not unimportable'])\n"
        "import xlwings\n"
        "loaded = [m for m in sys.modules if m.startswith('xlwings.pro.')]\n"
        "assert sys.modules['xlwings.pro'] is None and not xlwings.__pro__ and not loaded, loaded\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLWINGS_LICENSE_KEY"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
