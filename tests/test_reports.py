"""Reports and reminders on a real store, checked against the hand-computed fixture
(tests/test_reports_fixture.py: every number below is worked out in its docstring)."""

from __future__ import annotations

from datetime import date

import pytest
from icalendar import Calendar

from crmsync import clock, reports
from crmsync.errors import InvalidInput
from crmsync.ics import calendar_text, fold, write_calendar
from test_reports_fixture import build_fixture


@pytest.fixture
def fx(team_store):
    return team_store, build_fixture(team_store)


def test_status_funnel_counts_conversion_and_median_days(fx):
    store, _ = fx
    f = reports.status_funnel(store)
    assert [(s.label, s.current, s.reached) for s in f.stages] == [
        ("潜在客户", 2, 6), ("意向客户", 1, 4), ("成交客户", 2, 2)]
    assert f.lost == 1
    # reached: everyone started at 潜在; A, B, C (lost from 意向) and F reached 意向; A and F 成交
    assert f.stage("potential").conversion == pytest.approx(4 / 6)
    assert f.stage("intent").conversion == pytest.approx(2 / 4)
    # 潜在 stays that ended: A 10 d, B 20 d, C 35 d → 20; 意向: A 20 d, C 5 d → 12.5
    assert f.stage("potential").median_days == 20.0 and f.stage("potential").left == 3
    assert f.stage("intent").median_days == 12.5 and f.stage("intent").left == 2
    assert f.stage("won").median_days is None


def test_deal_funnel_names_the_slowest_step(fx):
    store, _ = fx
    f = reports.deal_funnel(store)
    assert [(s.key, s.current, s.reached) for s in f.stages] == [
        ("lead", 0, 2), ("needs", 0, 2), ("quote", 1, 2), ("signed", 1, 1), ("paid", 0, 0)]
    assert [s.median_days for s in f.stages] == [2.5, 6.0, 20.0, None, None]
    assert f.stage("quote").conversion == 0.5
    assert f.slowest == "报价 → 签约"


def test_distributions_show_every_list_value_and_the_gaps(fx):
    store, _ = fx
    industry = dict(reports.distribution(store, by="industry"))
    assert industry["智能制造"] == 3 and industry["软件开发"] == 1
    assert industry["（未填）"] == 1 and industry["（不在列表中）"] == 1  # D has none; E's 'bogus'
    assert industry["金融服务"] == 0
    assert dict(reports.distribution(store, by="region")) == {
        "（未填）": 3, "上海市": 1, "浙江省 宁波市": 1, "浙江省 杭州市": 1}
    assert dict(reports.distribution(store, by="customer_level")) == {"普通客户": 4, "VIP客户": 1, "重要客户": 1}
    assert dict(reports.distribution(store, by="source"))["线上推广"] == 4
    with pytest.raises(InvalidInput, match="无法按"):
        reports.distribution(store, by="mobile")


def test_owner_activity_in_a_period(fx):
    store, _ = fx
    jan = reports.owner_activity(store, None, date(2024, 1, 1), date(2024, 1, 31))
    assert [(a.owner, a.followups, a.new_customers, a.conversions) for a in jan] == [
        ("li", 0, 3, 0), ("zhang", 0, 2, 1)]
    last30 = reports.owner_activity(store)  # 2024-04-22 … 2024-05-21
    assert [(a.owner, a.followups, a.new_customers, a.conversions) for a in last30] == [("zhang", 4, 1, 0)]
    with pytest.raises(InvalidInput):
        reports.owner_activity(store, None, date(2024, 2, 1), date(2024, 1, 1))


def test_segments_follow_the_rules_in_order(fx):
    store, _ = fx
    got = {s.key: (s.customers, s.amount) for s in reports.segments(store)}
    # F: won, never contacted → risk; A: 600,000 → high; B: 3 follow-ups in 90 days and E: new with
    # 150,000 → potential; D → normal; C is lost: not segmented
    assert got == {"risk": (1, 50000.0), "high": (1, 600000.0), "potential": (2, 150000.0), "normal": (1, 0.0)}
    store.set_setting("segments", {"active_followups": 4})  # B drops out of 潜力
    got = {s.key: s.customers for s in reports.segments(store)}
    assert got["potential"] == 1 and got["normal"] == 2


def test_data_quality(fx):
    store, ids = fx
    store.set_setting("verify_months", 3)
    q = {c.key: (c.count, c.example) for c in reports.data_quality(store)}
    assert q["missing_contact"] == (1, ids["D"])
    assert q["invalid_industry"] == (1, ids["E"])
    assert q["lost_without_reason"] == (0, None)
    # not updated since 2024-02-20: C (lost 02-10), D and F (created 01-01)
    assert q["not_verified"] == (3, min(ids["C"], ids["D"], ids["F"]))
    labels = [c.label for c in reports.data_quality(store)]
    assert "超过 3 个月未核实" in labels


def test_reports_follow_what_the_user_may_see(fx):
    store, _ = fx
    li = store.user("li")
    assert [(s.current, s.reached) for s in reports.status_funnel(store, li).stages] == [(1, 3), (0, 2), (1, 1)]
    assert reports.customer_summary(store, li).total == 3
    assert reports.all_reports(store, store.user("wang")).customers == 6


def test_reminders_against_fixed_dates(fx):
    store, ids = fx
    zhang = [(r.kind, r.customer_id, r.when, r.days_overdue) for r in reports.reminders(store, store.user("zhang"))]
    assert zhang == [
        ("overdue", ids["A"], "2024-05-20 09:00:00", 1),
        ("due", ids["B"], "2024-05-23 14:00:00", None),
        ("date", ids["A"], "2024-05-22", None),   # contract end
        ("date", ids["B"], "1990-05-24", None),   # birthday, yearly
    ]
    li = reports.reminders(store, store.user("li"))
    assert [(r.kind, r.customer_id) for r in li] == [("no_contact", ids["D"]), ("no_contact", ids["F"])]
    assert li[0].detail == "141 天未联系"
    # the manager sees the team, per owner, overdue first within each owner
    assert [r.owner for r in reports.reminders(store, store.user("wang"))] == ["li"] * 2 + ["zhang"] * 4


def test_reminder_windows_move_with_the_clock_and_the_settings(fx):
    store, ids = fx
    assert [r.kind for r in reports.reminders(store, store.user("zhang"), days=1)] == ["overdue", "date"]
    clock.set_now("2024-05-24 10:00:00")  # B's 05-23 14:00 is now overdue, by 1 day
    kinds = [(r.kind, r.customer_id, r.days_overdue) for r in reports.reminders(store, store.user("zhang"))]
    assert ("overdue", ids["B"], 1) in kinds and ("overdue", ids["A"], 4) in kinds
    store.set_setting("no_contact_days", 200)
    assert reports.reminders(store, store.user("li")) == []
    store.set_setting("remind_dates", [{"field": "customer.nope"}])
    with pytest.raises(InvalidInput, match="remind_dates"):
        reports.reminders(store, store.user("zhang"))
    with pytest.raises(InvalidInput):
        reports.reminders(store, store.user("zhang"), days=-1)


def test_birthday_window_across_new_year(team_store):
    from records import customer

    clock.set_now("2024-12-30 10:00:00")
    c = team_store.create("customer", customer(owner="zhang"), user="admin")["customer_id"]
    with team_store.transaction("admin") as tx:
        tx.create("contact", {"customer_id": c, "name": "新年", "birthday": "1988-01-02"})
        tx.create("contact", {"customer_id": c, "name": "夏天", "birthday": "1988-07-02"})
    found = [r.detail for r in reports.reminders(team_store, team_store.user("zhang")) if r.kind == "date"]
    assert found == ["联系人生日: 新年"]


def test_ics_export_parses_with_a_real_icalendar_library(fx, tmp_path):
    store, ids = fx
    due = reports.reminders(store, store.user("wang"))
    path = write_calendar(tmp_path / "remind.ics", due)
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    cal = Calendar.from_ical(raw)
    events = list(cal.walk("VEVENT"))
    assert len(events) == len(due) == 6
    by_summary = {str(e["SUMMARY"]): e for e in events}
    overdue = by_summary["已逾期：客户A有限公司"]
    assert overdue.decoded("DTSTART").isoformat() == "2024-05-21T09:00:00"  # shown today, at its hour
    assert "已逾期 1 天" in str(overdue["DESCRIPTION"])
    due_b = by_summary["即将到期：客户B有限公司"]
    assert due_b.decoded("DTSTART").isoformat() == "2024-05-23T14:00:00"
    birthday = next(e for e in events if "联系人生日" in str(e["DESCRIPTION"]))
    assert birthday.decoded("DTSTART") == date(2024, 5, 24)  # this year's birthday, all day
    assert len({str(e["UID"]) for e in events}) == 6


def test_ics_text_is_escaped_and_folded_without_breaking_characters():
    from crmsync.reports import Reminder

    r = Reminder("due", "C1", "客户;名称,含\\特殊" + "长" * 40, "zhang", None, "2024-05-22 10:00:00", None, None)
    text = calendar_text([r])
    cal = Calendar.from_ical(text)
    assert str(next(iter(cal.walk("VEVENT")))["SUMMARY"]) == "即将到期：客户;名称,含\\特殊" + "长" * 40
    folded = fold("SUMMARY:" + "汉" * 60)
    assert all(len(p.encode()) <= 75 for p in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == "SUMMARY:" + "汉" * 60


def test_a_long_reminder_list_is_cut_most_urgent_first(fx):
    store, ids = fx
    found = reports.reminders(store, store.user("wang"), limit=1)
    assert [(r.kind, r.customer_id) for r in found if r.kind in ("overdue", "due")] == [("overdue", ids["A"])]
    assert len([r for r in found if r.kind == "no_contact"]) == 1
    store.set_setting("remind_limit", 0)  # 0: everything
    assert len(reports.reminders(store, store.user("wang"))) == 6


def test_a_followup_done_after_its_planned_time_is_not_overdue(fx):
    from crmsync.followups import add_followup

    store, ids = fx
    add_followup(store, "zhang", ids["A"], {"method": "电话", "content": "已回访"})  # no new plan
    kinds = {(r.kind, r.customer_id) for r in reports.reminders(store, store.user("zhang"))}
    assert ("overdue", ids["A"]) not in kinds
