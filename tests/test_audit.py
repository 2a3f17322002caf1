"""The audit chain: every change logged with a hash of the one before; tampering is named."""

from __future__ import annotations

import sqlite3

from crmsync.cli import app
from typer.testing import CliRunner

from records import customer


def _store_with_history(store):
    cid = store.create("customer", customer())["customer_id"]
    store.update("customer", cid, {"remark": "一"})
    store.update("customer", cid, {"remark": "二"})
    return cid


def test_chain_verifies_and_each_entry_links_to_the_previous(store):
    _store_with_history(store)
    report = store.verify_audit()
    assert report.ok and report.entries == 3
    con = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    rows = con.execute("SELECT prev_hash, hash FROM audit_log ORDER BY seq").fetchall()
    assert rows[1][0] == rows[0][1] and rows[2][0] == rows[1][1]


def test_an_edited_entry_is_named(store):
    _store_with_history(store)
    con = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    con.execute("""UPDATE audit_log SET new_value = '"改过"' WHERE seq = 2""")
    con.commit()
    problems = store.verify_audit().problems
    assert problems and problems[0][0] == 2


def test_a_removed_entry_is_named(store):
    _store_with_history(store)
    con = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    con.commit()
    assert 2 in {seq for seq, _ in store.verify_audit().problems}


def test_entries_removed_at_the_end_are_noticed(store):
    _store_with_history(store)
    con = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    con.execute("DELETE FROM audit_log WHERE seq = 3")
    con.commit()
    assert not store.verify_audit().ok


def test_cli_audit_verify_fails_naming_the_entry(store, store_path):
    _store_with_history(store)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--store", str(store_path)])
    assert ok.exit_code == 0 and "3" in ok.output
    con = sqlite3.connect(store_path)
    con.execute("UPDATE audit_log SET user = 'mallory' WHERE seq = 2")
    con.commit()
    bad = runner.invoke(app, ["audit", "verify", "--store", str(store_path)])
    assert bad.exit_code == 1 and "#2" in bad.output
