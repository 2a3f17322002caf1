"""The crmsync command: real stores in temp folders, exit codes and the exact error line."""

from __future__ import annotations

import re

import pytest

from crmsync.cli import app

from cli_run import run


@pytest.fixture
def db(tmp_path):
    from crmsync.store import Store

    Store(tmp_path / "crm.db", create=True).close()
    return tmp_path / "crm.db"


def test_init_creates_store_and_workbook(tmp_path):
    out = run("init", tmp_path / "crm")
    assert (tmp_path / "crm" / "crm.db").exists() and (tmp_path / "crm" / "crm_workbook.xlsm").exists()
    assert "crm.db" in out


def test_customer_add_show_list_history(db):
    cid = run("customer", "add", "--name", "杭州云帆软件有限公司", "--set", "手机号=+86 138 1234 5678",
              "--set", "所属行业=软件开发", "--store", db).strip()
    assert re.fullmatch(r"C202405210001", cid)
    shown = run("customer", "show", cid, "--store", db)
    assert "13812345678" in shown and "软件开发" in shown
    run("customer", "update", cid, "--set", "客户状态=意向客户", "--reason", "客户确认预算", "--store", db)
    listed = run("customer", "list", "--store", db)
    assert "杭州云帆软件有限公司" in listed and "意向客户" in listed
    history = run("customer", "history", cid, "--store", db)
    assert "潜在客户" in history and "意向客户" in history and "客户确认预算" in history
    assert "杭州云帆" in run("customer", "show", cid, "--version", "1", "--store", db)


def test_store_option_before_the_command_and_from_the_environment(db, monkeypatch):
    run("--store", db, "customer", "add", "--name", "甲公司", "--set", "mobile=13812345678")
    monkeypatch.setenv("CRMSYNC_STORE", str(db))
    assert "甲公司" in run("customer", "list")


def test_user_mistakes_print_one_line_and_exit_1(db):
    out = run("customer", "add", "--name", "乙公司", "--set", "手机号=12345", "--store", db, code=1)
    assert out.startswith("错误: 客户: 手机号") and "Traceback" not in out and out.count("\n") == 1
    out = run("customer", "show", "C209901010001", "--store", db, code=1)
    assert out == "错误: 客户 C209901010001 不存在\n"
    out = run("customer", "add", "--name", "丙公司", "--set", "nonsense", "--store", db, code=1)
    assert "字段=值" in out
    out = run("customer", "list", "--store", db.parent / "missing.db", code=1)
    assert "crmsync init" in out


def test_english_messages(db):
    out = run("customer", "add", "--name", "丁公司", "--set", "mobile=12345", "--store", db, "--lang", "en", code=1)
    assert out.startswith("Error: Customers: Mobile")
    out = run("user", "add", "x", "--role", "boss", "--store", db, "--lang", "en", code=1)
    assert out == "Error: unknown role boss: use one of rep, manager, admin\n"


def test_users_roles_and_permissions(db):
    run("user", "add", "zhang", "--role", "rep", "--team", "华东", "--store", db)
    run("user", "add", "li", "--role", "rep", "--team", "华东", "--store", db)
    assert "zhang" in run("user", "list", "--store", db)
    cid = run("customer", "add", "--name", "张的客户", "--set", "mobile=13812345678", "--user", "zhang",
              "--store", db).strip()
    assert "张的客户" not in run("customer", "list", "--user", "li", "--store", db)
    out = run("customer", "delete", cid, "--user", "zhang", "--store", db, code=1)
    assert "删除" in out
    run("customer", "delete", cid, "--store", db)
    assert "张的客户" not in run("customer", "list", "--store", db)
    run("customer", "restore", cid, "--store", db)
    assert "张的客户" in run("customer", "list", "--store", db)


def test_enums_and_custom_fields(db):
    assert "流失客户" in run("enum", "list", "customer_status", "--store", db)
    run("enum", "add", "industry", "nev", "--zh", "新能源汽车", "--store", db)
    run("field", "add", "customer", "coop_years", "--zh", "合作年限", "--type", "int", "--store", db)
    assert "coop_years" in run("field", "list", "customer", "--store", db)
    cid = run("customer", "add", "--name", "戊公司", "--set", "mobile=13812345678", "--set", "所属行业=新能源汽车",
              "--set", "合作年限=5", "--store", db).strip()
    shown = run("customer", "show", cid, "--store", db)
    assert "新能源汽车" in shown and "合作年限" in shown
    out = run("field", "add", "customer", "Bad Key", "--zh", "坏", "--store", db, code=1)
    assert "Bad Key" in out


def test_backup_and_restore(db, tmp_path):
    cid = run("customer", "add", "--name", "己公司", "--set", "mobile=13812345678", "--store", db).strip()
    run("backup", tmp_path / "b.db", "--store", db)
    run("customer", "delete", cid, "--store", db)
    run("restore", tmp_path / "b.db", "--store", db)
    assert "己公司" in run("customer", "list", "--store", db)
    assert "审计日志完整" in run("audit", "verify", "--store", db)


def test_demo_creates_realistic_data_with_history(tmp_path):
    out = run("demo", tmp_path / "d", "--customers", "40")
    assert "40" in out
    db = tmp_path / "d" / "crm.db"
    listed = run("customer", "list", "--store", db, "--limit", "100")
    assert listed.count("C2024052") >= 40
    from crmsync.store import Store

    with Store(db) as s:
        changed = [c for c in s.list("customer") if c["version"] > 2]
        assert changed and s.verify_audit().ok
        assert s.count("followup") >= 40 and s.count("deal") > 0
        history = run("customer", "history", changed[0]["customer_id"], "--store", db)
        assert "update" in history
    again = run("demo", tmp_path / "d", "--customers", "40")
    assert "已有数据" in again


def test_demo_workbook_opens_with_the_data_in_it(tmp_path):
    from crmsync.store import Store
    from crmsync.workbook import read_sheet

    run("demo", tmp_path / "d", "--customers", "25")
    book = tmp_path / "d" / "crm_workbook.xlsm"
    customers = read_sheet(book, "客户")
    with Store(tmp_path / "d" / "crm.db") as s:
        stored = {c["customer_id"]: c for c in s.list("customer")}
        assert len(customers.rows) == len(stored) == 25
        name, status, version = (customers.header.index(h) for h in ("客户名称", "客户状态", "同步版本"))
        for row in customers.rows:
            rec = stored[row[0]]
            assert row[name] == rec["customer_name"]
            assert row[status] in ("潜在客户", "意向客户", "成交客户", "流失客户")  # labels, as typed
            assert row[version] == rec["version"]
        assert len(read_sheet(book, "跟进记录").rows) == s.count("followup")


def test_every_command_has_help_with_an_example():
    import typer.main

    group = typer.main.get_command(app)
    missing = []

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, path + [name])
        elif "Example: crmsync" not in (cmd.help or ""):
            missing.append(" ".join(path))

    walk(group, [])
    assert missing == []
