"""Merging duplicate customers from the review workbook, and undoing it exactly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from records import customer
from sqlalchemy import inspect, text

from crmsync import clock, merge
from crmsync.errors import InvalidInput, NotFound, PermissionDenied, StaleVersion

BOOKKEEPING = {"version", "updated_at", "updated_by"}
HISTORY_TABLES = {"audit_log", "audit_head", "merges", "id_counters"}


@pytest.fixture
def dupes(team_store):
    """Two records of one company (the second less complete), each with children, and a third."""
    s = team_store
    with s.transaction("zhang") as tx:
        a = tx.create("customer", customer(customer_name="上海示例科技有限公司", mobile="13812345678",
                                           email="info@example.com", city="上海", industry="制造业"))["customer_id"]
    clock.set_now("2024-05-22 09:00:00")
    with s.transaction("li") as tx:
        b = tx.create("customer", customer(customer_name="上海示例科技股份有限公司", mobile="138 1234 5678",
                                           contact_name="张三丰", remark="展会名片"))["customer_id"]
        tx.create("contact", {"customer_id": b, "name": "李四", "mobile": "13900001111"})
        tx.create("followup", {"customer_id": b, "follow_time": "2024-05-22 09:00", "method": "电话",
                               "content": "电话沟通"})
        tx.create("deal", {"customer_id": b, "product": "年度服务", "amount": 12000, "stage": "报价"})
        tx.create("service", {"customer_id": b, "service_type": "咨询", "problem": "开票问题"})
        c = tx.create("customer", customer(customer_name="杭州云帆软件有限公司", mobile="13700002222",
                                           contact_name="王五"))["customer_id"]
    clock.set_now("2024-05-23 10:00:00")
    return SimpleNamespace(store=s, a=a, b=b, c=c)


def dump(store) -> dict:
    """Every table of the store, without the bookkeeping a later version changes."""
    out = {}
    with store.engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            if name in HISTORY_TABLES:
                continue
            rows = conn.execute(text(f'SELECT * FROM "{name}"')).mappings().all()
            out[name] = sorted((tuple(sorted((k, v) for k, v in r.items() if k not in BOOKKEEPING))
                                for r in rows), key=repr)
    return out


def test_review_workbook_lists_the_group_with_the_most_complete_record_kept(dupes, tmp_path):
    path, groups = merge.write_review(dupes.store, tmp_path / "查重.xlsx")
    assert groups == 1
    ws = load_workbook(path)["查重"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0][:7] == ["组号", "合并", "保留", "客户编号", "版本", "匹配度", "依据"]
    members = [r for r in rows[1:] if r[1] == "是"]
    assert {r[3] for r in members} == {dupes.a, dupes.b}
    keep = [r[3] for r in members if r[2] == "是"]
    assert keep == [dupes.a]  # more fields filled in
    result = next(r for r in rows if r[1] == "合并结果")
    header = rows[0]
    assert result[header.index("备注")] == "展会名片"  # a value only the other record had
    assert result[header.index("客户名称")] == "上海示例科技有限公司"
    assert "手机号相同" in members[1][6]
    assert members[0][header.index("客户类型")] == "企业客户"  # list labels, not stored keys


def test_merge_moves_children_marks_the_other_and_unmerge_restores_every_table(dupes, tmp_path):
    before = dump(dupes.store)
    path, _ = merge.write_review(dupes.store, tmp_path / "查重.xlsx")
    wb = load_workbook(path)
    ws = wb["查重"]
    header = [c.value for c in ws[1]]
    result_row = next(r for r in ws.iter_rows(min_row=2) if r[1].value == "合并结果")
    result_row[header.index("联系人")].value = "张三丰"  # the person picks the other record's contact
    wb.save(path)
    done, skipped = merge.apply_review(dupes.store, path, user="wang")
    assert skipped == [] and len(done) == 1
    s = dupes.store
    survivor = s.get("customer", dupes.a)
    assert survivor["contact_name"] == "张三丰" and survivor["remark"] == "展会名片"
    assert s.get("customer", dupes.b)["deleted"] is True
    assert merge.merged_into(s, dupes.b) == dupes.a
    for ent in ("contact", "followup", "deal", "service"):
        assert [r["customer_id"] for r in s.list(ent)] == [dupes.a]
    assert s.verify_audit().ok
    history = s.history("customer", dupes.b)
    assert history[-1]["reason"].startswith(f"合并到 {dupes.a}")

    assert dump(s) != before
    merge.unmerge(s, dupes.b, user="wang")  # by a merged customer's id
    assert dump(s) == before
    assert s.verify_audit().ok
    with pytest.raises(InvalidInput, match="已于"):
        merge.unmerge(s, done[0].merge_id, user="wang")


def test_unmerge_refuses_when_a_record_changed_since(dupes):
    s = dupes.store
    with s.transaction("wang") as tx:
        out = merge.merge_customers(tx, dupes.a, [dupes.b])
    s.update("customer", dupes.a, {"remark": "合并后又改了"}, user="wang")
    with pytest.raises(StaleVersion, match="无法撤销"):
        merge.unmerge(s, out.merge_id, user="wang")
    assert s.get("customer", dupes.b)["deleted"] is True  # nothing undone


def test_merge_needs_permission_and_two_live_customers(dupes):
    s = dupes.store
    with pytest.raises(PermissionDenied):
        with s.transaction("zhang") as tx:  # a rep may not merge
            merge.merge_customers(tx, dupes.a, [dupes.b])
    with pytest.raises(InvalidInput, match="至少需要两个"):
        with s.transaction("wang") as tx:
            merge.merge_customers(tx, dupes.a, [dupes.a])
    with pytest.raises(NotFound):
        merge.unmerge(s, "M209901010001", user="wang")
    assert s.get("customer", dupes.b)["deleted"] is False


def test_a_review_edited_after_the_records_changed_is_skipped(dupes, tmp_path):
    path, _ = merge.write_review(dupes.store, tmp_path / "查重.xlsx")
    dupes.store.update("customer", dupes.b, {"remark": "新备注"}, user="li")
    done, skipped = merge.apply_review(dupes.store, path, user="wang")
    assert done == [] and "重新查重" in skipped[0]
    assert dupes.store.get("customer", dupes.b)["deleted"] is False


def test_unticked_groups_are_left_alone_and_two_survivors_are_refused(dupes, tmp_path):
    path, _ = merge.write_review(dupes.store, tmp_path / "查重.xlsx")
    wb = load_workbook(path)
    ws = wb["查重"]
    members = [r for r in ws.iter_rows(min_row=2) if r[1].value == "是"]
    for r in members:
        r[2].value = "是"
    wb.save(path)
    done, skipped = merge.apply_review(dupes.store, path, user="wang")
    assert done == [] and "恰好选一个" in skipped[0]
    for r in members:
        r[1].value = "否"
    wb.save(path)
    assert merge.apply_review(dupes.store, path, user="wang") == ([], [])


def test_only_overwhelming_matches_come_pre_ticked(dupes, tmp_path):
    with dupes.store.transaction("admin") as tx:
        weak = tx.create("customer", customer(customer_name="杭州云帆软件股份有限公司", mobile="13500001234",
                                              contact_name=None, owner="li"))["customer_id"]
    path, groups = merge.write_review(dupes.store, tmp_path / "查重.xlsx")
    rows = [[c.value for c in r] for r in load_workbook(path)["查重"].iter_rows(min_row=2)]
    ticks = {r[3]: r[1] for r in rows if r[3]}
    assert groups == 2
    assert ticks[dupes.a] == ticks[dupes.b] == "是"
    assert ticks[weak] == "否" and ticks[dupes.c] == "是"  # the survivor of the weak group is pre-ticked alone
    done, _ = merge.apply_review(dupes.store, path, user="wang")
    assert [d.survivor for d in done] == [dupes.a]  # the weak group needs a person's tick
