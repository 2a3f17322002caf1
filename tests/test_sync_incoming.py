"""A sync brings in the records a copy does not hold yet: a colleague's new customer, one an
import added, one a manager handed over, a row whose delete was refused — added under the copy's
rows, in its table, exactly once, and only what the user may see."""

from __future__ import annotations

import openpyxl
import pytest
from records import customer

from crmsync.book_file import FileBook
from crmsync.excel import ExcelBook
from crmsync.sync_copy import checkout, ingest_copy, sync_book


def customers_in(path):
    with FileBook(path) as book:
        table = book.read_table("客户")
    rows = {r[table.column("客户编号") - 1]: (n, r) for n, r in zip(table.row_numbers, table.rows)}
    return table, rows


def table_ref(path, sheet="客户"):
    wb = openpyxl.load_workbook(path, keep_vba=True)
    ws = wb[sheet]
    (table,) = ws.tables.values()
    return table.ref, [str(dv.sqref) for dv in ws.data_validations.dataValidation]


@pytest.fixture
def zhang_copy(team_store, tmp_path):
    old = team_store.create("customer", {**customer(), "owner": "zhang"}, user="admin")["customer_id"]
    path = tmp_path / "zhang.xlsm"
    checkout(team_store, "zhang", path)
    return path, old


def test_a_customer_added_in_the_store_arrives_at_the_end_of_the_copy_once(team_store, zhang_copy):
    path, old = zhang_copy
    ref_before, _ = table_ref(path)
    new = team_store.create("customer", {**customer(customer_name="经理新分的客户有限公司", mobile="13600001111",
                                                    status="意向客户"),
                                         "owner": "zhang"}, user="wang")
    contact = team_store.create("contact", {"customer_id": new["customer_id"], "name": "赵六",
                                            "mobile": "13600002222"}, user="wang")
    hidden = team_store.create("customer", {**customer(customer_name="李四的客户有限公司", mobile="13600003333"), "owner": "li"}, user="admin")

    result = ingest_copy(team_store, path, "zhang", write_back=True)
    assert result.received == 2 and result.created == 0 and result.deleted == 0
    assert "收到 2 条新记录" in result.message

    table, rows = customers_in(path)
    assert set(rows) == {old, new["customer_id"]} and hidden["customer_id"] not in rows
    number, row = rows[new["customer_id"]]
    assert number == rows[old][0] + 1  # right under the rows it had
    assert row[table.column("客户名称") - 1] == "经理新分的客户有限公司"
    assert row[table.column("客户状态") - 1] == "意向客户"  # a label, as a person would type it
    assert row[table.column("手机号") - 1] == "13600001111"  # text, not a number
    ref_after, validations = table_ref(path)
    assert ref_before.endswith(str(number - 1)) and ref_after.endswith(str(number))  # the table grew over it
    bottoms = [int("".join(ch for ch in v.split(":")[-1] if ch.isdigit())) for v in validations]
    assert bottoms and min(bottoms) >= number  # the drop-downs and checks reach the new row
    with FileBook(path) as book:
        contacts = book.read_table("联系人")
    assert [r[contacts.column("联系人编号") - 1] for r in contacts.rows] == [contact["contact_id"]]

    again = ingest_copy(team_store, path, "zhang", write_back=True)
    assert (again.received, again.created, again.deleted, again.applied) == (0, 0, 0, 0)
    assert len(customers_in(path)[1]) == 2


def test_a_received_row_is_a_row_like_any_other(team_store, zhang_copy):
    path, _old = zhang_copy
    new = team_store.create("customer", {**customer(customer_name="后来的客户有限公司", mobile="13600004444"), "owner": "zhang"}, user="wang")
    ingest_copy(team_store, path, "zhang", write_back=True)
    table, rows = customers_in(path)
    number, _ = rows[new["customer_id"]]
    with FileBook(path) as book:
        book.write_cells("客户", {(number, table.column("备注")): "已电话联系"})
        book.save()
    result = ingest_copy(team_store, path, "zhang", write_back=True)
    assert result.applied == 1 and result.received == 0
    assert team_store.get("customer", new["customer_id"])["remark"] == "已电话联系"


def test_a_row_a_rep_deleted_is_refused_and_comes_back(team_store, zhang_copy):
    path, old = zhang_copy
    ingest_copy(team_store, path, "zhang", write_back=True)  # the copy's rows are now known
    table, rows = customers_in(path)
    number, _ = rows[old]
    with FileBook(path) as book:
        book.write_cells("客户", {(number, c): None for c in range(1, len(table.header) + 1)})
        book.save()
    assert old not in customers_in(path)[1]
    result = ingest_copy(team_store, path, "zhang", write_back=True)
    assert result.refused == 1 and result.received == 1
    assert old in customers_in(path)[1] and not team_store.get("customer", old)["deleted"]


def test_without_write_back_nothing_is_added_and_the_next_sync_still_brings_it(team_store, zhang_copy):
    path, old = zhang_copy
    new = team_store.create("customer", {**customer(customer_name="等待写回的客户有限公司", mobile="13600005555"), "owner": "zhang"}, user="wang")
    before = path.read_bytes()
    assert ingest_copy(team_store, path, "zhang", write_back=False).received == 0  # the watcher's default
    assert path.read_bytes() == before
    assert ingest_copy(team_store, path, "zhang", write_back=True).received == 1
    assert set(customers_in(path)[1]) == {old, new["customer_id"]}
    assert not team_store.get("customer", new["customer_id"])["deleted"]  # never taken for a deleted row


def test_inside_excel_the_rows_arrive_and_the_table_is_resized(team_store, zhang_copy, fake_excel):
    path, old = zhang_copy
    new = team_store.create("customer", {**customer(customer_name="表格外来的客户有限公司", mobile="13600006666"), "owner": "zhang"}, user="wang")
    book = fake_excel.open(path)
    seam = ExcelBook(book)
    (listobject,) = list(fake_excel.sheet(book, "客户").tables_on)
    rows_before = listobject.nrows
    result = sync_book(team_store, seam, "zhang", copy_id=str(path.resolve()))
    assert result.received == 1
    table = seam.read_table("客户")
    ids = [r[table.column("客户编号") - 1] for r in table.rows]
    assert ids == [old, new["customer_id"]]
    assert listobject.nrows == rows_before + 1  # the ListObject covers the new row
    assert fake_excel.calls["Table.resize"] == 1
    assert sync_book(team_store, seam, "zhang", copy_id=str(path.resolve())).received == 0
