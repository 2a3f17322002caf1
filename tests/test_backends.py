"""The store's important behaviours, each run on SQLite and on a real PostgreSQL server.

`bstore` is a fresh store on the backend named by the parameter; the PostgreSQL half skips (or, with
CRMSYNC_REQUIRE_ALL=1, fails) when no PostgreSQL is installed.  Raw SQL here goes through the
store's own SQLAlchemy engine, so the same statement tampers with either backend.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from crmsync import clock
from crmsync.errors import InvalidInput, NotFound, PermissionDenied, StaleVersion, StoreError
from crmsync.store import Store
from crmsync.tables import MIGRATIONS

from records import customer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend_url(request, tmp_path) -> str:
    """The location of a new, empty store on the parametrized backend."""
    if request.param == "sqlite":
        Store(tmp_path / "crm.db", create=True).close()
        return str(tmp_path / "crm.db")
    return request.getfixturevalue("pg_store_url")


@pytest.fixture
def bstore(backend_url):
    s = Store(backend_url)
    yield s
    s.close()


@pytest.fixture
def bteam(bstore):
    bstore.add_user("wang", "manager", "east")
    bstore.add_user("zhang", "rep", "east")
    bstore.add_user("li", "rep", "east")
    return bstore


def sql(store, statement: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


# ---- records, versions, history --------------------------------------------------------------------

def test_a_record_lives_through_create_update_delete_restore(bteam):
    cid = bteam.create("customer", customer(), user="zhang")["customer_id"]
    assert cid == "C202405210001"
    clock.set_now("2024-05-22 11:00:00")
    bteam.update("customer", cid, {"status": "意向客户", "remark": "有预算"}, user="zhang", reason="电话确认")
    with bteam.transaction("wang") as tx:
        tx.delete("customer", cid, reason="重复")
    assert bteam.list("customer") == [] and bteam.get("customer", cid)["deleted"] is True
    with bteam.transaction("wang") as tx:
        tx.restore("customer", cid)
    rec = bteam.get("customer", cid)
    assert (rec["version"], rec["deleted"], rec["status"], rec["remark"]) == (4, False, "intent", "有预算")
    assert bteam.version("customer", cid, 1)["status"] == "potential"
    assert bteam.version("customer", cid, 2)["updated_at"] == "2024-05-22 11:00:00"
    assert [h["action"] for h in bteam.history("customer", cid)] == ["create", "update", "update",
                                                                     "delete", "restore"]
    with pytest.raises(NotFound):
        bteam.version("customer", cid, 9)


def test_children_with_booleans_and_the_followup_user_column(bstore):
    with bstore.transaction("admin") as tx:
        cid = tx.create("customer", customer())["customer_id"]
        p = tx.create("contact", {"customer_id": cid, "name": "李四", "mobile": "13912345678", "is_primary": "是"})
        f = tx.create("followup", {"customer_id": cid, "user": "admin", "follow_time": "2024/5/21 9:30",
                                   "method": "电话", "content": "首次沟通"})
    assert bstore.get("contact", p["contact_id"])["is_primary"] is True
    assert bstore.get("followup", f["follow_id"])["user"] == "admin"  # "user" is reserved in PostgreSQL
    assert bstore.list("followup", where={"user": "admin"})[0]["follow_time"] == "2024-05-21 09:30:00"
    with pytest.raises(InvalidInput, match="C2099"):
        bstore.create("contact", {"customer_id": "C209901010001", "name": "无主"})


def test_stale_versions_and_bad_values_are_refused_and_change_nothing(bstore):
    cid = bstore.create("customer", customer())["customer_id"]
    bstore.update("customer", cid, {"remark": "一"})
    with pytest.raises(StaleVersion, match="版本 2"):
        bstore.update("customer", cid, {"remark": "基于旧版本"}, base_version=1)
    with pytest.raises(InvalidInput, match="手机号"):
        bstore.update("customer", cid, {"mobile": "12345"})
    with pytest.raises(InvalidInput, match="不能修改"):
        bstore.update("customer", cid, {"no_such_field": 1})
    with pytest.raises(NotFound):
        bstore.update("customer", "C209901010001", {"remark": "x"})
    rec = bstore.get("customer", cid)
    assert (rec["version"], rec["remark"], rec["mobile"]) == (2, "一", "13812345678")
    assert bstore.verify_audit().entries == 2


def test_a_failed_transaction_leaves_nothing_and_gives_its_ids_back(bstore):
    with pytest.raises(InvalidInput):
        with bstore.transaction("admin") as tx:
            tx.create_many("customer", [customer(customer_name=f"批量{i}") for i in range(300)])
            tx.create("customer", customer(mobile="123"))
    assert bstore.count("customer") == 0 and bstore.verify_audit().entries == 0
    assert bstore.create("customer", customer())["customer_id"] == "C202405210001"


# ---- permissions, configuration ------------------------------------------------------------------

def test_reps_see_and_change_only_their_own_and_cannot_delete(bteam):
    mine = bteam.create("customer", customer(), user="zhang")["customer_id"]
    bteam.create("customer", customer(customer_name="李的客户"), user="li")
    assert [c["customer_id"] for c in bteam.list("customer", visible_to=bteam.user("zhang"))] == [mine]
    assert len(bteam.list("customer", visible_to=bteam.user("wang"))) == 2
    with pytest.raises(PermissionDenied, match="li"):
        bteam.update("customer", mine, {"remark": "x"}, user="li")
    with pytest.raises(PermissionDenied, match="删除"):
        with bteam.transaction("zhang") as tx:
            tx.delete("customer", mine)
    with pytest.raises(PermissionDenied):
        bteam.add_user("mallory", "admin", by="zhang")
    assert bteam.get("customer", mine)["version"] == 1


def test_custom_fields_enums_and_settings(bstore):
    bstore.add_custom_field("customer", "coop_years", "合作年限", type="int")
    bstore.add_custom_field("customer", "vip_card", "会员卡", type="bool")
    bstore.add_enum("industry", "nev", "新能源汽车", "New energy vehicles")
    bstore.set_setting("require_approval", True)
    cid = bstore.create("customer", customer(coop_years="3", vip_card="是", industry="新能源汽车"))["customer_id"]
    rec = bstore.get("customer", cid)
    assert (rec["coop_years"], rec["vip_card"], rec["industry"]) == (3, True, "nev")
    bstore.update("customer", cid, {"coop_years": 4})
    assert bstore.version("customer", cid, 1)["coop_years"] == 3
    with pytest.raises(InvalidInput, match="合作年限"):
        bstore.update("customer", cid, {"coop_years": "很多年"})
    reopened = Store(bstore.url)  # what another process sees
    assert reopened.settings()["require_approval"] is True
    assert [f.key for f in reopened.entity("customer").fields if f.custom] == ["coop_years", "vip_card"]
    reopened.close()


# ---- the audit chain -----------------------------------------------------------------------------

def _history(store) -> str:
    cid = store.create("customer", customer())["customer_id"]
    store.update("customer", cid, {"remark": "一"})
    store.update("customer", cid, {"remark": "二"})
    return cid


def test_the_audit_chain_verifies_and_each_entry_links_to_the_previous(bstore):
    _history(bstore)
    report = bstore.verify_audit()
    assert report.ok and report.entries == 3
    with bstore.engine.connect() as conn:
        rows = conn.execute(text("SELECT prev_hash, hash FROM audit_log ORDER BY seq")).all()
    assert rows[1][0] == rows[0][1] and rows[2][0] == rows[1][1]


@pytest.mark.parametrize("tamper, seq", [
    ("""UPDATE audit_log SET new_value = '"改过"' WHERE seq = 2""", 2),
    ("""UPDATE audit_log SET "user" = 'mallory' WHERE seq = 2""", 2),
    ("DELETE FROM audit_log WHERE seq = 2", 2),
    ("DELETE FROM audit_log WHERE seq = 3", 3),
])
def test_tampering_with_the_audit_log_is_named(bstore, tamper, seq):
    _history(bstore)
    sql(bstore, tamper)
    problems = bstore.verify_audit().problems
    assert problems and seq in {s for s, _ in problems}


# ---- schema, backup --------------------------------------------------------------------------------

def test_migrations_are_recorded_once_and_missing_columns_come_back(bstore):
    with bstore.engine.connect() as conn:
        numbers = [n for n, in conn.execute(text("SELECT number FROM schema_migrations ORDER BY number"))]
    assert numbers == sorted(n for n, _, _ in MIGRATIONS)
    sql(bstore, "ALTER TABLE customers DROP COLUMN remark")
    bstore.close()
    again = Store(bstore.url)
    again.create("customer", customer(remark="回来了"))
    assert again.list("customer")[0]["remark"] == "回来了"
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar() == len(numbers)
    again.close()


def test_backup_and_restore_round_trip(bstore, tmp_path):
    cid = _history(bstore)
    bstore.backup(tmp_path / "b.db")
    bstore.update("customer", cid, {"remark": "备份之后"})
    bstore.create("customer", customer(customer_name="备份之后的客户"))
    bstore.restore(tmp_path / "b.db")
    assert bstore.get("customer", cid)["remark"] == "二" and bstore.count("customer") == 1
    assert bstore.verify_audit().ok and bstore.verify_audit().entries == 3
    assert bstore.create("customer", customer(customer_name="恢复后"))["customer_id"] == "C202405210002"
    with Store(tmp_path / "b.db") as copy:  # a backup is itself a store file, whatever the backend
        assert copy.get("customer", cid)["version"] == 3 and copy.verify_audit().ok
    (tmp_path / "junk.db").write_text("junk")
    with pytest.raises(StoreError, match="junk.db"):
        bstore.restore(tmp_path / "junk.db")
    assert bstore.count("customer") == 2


# ---- PostgreSQL connection errors ------------------------------------------------------------------

def test_an_unreachable_server_is_one_clear_line_without_the_password(pg_server):
    url = "postgresql://crm:s3cret@127.0.0.1:1/crm"
    with pytest.raises(StoreError) as err:
        Store(url)
    assert "127.0.0.1:1" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(StoreError) as err:
        Store(url, create=True)
    assert "s3cret" not in str(err.value)


def test_a_missing_database_is_created_on_request(pg_server):
    url = pg_server.url("made_by_crmsync").replace("postgresql+psycopg://", "postgresql://")
    with pytest.raises(StoreError, match="made_by_crmsync"):
        Store(url)  # without create: the database is not made behind the user's back
    with Store(url, create=True) as s:
        assert s.create("customer", customer())["customer_id"] == "C202405210001"
        assert s.engine.dialect.name == "postgresql" and s.engine.dialect.driver == "psycopg"


def test_libpq_settings_in_the_url_are_kept(pg_store_url):
    url = pg_store_url + "?application_name=east-watcher&options=-c%20statement_timeout%3D5000"
    with Store(url) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "east-watcher"
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5s"
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "2min"  # crmsync's own, still set
