"""Done when (issue 4): the watcher, given 50 copies written at once — some truncated mid-write and
then completed, one not a workbook — ends with every complete copy ingested exactly once, the bad
one reported, and nothing lost.  Real copies, the real sync engine, a real store, real file events.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from watch_copies import (REPS, add_customer, checkout, names_in_store, save_like_excel, seed_customers, wait_for,
                          write_config, write_slowly)

from crmsync.watch import Watcher
from crmsync.watch_config import load_config


def run_watcher(watcher: Watcher) -> threading.Thread:
    thread = threading.Thread(target=watcher.run)
    thread.start()
    return thread


def test_fifty_copies_saved_at_once_are_each_ingested_exactly_once(team_store, tmp_path):
    store = seed_customers(team_store)
    folder = tmp_path / "team"
    folder.mkdir()
    staging = tmp_path / "staging"
    base = {rep: checkout(store, staging / f"{rep}.xlsm", rep) for rep in REPS}
    payloads = {}
    for i in range(50):
        rep = REPS[i % 3]
        path = Path(shutil.copy(base[rep], staging / f"copy{i:02d}.xlsm"))
        add_customer(path, f"并发客户{i:02d}有限公司", f"1380000{i:04d}")
        payloads[f"{rep}/copy{i:02d}.xlsm"] = path.read_bytes()
    bad = "li/copy49.xlsm"
    payloads[bad] = "客户名单：这不是工作簿\n".encode() * 50  # someone saved a text file under a workbook's name
    slow = {f"{REPS[i % 3]}/copy{i:02d}.xlsm" for i in (3, 10, 17, 24, 31)}
    write_config(folder, settle_seconds=0.2, folders={rep: rep for rep in REPS})
    for rep in REPS:
        (folder / rep).mkdir()

    watcher = Watcher(store, folder, load_config(folder / "crmsync-watch.toml"), grace=2.5)
    thread = run_watcher(watcher)
    writers = []
    try:
        for rel, data in payloads.items():  # all at once: the slow ones pause mid-write, the rest land whole
            if rel in slow:
                writers.append(write_slowly(data, folder / rel, pause=1.0))
            else:
                writers.append(threading.Thread(target=save_like_excel, args=(data, folder / rel)))
                writers[-1].start()
        for w in writers:
            w.join()
        good = set(payloads) - {bad}
        wait_for(lambda: good <= set(watcher.state.copies) and bad in watcher.state.problems, timeout=90)
    finally:
        watcher.stop()
        thread.join(30)
    assert not thread.is_alive()

    # every complete copy exactly once, the bad one reported, and nothing lost or doubled
    assert {rel: e["ingested"] for rel, e in watcher.state.copies.items()} == {rel: 1 for rel in good}
    assert sorted(o.relpath for o in watcher.outcomes if o.ok) == sorted(good)
    assert [o.relpath for o in watcher.outcomes if not o.ok] == [bad]
    assert "copy49.xlsm" in watcher.state.problems[bad]["message"]
    expected = sorted([f"并发客户{i:02d}有限公司" for i in range(49)] + [f"{rep}的老客户有限公司" for rep in REPS])
    assert names_in_store(store) == expected
    owners = {r["customer_name"]: r["owner"] for r in store.list("customer")}
    assert all(owners[f"并发客户{i:02d}有限公司"] == REPS[i % 3] for i in range(49))  # the map's user, not the file's
    log = (folder / "crmsync-watch.log").read_text(encoding="utf-8")
    assert log.count(" INGESTED ") == 49 and f"UNREADABLE {bad}" in log
    assert store.verify_audit().ok
