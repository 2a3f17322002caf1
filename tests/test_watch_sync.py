"""The watcher with the real sync engine: real copies, a real store, real file events.

Done when (issue 4): a restart after more edits catches up (the 50 copies saved at once are in
test_watch_many.py); a file that cannot be read is reported, changes nothing, and is read once
fixed; a copy is written back only when Excel does not hold it open.
"""

from __future__ import annotations

import os
import threading

import pytest
from watch_copies import (REPS, add_customer, checkout, edit_customer, names_in_store, save_like_excel,
                          seed_customers, wait_for, write_config)

from crmsync.book_file import FileBook
from crmsync.watch import Watcher
from crmsync.watch_config import load_config


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "team"
    f.mkdir()
    return f


@pytest.fixture
def seeded(team_store):
    """The team store with one customer per rep, so copies hold rows with ids and versions."""
    return seed_customers(team_store)


def run_watcher(watcher: Watcher) -> threading.Thread:
    thread = threading.Thread(target=watcher.run)
    thread.start()
    return thread


def test_restart_catches_up_on_edits_made_while_stopped(seeded, folder):
    store = seeded
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang", "li.xlsm": "li"},
                 folders={"south": "liu"})
    zhang = checkout(store, folder / "zhang.xlsm", "zhang")
    li = checkout(store, folder / "li.xlsm", "li")
    add_customer(zhang, "第一次新客户有限公司", "13700000001")
    first = Watcher(store, folder, load_config(folder / "crmsync-watch.toml")).run_once()
    assert sorted(o.relpath for o in first) == ["li.xlsm", "zhang.xlsm"] and all(o.ok for o in first)
    assert first[[o.relpath for o in first].index("zhang.xlsm")].created == 1

    # while the watcher is stopped: zhang edits a customer and adds another; li does nothing; liu's copy arrives
    old_id = next(r["customer_id"] for r in store.list("customer") if r["customer_name"] == "zhang的老客户有限公司")
    edit_customer(zhang, old_id, "备注", "周三上门拜访")
    add_customer(zhang, "第二次新客户有限公司", "13700000002")
    liu = checkout(store, folder / "south" / "liu.xlsm", "liu")
    add_customer(liu, "华南新客户有限公司", "13700000003")
    li_before = li.read_bytes()

    again = Watcher(store, folder, load_config(folder / "crmsync-watch.toml"))
    thread = run_watcher(again)  # catch-up happens at start, before any event
    try:
        wait_for(lambda: {"zhang.xlsm", "south/liu.xlsm"} <= {o.relpath for o in again.outcomes})
    finally:
        again.stop()
        thread.join(10)
    assert sorted(o.relpath for o in again.outcomes) == ["south/liu.xlsm", "zhang.xlsm"]  # li unchanged: not read
    assert li.read_bytes() == li_before
    assert store.get("customer", old_id)["remark"] == "周三上门拜访"
    names = names_in_store(store)
    assert names.count("第一次新客户有限公司") == 1  # still in zhang's copy without an id: not created twice
    assert "第二次新客户有限公司" in names and "华南新客户有限公司" in names
    assert again.state.copies["zhang.xlsm"]["ingested"] == 2


def test_write_back_fills_in_new_ids_only_when_excel_does_not_hold_the_copy(seeded, folder):
    store = seeded
    write_config(folder, settle_seconds=0.1, write_back=True, files={"zhang.xlsm": "zhang", "li.xlsm": "li"})
    zhang = checkout(store, folder / "zhang.xlsm", "zhang")
    li = checkout(store, folder / "li.xlsm", "li")
    add_customer(zhang, "写回客户有限公司", "13600000001")
    add_customer(li, "打开中的客户有限公司", "13600000002")
    (folder / "~$li.xlsm").write_bytes(b"owner")  # li has the copy open in Excel
    li_before = li.read_bytes()
    watcher = Watcher(store, folder, load_config(folder / "crmsync-watch.toml"))
    outcomes = {o.relpath: o for o in watcher.run_once()}
    assert outcomes["zhang.xlsm"].wrote_back and not outcomes["li.xlsm"].wrote_back
    assert outcomes["li.xlsm"].held_open
    assert li.read_bytes() == li_before  # never written while Excel holds it
    new_id = next(r["customer_id"] for r in store.list("customer") if r["customer_name"] == "写回客户有限公司")
    with FileBook(zhang) as book:
        table = book.read_table("客户")
        assert new_id in [row[table.column("客户编号") - 1] for row in table.rows]
    # its own write-back is not news: a second run reads nothing
    assert Watcher(store, folder, load_config(folder / "crmsync-watch.toml")).run_once() == []
    # Excel lets go of li's copy: the write-back it was waiting for happens, no second customer
    os.unlink(folder / "~$li.xlsm")
    later = Watcher(store, folder, load_config(folder / "crmsync-watch.toml")).run_once()
    assert [(o.relpath, o.wrote_back, o.created) for o in later] == [("li.xlsm", True, 0)]
    assert names_in_store(store).count("打开中的客户有限公司") == 1


@pytest.mark.parametrize("kind, says", [
    ("truncated", "“zhang.xlsm”"),
    ("encrypted", "密码"),
    ("empty", "“zhang.xlsm”"),
    ("zip_bomb", "“zhang.xlsm”"),
    ("no_crm_sheets", "不是客户管理工作簿"),
])
def test_a_copy_that_cannot_be_read_is_reported_changes_nothing_and_is_retried_when_fixed(
        seeded, folder, tmp_path, kind, says):
    import hostile

    store = seeded
    good = checkout(store, tmp_path / "staging" / "zhang.xlsm", "zhang")
    add_customer(good, "修好后的客户有限公司", "13300000001")
    data = good.read_bytes()
    bad = {"truncated": data[: len(data) // 3],
           "encrypted": hostile.encrypted(tmp_path).read_bytes(),  # a password-protected workbook
           "empty": b"",
           "zip_bomb": hostile.zip_bomb(tmp_path).read_bytes(),
           "no_crm_sheets": hostile.minimal_xlsx(tmp_path / "other.xlsx",
                                                 workbook=hostile.workbook_xml("Sheet1")).read_bytes()}[kind]
    write_config(folder, settle_seconds=0, files={"zhang.xlsm": "zhang"})
    (folder / "zhang.xlsm").write_bytes(bad)
    audit_before = store.verify_audit().entries
    outcomes = Watcher(store, folder, load_config(folder / "crmsync-watch.toml"), grace=0.2).run_once()
    assert [(o.status, o.relpath) for o in outcomes] == [("unreadable", "zhang.xlsm")]
    assert says in outcomes[0].message
    assert names_in_store(store) == sorted(f"{rep}的老客户有限公司" for rep in REPS)
    assert store.verify_audit().entries == audit_before  # nothing written, not even an audit entry
    # unchanged: not read again; fixed: read
    assert Watcher(store, folder, load_config(folder / "crmsync-watch.toml")).run_once() == []
    save_like_excel(data, folder / "zhang.xlsm")
    fixed = Watcher(store, folder, load_config(folder / "crmsync-watch.toml")).run_once()
    assert [(o.status, o.created) for o in fixed] == [("ingested", 1)]
    assert "修好后的客户有限公司" in names_in_store(store)
