"""A sync killed (SIGKILL) right after the store commit, before the file is written: no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from test_sync_copy import _customers, _new_row, cell

from crmsync.sync_copy import KILL_AFTER_COMMIT_ENV, checkout, ingest_copy

SCRIPT = """
import sys
from pathlib import Path
from crmsync import clock
from crmsync.store import Store
from crmsync.sync_copy import ingest_copy
clock.set_now("2024-05-21 10:00:00")
with Store(sys.argv[1]) as store:
    ingest_copy(store, Path(sys.argv[2]), "zhang", write_back=True)
print("not killed")
"""


def test_killed_between_commit_and_write_back_then_synced_again_is_one_customer(team_store, store_path, tmp_path):
    z = tmp_path / "zhang.xlsm"
    checkout(team_store, "zhang", z)
    row = _new_row(z, name="断电时的新客户", mobile="13744445555")
    before = z.read_bytes()
    env = {**os.environ, KILL_AFTER_COMMIT_ENV: "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(store_path), str(z)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "not killed" not in proc.stdout
    assert z.read_bytes() == before  # the file was never written
    assert len(_customers(team_store, "断电时的新客户")) == 1  # but the store committed
    again = ingest_copy(team_store, z, "zhang", write_back=True)
    assert again.created == 0 and again.refused == 0, again.details
    (rec,) = _customers(team_store, "断电时的新客户")
    assert cell(z, row, "客户编号") == rec["customer_id"]
    assert ingest_copy(team_store, z, "zhang").created == 0
    assert len(_customers(team_store, "断电时的新客户")) == 1
