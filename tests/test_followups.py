"""Follow-ups and status changes on a real store: what moves with them, what is refused."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crmsync import clock
from crmsync.cli import app
from crmsync.errors import InvalidInput, PermissionDenied
from crmsync.followups import add_followup, change_status
from records import customer


@pytest.fixture
def cid(team_store):
    return team_store.create("customer", customer(owner="zhang"), user="admin")["customer_id"]


def test_adding_a_followup_moves_the_customers_dates(team_store, cid):
    f = add_followup(team_store, "zhang", cid, {"method": "电话", "content": "确认预算",
                                                 "next_time": "2024-05-24 10:00"})
    assert f["follow_id"].startswith("F20240521") and f["user"] == "zhang"
    assert f["follow_time"] == "2024-05-21 10:00:00"  # now, by default
    c = team_store.get("customer", cid)
    assert c["last_contact_at"] == "2024-05-21 10:00:00"
    assert c["next_follow_up"] == "2024-05-24 10:00:00"
    fields = {e["field"] for e in team_store.history("customer", cid)}
    assert {"last_contact_at", "next_follow_up"} <= fields  # versioned and audited like any change


def test_an_older_followup_logged_late_leaves_the_dates_alone(team_store, cid):
    add_followup(team_store, "zhang", cid, {"method": "电话", "content": "新", "next_time": "2024-05-30 10:00"})
    add_followup(team_store, "zhang", cid, {"method": "拜访", "content": "上周的拜访",
                                            "follow_time": "2024-05-14 15:00", "next_time": "2024-05-16 10:00"})
    c = team_store.get("customer", cid)
    assert c["last_contact_at"] == "2024-05-21 10:00:00" and c["next_follow_up"] == "2024-05-30 10:00:00"
    assert len(team_store.list("followup", where={"customer_id": cid})) == 2


def test_followup_refusals_store_nothing(team_store, cid):
    with pytest.raises(InvalidInput, match="下次跟进时间"):
        add_followup(team_store, "zhang", cid, {"method": "电话", "content": "x", "next_time": "2024-05-01 10:00"})
    with pytest.raises(PermissionDenied):
        add_followup(team_store, "li", cid, {"method": "电话", "content": "不是我的客户"})
    with pytest.raises(InvalidInput):
        add_followup(team_store, "zhang", cid, {"method": "飞鸽传书", "content": "x"})
    assert team_store.list("followup") == []
    assert team_store.get("customer", cid)["last_contact_at"] is None


def test_status_moves_forward_and_each_change_is_stamped(team_store, cid):
    clock.set_now("2024-05-22 09:00:00")
    change_status(team_store, "zhang", cid, "意向", reason="有预算")
    clock.set_now("2024-06-01 09:00:00")
    c = change_status(team_store, "zhang", cid, "成交客户", reason="签约")
    assert c["status"] == "won"
    stamps = [(e["at"], e["old_value"], e["new_value"]) for e in team_store.history("customer", cid)
              if e["field"] == "status"]
    assert stamps == [("2024-05-22 09:00:00", "potential", "intent"), ("2024-06-01 09:00:00", "intent", "won")]
    with pytest.raises(InvalidInput, match="不能从“成交客户”退回“意向客户”"):
        change_status(team_store, "zhang", cid, "意向客户", reason="x")


def test_lost_needs_a_lost_reason_and_can_come_back(team_store, cid):
    with pytest.raises(InvalidInput, match="流失原因"):
        change_status(team_store, "zhang", cid, "流失客户", reason="不做了")
    with pytest.raises(InvalidInput, match="不在列表中"):
        change_status(team_store, "zhang", cid, "流失客户", lost_reason="心情不好", reason="不做了")
    c = change_status(team_store, "zhang", cid, "流失", lost_reason="价格", reason="嫌贵")
    assert (c["status"], c["lost_reason"]) == ("lost", "price")
    assert change_status(team_store, "zhang", cid, "意向客户", reason="重新联系")["status"] == "intent"
    with pytest.raises(PermissionDenied, match="原因"):
        change_status(team_store, "zhang", cid, "成交客户")  # a core field: a reason is required
    with pytest.raises(InvalidInput, match="不在列表中"):
        change_status(team_store, "zhang", cid, "VIP", reason="x")


def test_followup_with_a_status_change_is_one_transaction(team_store, cid):
    add_followup(team_store, "zhang", cid, {"method": "拜访", "content": "客户确认采购意向"}, status="意向客户")
    c = team_store.get("customer", cid)
    assert c["status"] == "intent" and c["last_contact_at"] == "2024-05-21 10:00:00"
    reasons = {e["reason"] for e in team_store.history("customer", cid) if e["field"] == "status"}
    assert reasons == {"客户确认采购意向"}  # the content is the reason when none is given
    with pytest.raises(InvalidInput):
        add_followup(team_store, "zhang", cid, {"method": "电话", "content": "退回"}, status="潜在客户")
    assert len(team_store.list("followup")) == 1  # the refused status took its follow-up with it


def test_cli_followup_add(team_store, store_path, cid):
    runner = CliRunner()
    result = runner.invoke(app, ["followup", "add", cid, "--content", "电话确认预算", "--next-time", "2024-05-24 10:00",
                                 "--status", "意向客户", "--store", str(store_path), "--user", "zhang"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("F20240521")
    assert team_store.get("customer", cid)["next_follow_up"] == "2024-05-24 10:00:00"
    bad = runner.invoke(app, ["followup", "add", "C209901010001", "--content", "x", "--store", str(store_path)])
    assert bad.exit_code == 1
    assert "C209901010001 不存在" in bad.output and "Traceback" not in bad.output


def test_new_followup_button_adds_a_row_for_the_customer(committed, tmp_path):
    from crmsync.actions_reports import new_followup
    from crmsync.book_file import FileBook

    text = new_followup(committed, "C202405210001", user="zhang")
    assert "C202405210001" in text
    table = FileBook(committed).read_table("跟进记录")
    row = table.rows[-1]
    assert "C202405210001" in row and "zhang" in row
    with pytest.raises(InvalidInput, match="选中"):
        new_followup(committed)
