"""Watcher benchmark: from the save of a 10,000-row copy to the end of its ingestion.

Goal (issue #4): the watcher ingests a saved 10,000-row copy within 2 s of the save.  The
reference, measured in the same run on a byte-identical file against an identical store, is
``ingest_copy`` called directly: the difference is what the watcher adds (waiting for the file to
settle, the package check, the content hash, the file event itself).

Each round: a fresh copy of the same store for each side; the copy is a rep's checkout (made in
the watched folder, so the store knows it under the path the watcher names it by) with 1% of its
rows edited (备注) and one new customer typed in; the watcher side saves it as Excel does (a
temporary file renamed over the copy) and times from the rename until the watcher is done.
Sides alternate; medians are reported.

Run: .venv/bin/python bench/bench_watch.py [ROWS] [ROUNDS] [SETTLE_SECONDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import customer_rows, peak_rss_mb  # noqa: E402

from crmsync import clock  # noqa: E402
from crmsync.book_file import FileBook  # noqa: E402
from crmsync.schema import CUSTOMER  # noqa: E402
from crmsync.store import Store  # noqa: E402
from crmsync.validate import validate_table  # noqa: E402
from crmsync.watch import Watcher, WatchListener, file_digest  # noqa: E402
from crmsync.watch_config import load_config  # noqa: E402
from crmsync.xlsx_safety import check_package  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_copy(store: Store, path: Path, user: str) -> Path:
    try:
        from crmsync.sync_copy import checkout
    except ImportError:
        checkout = None
    if checkout is not None:
        checkout(store, user, path)
    else:
        from crmsync.copies import fill_workbook

        shutil.copy(ROOT / "crm_workbook.xlsm", path)
        fill_workbook(store, path, user)
    return path


def edit_copy(path: Path, share: float = 0.01) -> int:
    """Change 备注 in ``share`` of the rows and type one new customer; returns the rows edited."""
    with FileBook(path) as book:
        table = book.read_table("客户")
        remark = table.column("备注")
        step = max(1, int(1 / share))
        cells = {(number, remark): f"基准测试修改 {number}" for number in table.row_numbers[::step]}
        new_row = max(table.row_numbers) + 1
        for label, value in {"客户名称": "基准测试新客户有限公司", "客户类型": "企业客户", "客户状态": "潜在客户",
                             "联系人": "王五", "手机号": "13900001111"}.items():
            cells[(new_row, table.column(label))] = value
        book.write_cells("客户", cells)
        book.save()
    return len(cells)


class Stopwatch(WatchListener):
    def __init__(self):
        self.started = self.finished = None
        self.outcome = None
        self.done = threading.Event()

    def copy_started(self, relpath, user):
        self.started = time.perf_counter()

    def copy_finished(self, outcome):
        self.finished = time.perf_counter()
        self.outcome = outcome
        self.done.set()


def main(n: int = 10_000, rounds: int = 3, settle: float = 0.5) -> dict:
    from crmsync.sync_copy import ingest_copy

    clock.set_now("2024-05-21 10:00:00")
    tmp = Path(tempfile.mkdtemp(prefix="crmsync-bench-watch-"))
    base = Store(tmp / "base.db", create=True)
    base.add_user("zhang", "rep", "east")
    rows = customer_rows(n)
    for r in rows:
        r["owner"] = "zhang"
    with base.transaction("admin", "bench") as tx:
        tx.create_many("customer", validate_table(rows, CUSTOMER).rows, validated=True)
    # The rep's copy is checked out where the watcher will find it, so the store remembers it
    # under the path the watcher names it by (as when an admin checks copies out into the share).
    folder = tmp / "team"
    copy = make_copy(base, folder / "zhang.xlsm", "zhang")
    copy_id = str(copy.resolve())
    edited = edit_copy(copy)
    data = copy.read_bytes()
    copy.unlink()
    size_mb = len(data) / 1e6
    (folder / "crmsync-watch.toml").write_text(f'settle_seconds = {settle}\n[files]\n"zhang.xlsm" = "zhang"\n',
                                               encoding="utf-8")
    (folder / "crmsync-watch.toml").chmod(0o644)  # the watcher refuses a map others can write

    refs, latencies, waits, ingests = [], [], [], []
    for round_ in range(rounds):
        for side in (("ref", "watch") if round_ % 2 == 0 else ("watch", "ref")):
            db = base.backup(tmp / f"{side}{round_}.db")
            store = Store(db)
            if side == "ref":
                path = tmp / f"ref{round_}.xlsm"
                path.write_bytes(data)
                t = time.perf_counter()
                result = ingest_copy(store, path, "zhang", copy_id=copy_id)
                refs.append(time.perf_counter() - t)
                assert result.created == 1, result
            else:
                for leftover in folder.glob("crmsync-watch.[ls]*"):
                    leftover.unlink()  # state and log of the last round: this store has not seen the copy
                watch = Stopwatch()
                watcher = Watcher(store, folder, load_config(folder / "crmsync-watch.toml"), listener=watch)
                thread = threading.Thread(target=watcher.run)
                thread.start()
                time.sleep(0.5)  # the watcher is up and idle
                temp = folder / "A1B2C3D4"  # the save, as Excel does it: a temporary file renamed over the copy
                temp.write_bytes(data)
                os.replace(temp, folder / "zhang.xlsm")
                saved = time.perf_counter()
                assert watch.done.wait(60), "the watcher did not ingest the copy"
                watcher.stop()
                thread.join(10)
                (folder / "zhang.xlsm").unlink()
                assert watch.outcome.ok and watch.outcome.created == 1, watch.outcome
                latencies.append(watch.finished - saved)
                waits.append(watch.started - saved)
                ingests.append(watch.finished - watch.started)
            store.close()

    probe = tmp / "probe.xlsm"
    probe.write_bytes(data)
    t = time.perf_counter()
    check_package(probe)
    check_s = time.perf_counter() - t
    t = time.perf_counter()
    file_digest(probe)
    hash_s = time.perf_counter() - t

    ref, latency = statistics.median(refs), statistics.median(latencies)
    print(f"copy: {n:,} customer rows, {size_mb:.1f} MB, {edited - 5} rows edited + 1 new   rounds: {rounds} (medians)")
    print(f"ingest_copy alone (reference)          {ref:6.2f} s")
    print(f"watcher: save → ingested               {latency:6.2f} s   (goal ≤ 2 s)   {'OK' if latency <= 2 else 'OVER'}")
    print(f"  of which settle + check + hash wait  {statistics.median(waits):6.2f} s   (settle_seconds = {settle}; "
          f"package check {check_s:.2f} s, content hash {hash_s:.3f} s)")
    print(f"  of which ingest in the watcher       {statistics.median(ingests):6.2f} s   "
          f"ratio to the reference {statistics.median(ingests) / ref:.2f}×")
    print(f"peak memory {peak_rss_mb():.0f} MB")
    base.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"reference": ref, "latency": latency}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3,
         float(sys.argv[3]) if len(sys.argv) > 3 else 0.5)
