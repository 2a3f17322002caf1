"""The user's selection through the seam, and the buttons that act on it: 新增跟进 and 审核.

File side: FileBook is given the selected rows.  Excel side: the fake xlwings engine holds a
selection, as a click in Excel would.  The store is real; rep zhang's three new customers wait
for approval, and manager wang works in his checked-out copy.
"""

from __future__ import annotations

import shutil

import pytest
from fake_excel import fake_excel  # noqa: F401  (the fixture)
from records import customer

from crmsync import lookup, macros
from crmsync.book_file import FileBook
from crmsync.excel import ExcelBook
from crmsync.store import Store
from crmsync.sync_copy import checkout

NAMES = ("杭州一号科技有限公司", "杭州二号科技有限公司", "杭州三号科技有限公司")
WAITING = "选中的行中没有待审核的新客户"
SELECT_FIRST = "请先在“客户”表中选中一个客户所在的行"


@pytest.fixture
def team(team_store, store_path, tmp_path, monkeypatch):
    """(store path, wang's copy, {name: (customer id, row in the copy)})."""
    team_store.set_setting("require_approval", True)
    ids = {n: team_store.create("customer", customer(customer_name=n, owner="zhang"), user="zhang")["customer_id"]
           for n in NAMES}
    path = tmp_path / "wang.xlsm"
    checkout(team_store, "wang", path, store_location=str(store_path))
    monkeypatch.setenv("CRMSYNC_USER", "wang")
    monkeypatch.delenv("CRMSYNC_STORE", raising=False)
    lookup.forget_settings()
    with FileBook(path) as book:
        table = book.read_table("客户")
    col = table.header.index("客户编号")
    row_of = {r[col]: n for r, n in zip(table.rows, table.row_numbers)}
    yield store_path, path, {n: (cid, row_of[cid]) for n, cid in ids.items()}
    lookup.forget_settings()


def _approval(store_path) -> dict[str, str]:
    with Store(store_path) as s:
        return {c["customer_name"]: c["approval_status"] for c in s.list("customer")}


def _followups(path) -> list[list]:
    with FileBook(path) as book:
        return book.read_table("跟进记录").rows


# -- the seam ---------------------------------------------------------------------------------------


def test_a_file_book_selection_is_what_it_was_given(team, tmp_path):
    _, path, _ = team
    book = FileBook(path, selected=[4, 3, 4], selected_sheet="客户")
    assert book.selected_rows("客户") == [4, 3] and book.selected_row("客户") == 4
    assert book.selected_rows("跟进记录") == [] and book.selected_row("跟进记录") is None
    assert FileBook(path).selected_row("客户") is None and FileBook(path).selected_rows("客户") == []
    assert FileBook(path, selected=5).selected_row("跟进记录") == 5  # no sheet given: any sheet
    assert FileBook(path).choose_file("选择") is None
    assert FileBook(path, chosen_file=tmp_path / "a.xlsx").choose_file("选择") == str(tmp_path / "a.xlsx")


def test_excel_selection_is_read_from_excel(team, fake_excel, tmp_path):
    _, path, _ = team
    book = fake_excel.open(path)
    seam = ExcelBook(book)
    assert seam.selected_row("客户") is None and seam.selected_rows("客户") == []
    fake_excel.select(book, "客户", "B3:C4")
    assert seam.selected_rows("客户") == [3, 4] and seam.selected_row("客户") == 3
    assert seam.selected_rows("跟进记录") == [] and seam.selected_row("跟进记录") is None
    fake_excel.select(book, "客户", "A1:A1048576")  # a whole column: up to the last used row
    assert seam.selected_rows("客户") == [1, 2, 3, 4]
    shutil.copyfile(path, tmp_path / "other.xlsm")
    other = fake_excel.open(tmp_path / "other.xlsm", caller=False)
    fake_excel.select(other, "客户", "A2")  # the selection is in another workbook
    assert other is not book and seam.selected_rows("客户") == []


# -- 新增跟进 ---------------------------------------------------------------------------------------


def test_new_followup_on_a_file_is_for_the_selected_customer(team):
    _, path, rows = team
    cid, row = rows[NAMES[1]]
    text = macros.on_ribbon("new_followup", book=FileBook(path, selected=row, selected_sheet="客户"))
    assert text == f"已在“跟进记录”第 2 行为客户 {cid} 新增跟进，请填写跟进内容后同步"
    (new,) = _followups(path)
    assert cid in new and "wang" in new and "2024-05-21 10:00" in new


@pytest.mark.parametrize("selected", [None, 1, 40], ids=["nothing", "the header", "an empty row"])
def test_new_followup_without_a_customer_selected_says_so_and_changes_nothing(team, selected):
    _, path, _ = team
    before = path.read_bytes()
    book = FileBook(path, selected=selected, selected_sheet="客户")
    assert macros.on_ribbon("new_followup", book=book) == SELECT_FIRST
    assert book.messages == [] and path.read_bytes() == before


def test_new_followup_in_excel_adds_the_row_for_the_active_cell_s_customer(team, fake_excel):
    _, path, rows = team
    cid, row = rows[NAMES[2]]
    book = fake_excel.open(path)
    fake_excel.select(book, "客户", f"D{row}")
    text = macros.on_ribbon("new_followup")
    assert cid in text and fake_excel.status_bar == text
    sheet = fake_excel.sheet(book, "跟进记录")
    header = sheet.rows(1, 1)[0]
    added = dict(zip(header, sheet.rows(2, 2, len(header))[0]))
    assert added["客户编号"] == cid and added["跟进人"] == "wang"


def test_new_followup_in_excel_with_the_selection_elsewhere_changes_nothing(team, fake_excel):
    _, path, _ = team
    book = fake_excel.open(path)
    fake_excel.select(book, "跟进记录", "A2")
    before = fake_excel.snapshot(book)
    assert macros.on_ribbon("new_followup") == SELECT_FIRST == fake_excel.status_bar
    assert fake_excel.snapshot(book) == before


# -- 审核 -------------------------------------------------------------------------------------------


def test_approve_on_a_file_approves_only_the_selected_rows_then_all_without_a_selection(team):
    store_path, path, rows = team
    picked = [rows[NAMES[0]][1], rows[NAMES[2]][1]]
    assert macros.on_ribbon("approve", book=FileBook(path, selected=picked, selected_sheet="客户")) == "已审核 2 个新客户"
    assert _approval(store_path) == {NAMES[0]: "approved", NAMES[1]: "pending", NAMES[2]: "approved"}
    assert macros.on_ribbon("approve", book=FileBook(path, selected=picked, selected_sheet="客户")) == WAITING
    assert macros.on_ribbon("approve", book=FileBook(path)) == "已审核 1 个新客户"
    assert set(_approval(store_path).values()) == {"approved"}


def test_approve_with_only_rows_without_customers_selected_approves_nothing(team):
    store_path, path, _ = team
    assert macros.on_ribbon("approve", book=FileBook(path, selected=[1, 50], selected_sheet="客户")) == WAITING
    assert set(_approval(store_path).values()) == {"pending"}


def test_a_rep_s_selection_is_refused_and_nothing_is_approved(team, monkeypatch):
    store_path, path, rows = team
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    text = macros.on_ribbon("approve", book=FileBook(path, selected=rows[NAMES[0]][1], selected_sheet="客户"))
    assert text.startswith("已审核 0 个新客户，1 个未通过")
    assert set(_approval(store_path).values()) == {"pending"}


def test_approve_in_excel_approves_the_selected_range(team, fake_excel):
    store_path, path, rows = team
    book = fake_excel.open(path)
    first, second = sorted([rows[NAMES[0]][1], rows[NAMES[1]][1]])
    fake_excel.select(book, "客户", f"A{first}:F{second}")
    text = macros.on_ribbon("approve")
    assert fake_excel.status_bar == text
    expected = {n for n, (_, r) in rows.items() if first <= r <= second}
    assert text == f"已审核 {len(expected)} 个新客户"
    assert {n for n, s in _approval(store_path).items() if s == "approved"} == expected


def test_approve_in_excel_with_the_whole_sheet_selected_approves_every_listed_one(team, fake_excel):
    store_path, path, _ = team
    book = fake_excel.open(path)
    fake_excel.select(book, "客户", "A1:XFD1048576")  # Ctrl+A
    assert macros.on_ribbon("approve") == f"已审核 {len(NAMES)} 个新客户"
    assert set(_approval(store_path).values()) == {"approved"}
