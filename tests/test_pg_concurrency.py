"""Eight processes syncing overlapping workbook copies against one PostgreSQL store at once.

The copies are checked out from one store, edited (the same customers' remarks in several copies,
a new customer in each), moved with the store to PostgreSQL, and synced by eight real processes at
the same time.  Writers are serialised, so the result must equal the same syncs run one after
another in the order they committed: the test replays them in that order on the SQLite original
and compares every table, audit log included, by checksum.  No lost update, no duplicate id,
every conflict recorded.
"""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy import text

from crmsync import clock
from crmsync.migrate_store import checksums, move_store
from crmsync.store import Store
from crmsync.sync_apply import source_of
from crmsync.sync_copy import checkout, ingest_copy

from records import customer
from test_sync_copy import edit, row_of

COPIES = 8
USERS = ["wang", "zhang", "li", "wang", "zhang", "li", "wang", "admin"]


def _prepare(tmp_path):
    """The origin store (SQLite) and eight edited copies of it: [(path, user)]."""
    origin = tmp_path / "origin.db"
    s = Store(origin, create=True)
    s.add_user("wang", "manager", "east")
    s.add_user("zhang", "rep", "east")
    s.add_user("li", "rep", "east")
    ids = {u: [s.create("customer", customer(customer_name=f"{u}的客户{i}有限公司", owner=u))["customer_id"]
               for i in range(4)] for u in ("zhang", "li")}
    copies = []
    for k, user in enumerate(USERS):
        path = tmp_path / f"copy{k}.xlsm"
        checkout(s, user, path)
        copies.append((path, user))
    s.close()
    for k, (path, user) in enumerate(copies):
        visible = ids["zhang"] + ids["li"] if user in ("wang", "admin") else ids[user]
        for cid in visible[k % 3: k % 3 + 3]:  # overlapping: most customers are edited in several copies
            edit(path, row_of(path, cid), 备注=f"第{k}份副本的备注")
        row = max(row_of(path, cid) for cid in visible) + 1
        edit(path, row, 客户名称=f"副本{k}新客户有限公司", 客户状态="意向客户", 手机号=f"137{k:04d}1111",
             客户类型="企业客户", 客户端键=f"copy{k}-new")
    return origin, copies


def _sync(url: str, path: str, user: str, out) -> None:
    clock.set_now("2024-05-21 10:00:00")
    with Store(url) as s:
        r = ingest_copy(s, path, user)
    out.put((path, r.created, r.applied, r.conflicts, r.refused))


def test_eight_processes_syncing_overlapping_copies_equal_a_serial_run(tmp_path, pg_url):
    origin, copies = _prepare(tmp_path)
    move_store(origin, pg_url)
    ctx = mp.get_context("fork")  # each worker opens its own store; fork spares a fresh import each
    out = ctx.Queue()
    procs = [ctx.Process(target=_sync, args=(pg_url, str(p), u, out)) for p, u in copies]
    for p in procs:
        p.start()
    results = {r[0]: r[1:] for r in (out.get(timeout=300) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(r[0] for r in results.values()) == COPIES  # each copy's new customer, once

    with Store(pg_url) as pg:
        assert pg.verify_audit().ok
        ids = [c["customer_id"] for c in pg.list("customer")]
        assert len(ids) == len(set(ids)) == 8 + COPIES
        assert sorted(ids) == [f"C20240521{n:04d}" for n in range(1, 17)]  # no gap, no duplicate
        with pg.engine.connect() as conn:
            first_seq = dict(conn.execute(text(
                "SELECT source, min(seq) FROM audit_log WHERE source LIKE 'sync:%' GROUP BY source")).all())
            recorded = conn.execute(text("SELECT count(*) FROM sync_conflicts")).scalar()
        assert recorded == sum(r[2] for r in results.values()) > 0  # every conflict recorded
        remarks = {c["remark"] for c in pg.list("customer")} - {None}
        assert len(remarks) > 1  # several copies' edits landed

    # the same syncs, one after another, in the order they committed
    order = sorted(copies, key=lambda c: first_seq[source_of(str(c[0].resolve()))])
    with Store(origin) as s:
        for path, user in order:
            r = ingest_copy(s, path, user)
            assert (r.created, r.applied, r.conflicts, r.refused) == results[str(path)]
    assert checksums(pg_url) == checksums(origin)
