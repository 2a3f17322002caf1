"""Sync benchmark: a 100,000-row copy in which 0.1%, 1% and 10% of rows changed.

Measured: the sync EXCLUDING reading the file — from the rows as read (calamine's lists) to the
store commit: per-row digests, triage against what the copy held at checkout, the merge of the
changed rows, validation, one transaction of bulk updates with versions and audit entries.

Reference, measured in the same run: a bare sqlite3 executemany UPDATE of the changed rows (one
transaction) plus hashing all rows with hashlib (blake2b of each row's repr).  Goal (issue #4):
≤ 2× the reference at 1%, and store-side time growing with the changed rows, not the unchanged.

Run: .venv/bin/python bench/bench_sync.py [N] [ROUNDS]
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import customer_rows, peak_rss_mb  # noqa: E402

from crmsync import clock  # noqa: E402
from crmsync.book_file import FileBook  # noqa: E402
from crmsync.schema import CUSTOMER  # noqa: E402
from crmsync.seam import SheetTable  # noqa: E402
from crmsync.store import Store  # noqa: E402
from crmsync.sync_apply import apply_copy  # noqa: E402
from crmsync.sync_copy import checkout, sheet_rows  # noqa: E402
from crmsync.validate import validate_table  # noqa: E402

FRACTIONS = (0.001, 0.01, 0.10)


def setup(tmp: Path, n: int) -> tuple[Path, Path, SheetTable]:
    """A store of n customers owned by rep zhang, zhang's checked-out copy, its sheet as read."""
    store_path = tmp / "crm.db"
    rows = customer_rows(n)
    for r in rows:
        r["owner"] = "zhang"
        r.pop("team", None)
    clean = validate_table(rows, CUSTOMER).rows
    with Store(store_path, create=True) as store:
        store.add_user("zhang", "rep", "east")
        with store.transaction("admin", "bench") as tx:
            tx.create_many("customer", clean, validated=True)
        t = time.perf_counter()
        checkout(store, "zhang", tmp / "zhang.xlsm")
        print(f"setup: checkout of {n:,} customers {time.perf_counter() - t:.1f} s")
    book = FileBook(tmp / "zhang.xlsm")
    t = time.perf_counter()
    table = book.read_table("客户")
    print(f"setup: reading the copy's 客户 sheet {time.perf_counter() - t:.1f} s (excluded below)")
    book.close()
    return store_path, tmp / "zhang.xlsm", table


def edited(table: SheetTable, k: int, round_: int) -> SheetTable:
    """The sheet as read after a person changed the 备注 of k rows spread over the sheet."""
    col = table.header.index("备注")
    rows = list(table.rows)
    step = max(1, len(rows) // k)
    for i in range(0, step * k, step):
        row = list(rows[i])
        row[col] = f"第{round_}轮修改的备注 {i}"
        rows[i] = row
    return SheetTable(table.sheet, table.header, rows, table.row_numbers)


def sync_once(store_path: Path, copy: Path, table: SheetTable) -> tuple[float, float, int]:
    """(whole sync, its store side, rows applied): store side = the transaction after the rows'
    digests are taken."""
    with Store(store_path) as store:
        ent = store.entity("customer")
        store.enums(), store.users()  # warm caches a long-running process (watcher, Excel) has
        start = time.perf_counter()
        sheet, _cols = sheet_rows(ent, table.sheet, table)
        middle = time.perf_counter()
        result = apply_copy(store, "zhang", str(copy.resolve()), [sheet], write_back=False)
        end = time.perf_counter()
    return end - start, end - middle, result.applied


def reference_once(tmp: Path, table: SheetTable, changed: list[tuple], round_: int) -> float:
    """Bare sqlite3 executemany of the changed rows + hashlib over every row."""
    db = tmp / f"bare{round_}.db"
    if not db.exists():
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, remark TEXT, version INTEGER)")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO customers VALUES (?, ?, 1)", [(r[0], r[1]) for r in table.rows])
        conn.execute("COMMIT")
        conn.close()
    conn = sqlite3.connect(db, isolation_level=None)
    start = time.perf_counter()
    for row in table.rows:
        hashlib.blake2b(repr(tuple(row)).encode(), digest_size=16).digest()
    conn.execute("BEGIN")
    conn.executemany("UPDATE customers SET remark = ?, version = version + 1 WHERE customer_id = ?", changed)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main(n: int = 100_000, repeat: int = 3) -> dict:
    clock.set_now("2024-05-21 10:00:00")
    tmp = Path(tempfile.mkdtemp(prefix="crmsync-bench-sync-"))
    store_path, copy, table = setup(tmp, n)
    col = table.header.index("备注")
    figures = {}
    print(f"rows: {n:,}   rounds: {repeat} (medians; sync and reference alternate)")
    for fraction in FRACTIONS:
        k = max(1, int(n * fraction))
        sync_times, ref_times, store_times = [], [], []
        for round_ in range(repeat):
            sheet = edited(table, k, round_)
            changed = [(r[col], r[0]) for r, old in zip(sheet.rows, table.rows) if r is not old]
            fresh = tmp / f"round-{round_}.db"
            shutil.copyfile(store_path, fresh)
            for suffix in ("-wal", "-shm"):
                Path(str(fresh) + suffix).unlink(missing_ok=True)
            ref_times.append(reference_once(tmp, table, changed, round_))
            elapsed, store_side, applied = sync_once(fresh, copy, sheet)
            assert applied == len(changed), (applied, len(changed))
            sync_times.append(elapsed)
            store_times.append(store_side)
            fresh.unlink()
        s, r, st = (statistics.median(x) for x in (sync_times, ref_times, store_times))
        figures[fraction] = (k, s, r, st)
        print(f"{fraction:6.1%} changed ({k:>6,} rows): sync {s:6.2f} s (store side {st:5.2f} s)   "
              f"reference {r:6.2f} s   ratio {s / r:4.2f}×{'   (goal ≤ 2×)' if fraction == 0.01 else ''}")
    k1, s1, _, st1 = figures[0.001]
    k3, s3, _, st3 = figures[0.10]
    print(f"growth: {k3 / k1:.0f}× the changed rows cost {st3 / st1:.1f}× the store-side time "
          f"({(st3 - st1) / (k3 - k1) * 1e6:.0f} µs per extra changed row, "
          f"{st1 / (n - k1) * 1e6:.1f} µs per unchanged row)")
    print(f"peak memory: {peak_rss_mb():.0f} MB")
    shutil.rmtree(tmp, ignore_errors=True)
    return figures


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
