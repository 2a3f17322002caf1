"""Load (issue 8, item 5): many checked-out copies saved in bursts into a folder followed by a real
`crmsync watch`, while a real `crmsync import` imports files and another process runs `crmsync
report` over and over.  Every change lands exactly once, nobody sees "database is locked" or
exits non-zero, the audit chain verifies.  A writer that meets a lock held longer than SQLite's
busy timeout waits with back-off instead of failing, and says so in one line if it never frees.

The load run is bench/bench_soak.py's, made short (the bench runs 200 copies for an hour).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmsync import engine
from crmsync.errors import StoreError
from crmsync.store import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_soak import crmsync_env, problems, soak  # noqa: E402

COPIES = 40


def test_copies_saved_in_bursts_during_imports_and_reports_land_exactly_once(tmp_path):
    r = soak(tmp_path, copies=COPIES, seconds=15, burst=20, every=2.5, import_rows=300, import_every=0.5,
             report_pause=0.2, rss_every=3600, progress=None)

    assert r["bursts"] >= 3 and r["saves"] >= 60, r  # the load really ran: several bursts of 20 saves
    assert r["imports"] >= 2 and r["reports"] >= 2, r  # ... with imports and reports alongside
    assert r["caught_up"] and r["watcher_exit"] == 0  # the watcher read the last save of every copy, stopped cleanly
    # every typed customer exactly once, every last 备注 in the store
    assert r["typed"] == r["typed_in_store"] == r["typed_distinct"] == r["saves"]
    assert r["typed_missing"] == 0 and r["remarks_wrong"] == 0
    assert r["log_new"] == r["saves"] and r["log_conflicts"] == 0 and r["log_refused"] == 0
    # every imported row exactly once, every import and report exited 0
    assert r["imported_expected"] == r["imported_in_store"] == r["imported_distinct"] == r["imports"] * 300
    assert r["import_failures"] == r["report_failures"] == []
    # no process printed a lock error; the watcher set nothing aside
    assert r["watch_lock_lines"] == r["import_locks"] == r["report_locks"] == []
    assert (r["log_failed"], r["log_unreadable"], r["log_traceback"]) == (0, 0, 0)
    assert r["audit_ok"]
    assert problems(r) == []


# ---- a lock held longer than the busy timeout ---------------------------------------------------

def _hold_write_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process takes SQLite's write lock and keeps it (a long import elsewhere)."""
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.execute('COMMIT')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"held\n"
    return proc


def _customer(name: str, mobile: str) -> dict:
    return {"customer_name": name, "customer_type": "企业客户", "status": "潜在客户", "mobile": mobile}


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """SQLite's busy timeout of 30 s made 0.2 s, so a lock outlasting it fits in a test."""
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 200)


def test_a_writer_waits_out_a_lock_held_past_the_busy_timeout(store_path, short_busy_timeout):
    Store(store_path, create=True).close()
    holder = _hold_write_lock(store_path, 1.5)
    try:
        start = time.monotonic()
        with Store(store_path) as store:  # opening (it migrates under the write lock) waits too
            store.create("customer", _customer("等锁客户有限公司", "13812340001"))
            waited = time.monotonic() - start
            assert [c["customer_name"] for c in store.list("customer")] == ["等锁客户有限公司"]
            assert store.verify_audit().ok
    finally:
        assert holder.wait(30) == 0
    assert waited >= 1.0  # it really waited behind the other process (7x the busy timeout)


def test_a_lock_that_never_frees_gives_one_clear_message_and_stores_nothing(store_path, short_busy_timeout,
                                                                             monkeypatch):
    monkeypatch.setattr(engine, "WRITE_LOCK_ATTEMPTS", 3)
    store = Store(store_path, create=True)
    holder = _hold_write_lock(store_path, 20)
    try:
        with pytest.raises(StoreError) as caught:
            store.create("customer", _customer("不会写入的客户有限公司", "13812340002"))
        assert "另一个进程" in str(caught.value) and "locked" not in str(caught.value)
    finally:
        holder.kill()
        holder.wait(30)
    assert store.count("customer") == 0
    store.close()


def test_the_cli_reports_a_held_store_in_one_line_without_a_traceback(store_path, tmp_path):
    """`crmsync` as a user runs it: a store held by another writer past every retry gives exit 1 and
    one line (busy timeout and attempts shortened through a small wrapper, the command unchanged)."""
    Store(store_path, create=True).close()
    wrapper = tmp_path / "run_crmsync.py"
    wrapper.write_text("import sys\nfrom crmsync import engine\nengine.BUSY_TIMEOUT_MS = 100\n"
                       "engine.WRITE_LOCK_ATTEMPTS = 2\nfrom crmsync.cli import main\nsys.argv[0] = 'crmsync'\n"
                       "main()\n", encoding="utf-8")
    holder = _hold_write_lock(store_path, 30)
    try:
        proc = subprocess.run([sys.executable, str(wrapper), "--store", str(store_path), "report"], cwd=ROOT,
                              env=crmsync_env(), capture_output=True, timeout=120)
    finally:
        holder.kill()
        holder.wait(30)
    err = proc.stderr.decode()
    assert proc.returncode == 1, (proc.stdout.decode(), err)
    assert "Traceback" not in err and "database is locked" not in err
    assert "另一个进程" in err and len(err.strip().splitlines()) == 1


# ---- file permissions (docs/security.md) --------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_backup_is_readable_by_its_owner_only_and_restores(store_path, tmp_path):
    """A backup holds every customer: mode 0600 whatever the umask, and it still restores."""
    import os
    import stat

    from typer.testing import CliRunner

    from crmsync.cli import app

    with Store(store_path, create=True) as store:
        store.create("customer", _customer("备份客户有限公司", "13812340003"))
    old = os.umask(0o022)  # the usual umask: new files readable by everyone
    try:
        result = CliRunner().invoke(app, ["--store", str(store_path), "backup", str(tmp_path / "crm-backup.db")])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(tmp_path / "crm-backup.db").st_mode) == 0o600
    with Store(store_path) as store:
        store.create("customer", _customer("备份后客户有限公司", "13812340004"))
        store.restore(tmp_path / "crm-backup.db")
        assert [c["customer_name"] for c in store.list("customer")] == ["备份客户有限公司"]
        assert store.verify_audit().ok
