"""Roles under attack: real copies (sync_copy.checkout) edited by hand (FileBook) to reach past a role.

Each attack is synced as the copy's real user (the caller decides who, never the file): it must be
refused — or be harmless — and audited, with nothing applied to any record.  Exports never hold
what the exporting role may not see.
"""

from __future__ import annotations

import csv
import sqlite3
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from crmsync.book_file import FileBook
from crmsync.cli import app
from crmsync.export import export_customers
from crmsync.sync_copy import checkout, ingest_copy
from crmsync.tables import ENTITY_TABLES
from crmsync.workbook import write_key_values

NEW = {"客户类型": "企业客户", "客户状态": "潜在客户", "联系人": "王五"}


@pytest.fixture
def team(team_store):
    """team_store plus one customer per rep, with a mobile and an id number (sensitive fields)."""
    ids = {}
    for i, rep in enumerate(("zhang", "li", "liu")):
        ids[rep] = team_store.create("customer", {
            "customer_name": f"{rep}的客户有限公司", "mobile": f"1391234567{i}", "contact_name": "张三",
            "customer_type": "企业客户", "status": "潜在客户", "owner": rep, "email": f"{rep}@example.com"},
            user="admin")["customer_id"]
    return team_store, ids


def records(store_path: Path) -> dict[str, list]:
    """Every row of every record table (customers, contacts, follow-ups, services, deals)."""
    con = sqlite3.connect(store_path)
    try:
        return {t.name: con.execute(f'SELECT * FROM "{t.name}" ORDER BY rowid').fetchall()
                for t in ENTITY_TABLES.values()}
    finally:
        con.close()


def refusals(store, since: int = 0) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT user, record_id, field, reason FROM audit_log WHERE action = 'refused' AND seq > :s"), {"s": since})]


def last_seq(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM audit_log")).scalar()


def edit(path: Path, row: int, **by_label) -> None:
    with FileBook(path) as book:
        head = book.read_table("客户").header
        book.write_cells("客户", {(row, head.index(label) + 1): value for label, value in by_label.items()})
        book.save()


def next_row(path: Path) -> int:
    with FileBook(path) as book:
        return max(book.read_table("客户").row_numbers, default=1) + 1


def row_of(path: Path, customer_id: str) -> int:
    with FileBook(path) as book:
        table = book.read_table("客户")
        return next(n for n, r in zip(table.row_numbers, table.rows) if r[0] == customer_id)


def attack(store, store_path, tmp_path, user: str, mutate, name: str = "copy"):
    """Check out user's copy, apply mutate(path), sync it as user; return (result, new refusals)."""
    path = tmp_path / f"{name}-{user}.xlsm"
    checkout(store, user, path)
    mutate(path)
    before, seq = records(store_path), last_seq(store)
    result = ingest_copy(store, path, user, write_back=True)
    assert records(store_path) == before, f"{name}: a record changed"
    assert store.verify_audit().ok
    return result, refusals(store, seq)


# ---- a rep reaching past their own customers -------------------------------------------------

@pytest.mark.parametrize("victim", ["li", "liu"])  # same team, other team
def test_rep_copy_carrying_another_reps_customer_is_refused(team, store_path, tmp_path, victim):
    store, ids = team

    def carry(path):
        edit(path, next_row(path), 客户编号=ids[victim], 客户名称="改掉别人的客户", 手机号="13912345670", **NEW)

    result, refused = attack(store, store_path, tmp_path, "zhang", carry)
    assert result.refused == 1 and result.created == 0
    assert [(u, rid) for u, rid, _, _ in refused] == [("zhang", ids[victim])]
    assert "不能同步他人的客户" in refused[0][3]


def test_rep_overwriting_an_id_with_another_reps_is_refused_and_keeps_both(team, store_path, tmp_path):
    store, ids = team
    result, refused = attack(store, store_path, tmp_path, "zhang",
                             lambda p: edit(p, row_of(p, ids["zhang"]), 客户编号=ids["li"], 联系人="偷梁换柱"))
    assert {rid for _, rid, _, _ in refused} == {ids["li"], ids["zhang"]}  # the edit, and the "delete"
    assert store.get("customer", ids["zhang"])["deleted"] is False


@pytest.mark.parametrize("label, value", [("负责人", "li"), ("负责人", "liu"), ("所属团队", "south")])
def test_rep_changing_owner_or_team_is_refused(team, store_path, tmp_path, label, value):
    store, ids = team
    result, refused = attack(store, store_path, tmp_path, "zhang",
                             lambda p: edit(p, row_of(p, ids["zhang"]), **{label: value}))
    assert result.refused == 1
    assert [(u, rid, f) for u, rid, f, _ in refused] == [("zhang", ids["zhang"], {"负责人": "owner"}.get(label, "team"))]


@pytest.mark.parametrize("extra", [{"负责人": "li"}, {"所属团队": "south"}])
def test_rep_adding_a_customer_for_someone_else_or_another_team_is_refused(team, store_path, tmp_path, extra):
    store, _ = team

    def add(path):
        edit(path, next_row(path), 客户名称="塞给别人的客户有限公司", 手机号="13912349999", **NEW, **extra)

    result, refused = attack(store, store_path, tmp_path, "zhang", add)
    assert result.created == 0 and result.refused == 1
    assert len(refused) == 1 and refused[0][0] == "zhang"


def test_rep_deleting_a_row_is_refused_and_audited(team, store_path, tmp_path):
    store, ids = team

    def delete(path):
        with FileBook(path) as book:
            width = len(book.read_table("客户").header)
            book.write_cells("客户", {(row_of(path, ids["zhang"]), c): None for c in range(1, width + 1)})
            book.save()

    result, refused = attack(store, store_path, tmp_path, "zhang", delete)
    assert [(u, rid) for u, rid, _, _ in refused] == [("zhang", ids["zhang"])]
    assert "删除" in refused[0][3]


def test_typing_the_deleted_flag_does_nothing(team, store_path, tmp_path):
    store, ids = team
    result, _ = attack(store, store_path, tmp_path, "zhang", lambda p: edit(p, row_of(p, ids["zhang"]), 已删除="是"))
    assert result.refused == 0 and store.get("customer", ids["zhang"])["deleted"] is False


# ---- forged identity -------------------------------------------------------------------------

def test_forged_user_in_the_hidden_sheet_and_updated_by_column_changes_nothing(team, store_path, tmp_path):
    store, ids = team

    def forge(path):
        write_key_values(path, "xlwings.conf", {"CRMSYNC_USER": "admin", "CRMSYNC_ROLE": "admin"})
        edit(path, next_row(path), 客户编号=ids["liu"], 客户名称="管理员说可以改", 手机号="13912345672",
             更新人="admin", 负责人="liu", **NEW)

    result, refused = attack(store, store_path, tmp_path, "zhang", forge)
    assert [(u, rid) for u, rid, _, _ in refused] == [("zhang", ids["liu"])]  # refused as zhang, not admin


def test_forged_updated_by_on_own_row_is_recorded_as_the_real_user(team, tmp_path):
    store, ids = team
    path = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", path)
    edit(path, row_of(path, ids["zhang"]), 联系人="赵六", 更新人="wang")
    assert ingest_copy(store, path, "zhang").applied == 1
    rec = store.get("customer", ids["zhang"])
    assert rec["contact_name"] == "赵六" and rec["updated_by"] == "zhang"
    with store.engine.connect() as conn:
        users = {r[0] for r in conn.execute(text(
            "SELECT user FROM audit_log WHERE record_id = :r AND action = 'update'"), {"r": ids["zhang"]})}
    assert users == {"zhang"}


def test_cli_sync_user_comes_from_the_caller_not_the_file(team, store_path, tmp_path):
    store, ids = team
    path = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", path)
    write_key_values(path, "xlwings.conf", {"CRMSYNC_USER": "admin"})
    edit(path, next_row(path), 客户编号=ids["li"], 客户名称="改li的", 手机号="13912345671", **NEW)
    before = records(store_path)
    r = CliRunner().invoke(app, ["--store", str(store_path), "--user", "zhang", "sync", str(path)])
    assert r.exit_code == 0 and "拒绝 1 处" in r.output and "不能同步他人的客户" in r.output, r.output
    assert records(store_path) == before


# ---- a manager of another team ---------------------------------------------------------------

def test_manager_of_another_team_is_refused(team, store_path, tmp_path):
    store, ids = team

    def reach(path):
        edit(path, next_row(path), 客户编号=ids["zhang"], 客户名称="南区经理改东区", 手机号="13912345670", **NEW)

    result, refused = attack(store, store_path, tmp_path, "chen", reach)
    assert [(u, rid) for u, rid, _, _ in refused] == [("chen", ids["zhang"])]


@pytest.mark.parametrize("manager, row_owner, new_owner", [("chen", "liu", "zhang"), ("wang", "zhang", "liu")])
def test_manager_cannot_hand_a_customer_to_another_team(team, store_path, tmp_path, manager, row_owner, new_owner):
    store, ids = team
    result, refused = attack(store, store_path, tmp_path, manager,
                             lambda p: edit(p, row_of(p, ids[row_owner]), 负责人=new_owner))
    assert [(u, f) for u, _, f, _ in refused] == [(manager, "owner")]


def test_manager_cannot_create_a_customer_for_another_teams_rep_in_their_own_team(team, store_path, tmp_path):
    store, _ = team

    def add(path):
        edit(path, next_row(path), 客户名称="东区经理给南区代表", 手机号="13912348888", 负责人="liu", 所属团队="east", **NEW)

    result, refused = attack(store, store_path, tmp_path, "wang", add)
    assert result.created == 0 and [(u, f) for u, _, f, _ in refused] == [("wang", "team")]


# ---- hidden columns: 同步版本 and 客户端键 ------------------------------------------------------

@pytest.mark.parametrize("forged", ["current", 0, 99])
def test_forged_sync_version_cannot_overwrite_a_newer_change(team, tmp_path, forged):
    """The manager changed the customer after the checkout: the rep's edit is a conflict, whatever
    version the rep types into the hidden 同步版本 cell (it used to overwrite when it matched)."""
    store, ids = team
    path = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", path)
    with store.transaction("wang", "cli") as tx:
        tx.update("customer", ids["zhang"], {"contact_name": "经理改的"})
    version = store.get("customer", ids["zhang"])["version"] if forged == "current" else forged
    edit(path, row_of(path, ids["zhang"]), 联系人="代表改的", 同步版本=version)
    result = ingest_copy(store, path, "zhang", write_back=True)
    assert result.conflicts == 1 and result.applied == 0, result.details
    assert store.get("customer", ids["zhang"])["contact_name"] == "经理改的"
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_log WHERE action = 'conflict' AND record_id = :r"),
                            {"r": ids["zhang"]}).scalar() == 1


def test_another_copys_client_key_cannot_take_over_its_customer(team, tmp_path):
    store, ids = team
    li = tmp_path / "li.xlsm"
    checkout(store, "li", li)
    row = next_row(li)
    edit(li, row, 客户名称="li的新客户有限公司", 手机号="13700000001", **NEW)
    assert ingest_copy(store, li, "li", write_back=True).created == 1
    with FileBook(li) as book:
        table = book.read_table("客户")
        stolen = table.rows[table.row_numbers.index(row)][table.header.index("客户端键")]
    assert stolen
    zhang = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", zhang)
    edit(zhang, next_row(zhang), 客户名称="冒用客户端键有限公司", 手机号="13700000002", 客户端键=stolen, **NEW)
    before = {c["customer_id"]: c for c in store.list("customer")}
    result = ingest_copy(store, zhang, "zhang", write_back=True)
    after = {c["customer_id"]: c for c in store.list("customer")}
    assert all(after[k] == v for k, v in before.items())  # li's customer untouched
    assert result.created == 1 and [c["owner"] for k, c in after.items() if k not in before] == ["zhang"]


def test_editing_the_client_key_of_an_existing_row_is_harmless(team, store_path, tmp_path):
    store, ids = team
    result, refused = attack(store, store_path, tmp_path, "zhang",
                             lambda p: edit(p, row_of(p, ids["zhang"]), 客户端键="0" * 32))
    assert result.created == 0 and result.refused == 0 and refused == []


# ---- exports ---------------------------------------------------------------------------------

def _export_text(path: Path) -> str:
    if path.suffix == ".csv":
        return path.read_text(encoding="utf-8-sig")
    with zipfile.ZipFile(path) as z:  # every part: cells, shared strings, names, properties
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("user, may_see", [("zhang", {"zhang"}), ("li", {"li"}), ("wang", {"zhang", "li"}),
                                           ("chen", {"liu"}), ("liu", {"liu"})])
@pytest.mark.parametrize("where", [None, "负责人=li", "所属团队=south", "客户名称~客户"])
def test_exports_never_hold_what_the_role_may_not_see(team, tmp_path, fmt, user, may_see, where):
    store, ids = team
    out = tmp_path / f"out.{fmt}"
    try:
        export_customers(store, user, out, fields=None, where=where)
    except Exception as e:  # a filter the grammar refuses is fine: then no file may be left
        from crmsync.errors import CrmsyncError

        assert isinstance(e, CrmsyncError), e
        assert not out.exists()
        return
    body = _export_text(out)
    for rep in ("zhang", "li", "liu"):
        hidden = rep not in may_see
        for secret in (ids[rep], f"{rep}的客户有限公司", f"{rep}@example.com"):
            assert (secret in body) != hidden or (not hidden and where), (user, where, secret)


def test_masked_export_hides_every_sensitive_field(team, tmp_path):
    from crmsync.schema import ENTITIES

    store, ids = team
    out = tmp_path / "masked.csv"
    sensitive = [f for f in ENTITIES["customer"].fields if f.sensitive]
    export_customers(store, "admin", out, fields=",".join(f.key for f in sensitive) + ",customer_id", mask=True)
    body = out.read_text(encoding="utf-8-sig")
    for i in range(3):
        assert f"1391234567{i}" not in body
    rows = list(csv.reader(body.splitlines()))
    assert len(rows) == 4


@pytest.mark.parametrize("team_value", ["south", None])
def test_manager_cannot_move_a_customer_out_of_the_team(team, store_path, tmp_path, team_value):
    """Found by fuzz/fuzz_planner.py: typing another team into 所属团队 moved the customer there."""
    store, ids = team
    result, refused = attack(store, store_path, tmp_path, "wang",
                             lambda p: edit(p, row_of(p, ids["zhang"]), 所属团队=team_value, 变更原因="调整"))
    assert [(u, rid, f) for u, rid, f, _ in refused] == [("wang", ids["zhang"], "team")]


def test_rep_import_cannot_place_customers_in_another_team(team, tmp_path):
    from crmsync.importer import apply_import, plan_import

    store, _ = team
    path = tmp_path / "团队.csv"
    path.write_text("客户名称,手机号,联系人,客户类型,客户状态,负责人,所属团队\r\n"
                    "甲有限公司,13800000001,张三,企业客户,潜在客户,zhang,south\r\n"
                    "丁有限公司,13800000004,张三,企业客户,潜在客户,,south\r\n", encoding="utf-8")
    plan = plan_import(store, path, user="zhang")
    try:
        apply_import(store, plan, user="zhang")
    except Exception:  # refusing the whole import is fine too
        pass
    assert {c["team"] for c in store.list("customer") if c["owner"] == "zhang"} == {"east"}


def test_sync_button_takes_the_user_from_the_account_not_the_hidden_sheet(team, store_path, tmp_path, monkeypatch):
    """The 同步 button on a copy whose xlwings.conf claims CRMSYNC_USER=admin, run in zhang's account."""
    from crmsync.actions_sync import sync_workbook

    store, ids = team
    path = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", path)
    write_key_values(path, "xlwings.conf", {"CRMSYNC_USER": "admin", "CRMSYNC_STORE": str(store_path)})
    edit(path, next_row(path), 客户编号=ids["liu"], 客户名称="按钮改南区", 手机号="13912345672", **NEW)
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    before, seq = records(store_path), last_seq(store)
    message = sync_workbook(FileBook(path))
    assert "拒绝 1 处" in message, message
    assert records(store_path) == before
    assert [(u, rid) for u, rid, _, _ in refusals(store, seq)] == [("zhang", ids["liu"])]
