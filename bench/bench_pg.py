"""PostgreSQL beside SQLite, in one run: bulk insert, point reads, the 1%-changed sync, an import.

Same code path, two backends (issue 7).  Each measurement alternates SQLite and PostgreSQL round by
round on fresh stores and reports medians, so a noisy neighbour hits both sides alike:

- insert: ``create_many`` of N validated customers with versions and audit entries, one transaction;
- point read: ``store.get`` by id, median of 5,000 random ids (a warm kept connection);
- sync: a checked-out copy of N customers with 1% of 备注 changed, from the rows as read to the
  store commit (as bench_sync.py measures it), on a fresh clone of the checked-out store per round;
- import: ``plan_import`` + ``apply_import`` of a legacy .xlsx of N customers (bench_import.py's file);
- move: ``migrate-store`` of the N-customer store, SQLite → PostgreSQL, verified.

The PostgreSQL server is started here (initdb/pg_ctl in a temporary directory, as the tests do) with
its default durability (fsync on, synchronous commit), on the same machine as SQLite's file.
Or point it at a server: CRMSYNC_BENCH_PG=postgresql://user@host/ (a database per round is made).

Run: .venv/bin/python bench/bench_pg.py [N] [ROUNDS] [--only insert,read,sync,import,move]
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import customer_rows, median_us, peak_rss_mb  # noqa: E402

from crmsync import clock  # noqa: E402
from crmsync.schema import CUSTOMER  # noqa: E402
from crmsync.store import Store  # noqa: E402
from crmsync.validate import validate_table  # noqa: E402

PARTS = ("insert", "read", "sync", "import", "move")


class Postgres:
    """Where the PostgreSQL stores live: a server started here, or CRMSYNC_BENCH_PG."""

    def __init__(self):
        self.server = None
        base = os.environ.get("CRMSYNC_BENCH_PG")
        if base:
            self.base = base.rstrip("/")
        else:
            from pg_server import PostgresServer, postgres_bindir

            bindir = postgres_bindir()
            if bindir is None:
                sys.exit("PostgreSQL is not installed (initdb/pg_ctl): apt-get install postgresql")
            self.server = PostgresServer(bindir).start(durable=True)
            self.base = self.server.url("").rstrip("/")
        self.n = 0

    def new_url(self, template: str | None = None) -> str:
        """A new database (a clone of template, if given); returns its URL."""
        from sqlalchemy import create_engine

        self.n += 1
        name = f"bench_{os.getpid()}_{self.n}"
        admin = create_engine(f"{self.base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        admin.dispose()
        return f"{self.base}/{name}"

    def stop(self) -> None:
        if self.server:
            self.server.stop()


def fresh(kind: str, tmp: Path, pg: Postgres, tag: str) -> str:
    if kind == "sqlite":
        return str(tmp / f"{tag}.db")
    return pg.new_url()


def bench_insert_and_read(n: int, repeat: int, tmp: Path, pg: Postgres) -> dict:
    rows = customer_rows(n)
    for r in rows:
        r["owner"] = "admin"
    clean = validate_table(rows, CUSTOMER).rows
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    stores = {}
    for round_ in range(repeat):
        for kind in times:
            store = Store(fresh(kind, tmp, pg, f"insert{round_}"), create=True)
            start = time.perf_counter()
            with store.transaction("admin", "bench") as tx:
                ids = tx.create_many("customer", clean, validated=True)
            times[kind].append(time.perf_counter() - start)
            assert store.count("customer") == n
            if kind in stores:
                stores[kind][0].close()
            stores[kind] = (store, ids)
    out = {}
    for kind, (store, ids) in stores.items():
        sample = random.Random(1).sample(ids, min(5_000, n))
        store.get("customer", sample[0])  # the kept reader connection opens once
        out[kind] = {"insert_s": statistics.median(times[kind]), "read_us": median_us(
            lambda k: store.get("customer", k), sample)}
        store.close()
    s, p = out["sqlite"], out["postgresql"]
    print(f"insert {n:,} customers (+versions, audit)   SQLite {s['insert_s']:6.2f} s "
          f"({n / s['insert_s']:8,.0f}/s)   PostgreSQL {p['insert_s']:6.2f} s ({n / p['insert_s']:8,.0f}/s)"
          f"   PG/SQLite {p['insert_s'] / s['insert_s']:.2f}×")
    print(f"point read store.get (median)            SQLite {s['read_us']:6.1f} µs"
          f"{'':15}PostgreSQL {p['read_us']:6.1f} µs{'':15}PG/SQLite {p['read_us'] / s['read_us']:.2f}×")
    return out


def bench_sync(n: int, repeat: int, tmp: Path, pg: Postgres) -> dict:
    from bench_sync import edited
    from bench_sync import setup as sync_setup

    from crmsync.migrate_store import move_store
    from crmsync.sync_apply import apply_copy
    from crmsync.sync_copy import sheet_rows

    work = tmp / "sync"
    work.mkdir()
    base_db, copy, table = sync_setup(work, n)  # n customers of rep zhang, zhang's copy, its sheet
    base_pg = pg.new_url()
    move_store(base_db, base_pg)  # the same store, checkout bookkeeping included
    base_pg_name = base_pg.rsplit("/", 1)[1]
    k = max(1, n // 100)
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for round_ in range(repeat):
        sheet = edited(table, k, round_)
        for kind in times:
            if kind == "sqlite":
                url = str(work / f"round{round_}.db")
                shutil.copyfile(base_db, url)
            else:
                url = pg.new_url(template=base_pg_name)
            with Store(url) as store:
                ent = store.entity("customer")
                store.enums(), store.users()  # caches a watcher or Excel session already has
                start = time.perf_counter()
                rows, _cols = sheet_rows(ent, sheet.sheet, sheet)
                result = apply_copy(store, "zhang", str(copy.resolve()), [rows], write_back=False)
                times[kind].append(time.perf_counter() - start)
                assert result.applied == k, (result.applied, k)
    s, p = (statistics.median(times[x]) for x in ("sqlite", "postgresql"))
    print(f"sync {n:,}-row copy, 1% ({k:,}) changed        SQLite {s:6.2f} s{'':18}PostgreSQL {p:6.2f} s"
          f"{'':18}PG/SQLite {p / s:.2f}×")
    return {"sqlite": s, "postgresql": p}


def bench_import(n: int, repeat: int, tmp: Path, pg: Postgres) -> dict:
    from bench_import import build

    from crmsync.importer import apply_import, plan_import

    source = tmp / "legacy.xlsx"
    build(source, n)
    plan_import(Store(tmp / "warm.db", create=True), source)  # library and address-table loads
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    imported = {}
    for round_ in range(repeat):
        for kind in times:
            with Store(fresh(kind, tmp, pg, f"import{round_}"), create=True) as store:
                start = time.perf_counter()
                plan = plan_import(store, source)
                result = apply_import(store, plan)
                times[kind].append(time.perf_counter() - start)
                imported[kind] = len(result.ids)
    assert imported["sqlite"] == imported["postgresql"]
    s, p = (statistics.median(times[x]) for x in ("sqlite", "postgresql"))
    print(f"import {n:,}-row legacy .xlsx ({imported['sqlite']:,} imported)  SQLite {s:6.2f} s{'':11}"
          f"PostgreSQL {p:6.2f} s{'':18}PG/SQLite {p / s:.2f}×")
    return {"sqlite": s, "postgresql": p}


def bench_move(n: int, tmp: Path, pg: Postgres) -> dict:
    from crmsync.migrate_store import move_store

    rows = customer_rows(n)
    for r in rows:
        r["owner"] = "admin"
    clean = validate_table(rows, CUSTOMER).rows
    src = tmp / "move.db"
    with Store(src, create=True) as store, store.transaction("admin", "bench") as tx:
        tx.create_many("customer", clean, validated=True)
    start = time.perf_counter()
    report = move_store(src, pg.new_url())
    there = time.perf_counter() - start
    start = time.perf_counter()
    move_store(pg.base + "/" + report.dest.rsplit("/", 1)[1], tmp / "back.db")
    back = time.perf_counter() - start
    print(f"migrate-store {report.rows:,} rows (verified)   SQLite→PostgreSQL {there:6.2f} s   "
          f"PostgreSQL→SQLite {back:6.2f} s")
    return {"to_pg": there, "to_sqlite": back}


def main(n: int = 100_000, repeat: int = 3, only: tuple[str, ...] = PARTS) -> dict:
    clock.set_now("2024-05-21 10:00:00")
    tmp = Path(tempfile.mkdtemp(prefix="crmsync-bench-pg-"))
    pg = Postgres()
    figures = {}
    print(f"rows: {n:,}   rounds: {repeat} (medians; SQLite and PostgreSQL alternate)")
    try:
        if "insert" in only or "read" in only:
            figures["insert_read"] = bench_insert_and_read(n, repeat, tmp, pg)
        if "sync" in only:
            figures["sync"] = bench_sync(n, repeat, tmp, pg)
        if "import" in only:
            figures["import"] = bench_import(n, repeat, tmp, pg)
        if "move" in only:
            figures["move"] = bench_move(n, tmp, pg)
        print(f"peak memory {peak_rss_mb():.0f} MB")
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--only")]
    chosen = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")), None)
    main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 3,
         tuple(chosen.split(",")) if chosen else PARTS)
