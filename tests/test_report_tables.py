"""The report tables (customer counters, stage stays) stay equal to what the records and the audit
log say, through every kind of change; older stores get them filled; a hand-edited store is
repaired by `crmsync report rebuild`."""

from __future__ import annotations

import sqlite3
from datetime import date

from sqlalchemy import text

from cli_run import run
from crmsync import clock, report_tables, reports
from crmsync.followups import add_followup, change_status
from crmsync.merge import merge_customers, unmerge
from crmsync.store import Store
from records import customer
from test_reports_fixture import build_fixture


def differences(store) -> list[str]:
    with store.engine.connect() as conn:
        return report_tables.differences(conn)


def test_counters_and_stays_follow_every_kind_of_change(team_store):
    store = team_store
    ids = build_fixture(store)  # single creates, status and stage changes, follow-ups
    assert differences(store) == []
    with store.transaction("admin", "import") as tx:  # a bulk create, two teams
        bulk = tx.create_many("customer", [customer(customer_name=f"批量{i}公司", owner=("zhang", "liu")[i % 2],
                                                    industry="智能制造", province="广东省", city="深圳市")
                                           for i in range(30)])
    store.update("customer", bulk[0], {"city": "广州市", "status": "意向客户"}, reason="确认")  # region, status
    store.update("customer", bulk[1], {"industry": None})
    with store.transaction("admin") as tx:
        tx.delete("customer", bulk[2])
        tx.delete("customer", ids["A"])  # a customer with status stays: they leave the medians
        tx.delete("deal", ids["dealB"])
    clock.set_now("2024-05-21 11:00:00")
    change_status(store, "admin", bulk[3], "意向客户", reason="确认")
    change_status(store, "admin", bulk[3], "成交客户", reason="签约")
    assert differences(store) == []
    with store.transaction("admin") as tx:
        tx.restore("customer", ids["A"])
        tx.restore("deal", ids["dealB"])
        outcome = merge_customers(tx, bulk[4], [bulk[5], bulk[6]], reason="重复")
    assert differences(store) == []
    unmerge(store, outcome.merge_id)
    add_followup(store, "zhang", bulk[4], {"method": "电话", "content": "回访", "follow_time": "2024-05-21 11:00"})
    assert differences(store) == []
    summary = reports.customer_summary(store)
    assert summary.regions[("广东省", "深圳市")] == 28 and summary.regions[("广东省", "广州市")] == 1
    assert summary.total == 6 + 30 - 1


def test_the_admin_summary_from_the_counters_is_the_teams_added_up(team_store):
    """Everyone's summary comes from the kept counters, a manager's from the records: every
    customer is in the east or the south team, so the two add up to the admin's."""
    store = team_store
    build_fixture(store)
    with store.transaction("admin", "import") as tx:
        tx.create_many("customer", [customer(customer_name=f"南方{i}公司", owner="liu", source="转介绍",
                                             province="广东省", city="深圳市") for i in range(7)])
    everyone = reports.customer_summary(store)
    east, south = (reports.customer_summary(store, store.user(m)) for m in ("wang", "chen"))
    assert everyone.total == east.total + south.total == 13
    for col in everyone.counts:
        assert everyone.counts[col] == {k: east.counts[col][k] + south.counts[col][k] for k in everyone.counts[col]}
    assert everyone.months == [(m, a + b) for (m, a), (_, b) in zip(east.months, south.months)]
    assert (everyone.overdue, everyone.due) == (east.overdue + south.overdue, east.due + south.due)
    regions = dict(east.regions)
    for place, n in south.regions.items():
        regions[place] = regions.get(place, 0) + n
    assert everyone.regions == regions


def test_medians_leave_out_deleted_records_and_come_back_on_restore(team_store):
    store = team_store
    ids = build_fixture(store)
    before = reports.status_funnel(store).stage("potential")
    assert (before.median_days, before.left) == (20.0, 3)  # A 10 d, B 20 d, C 35 d as 潜在
    with store.transaction("admin") as tx:
        tx.delete("customer", ids["C"], reason="测试")
    gone = reports.status_funnel(store).stage("potential")
    assert (gone.median_days, gone.left) == (15.0, 2)
    with store.transaction("admin") as tx:
        tx.restore("customer", ids["C"])
    assert reports.status_funnel(store).stage("potential").median_days == 20.0


def test_an_older_store_gets_the_tables_filled_when_opened(store_path):
    s = Store(store_path, create=True)
    s.add_user("zhang", "rep", "east")
    first = s.create("customer", customer(owner="zhang", industry="智能制造"))["customer_id"]
    s.update("customer", first, {"status": "意向客户"}, reason="确认")
    s.close()
    con = sqlite3.connect(store_path)  # as a store of migration 5 was
    con.execute("DROP TABLE report_counts")
    con.execute("DROP TABLE stage_stays")
    con.execute("DELETE FROM schema_migrations WHERE number = 6")
    con.commit()
    con.close()
    s = Store(store_path)
    try:
        assert differences(s) == []
        assert reports.customer_summary(s).counts["industry"]["manufacturing"] == 1
        assert reports.status_funnel(s).stage("potential").left == 1
    finally:
        s.close()


def test_report_rebuild_repairs_a_store_edited_by_hand(team_store, store_path):
    store = team_store
    ids = build_fixture(store)
    with store.engine.begin() as conn:  # outside crmsync: the counters do not see it
        conn.execute(text("UPDATE customers SET industry = NULL WHERE customer_id = :c"), {"c": ids["A"]})
        conn.execute(text("DELETE FROM stage_stays WHERE record_id = :c"), {"c": ids["B"]})
    assert len(differences(store)) == 3  # 智能制造 one too many, （未填） one too few, B's stays
    assert "已重建" in run("report", "rebuild", "--store", store_path, "--user", "admin")
    assert differences(store) == []
    assert reports.customer_summary(store).counts["industry"][None] == 2


def test_only_an_admin_may_rebuild(team_store, store_path):
    out = run("report", "rebuild", "--store", store_path, "--user", "zhang", code=1)
    assert "无权" in out and "zhang" in out and "Traceback" not in out


def test_changes_synced_from_a_workbook_copy_are_counted(team_store, tmp_path):
    """Sync writes most changes in bulk; those the report tables follow (status, industry,
    region, deletes) are kept as well."""
    from crmsync.sync_copy import checkout, ingest_copy
    from test_sync_copy import clear_row, edit, row_of

    store = team_store
    ids = build_fixture(store)
    z, w = tmp_path / "zhang.xlsm", tmp_path / "wang.xlsm"
    checkout(store, "zhang", z)
    checkout(store, "wang", w)
    edit(z, row_of(z, ids["B"]), 客户状态="成交客户", 所属行业="智能制造", 城市="杭州市", 省份="浙江省",
         变更原因="签约")
    edit(z, row_of(z, ids["E"]), 备注="只改备注")  # the bulk path
    result = ingest_copy(store, z, "zhang")
    assert result.applied == 2, result.message
    clear_row(w, row_of(w, ids["D"]))
    assert ingest_copy(store, w, "wang").deleted == 1
    assert differences(store) == []
    intent = reports.status_funnel(store).stage("intent")
    assert intent.left == 3  # A, C and now B left 意向客户
    assert reports.customer_summary(store).regions[("浙江省", "杭州市")] == 2


def test_the_admin_activity_from_the_counters_is_the_teams_added_up(team_store):
    """Everyone's activity per owner comes from the per-day counters and the stage stays, a
    manager's from the records: east and south together are the admin's, day bounds included."""
    store = team_store
    ids = build_fixture(store)
    with store.transaction("admin", "import") as tx:
        south = tx.create_many("customer", [customer(customer_name=f"南方{i}公司", owner="liu") for i in range(3)])
    add_followup(store, "liu", south[0], {"method": "电话", "content": "初访", "follow_time": "2024-05-21 09:00"})
    change_status(store, "admin", south[1], "成交客户", reason="签约")
    with store.transaction("admin") as tx:
        tx.delete("followup", tx.create("followup", {"customer_id": ids["A"], "user": "zhang", "method": "电话",
                                                      "content": "记错了", "follow_time": "2024-05-02 10:00"})["follow_id"])
    for start, end in ((date(2024, 1, 1), date(2024, 5, 21)), (date(2024, 5, 8), date(2024, 5, 15)),
                       (date(2024, 1, 31), date(2024, 1, 31))):
        everyone = reports.owner_activity(store, None, start, end)
        teams = sorted(reports.owner_activity(store, store.user("wang"), start, end)
                       + reports.owner_activity(store, store.user("chen"), start, end), key=lambda a: a.owner)
        assert everyone == teams, (start, end)
    week = {a.owner: a for a in reports.owner_activity(store, None, date(2024, 5, 8), date(2024, 5, 15))}
    assert (week["zhang"].followups, week["zhang"].new_customers) == (3, 0)  # B 05-08, A 05-10, B 05-15
    assert differences(store) == []
