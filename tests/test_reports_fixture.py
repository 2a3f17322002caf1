"""The hand-computed fixture the report, reminder and dashboard tests share (no tests here).

East team: manager wang, reps zhang and li (conftest.team_store).  Every change is stamped at the
time the clock is set to, so the audit log holds known stage durations:

    created 2024-01-01 10:00  A zhang 智能制造 浙江省/杭州市 展会推荐 VIP  潜在  累计 600,000
                              B zhang 软件开发 上海市/上海市 线上推广 普通 潜在
                              C li    智能制造 浙江省/宁波市 转介绍   重要 潜在
                              D li    (no industry; mobile later removed in SQL: no contact)  潜在
                              F li    智能制造 成交客户 (created won) 累计 50,000, never contacted
    created 2024-05-20 10:00  E zhang 软件开发 潜在 累计 150,000 (industry later set to 'bogus' in SQL)
    2024-01-11 A → 意向 (10 d as 潜在)     2024-01-21 B → 意向 (20 d)
    2024-01-31 A → 成交 (20 d as 意向)     2024-02-05 C → 意向 (35 d)
    2024-02-10 C → 流失, 价格过高 (5 d as 意向)
    deal A: 线索 01-01 → 需求确认 01-05 (4 d) → 报价 01-07 (2 d) → 签约 01-27 (20 d); contract end 2024-05-22
    deal B: 线索 01-01 → 需求确认 01-02 (1 d) → 报价 01-12 (10 d)
    follow-ups: A 05-10 09:00 (next 05-20 09:00); B 05-01, 05-08, 05-15 (next 05-23 14:00)
    B has a contact born 1990-05-24.

Then "now" is 2024-05-21 10:00.
"""

from __future__ import annotations

from crmsync import clock, report_tables
from crmsync.followups import add_followup, change_status
from records import customer

NOW = "2024-05-21 10:00:00"


def at(moment: str) -> None:
    clock.set_now(moment)


def build_fixture(store) -> dict[str, str]:
    """Fill a team_store with the fixture; return the ids by letter (A…F, dealA, dealB)."""
    ids: dict[str, str] = {}
    at("2024-01-01 10:00:00")
    base = {"customer_level": "普通客户", "source": "线上推广"}
    specs = {
        "A": dict(owner="zhang", industry="智能制造", province="浙江省", city="杭州市", source="展会推荐",
                  customer_level="VIP客户", total_amount=600000),
        "B": dict(owner="zhang", industry="软件开发", province="上海市", city="上海市"),
        "C": dict(owner="li", industry="智能制造", province="浙江省", city="宁波市", source="转介绍",
                  customer_level="重要客户"),
        "D": dict(owner="li"),
        "F": dict(owner="li", industry="智能制造", status="成交客户", total_amount=50000),
    }
    for key, spec in specs.items():
        values = customer(customer_name=f"客户{key}有限公司", **{**base, **spec})
        ids[key] = store.create("customer", values, user="admin")["customer_id"]
    with store.transaction("admin") as tx:
        tx.create("contact", {"customer_id": ids["B"], "name": "王五", "birthday": "1990-05-24"})
        ids["dealA"] = tx.create("deal", {"customer_id": ids["A"], "product": "CRM 专业版", "amount": 10000,
                                          "stage": "线索", "contract_end": "2024-05-22"})["deal_id"]
        ids["dealB"] = tx.create("deal", {"customer_id": ids["B"], "product": "CRM 标准版", "amount": 5000,
                                          "stage": "线索"})["deal_id"]
    for moment, deal, stage in (("2024-01-02 10:00:00", "dealB", "需求确认"), ("2024-01-05 10:00:00", "dealA", "需求确认"),
                                ("2024-01-07 10:00:00", "dealA", "报价"), ("2024-01-12 10:00:00", "dealB", "报价"),
                                ("2024-01-27 10:00:00", "dealA", "签约")):
        at(moment)
        store.update("deal", ids[deal], {"stage": stage})
    for moment, key, status in (("2024-01-11 10:00:00", "A", "意向客户"), ("2024-01-21 10:00:00", "B", "意向客户"),
                                ("2024-01-31 10:00:00", "A", "成交客户"), ("2024-02-05 10:00:00", "C", "意向客户")):
        at(moment)
        change_status(store, "admin", ids[key], status, reason="客户确认")
    at("2024-02-10 10:00:00")
    change_status(store, "admin", ids["C"], "流失客户", lost_reason="价格过高", reason="客户选择竞品")
    at("2024-05-20 10:00:00")
    ids["E"] = store.create("customer", customer(customer_name="客户E有限公司", owner="zhang", industry="软件开发",
                                                 total_amount=150000, **base), user="admin")["customer_id"]
    for moment, key, when, nxt in (
            ("2024-05-01 15:00:00", "B", "2024-05-01 15:00", "2024-05-05 10:00"),
            ("2024-05-08 15:00:00", "B", "2024-05-08 15:00", "2024-05-12 10:00"),
            ("2024-05-10 09:00:00", "A", "2024-05-10 09:00", "2024-05-20 09:00"),
            ("2024-05-15 15:00:00", "B", "2024-05-15 15:00", "2024-05-23 14:00")):
        at(moment)
        add_followup(store, "zhang", ids[key], {"method": "电话", "content": "沟通方案", "follow_time": when,
                                                "next_time": nxt})
    with store.engine.begin() as conn:  # legacy data the checks should catch
        conn.exec_driver_sql("UPDATE customers SET industry = 'bogus' WHERE customer_id = ?", (ids["E"],))
        conn.exec_driver_sql("UPDATE customers SET mobile = NULL WHERE customer_id = ?", (ids["D"],))
        report_tables.rebuild(conn)  # edited outside crmsync: what `crmsync report rebuild` does
    at(NOW)
    return ids
