"""Several real processes writing to one store at once, on SQLite and on PostgreSQL.

Each worker creates customers one by one (IDs from the per-day counter), bulk-creates more, and adds
1 to shared customers' totals with a read-then-write under version checks (retrying a stale read),
so a lost update would show as a missing increment and a racy counter as a duplicate or a gap.
"""

from __future__ import annotations

import multiprocessing as mp

from test_backends import backend_url, bstore  # noqa: F401  (the parametrized fixtures)

from records import customer


def _worker(url: str, worker: int, shared: list[str], n_new: int, n_inc: int, out) -> None:
    """Create customers one by one and add 1 to shared customers' totals, with version checks."""
    from crmsync import clock
    from crmsync.errors import StaleVersion
    from crmsync.store import Store

    clock.set_now("2024-05-21 10:00:00")
    s = Store(url)
    ids, stale = [], 0
    for i in range(n_new):
        ids.append(s.create("customer", {"customer_name": f"并发{worker}-{i}", "mobile": "13812345678"})["customer_id"])
        target = shared[(worker + i) % len(shared)]
        if i < n_inc:
            while True:  # read, add one, write if nobody else wrote in between
                rec = s.get("customer", target)
                try:
                    s.update("customer", target, {"total_amount": (rec["total_amount"] or 0) + 1},
                             base_version=rec["version"])
                    break
                except StaleVersion:
                    stale += 1
    with s.transaction("admin", "import") as tx:
        ids += tx.create_many("customer", [{"customer_name": f"批量{worker}-{i}", "mobile": "13812345678"}
                                           for i in range(n_new)])
    s.close()
    out.put((ids, stale))


def test_processes_allocate_gap_free_ids_and_lose_no_update(bstore):
    shared = [bstore.create("customer", customer(customer_name=f"共享{i}"))["customer_id"] for i in range(3)]
    workers, n_new, n_inc = 4, 25, 20
    ctx = mp.get_context("fork")  # the workers open their own Store; fork spares each a fresh import
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(bstore.url, w, shared, n_new, n_inc, out)) for w in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ids = [i for r, _ in results for i in r]
    assert len(ids) == len(set(ids)) == workers * n_new * 2
    assert sorted(ids) == [f"C20240521{n:04d}" for n in range(4, 4 + len(ids))]
    totals = [bstore.get("customer", c) for c in shared]
    assert sum(t["total_amount"] for t in totals) == workers * n_inc  # every increment counted once
    assert sum(t["version"] - 1 for t in totals) == workers * n_inc
    report = bstore.verify_audit()
    assert report.ok and report.entries == 3 + len(ids) + workers * n_inc
