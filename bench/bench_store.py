"""Store benchmark: bulk insert with versions + audit, and point reads, against bare sqlite3.

Goals (issue #2), as ratios measured side by side in this run:
- inserting 100,000 customers with their versions and audit entries ≤ 2.5× a bare sqlite3
  executemany of the same rows into one table;
- reading one customer by id ≤ 3× a bare prepared sqlite3 SELECT by key.

Run: .venv/bin/python bench/bench_store.py [N] [ROUNDS]
"""

from __future__ import annotations

import random
import statistics
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import customer_rows, median_us, peak_rss_mb, timed  # noqa: E402

from crmsync import clock  # noqa: E402
from crmsync.schema import CUSTOMER  # noqa: E402
from crmsync.store import Store  # noqa: E402
from crmsync.validate import validate_table  # noqa: E402


def main(n: int = 100_000, repeat: int = 3) -> dict:
    clock.set_now("2024-05-21 10:00:00")
    tmp = Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    rows = customer_rows(n)
    for r in rows:
        r["owner"] = "admin"
    clean = validate_table(rows, CUSTOMER).rows
    results: dict[str, float] = {}

    # Reference: the same rows, same columns, one plain table, one executemany, one transaction.
    cols = [f.key for f in CUSTOMER.stored]
    tuples = [tuple([f"C20240521{i:05d}"] + [r.get(c) for c in cols[1:]]) for i, r in enumerate(clean)]
    bare_times, store_times = [], []
    # Alternate the two, fresh files each round, and compare medians: the machine is shared and
    # noisy, and a neighbour's burst should hit both sides alike.
    for round_ in range(repeat):
        bare = sqlite3.connect(tmp / f"bare{round_}.db", isolation_level=None)
        bare.execute("PRAGMA journal_mode=WAL")
        bare.execute(f"CREATE TABLE customers ({', '.join(cols)}, PRIMARY KEY (customer_id))")
        with timed(results, "bare_executemany"):
            bare.execute("BEGIN")
            bare.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * len(cols))})", tuples)
            bare.execute("COMMIT")
        bare_times.append(results["bare_executemany"])

        store = Store(tmp / f"crm{round_}.db", create=True)
        with timed(results, "store_create_many"):
            with store.transaction("admin", "bench") as tx:
                ids = tx.create_many("customer", clean, validated=True)
        store_times.append(results["store_create_many"])
        assert store.count("customer") == n
        if round_ < repeat - 1:
            bare.close()
            store.close()
    results["bare_executemany"] = statistics.median(bare_times)
    results["store_create_many"] = statistics.median(store_times)

    sample = random.Random(1).sample(ids, min(20_000, n))
    stmt = "SELECT * FROM customers WHERE customer_id = ?"
    bare_keys = [f"C20240521{i:05d}" for i in random.Random(1).sample(range(n), len(sample))]
    bare_us = median_us(lambda k: bare.execute(stmt, (k,)).fetchone(), bare_keys)
    store_us = median_us(lambda k: store.get("customer", k), sample)
    with timed(results, "audit_verify"):
        ok = store.verify_audit().ok

    ratio_insert = results["store_create_many"] / results["bare_executemany"]
    ratio_read = store_us / bare_us
    print(f"rows: {n:,}   rounds: {repeat} (medians)")
    print(f"bare sqlite3 executemany      {results['bare_executemany']:7.2f} s  "
          f"{n / results['bare_executemany']:10,.0f} rows/s")
    print(f"store create_many (+audit)    {results['store_create_many']:7.2f} s  "
          f"{n / results['store_create_many']:10,.0f} rows/s   ratio {ratio_insert:.2f}× (goal ≤ 2.5×)")
    print(f"point read: bare {bare_us:.1f} µs median, store.get {store_us:.1f} µs   ratio {ratio_read:.2f}× (goal ≤ 3×)")
    print(f"audit verify of {n:,} entries  {results['audit_verify']:.2f} s  ok={ok}")
    print(f"peak memory {peak_rss_mb():.0f} MB")
    store.close()
    return {"insert_ratio": ratio_insert, "read_ratio": ratio_read, **results}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
