"""Four real processes allocating customer ids at once on one SQLite store: distinct and gap-free."""

from __future__ import annotations

import multiprocessing as mp

from crmsync.store import Store


def _allocate(path: str, worker: int, n: int, out) -> None:
    from crmsync import clock

    clock.set_now("2024-05-21 10:00:00")
    s = Store(path)
    ids = [s.create("customer", {"customer_name": f"并发{worker}-{i}", "mobile": "13812345678"})["customer_id"]
           for i in range(n)]
    s.close()
    out.put(ids)


def test_four_processes_get_2000_distinct_gap_free_ids(store_path):
    Store(store_path, create=True).close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(str(store_path), w, 500, out)) for w in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 2000
    assert sorted(ids) == [f"C20240521{n:04d}" for n in range(1, 2001)]
    s = Store(store_path)
    assert s.count("customer") == 2000 and s.verify_audit().ok
    s.close()
