"""The faster report paths give the same answers: the grouped customer summary (lists, region, due
counts, months), the list checks of data quality read from its groups, the contact frequency of
the segments, and the covering indexes a store gets from migration 5 (tests/test_reports_fixture.py
holds the hand-computed data)."""

from __future__ import annotations

from sqlalchemy import text

from crmsync import reports
from crmsync.schema import entity
from crmsync.store import Store
from crmsync.tables import REPORT_INDEXES
from test_reports_fixture import build_fixture


def test_summary_counts_due_follow_ups_and_months_in_one_grouped_pass(team_store):
    store = team_store
    ids = build_fixture(store)
    s = reports.customer_summary(store)
    assert s.total == 6
    # A: next follow-up 05-20 09:00 (passed); B: 05-23 14:00 (within 3 days); C is lost
    assert (s.overdue, s.due) == (1, 1)
    assert dict(s.months)["2024-01"] == 5 and dict(s.months)["2024-05"] == 1 and sum(n for _, n in s.months) == 6
    assert s.counts["status"] == {"potential": 2, "intent": 1, "won": 2, "lost": 1, None: 0, "?": 0}
    assert s.regions[("浙江省", "杭州市")] == 1 and s.regions[(None, None)] == 3
    # the region distribution from the summary's groups is the one its own query gives
    assert reports.distribution(store, by="region", summary=s) == reports.distribution(store, by="region")
    assert s.values["industry"]["bogus"][0] == 1
    # a scoped summary reads the records: the same counts, and the smallest id of each value
    assert reports.customer_summary(store, store.user("zhang")).values["industry"]["bogus"] == (1, ids["E"])


def test_all_reports_agree_with_each_report_alone(team_store):
    store = team_store
    build_fixture(store)
    every = reports.all_reports(store, duplicates=False)
    assert every.region == reports.distribution(store, by="region")
    assert every.industry == reports.distribution(store, by="industry")
    assert every.quality == reports.data_quality(store, duplicates=False)
    assert every.segments == reports.segments(store)
    assert every.trend == reports.new_customers_by_month(store)
    assert (every.customers, every.overdue, every.due) == (6, 1, 1)


def test_list_checks_read_the_lists_as_they_are_now(team_store):
    store = team_store
    ids = build_fixture(store)
    store.enums()  # cached in the store: the check must not answer from this copy
    with store.engine.begin() as conn:  # the admin retires 软件开发 (B's industry; E has 'bogus')
        conn.execute(text("UPDATE enums SET active = false WHERE list_key = 'industry' AND key = 'software'"))
    q = {c.key: (c.count, c.example) for c in reports.data_quality(store, duplicates=False)}
    assert q["invalid_industry"] == (2, min(ids["B"], ids["E"]))
    assert q["invalid_status"] == (0, None) and q["invalid_level"] == (0, None)


def test_a_rep_sees_only_their_customers_in_the_list_checks(team_store):
    store = team_store
    ids = build_fixture(store)
    zhang, li = store.user("zhang"), store.user("li")
    assert {c.key: c.count for c in reports.data_quality(store, zhang, duplicates=False)}["invalid_industry"] == 1
    q = {c.key: (c.count, c.example) for c in reports.data_quality(store, li, duplicates=False)}
    assert q["invalid_industry"] == (0, None) and q["missing_contact"] == (1, ids["D"])


def test_deleted_and_old_follow_ups_do_not_make_a_customer_promising(team_store):
    store = team_store
    ids = build_fixture(store)
    assert {s.key: s.customers for s in reports.segments(store)}["potential"] == 2  # B (3 follow-ups) and E
    with store.engine.connect() as conn:
        first = conn.execute(text(f"SELECT {entity('followup').id_field} FROM followups WHERE customer_id = :c "
                                  "ORDER BY follow_time"), {"c": ids["B"]}).scalar()
    with store.transaction("admin") as tx:
        tx.delete("followup", first)
    got = {s.key: s.customers for s in reports.segments(store)}
    assert got["potential"] == 1 and got["normal"] == 2
    store.set_setting("segments", {"active_followups": 2, "window_days": 10})  # B: 1 follow-up since 05-11
    assert {s.key: s.customers for s in reports.segments(store)}["potential"] == 1
    store.set_setting("segments", {"active_followups": 0})  # everyone not risk or high is promising
    assert {s.key: s.customers for s in reports.segments(store)}["normal"] == 0


def test_an_older_store_gets_the_report_indexes_and_the_reports_use_them(tmp_path):
    path = tmp_path / "old.db"
    Store(path, create=True).close()
    with Store(path).engine.begin() as conn:  # as a store from before migration 5
        for index in REPORT_INDEXES:
            conn.execute(text(f"DROP INDEX {index.name}"))
        conn.execute(text("DELETE FROM schema_migrations WHERE number = 5"))
    store = Store(path)
    with store.engine.connect() as conn:
        have = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert {i.name for i in REPORT_INDEXES} <= have
    assert reports.all_reports(store, duplicates=False).customers == 0
    store.close()

