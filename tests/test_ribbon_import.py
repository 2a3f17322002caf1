"""The 导入 button: ask for a legacy spreadsheet, import it into the workbook's store, report counts.

On a real store and a real checked-out copy (its xlwings.conf names the store); the file comes
from FileBook's ``chosen_file`` or, in the fake Excel, from Excel's Open dialog.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from data_import import messy
from fake_excel import fake_excel  # noqa: F401  (the fixture)
from openpyxl import load_workbook

from crmsync import lookup, macros
from crmsync.book_file import FileBook
from crmsync.store import Store
from crmsync.sync_copy import checkout


@pytest.fixture
def copy(team_store, store_path, tmp_path, monkeypatch):
    """The admin's copy of the store; admin is the user of this account."""
    checkout(team_store, "admin", tmp_path / "admin.xlsm", store_location=str(store_path))
    monkeypatch.setenv("CRMSYNC_USER", "admin")
    monkeypatch.delenv("CRMSYNC_STORE", raising=False)
    monkeypatch.delenv("CRMSYNC_CHOSEN_FILE", raising=False)
    lookup.forget_settings()
    yield tmp_path / "admin.xlsm"
    lookup.forget_settings()


@pytest.fixture
def legacy(tmp_path) -> Path:
    folder = tmp_path / "旧表格"
    folder.mkdir()
    return messy.build_xlsx(folder / "老客户名单.xlsx")


def _names(store_path) -> set[str]:
    with Store(store_path) as s:
        return {c["customer_name"] for c in s.list("customer")}


def _error_book(legacy: Path) -> Path:
    return legacy.with_name("老客户名单-导入错误.xlsx")


def test_the_import_button_imports_the_chosen_file_and_reports_counts(copy, legacy, store_path):
    before = copy.read_bytes()
    book = FileBook(copy, chosen_file=legacy)
    text = macros.on_ribbon("import", book=book)
    bad_rows = len({row for row, *_ in messy.EXPECTED_PROBLEMS})
    assert text == (f"已从 老客户名单.xlsx 导入 {len(messy.GOOD_NAMES)} 个客户到中心库；"
                    f"有错误 {bad_rows} 行，疑似重复 0 行未导入，见 老客户名单-导入错误.xlsx")
    assert book.messages[-1] == text and book.messages[0] == "正在导入 老客户名单.xlsx…"
    assert _names(store_path) == messy.GOOD_NAMES
    with Store(store_path) as s:  # stored by the user of this account, audited as an import
        first = s.list("customer")[0]["customer_id"]
        assert {(e["user"], e["source"]) for e in s.history("customer", first)} == {("admin", "import")}
    # the bad rows, every problem marked, beside the imported file
    errors = load_workbook(_error_book(legacy))
    listed = {v for r in errors.worksheets[0].iter_rows(min_row=2, values_only=True) for v in r}
    assert {"南京错误值科技有限公司", "宁波坏日期贸易有限公司", "温州坏号码电子有限公司"} <= listed
    assert copy.read_bytes() == before  # the workbook itself is not changed


def test_importing_the_same_file_again_holds_every_row_back_as_a_duplicate(copy, legacy, store_path):
    macros.on_ribbon("import", book=FileBook(copy, chosen_file=legacy))
    again = macros.on_ribbon("import", book=FileBook(copy, chosen_file=legacy))
    assert again.startswith("已从 老客户名单.xlsx 导入 0 个客户到中心库")
    assert f"疑似重复 {len(messy.GOOD_NAMES)} 行未导入" in again
    with Store(store_path) as s:
        assert len(s.list("customer")) == len(messy.GOOD_NAMES)


def test_cancelling_the_dialog_imports_nothing(copy, legacy, store_path):
    text = macros.on_ribbon("import", book=FileBook(copy))
    assert text == "已取消导入，未导入任何数据"
    assert _names(store_path) == set() and not _error_book(legacy).exists()


def test_the_file_can_come_from_the_environment_for_a_path(copy, legacy, store_path, monkeypatch):
    monkeypatch.setenv("CRMSYNC_CHOSEN_FILE", str(legacy))
    assert "导入 5 个客户" in macros.on_ribbon("import", book=str(copy))
    assert _names(store_path) == messy.GOOD_NAMES


def test_a_file_that_is_not_a_spreadsheet_is_one_message_and_nothing_is_stored(copy, tmp_path, store_path):
    fake = tmp_path / "客户.xlsx"
    fake.write_bytes(b"this is not a workbook")
    text = macros.on_ribbon("import", book=FileBook(copy, chosen_file=fake))
    assert "客户.xlsx" in text and "Traceback" not in text and "\n" not in text
    missing = macros.on_ribbon("import", book=FileBook(copy, chosen_file=tmp_path / "没有这个文件.xlsx"))
    assert "没有这个文件.xlsx" in missing
    assert _names(store_path) == set()


def test_without_a_user_nothing_is_asked_or_imported(copy, legacy, store_path, monkeypatch):
    monkeypatch.delenv("CRMSYNC_USER")
    text = macros.on_ribbon("import", book=FileBook(copy, chosen_file=legacy))
    assert "CRMSYNC_USER" in text
    assert _names(store_path) == set()


def test_without_a_store_the_message_says_where_to_configure_it(tmp_path, legacy, monkeypatch):
    import shutil

    monkeypatch.setenv("CRMSYNC_USER", "admin")
    monkeypatch.delenv("CRMSYNC_STORE", raising=False)
    lookup.forget_settings()
    bare = tmp_path / "bare.xlsm"
    shutil.copyfile(Path(__file__).resolve().parents[1] / "crm_workbook.xlsm", bare)
    text = macros.on_ribbon("import", book=FileBook(bare, chosen_file=legacy))
    assert "CRMSYNC_STORE" in text and "xlwings.conf" in text


def test_a_rep_importing_other_owners_rows_is_refused_and_nothing_is_stored(copy, tmp_path, store_path,
                                                                             monkeypatch):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["客户名称", "手机号", "客户状态", "客户类型", "负责人"])
    wb.active.append(["杭州测试有限公司", "13812340000", "意向客户", "企业客户", "liu"])
    wb.save(tmp_path / "others.xlsx")
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    text = macros.on_ribbon("import", book=FileBook(copy, chosen_file=tmp_path / "others.xlsx"))
    assert "导入 0 个客户" in text and "有错误 1 行" in text
    assert _names(store_path) == set()


def test_english_messages(copy, legacy, monkeypatch):
    monkeypatch.setenv("CRMSYNC_LANG", "en")
    text = macros.on_ribbon("import", book=FileBook(copy, chosen_file=legacy))
    assert text.startswith("Imported 5 customers from 老客户名单.xlsx into the store; 3 rows with problems")
    assert legacy.with_name("老客户名单-import-errors.xlsx").exists()
    assert macros.on_ribbon("import", book=FileBook(copy)) == "Import cancelled: nothing was imported"


# -- inside Excel (the fake xlwings engine): Excel's Open dialog -------------------------------------


def test_in_excel_the_open_dialog_asks_and_the_status_bar_tells(copy, legacy, store_path, fake_excel):
    book = fake_excel.open(copy)
    before = fake_excel.snapshot(book)
    fake_excel.answer_open_dialog(legacy)
    text = macros.on_ribbon("import")  # as RunPython calls it: the caller's workbook
    assert text.startswith("已从 老客户名单.xlsx 导入 5 个客户到中心库") and fake_excel.status_bar == text
    assert "正在导入 老客户名单.xlsx…" in fake_excel.status_messages
    (shown,) = fake_excel.open_dialogs
    assert shown[1] == "选择要导入的客户表格" and "*.xlsx" in shown[0] and "*.csv" in shown[0]
    assert _names(store_path) == messy.GOOD_NAMES and _error_book(legacy).exists()
    assert fake_excel.snapshot(book) == before  # the open workbook is not touched


def test_in_excel_cancel_imports_nothing(copy, store_path, fake_excel):
    fake_excel.open(copy)
    fake_excel.answer_open_dialog(None)
    assert macros.on_ribbon("import") == "已取消导入，未导入任何数据" == fake_excel.status_bar
    assert len(fake_excel.open_dialogs) == 1 and _names(store_path) == set()


def test_an_excel_without_an_open_dialog_points_at_the_command():
    """xlwings on macOS drives Excel through AppleScript, which has no GetOpenFilename."""
    from types import SimpleNamespace

    from crmsync.errors import InvalidInput
    from crmsync.excel import ExcelBook

    mac_like = SimpleNamespace(name="crm.xlsm", app=SimpleNamespace(api=object()))
    with pytest.raises(InvalidInput, match="crmsync import"):
        ExcelBook(mac_like).choose_file("选择要导入的客户表格")
