"""crmsync checkout / sync / conflict list|resolve / approve, and the 同步 and 审核 buttons."""

from __future__ import annotations

import pytest
from records import customer
from test_sync_copy import _customers, _new_row, edit, row_of

from crmsync import macros
from crmsync.errors import InvalidFile

from cli_run import run


@pytest.fixture
def db(team_store, store_path):
    cid = team_store.create("customer", customer(owner="zhang"))["customer_id"]
    return store_path, cid


def test_checkout_then_sync_from_the_command_line(db, tmp_path):
    path, cid = db
    z = tmp_path / "zhang.xlsm"
    out = run("checkout", "--user", "zhang", z, "--store", path)
    assert "zhang.xlsm" in out and "客户 1" in out
    edit(z, row_of(z, cid), 备注="命令行同步")
    out = run("sync", z, "--user", "zhang", "--store", path)
    assert "应用 1 处修改" in out
    from crmsync.store import Store

    with Store(path) as s:
        assert s.get("customer", cid)["remark"] == "命令行同步"


def test_conflicts_listed_and_resolved_with_a_value(db, tmp_path):
    path, cid = db
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    run("checkout", "--user", "zhang", z, "--store", path)
    run("checkout", "--user", "wang", w, "--store", path)
    edit(w, row_of(w, cid), 备注="经理的")
    edit(z, row_of(z, cid), 备注="代表的")
    run("sync", w, "--user", "wang", "--store", path)
    assert "冲突 1 处" in run("sync", z, "--user", "zhang", "--store", path)
    listed = run("conflict", "list", "--user", "wang", "--store", path)
    assert "代表的" in listed and "经理的" in listed and cid in listed
    # a rep may not resolve: one error line, exit 1
    err = run("conflict", "resolve", "1", "--take", "mine", "--user", "zhang", "--store", path, code=1)
    assert "无权" in err and "Traceback" not in err
    out = run("conflict", "resolve", "1", "--take", "两者合并的备注", "--user", "wang", "--store", path)
    assert "两者合并的备注" in out
    assert "没有冲突" in run("conflict", "list", "--user", "wang", "--store", path)
    run("conflict", "resolve", "1", "--take", "theirs", "--user", "wang", "--store", path, code=1)


def test_sync_of_a_bad_file_is_one_error_line(db, tmp_path):
    path, _ = db
    bad = tmp_path / "bad.xlsm"
    bad.write_text("hello")
    err = run("sync", bad, "--user", "zhang", "--store", path, code=1)
    assert err.startswith("错误") and "bad.xlsm" in err and "Traceback" not in err


def test_approve_from_the_command_line(db, tmp_path):
    path, _ = db
    from crmsync.store import Store

    with Store(path) as s:
        s.set_setting("require_approval", True)
    z = tmp_path / "zhang.xlsm"
    run("checkout", "--user", "zhang", z, "--store", path)
    _new_row(z, name="命令行新客户", mobile="13766667777")
    run("sync", z, "--user", "zhang", "--store", path)
    run("approve", "--user", "zhang", "--store", path, code=0)  # nothing a rep may approve
    assert "已审核 1" in run("approve", "--user", "wang", "--store", path)
    with Store(path) as s:
        (rec,) = _customers(s, "命令行新客户")
        assert rec["approval_status"] == "approved"


def test_the_sync_and_approve_buttons(db, tmp_path, monkeypatch):
    path, cid = db
    from crmsync.store import Store
    from crmsync.sync_copy import checkout

    with Store(path) as s:
        s.set_setting("require_approval", True)
        checkout(s, "zhang", tmp_path / "zhang.xlsm")
        checkout(s, "wang", tmp_path / "wang.xlsm")
    monkeypatch.setenv("CRMSYNC_STORE", str(path))
    z = tmp_path / "zhang.xlsm"
    _new_row(z, name="按钮新客户", mobile="13788889999")
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    message = macros.on_ribbon("sync", book=str(z))
    assert "新增 1 条" in message
    monkeypatch.setenv("CRMSYNC_USER", "wang")
    w = tmp_path / "wang.xlsm"
    assert "没有待审核" in macros.on_ribbon("approve", book=str(w))  # not in the manager's copy yet
    message = macros.on_ribbon("sync", book=str(w))  # the sync brings the rep's new customer in
    assert "新增 0 条" in message and "收到 1 条新记录" in message
    assert "已审核 1" in macros.on_ribbon("approve", book=str(w))
    assert "没有待审核" in macros.on_ribbon("approve", book=str(z))
    monkeypatch.delenv("CRMSYNC_USER")
    assert "CRMSYNC_USER" in macros.on_ribbon("sync", book=str(z))


def test_ingest_refuses_a_workbook_without_entity_sheets(team_store, tmp_path):
    from openpyxl import Workbook

    from crmsync.sync_copy import ingest_copy

    other = tmp_path / "other.xlsx"
    wb = Workbook()
    wb.active.title = "Sheet1"
    wb.active["A1"] = "hello"
    wb.save(other)
    with pytest.raises(InvalidFile):
        ingest_copy(team_store, other, "zhang")


def test_the_sync_button_inside_excel_writes_back_in_place(db, tmp_path, monkeypatch, fake_excel):
    from crmsync import lookup
    from crmsync.excel import ExcelBook
    from crmsync.store import Store
    from crmsync.sync_copy import checkout

    path, cid = db
    z = tmp_path / "zhang.xlsm"
    with Store(path) as s:
        checkout(s, "zhang", z)
        s.update("customer", cid, {"remark": "经理刚改的"}, user="wang")
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    lookup.forget_settings()
    book = fake_excel.open(z)
    seam = ExcelBook(book)
    head = seam.read_table("客户").header
    seam.write_cells("客户", {(3, head.index("客户名称") + 1): "表格里新加的公司",
                              (3, head.index("客户状态") + 1): "意向客户",
                              (3, head.index("手机号") + 1): "13712340000"})
    message = macros.on_ribbon("sync")  # the store comes from the copy's xlwings.conf
    lookup.forget_settings()
    assert "新增 1 条" in message and fake_excel.status_bar == message
    table = seam.read_table("客户")
    rows = {r[0]: r for r in table.rows}
    assert rows[cid][head.index("备注")] == "经理刚改的"
    new_id = next(k for k in rows if k != cid)
    with Store(path) as s:
        assert s.get("customer", new_id)["customer_name"] == "表格里新加的公司"
    assert "新增 0 条" in macros.on_ribbon("sync")
    lookup.forget_settings()
