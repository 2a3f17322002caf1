"""The report tables on a PostgreSQL store: kept through changes made there (the counters' upsert,
stage stays, delete and restore), rebuilt there, and the medians read with percentile_cont.

The reports fixture writes back-dated history with SQLite SQL, so it is built in SQLite and moved
whole (migrate-store), as test_pg_suite_reports.py does; the changes are then made on PostgreSQL.
"""

from __future__ import annotations

from crmsync import clock, report_tables, reports
from crmsync.followups import change_status
from records import customer
from test_reports_fixture import build_fixture


def _moved_fixture(tmp_path, pg_store_url):
    from crmsync.migrate_store import move_store
    from crmsync.store import Store

    path = tmp_path / "fixture.db"
    with Store(path, create=True) as s:
        for name, role, team in (("wang", "manager", "east"), ("zhang", "rep", "east"), ("li", "rep", "east"),
                                 ("chen", "manager", "south"), ("liu", "rep", "south")):
            s.add_user(name, role, team)
        ids = build_fixture(s)
    move_store(path, pg_store_url, replace=True)
    return Store(pg_store_url), ids


def test_report_tables_are_kept_and_rebuilt_on_postgresql(tmp_path, pg_store_url):
    store, ids = _moved_fixture(tmp_path, pg_store_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        potential = reports.status_funnel(store).stage("potential")
        assert (potential.median_days, potential.left) == (20.0, 3)
        with store.transaction("admin", "import") as tx:
            bulk = tx.create_many("customer", [customer(customer_name=f"批量{i}公司", owner="liu",
                                                        province="广东省", city="深圳市") for i in range(12)])
        clock.set_now("2024-05-21 11:00:00")
        change_status(store, "admin", bulk[0], "意向客户", reason="确认")
        with store.transaction("admin") as tx:
            tx.delete("customer", ids["C"], reason="测试")
            tx.delete("customer", bulk[1])
        with store.engine.connect() as conn:
            assert report_tables.differences(conn) == []
        summary = reports.customer_summary(store)
        assert summary.total == 6 + 12 - 2 and summary.regions[("广东省", "深圳市")] == 11
        potential = reports.status_funnel(store).stage("potential")
        # A 10 d, B 20 d (C deleted), the bulk customer's 1 hour
        assert (potential.median_days, potential.left) == (10.0, 3)
        counters, stays = store.rebuild_report_tables()
        assert stays == 11  # customers A 2, B 1, C 2 (deleted, kept), the bulk one 1; deals 3 + 2
        assert counters == len(_counters(store))
        with store.engine.connect() as conn:
            assert report_tables.differences(conn) == []
    finally:
        store.close()


def _counters(store) -> list:
    with store.engine.connect() as conn:
        return list(conn.execute(report_tables.report_counts.select()))
