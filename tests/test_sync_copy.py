"""Syncing real workbook copies with a real store: three-way merge, deletes, exactly-once new rows."""

from __future__ import annotations

import pytest
from records import customer

from crmsync.audit import REFUSED
from crmsync.book_file import FileBook
from crmsync.conflicts import list_conflicts, resolve_conflict
from crmsync.errors import InvalidFile
from crmsync.seam import MARK_PREFIX
from crmsync.sync_copy import checkout, ingest_copy


# ---- helpers: what a person does to a copy in Excel ----------------------------------------------

def header(path, sheet="客户"):
    book = FileBook(path)
    try:
        return book.read_table(sheet).header
    finally:
        book.close()


def edit(path, row, sheet="客户", **by_label):
    """Type values into one row (by column label), as a person would, and save."""
    book = FileBook(path)
    head = book.read_table(sheet).header
    book.write_cells(sheet, {(row, head.index(label) + 1): value for label, value in by_label.items()})
    book.save()


def row_of(path, record_id, sheet="客户"):
    book = FileBook(path)
    try:
        table = book.read_table(sheet)
        col = 0
        for number, row in zip(table.row_numbers, table.rows):
            if row[col] == record_id:
                return number
    finally:
        book.close()
    raise AssertionError(f"{record_id} not in {path}")


def cell(path, row, label, sheet="客户"):
    book = FileBook(path)
    try:
        table = book.read_table(sheet)
        return table.rows[table.row_numbers.index(row)][table.header.index(label)]
    finally:
        book.close()


def clear_row(path, row, sheet="客户"):
    book = FileBook(path)
    width = len(book.read_table(sheet).header)
    book.write_cells(sheet, {(row, c): None for c in range(1, width + 1)})
    book.save()


def marks(path, sheet="客户"):
    book = FileBook(path)
    try:
        return book.marked_cells(sheet)
    finally:
        book.close()


def refused_entries(store):
    return [e for e in store.audit_entries() if e["action"] == REFUSED] if hasattr(store, "audit_entries") \
        else _audit(store, REFUSED)


def _audit(store, action=None):
    from sqlalchemy import select

    from crmsync.tables import audit_log

    with store.engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings().all()
    return [dict(r) for r in rows if action is None or r["action"] == action]


@pytest.fixture
def team(team_store):
    """zhang's customer C…0001 and li's C…0002, both of team east."""
    a = team_store.create("customer", customer(owner="zhang"))
    b = team_store.create("customer", customer(customer_name="北京另一家有限公司", mobile="13911112222", owner="li"))
    return team_store, a["customer_id"], b["customer_id"]


# ---- three-way merge ------------------------------------------------------------------------------

def test_two_copies_change_different_fields_of_one_customer_both_land(team, tmp_path):
    store, cid, _ = team
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    checkout(store, "zhang", z)
    checkout(store, "wang", w)
    edit(z, row_of(z, cid), 手机号="13900001111")
    edit(w, row_of(w, cid), 备注="经理补充的备注")
    assert ingest_copy(store, z, "zhang").applied == 1
    assert ingest_copy(store, w, "wang").applied == 1
    rec = store.get("customer", cid)
    assert rec["mobile"] == "13900001111" and rec["remark"] == "经理补充的备注"
    assert list_conflicts(store) == []


def test_the_same_field_changed_twice_is_one_conflict_and_the_store_waits(team, tmp_path):
    store, cid, _ = team
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    checkout(store, "zhang", z)
    checkout(store, "wang", w)
    edit(w, row_of(w, cid), 手机号="13700000000")
    edit(z, row_of(z, cid), 手机号="13900001111")
    ingest_copy(store, w, "wang")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.conflicts == 1 and result.applied == 0
    assert store.get("customer", cid)["mobile"] == "13700000000"  # unchanged until resolved
    (c,) = list_conflicts(store)
    assert (c.local, c.store, c.local_user, c.store_user) == ("13900001111", "13700000000", "zhang", "wang")
    assert c.copy_id == str(z.resolve()) and c.store_time == "2024-05-21 10:00:00"
    # the copy keeps the rep's value, marked, and the 冲突 sheet lists it
    row = row_of(z, cid)
    assert cell(z, row, "手机号") == "13900001111"
    note = marks(z)[(row, header(z).index("手机号") + 1)]
    assert note.startswith(MARK_PREFIX) and "13700000000" in note
    book = FileBook(z)
    assert book.read_table("冲突").rows[0][1] == cid
    book.close()
    # syncing again does not make a second conflict
    assert ingest_copy(store, z, "zhang").conflicts == 0
    assert len(list_conflicts(store)) == 1
    # the manager takes the rep's value: it lands, with an audit entry
    resolve_conflict(store, c.id, "mine", user="wang")
    assert store.get("customer", cid)["mobile"] == "13900001111"
    assert any(e["action"] == "resolve_conflict" for e in _audit(store))
    assert list_conflicts(store) == []


def test_incoming_changes_are_written_back_into_the_copy(team, tmp_path):
    store, cid, _ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    store.update("customer", cid, {"remark": "库里的新备注"}, user="wang")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.applied == 0 and result.conflicts == 0
    row = row_of(z, cid)
    assert cell(z, row, "备注") == "库里的新备注" and cell(z, row, "同步版本") == 2
    # and the rep's later edit of another field is based on the new version
    edit(z, row, 座机="010-12345678")
    assert ingest_copy(store, z, "zhang").applied == 1
    assert store.get("customer", cid)["remark"] == "库里的新备注"


# ---- deletes --------------------------------------------------------------------------------------

def test_a_rep_deleting_a_row_is_refused_and_audited_and_other_edits_land(team, tmp_path):
    store, cid, _ = team
    other = store.create("customer", customer(customer_name="第三家公司", mobile="13600001111", owner="zhang"))
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    clear_row(z, row_of(z, cid))
    edit(z, row_of(z, other["customer_id"]), 备注="还在跟进")
    result = ingest_copy(store, z, "zhang")
    assert result.refused == 1 and result.deleted == 0 and result.applied == 1
    assert not store.get("customer", cid)["deleted"]
    assert store.get("customer", other["customer_id"])["remark"] == "还在跟进"
    (entry,) = _audit(store, REFUSED)
    assert entry["record_id"] == cid and entry["user"] == "zhang" and "删除" in entry["reason"]
    assert entry["source"] == f"sync:{z.resolve()}"


def test_a_manager_deletes_while_a_rep_edits_is_a_conflict(team, tmp_path):
    store, cid, _ = team
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    checkout(store, "zhang", z)
    checkout(store, "wang", w)
    edit(z, row_of(z, cid), 备注="代表刚改的")
    clear_row(w, row_of(w, cid))
    assert ingest_copy(store, z, "zhang").applied == 1
    result = ingest_copy(store, w, "wang")
    assert result.conflicts == 1 and result.deleted == 0
    assert not store.get("customer", cid)["deleted"]
    (c,) = list_conflicts(store)
    assert c.field == "deleted" and c.local is True and c.local_user == "wang"
    resolve_conflict(store, c.id, "mine", user="wang")
    assert store.get("customer", cid)["deleted"]


def test_a_manager_deleting_an_unchanged_row_deletes_it_softly(team, tmp_path):
    store, cid, _ = team
    w = tmp_path / "wang.xlsm"
    checkout(store, "wang", w)
    clear_row(w, row_of(w, cid))
    assert ingest_copy(store, w, "wang").deleted == 1
    assert store.get("customer", cid)["deleted"]


# ---- new rows, exactly once -----------------------------------------------------------------------

def _new_row(path, name="杭州新客户有限公司", mobile="13700001111"):
    row = max(2, _last_row(path) + 1)
    edit(path, row, 客户名称=name, 客户状态="意向客户", 手机号=mobile, 客户类型="企业客户")
    return row


def _last_row(path, sheet="客户"):
    book = FileBook(path)
    try:
        numbers = book.read_table(sheet).row_numbers
        return numbers[-1] if numbers else 1
    finally:
        book.close()


def _customers(store, name):
    return [c for c in store.list("customer") if c["customer_name"] == name]


@pytest.mark.parametrize("write_back", [True, False])
def test_a_new_customer_synced_twice_is_one_customer(team, tmp_path, write_back):
    store, *_ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    row = _new_row(z)
    assert ingest_copy(store, z, "zhang", write_back=write_back).created == 1
    again = ingest_copy(store, z, "zhang", write_back=write_back)
    assert again.created == 0 and again.refused == 0
    (rec,) = _customers(store, "杭州新客户有限公司")
    assert rec["owner"] == "zhang" and rec["status"] == "intent"
    if write_back:
        assert cell(z, row, "客户编号") == rec["customer_id"]
        assert cell(z, row, "负责人") == "zhang" and cell(z, row, "客户端键")


def test_a_keyless_row_is_recognised_after_it_was_edited_and_moved(team, tmp_path):
    store, *_ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    row = _new_row(z)
    assert ingest_copy(store, z, "zhang").created == 1  # the watcher: nothing written to the file
    # on a phone, the row is moved two rows down and its mobile corrected
    values = {h: v for h, v in zip(header(z), FileBook(z).read_table("客户").rows[-1]) if v is not None}
    clear_row(z, row)
    values["手机号"] = "13755556666"
    edit(z, row + 2, **values)
    result = ingest_copy(store, z, "zhang")
    assert result.created == 0 and result.applied == 1 and result.refused == 0
    (rec,) = _customers(store, "杭州新客户有限公司")
    assert rec["mobile"] == "13755556666"
    # and once written back it carries its id
    ingest_copy(store, z, "zhang", write_back=True)
    assert cell(z, row + 2, "客户编号") == rec["customer_id"]
    assert len(_customers(store, "杭州新客户有限公司")) == 1


def test_two_identical_keyless_rows_are_two_customers_and_stay_two(team, tmp_path):
    store, *_ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    _new_row(z, name="重名个体户", mobile="13711112222")
    _new_row(z, name="重名个体户", mobile="13711112222")
    first = ingest_copy(store, z, "zhang")
    assert first.created + first.refused == 2
    ingest_copy(store, z, "zhang")
    assert len(_customers(store, "重名个体户")) == first.created


# ---- refusals -------------------------------------------------------------------------------------

def test_refused_changes_are_reported_on_their_row_audited_and_block_nothing_else(team, tmp_path):
    store, cid, li_cid = team
    keep = store.create("customer", customer(customer_name="正常修改公司", mobile="13600002222", owner="zhang"))
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    r_owner = row_of(z, cid)
    edit(z, r_owner, 负责人="li")  # a rep may not reassign
    r_keep = row_of(z, keep["customer_id"])
    edit(z, r_keep, 客户名称="正常修改公司（新）", 备注="改名")  # core field without a reason
    claim = _last_row(z) + 1
    edit(z, claim, 客户编号=li_cid, 客户名称="北京另一家有限公司", 客户类型="企业客户", 客户状态="意向客户",
         手机号="13911112222", 备注="抢客户")  # another rep's customer typed into the copy
    lost = _new_row(z, name="流失的新客户", mobile="13711113333")
    edit(z, lost, 客户状态="流失客户")
    fine = _new_row(z, name="正常新客户", mobile="13711114444")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.refused == 4 and result.created == 1
    assert store.get("customer", cid)["owner"] == "zhang"
    assert store.get("customer", keep["customer_id"])["customer_name"] == "正常修改公司"
    assert store.get("customer", li_cid)["remark"] is None
    assert not _customers(store, "流失的新客户") and _customers(store, "正常新客户")
    reasons = {e["record_id"] or "new": e["reason"] for e in _audit(store, REFUSED)}
    assert "负责人" in reasons[cid] and "变更原因" in reasons[keep["customer_id"]]
    assert "li" in reasons[li_cid]
    assert any("流失原因" in r for r in reasons.values())
    marked_rows = {r for r, _c in marks(z)}
    assert {r_owner, r_keep, claim, lost} <= marked_rows and fine not in marked_rows
    assert cell(z, fine, "客户编号")
    # with a reason the core change lands, and the reason is cleared after the sync
    edit(z, r_keep, 变更原因="工商变更")
    assert ingest_copy(store, z, "zhang", write_back=True).applied == 1
    assert store.get("customer", keep["customer_id"])["customer_name"] == "正常修改公司（新）"
    assert cell(z, r_keep, "变更原因") is None
    change = [e for e in _audit(store, "update") if e["field"] == "customer_name"]
    assert change[-1]["reason"] == "工商变更"


def test_the_user_comes_from_the_caller_never_from_the_file(team, tmp_path):
    store, cid, _ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    book = FileBook(z)
    book.write_cells("xlwings.conf", {(3, 1): "CRMSYNC_USER", (3, 2): "wang"})
    book.save()
    edit(z, row_of(z, cid), 更新人="wang", 创建人="wang", 备注="谁改的")
    ingest_copy(store, z, "zhang")
    (entry,) = [e for e in _audit(store, "update") if e["field"] == "remark"]
    assert entry["user"] == "zhang"
    assert store.get("customer", cid)["updated_by"] == "zhang"


# ---- every sheet, with relations -----------------------------------------------------------------

def test_a_new_customer_and_its_contact_follow_up_service_and_deal_in_one_sync(team, tmp_path):
    store, *_ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    _new_row(z, name="全新客户有限公司", mobile="13722223333")
    edit(z, 2, sheet="联系人", 客户编号="全新客户有限公司", 姓名="王五", 手机号="13822223333", 主要联系人="是")
    edit(z, 2, sheet="跟进记录", 客户编号="全新客户有限公司", 跟进时间="2024-05-20 10:00", 跟进方式="电话",
         跟进内容="初次沟通")
    edit(z, 2, sheet="服务记录", 客户编号="全新客户有限公司", 服务类型="咨询", 问题描述="询价", 处理状态="处理中")
    edit(z, 2, sheet="交易记录", 客户编号="全新客户有限公司", **{"产品/服务": "年度服务", "金额": 12000, "阶段": "报价"})
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.refused == 0, result.details
    assert result.created == 5
    (cust,) = _customers(store, "全新客户有限公司")
    cid = cust["customer_id"]
    for entity_key in ("contact", "followup", "service", "deal"):
        (rec,) = store.list(entity_key, where={"customer_id": cid})
        assert rec["version"] == 1
    assert cell(z, 2, "客户编号", sheet="联系人") == cid
    assert ingest_copy(store, z, "zhang").created == 0
    edit(z, 2, sheet="联系人", 职位="采购经理")
    assert ingest_copy(store, z, "zhang").applied == 1
    assert store.list("contact", where={"customer_id": cid})[0]["title"] == "采购经理"


# ---- approval, bad files ---------------------------------------------------------------------------

def test_with_approval_on_a_reps_new_customer_waits_for_a_manager(team, tmp_path):
    from crmsync.sync_apply import approve_customers

    store, *_ = team
    store.set_setting("require_approval", True)
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    _new_row(z, name="待审核客户", mobile="13733334444")
    ingest_copy(store, z, "zhang")
    (rec,) = _customers(store, "待审核客户")
    assert rec["approval_status"] == "pending"
    assert approve_customers(store, "zhang", [rec["customer_id"]])[0] == []  # a rep may not
    approved, refused = approve_customers(store, "wang")
    assert approved == [rec["customer_id"]] and refused == []
    assert store.get("customer", rec["customer_id"])["approval_status"] == "approved"


@pytest.mark.parametrize("content", [b"not a workbook at all", b"PK\x03\x04truncated"])
def test_an_unreadable_copy_raises_invalid_file_and_changes_nothing(team, tmp_path, content):
    store, *_ = team
    bad = tmp_path / "bad.xlsm"
    bad.write_bytes(content)
    before = len(_audit(store))
    with pytest.raises(InvalidFile) as err:
        ingest_copy(store, bad, "zhang")
    assert "bad.xlsm" in str(err.value)
    assert len(_audit(store)) == before


def test_a_truncated_real_copy_is_refused(team, tmp_path):
    store, *_ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidFile):
        ingest_copy(store, z, "zhang")


def test_checkout_holds_exactly_what_the_user_may_see(team, tmp_path):
    store, cid, li_cid = team
    store.create("customer", customer(customer_name="南方公司", mobile="13500001111", owner="liu"))
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    assert checkout(store, "zhang", z)["customer"] == 1
    assert checkout(store, "wang", w)["customer"] == 2
    row_of(z, cid)
    with pytest.raises(AssertionError):
        row_of(z, li_cid)
    with pytest.raises(Exception):
        checkout(store, "zhang", z)  # never overwrites a copy


def test_after_a_conflict_is_settled_for_the_store_the_copy_follows(team, tmp_path):
    store, cid, _ = team
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    checkout(store, "zhang", z)
    checkout(store, "wang", w)
    edit(w, row_of(w, cid), 备注="经理的备注")
    edit(z, row_of(z, cid), 备注="代表的备注")
    ingest_copy(store, w, "wang")
    assert ingest_copy(store, z, "zhang").conflicts == 1
    (c,) = list_conflicts(store)
    resolve_conflict(store, c.id, "theirs", user="wang")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.conflicts == 0 and result.applied == 0
    row = row_of(z, cid)
    assert cell(z, row, "备注") == "经理的备注"
    assert not [m for m in marks(z) if m[0] == row]
    assert store.get("customer", cid)["remark"] == "经理的备注"


def test_a_customer_deleted_in_the_store_is_reported_on_the_reps_row(team, tmp_path):
    store, cid, _ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    with store.transaction("wang", "cli") as tx:
        tx.delete("customer", cid, reason="重复")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.conflicts == 0 and result.refused == 0
    assert "删除" in marks(z)[(row_of(z, cid), 1)]


def test_a_copy_saved_by_someone_else_during_the_sync_keeps_the_store_and_says_so(team, tmp_path, monkeypatch):
    import shutil

    from crmsync import sync_copy

    store, cid, _ = team
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    _new_row(z, name="写回失败的新客户", mobile="13755550000")
    saved = tmp_path / "saved-meanwhile.xlsm"
    shutil.copyfile(z, saved)
    real = sync_copy._write_back

    def save_meanwhile(*args, **kwargs):  # Excel saves the file between our read and our write
        tmp = z.with_suffix(".tmp")
        shutil.copyfile(saved, tmp)
        tmp.replace(z)
        return real(*args, **kwargs)

    monkeypatch.setattr(sync_copy, "_write_back", save_meanwhile)
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.created == 1 and "未能写回文件" in result.message
    assert z.read_bytes() == saved.read_bytes()  # what was saved meanwhile is kept
    monkeypatch.setattr(sync_copy, "_write_back", real)
    assert len(_customers(store, "写回失败的新客户")) == 1
    assert ingest_copy(store, z, "zhang", write_back=True).created == 0
    assert len(_customers(store, "写回失败的新客户")) == 1
