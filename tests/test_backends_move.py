"""`crmsync migrate-store`: a whole store moved SQLite → PostgreSQL → SQLite, every table compared."""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import SAWarning
from typer.testing import CliRunner

from crmsync import clock
from crmsync.cli import app
from crmsync.errors import InvalidInput, NotFound, StoreError
from crmsync.migrate_store import OWN_TABLES, checksums, move_store
from crmsync.store import Store
from crmsync.tables import sync_conflicts

from records import customer


def _rich_store(path) -> list[str]:
    """A store with something in every kind of table: users, teams, lists, custom fields, settings,
    records of each entity with children, updates, a delete and restore, a sync conflict."""
    s = Store(path, create=True)
    s.add_user("wang", "manager", "east")
    s.add_user("zhang", "rep", "east")
    s.add_enum("industry", "nev", "新能源汽车", "New energy vehicles", synonyms=["电动车"])
    s.add_custom_field("customer", "coop_years", "合作年限", type="int")
    s.add_custom_field("customer", "vip_card", "会员卡", type="bool")
    s.set_setting("require_approval", True)
    with s.transaction("admin", "import") as tx:
        ids = tx.create_many("customer", [customer(customer_name=f"迁移{i}公司", coop_years=i, vip_card=i % 2 == 0,
                                                   remark="含'引号\"与\\反斜杠\n换行")
                                          for i in range(200)])
        tx.create("contact", {"customer_id": ids[0], "name": "李四", "mobile": "13912345678", "is_primary": True})
        tx.create("followup", {"customer_id": ids[0], "user": "zhang", "follow_time": "2024-05-21 09:30",
                               "method": "电话", "content": "首次沟通"})
    clock.set_now("2024-05-22 09:00:00")
    s.create("customer", customer(customer_name="次日客户", industry="电动车"), user="zhang")
    s.update("customer", ids[1], {"status": "意向客户", "total_amount": 1234.5}, reason="电话确认")
    with s.transaction("admin") as tx:
        tx.delete("customer", ids[2], reason="重复")
        tx.restore("customer", ids[2])
    with s.engine.begin() as conn:
        conn.execute(sync_conflicts.insert().values(entity="customer", record_id=ids[1], field="remark",
                                                    local_value='"我的"', store_value='"他的"', copy_id="a.xlsm"))
    s.close()
    clock.set_now("2024-05-21 10:00:00")
    return ids


def _all_rows(url) -> dict[str, list[tuple]]:
    """Every row of every table, in a backend-independent order, with SQLite's 0/1 made booleans."""
    s = Store(url)
    try:
        with s.engine.connect() as conn:
            meta = MetaData()
            with warnings.catch_warnings():  # expression indexes are not reflected; rows are all we need
                warnings.simplefilter("ignore", SAWarning)
                meta.reflect(conn)
            out = {}
            for t in meta.sorted_tables:
                if t.name in OWN_TABLES:
                    continue
                rows = [tuple(r) for r in conn.execute(select(t))]
                out[t.name] = sorted(rows, key=repr)
            return out
    finally:
        s.close()


def test_sqlite_to_postgresql_and_back_keeps_every_row_the_history_and_the_chain(tmp_path, pg_url):
    ids = _rich_store(tmp_path / "a.db")
    there = move_store(tmp_path / "a.db", pg_url)
    assert there.ok and there.audit_entries > 200 and not there.audit_problems
    assert {t.name for t in there.tables} >= {"customers", "contacts", "followups", "audit_log", "audit_head",
                                              "users", "teams", "enums", "custom_fields", "settings",
                                              "id_counters", "sync_conflicts"}
    back = move_store(pg_url, tmp_path / "b.db")
    assert back.ok and back.rows == there.rows
    assert checksums(str(tmp_path / "a.db")) == checksums(pg_url) == checksums(str(tmp_path / "b.db"))
    original, on_pg, returned = _all_rows(tmp_path / "a.db"), _all_rows(pg_url), _all_rows(tmp_path / "b.db")
    assert original == returned
    assert {k: len(v) for k, v in original.items()} == {k: len(v) for k, v in on_pg.items()}

    pg = Store(pg_url)  # the moved store is a working store: history, versions, ids, settings
    assert pg.verify_audit().ok
    assert pg.version("customer", ids[1], 1)["status"] == "potential"
    assert pg.get("customer", ids[1])["total_amount"] == 1234.5
    assert pg.get("customer", ids[0])["vip_card"] is True and pg.get("customer", ids[0])["coop_years"] == 0
    assert pg.get("customer", ids[0])["remark"] == "含'引号\"与\\反斜杠\n换行"
    assert [h["action"] for h in pg.history("customer", ids[2])] == ["create", "delete", "restore"]
    assert pg.settings()["require_approval"] is True and pg.user("zhang").team == "east"
    assert pg.create("customer", customer(customer_name="迁移后"))["customer_id"] == "C202405210201"
    with pg.engine.begin() as conn:  # serial counters moved past the copied ids
        conn.execute(sync_conflicts.insert().values(entity="customer", record_id=ids[0], field="remark"))
        assert conn.execute(text("SELECT max(id) FROM sync_conflicts")).scalar() == 2
    pg.close()


def test_a_destination_with_data_is_refused_unless_replaced(tmp_path, pg_store_url):
    _rich_store(tmp_path / "a.db")
    with Store(pg_store_url) as pg:
        kept = pg.create("customer", customer(customer_name="已有客户"))["customer_id"]
    with pytest.raises(InvalidInput, match="--replace"):
        move_store(tmp_path / "a.db", pg_store_url)
    with Store(pg_store_url) as pg:
        assert pg.count("customer") == 1 and pg.get("customer", kept)["customer_name"] == "已有客户"
    report = move_store(tmp_path / "a.db", pg_store_url, replace=True)
    assert report.ok
    with Store(pg_store_url) as pg:
        assert pg.count("customer") == 201 and pg.verify_audit().ok


def test_a_tampered_chain_moves_as_it_is_and_says_so(tmp_path, pg_url):
    _rich_store(tmp_path / "a.db")
    with Store(tmp_path / "a.db") as s, s.engine.begin() as conn:
        conn.execute(text("""UPDATE audit_log SET "user" = 'mallory' WHERE seq = 5"""))
    report = move_store(tmp_path / "a.db", pg_url)
    assert report.ok and 5 in {seq for seq, _ in report.audit_problems}
    with Store(pg_url) as pg:
        assert 5 in {seq for seq, _ in pg.verify_audit().problems}


def test_bad_sources_and_targets_are_one_clear_error(tmp_path, pg_url):
    with pytest.raises(NotFound, match="none.db"):
        move_store(tmp_path / "none.db", pg_url)
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError):
        move_store(tmp_path / "junk.db", pg_url)
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="不是 crmsync 存储"):
        move_store(tmp_path / "other.db", pg_url)
    Store(tmp_path / "a.db", create=True).close()
    with pytest.raises(InvalidInput, match="同一个"):
        move_store(tmp_path / "a.db", f"sqlite:///{tmp_path / 'a.db'}")


def test_cli_migrate_store_prints_each_table_and_fails_in_one_line(tmp_path, pg_url):
    _rich_store(tmp_path / "a.db")
    runner = CliRunner()
    ok = runner.invoke(app, ["--lang", "en", "migrate-store", "--from", str(tmp_path / "a.db"), "--to", pg_url])
    assert ok.exit_code == 0, ok.output
    assert "customers" in ok.output and "match" in ok.output and "verified" in ok.output
    assert "DIFFERS" not in ok.output
    again = runner.invoke(app, ["migrate-store", "--from", str(tmp_path / "a.db"), "--to", pg_url])
    assert again.exit_code == 1 and "--replace" in again.output and "Traceback" not in again.output
    back = runner.invoke(app, ["migrate-store", "--from", pg_url, "--to", str(tmp_path / "b.db")])
    assert back.exit_code == 0 and "校验通过" in back.output
    listed = runner.invoke(app, ["--store", pg_url, "--lang", "en", "customer", "list"])
    assert listed.exit_code == 0 and "迁移0公司" in listed.output
    verified = runner.invoke(app, ["audit", "verify"], env={"CRMSYNC_STORE": pg_url})
    assert verified.exit_code == 0, verified.output


def test_a_postgresql_backup_is_a_store_file_that_restores_into_sqlite(tmp_path, pg_url):
    ids = _rich_store(tmp_path / "a.db")
    move_store(tmp_path / "a.db", pg_url)
    runner = CliRunner()
    made = runner.invoke(app, ["backup", str(tmp_path / "pg-backup.db"), "--store", pg_url])
    assert made.exit_code == 0, made.output
    with Store(tmp_path / "pg-backup.db") as b:
        assert b.count("customer") == 201 and b.verify_audit().ok
    Store(tmp_path / "fresh.db", create=True).close()
    restored = runner.invoke(app, ["restore", str(tmp_path / "pg-backup.db"), "--store", str(tmp_path / "fresh.db")])
    assert restored.exit_code == 0, restored.output
    assert checksums(str(tmp_path / "fresh.db")) == checksums(pg_url)
    with Store(tmp_path / "fresh.db") as f:
        assert f.version("customer", ids[1], 2)["status"] == "intent"


def test_a_copy_checked_out_from_postgresql_points_at_it_without_the_password(tmp_path, pg_store_url):
    from crmsync.book_file import FileBook
    from crmsync.sync_copy import checkout

    with_password = pg_store_url.replace("crmsync@", "crmsync:s3cret@")  # the test server trusts anyone
    with Store(with_password) as s:
        s.create("customer", customer())
        checkout(s, "admin", tmp_path / "admin.xlsm")
    book = FileBook(tmp_path / "admin.xlsm")
    try:
        grid = book.read_table("xlwings.conf").rows if "xlwings.conf" in book.sheet_names() else []
    finally:
        book.close()
    text_of_conf = repr(grid)
    assert pg_store_url.split("://", 1)[1] in text_of_conf and "s3cret" not in text_of_conf
