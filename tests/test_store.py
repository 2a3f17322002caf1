"""The canonical store: ids, versions, history, soft deletes, validation and permission on write."""

from __future__ import annotations

import sqlite3

import pytest

from crmsync import clock
from crmsync.errors import InvalidInput, NotFound, PermissionDenied, StaleVersion, StoreError
from crmsync.store import Store

from records import customer


def audit_count(store):
    return store.verify_audit().entries


def test_create_assigns_dated_id_version_and_owner(team_store):
    c = team_store.create("customer", customer(), user="zhang")
    assert c["customer_id"] == "C202405210001"
    assert c["version"] == 1 and c["owner"] == "zhang" and c["team"] == "east"
    assert c["status"] == "potential" and c["customer_type"] == "enterprise"  # labels stored as keys
    second = team_store.create("customer", customer(customer_name="B公司"), user="zhang")
    assert second["customer_id"] == "C202405210002"
    assert team_store.get("customer", "C202405210001")["customer_name"] == "上海示例科技有限公司"


def test_ids_restart_each_day_and_widen_past_9999(store):
    with store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO id_counters VALUES ('C', '20240521', 9999)")
    assert store.create("customer", customer())["customer_id"] == "C2024052110000"
    clock.set_now("2024-05-22 09:00:00")
    assert store.create("customer", customer(customer_name="次日公司"))["customer_id"] == "C202405220001"


def test_update_keeps_every_version(store):
    cid = store.create("customer", customer())["customer_id"]
    clock.set_now("2024-05-22 11:00:00")
    store.update("customer", cid, {"status": "意向客户", "remark": "有预算"}, reason="电话确认")
    store.update("customer", cid, {"remark": "预算 50 万"})
    assert store.get("customer", cid)["version"] == 3
    v1, v2 = store.version("customer", cid, 1), store.version("customer", cid, 2)
    assert (v1["status"], v1.get("remark")) == ("potential", None)
    assert (v2["status"], v2["remark"], v2["updated_at"]) == ("intent", "有预算", "2024-05-22 11:00:00")
    changes = [(h["field"], h["old_value"], h["new_value"], h["reason"])
               for h in store.history("customer", cid) if h["action"] == "update"]
    assert changes == [("status", "potential", "intent", "电话确认"), ("remark", None, "有预算", "电话确认"),
                       ("remark", "有预算", "预算 50 万", None)]
    with pytest.raises(NotFound):
        store.version("customer", cid, 9)


def test_update_that_changes_nothing_makes_no_version(store):
    cid = store.create("customer", customer())["customer_id"]
    store.update("customer", cid, {"mobile": "+86 138-1234-5678"})  # same number, other spelling
    assert store.get("customer", cid)["version"] == 1


def test_stale_base_version_is_refused_and_nothing_changes(store):
    cid = store.create("customer", customer())["customer_id"]
    store.update("customer", cid, {"remark": "A"})
    before = audit_count(store)
    with pytest.raises(StaleVersion):
        store.update("customer", cid, {"remark": "B"}, base_version=1)
    assert store.get("customer", cid)["remark"] == "A" and audit_count(store) == before


@pytest.mark.parametrize("values, field", [
    ({"mobile": "1381234567"}, "手机号"),
    ({"email": "not-an-email"}, "邮箱"),
    ({"credit_code": "91310115MA1K4ABCD1"}, "统一社会信用代码"),
    ({"status": "不存在的状态"}, "客户状态"),
    ({"remark": "长" * 501}, "备注"),
])
def test_invalid_values_are_refused_with_the_field_named(store, values, field):
    with pytest.raises(InvalidInput, match=field):
        store.create("customer", customer(**values))
    assert store.count("customer") == 0 and audit_count(store) == 0


def test_lost_status_needs_a_lost_reason(store):
    cid = store.create("customer", customer())["customer_id"]
    with pytest.raises(InvalidInput, match="流失原因"):
        store.update("customer", cid, {"status": "流失客户"}, reason="不再合作")
    store.update("customer", cid, {"status": "流失客户", "lost_reason": "价格过高"}, reason="不再合作")
    assert store.get("customer", cid)["lost_reason"] == "price"


def test_core_field_change_needs_a_reason(store):
    cid = store.create("customer", customer())["customer_id"]
    with pytest.raises(PermissionDenied, match="变更原因"):
        store.update("customer", cid, {"customer_name": "上海示例科技股份有限公司"})
    store.update("customer", cid, {"customer_name": "上海示例科技股份有限公司"}, reason="工商变更")
    assert store.history("customer", cid)[-1]["reason"] == "工商变更"


def test_reps_see_and_change_only_their_own_customers(team_store):
    mine = team_store.create("customer", customer(), user="zhang")["customer_id"]
    team_store.create("customer", customer(customer_name="李的客户"), user="li")
    team_store.create("customer", customer(customer_name="南区客户"), user="liu")
    zhang, wang = team_store.user("zhang"), team_store.user("wang")
    assert [c["customer_id"] for c in team_store.list("customer", visible_to=zhang)] == [mine]
    assert len(team_store.list("customer", visible_to=wang)) == 2  # the east team's
    with pytest.raises(PermissionDenied, match="li"):
        team_store.update("customer", mine, {"remark": "x"}, user="li")
    with pytest.raises(PermissionDenied):
        team_store.create("customer", customer(customer_name="冒名", owner="li"), user="zhang")


def test_reassigning_an_owner_needs_a_manager(team_store):
    cid = team_store.create("customer", customer(), user="zhang")["customer_id"]
    with pytest.raises(PermissionDenied):
        team_store.update("customer", cid, {"owner": "li"}, user="zhang", reason="交接")
    team_store.update("customer", cid, {"owner": "li"}, user="wang", reason="交接")
    assert team_store.get("customer", cid)["owner"] == "li"
    with pytest.raises(PermissionDenied):  # another team's manager
        team_store.update("customer", cid, {"remark": "x"}, user="chen")


def test_deletes_are_soft_restorable_and_refused_for_reps(team_store):
    cid = team_store.create("customer", customer(), user="zhang")["customer_id"]
    with pytest.raises(PermissionDenied, match="删除"):
        with team_store.transaction("zhang") as tx:
            tx.delete("customer", cid)
    with team_store.transaction("wang") as tx:
        tx.delete("customer", cid, reason="重复")
    assert team_store.list("customer") == [] and team_store.get("customer", cid)["deleted"] is True
    with team_store.transaction("wang") as tx:
        tx.restore("customer", cid)
    assert [c["customer_id"] for c in team_store.list("customer")] == [cid]
    assert [h["action"] for h in team_store.history("customer", cid)] == ["create", "delete", "restore"]


def test_a_failed_transaction_leaves_nothing_and_gives_its_ids_back(store):
    with pytest.raises(InvalidInput):
        with store.transaction("admin") as tx:
            tx.create("customer", customer())
            tx.create("customer", customer(mobile="123"))
    assert store.count("customer") == 0 and audit_count(store) == 0
    assert store.create("customer", customer())["customer_id"] == "C202405210001"


def test_children_of_a_new_customer_in_the_same_transaction(store):
    with store.transaction("admin") as tx:
        c = tx.create("customer", customer())
        p = tx.create("contact", {"customer_id": c["customer_id"], "name": "李四", "mobile": "13912345678"})
        f = tx.create("followup", {"customer_id": c["customer_id"], "follow_time": "2024/5/21 9:30",
                                   "method": "电话", "content": "首次沟通", "next_time": "2024-05-24"})
    assert p["contact_id"] == "P202405210001" and f["follow_id"] == "F202405210001"
    assert store.get("followup", f["follow_id"])["follow_time"] == "2024-05-21 09:30:00"
    with pytest.raises(InvalidInput, match="C2099"):
        store.create("contact", {"customer_id": "C209901010001", "name": "无主"})


def test_custom_fields_are_stored_validated_and_audited(store):
    store.add_custom_field("customer", "coop_years", "合作年限", type="int")
    with pytest.raises(InvalidInput):
        store.add_custom_field("customer", "mobile", "手机")
    cid = store.create("customer", customer(coop_years="3"))["customer_id"]
    assert store.get("customer", cid)["coop_years"] == 3
    store.update("customer", cid, {"coop_years": 4})
    assert store.version("customer", cid, 1)["coop_years"] == 3
    assert store.history("customer", cid)[-1]["field"] == "coop_years"
    with pytest.raises(InvalidInput, match="合作年限"):
        store.update("customer", cid, {"coop_years": "很多年"})


def test_enumerations_are_data_the_admin_extends(team_store):
    with pytest.raises(InvalidInput):
        team_store.create("customer", customer(industry="新能源汽车"))
    team_store.add_enum("industry", "nev", "新能源汽车", "New energy vehicles")
    assert team_store.create("customer", customer(industry="新能源汽车"))["industry"] == "nev"
    with pytest.raises(PermissionDenied):
        team_store.add_enum("industry", "x", "X", by="zhang")


def test_create_many_is_all_or_nothing(store):
    rows = [customer(customer_name=f"批量{i}公司") for i in range(500)]
    ids = None
    with store.transaction("admin", "import") as tx:
        ids = tx.create_many("customer", rows)
    assert ids[0] == "C202405210001" and ids[-1] == "C202405210500"
    assert store.version("customer", ids[7], 1)["customer_name"] == "批量7公司"
    rows[250]["mobile"] = "12345"
    with pytest.raises(InvalidInput, match="手机号"):
        with store.transaction("admin", "import") as tx:
            tx.create_many("customer", rows)
    assert store.count("customer") == 500 and store.verify_audit().ok


def test_a_bulk_created_record_keeps_its_first_version_like_a_single_one(store):
    """create() and create_many() log the same first version: what was set, empty fields left out."""
    one = store.create("customer", customer(customer_name="单个公司", email=None))
    with store.transaction("admin", "import") as tx:
        (bulk,) = tx.create_many("customer", [customer(customer_name="批量公司", email=None)])
    snapshots = {e["record_id"]: e["new_value"] for e in store.history("customer", one["customer_id"])
                 + store.history("customer", bulk) if e["field"] == "*"}
    assert set(snapshots[bulk]) == set(snapshots[one["customer_id"]])
    assert "email" not in snapshots[bulk] and None not in snapshots[bulk].values()
    store.update("customer", bulk, {"email": "a@example.com"})
    first = store.version("customer", bulk, 1)
    assert first["customer_name"] == "批量公司" and first.get("email") is None
    assert store.version("customer", bulk, 2)["email"] == "a@example.com"


def test_migrations_are_recorded_and_missing_columns_come_back(store_path):
    Store(store_path, create=True).close()
    con = sqlite3.connect(store_path)
    from crmsync.tables import MIGRATIONS

    assert con.execute("SELECT number FROM schema_migrations ORDER BY number").fetchall() == \
        [(number,) for number, _, _ in MIGRATIONS]
    con.execute("ALTER TABLE customers DROP COLUMN remark")
    con.commit()
    con.close()
    s = Store(store_path)
    s.create("customer", customer(remark="回来了"))
    assert s.list("customer")[0]["remark"] == "回来了"
    s.close()


def test_opening_a_missing_or_foreign_store_says_so(tmp_path):
    with pytest.raises(NotFound, match="crmsync init"):
        Store(tmp_path / "none.db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="bad.db"):
        Store(bad)


def test_backup_and_restore_round_trip(store, tmp_path):
    cid = store.create("customer", customer())["customer_id"]
    store.backup(tmp_path / "b.db")
    store.update("customer", cid, {"remark": "备份之后"})
    store.restore(tmp_path / "b.db")
    assert store.get("customer", cid).get("remark") is None and store.verify_audit().ok
    (tmp_path / "junk.db").write_text("junk")
    with pytest.raises(StoreError, match="junk.db"):
        store.restore(tmp_path / "junk.db")
    assert store.get("customer", cid)["customer_name"] == "上海示例科技有限公司"


def test_extra_data_is_kept_with_the_record_through_later_updates(store):
    store.add_custom_field("customer", "coop_years", "合作年限", type="int")
    with store.transaction("admin") as tx:
        first, second = tx.create_many("customer", [customer(), customer(customer_name="乙公司")],
                                       extra_data=[{"_imported": {"微信号": "wx_123"}}, None])
    assert store.get("customer", first)["_imported"] == {"微信号": "wx_123"}
    assert "_imported" not in store.get("customer", second)
    store.update("customer", first, {"coop_years": 3})
    store.update("customer", first, {"remark": "回访"})
    record = store.get("customer", first)
    assert record["_imported"] == {"微信号": "wx_123"} and record["coop_years"] == 3
    assert store.version("customer", first, 1)["_imported"] == {"微信号": "wx_123"}


def test_extra_data_must_have_one_entry_per_row(store):
    with store.transaction("admin") as tx, pytest.raises(ValueError):
        tx.create_many("customer", [customer()], extra_data=[])
