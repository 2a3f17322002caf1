"""The pure planner (crmsync.sync) on tiny literal tables: base, local and store spelled out."""

from __future__ import annotations

import pytest

from crmsync.access import User
from crmsync.enums import Enums
from crmsync.schema import ENTITIES
from crmsync.sync import (CopyRow, PlanInput, StoreView, align, digest, match_keyless, merge_field,
                          plan_entity, triage)

CUSTOMER = ENTITIES["customer"]
FIELDS = ("customer_name", "customer_type", "mobile", "status", "lost_reason", "owner", "remark")
ZHANG = User("zhang", "rep", "east")
WANG = User("wang", "manager", "east")


@pytest.mark.parametrize("base, local, store, how", [
    ("a", "a", "a", "same"),
    ("a", "a", "b", "take_store"),
    ("a", "b", "a", "apply_local"),
    ("a", "b", "b", "same"),
    ("a", "b", "c", "conflict"),
    (None, "b", None, "apply_local"),
    ("a", None, "a", "apply_local"),  # clearing a cell is an edit
])
def test_merge_field_is_design_section_4(base, local, store, how):
    assert merge_field(base, local, store) == how


def record(version=1, **values):
    rec = {"customer_id": "C1", "customer_name": "甲公司", "customer_type": "enterprise",
           "mobile": "13812345678", "status": "potential", "lost_reason": None, "owner": "zhang",
           "team": "east", "remark": None, "version": version, "deleted": False,
           "updated_by": "wang", "updated_at": "2024-05-21 09:00:00"}
    rec.update(values)
    return rec


def row(n=2, rid="C1", version=1, reason=None, **cells):
    values = {"customer_name": "甲公司", "customer_type": "企业客户", "mobile": "13812345678",
              "status": "潜在客户", "lost_reason": None, "owner": "zhang", "remark": None}
    values.update(cells)
    return CopyRow(n, rid, version, None, values, reason, digest(tuple(values[k] for k in FIELDS)))


def plan(rows, current, base=None, user=ZHANG, known=None):
    view = StoreView(versions={r["customer_id"]: (r["version"], r["deleted"]) for r in current},
                     current={r["customer_id"]: r for r in current}, base=base or {}, known=known or {}, keys={})
    tri = triage(rows, view, fresh={})
    matched = align([r.record_id for r in rows], tri, view)
    inp = PlanInput(CUSTOMER, user, Enums.seed(), fields=FIELDS, new_key=lambda: "k1",
                    users={"zhang": ZHANG, "wang": WANG, "li": User("li", "rep", "east")})
    return plan_entity(tri, view, inp, matched)


def test_a_local_edit_becomes_an_update_and_a_store_edit_flows_in():
    p = plan([row(mobile="13900001111")], [record(2, remark="库中备注")], base={"C1": record(1)})
    (u,) = p.updates
    assert u.changes == {"mobile": "13900001111"} and u.version == 2 and u.old == {"mobile": "13812345678"}
    assert p.writes[2].values == {"remark": "库中备注"}
    assert not p.conflicts and not p.refusals


def test_the_same_field_both_sides_is_a_conflict_and_nothing_is_applied():
    p = plan([row(mobile="13900001111")], [record(2, mobile="13700000000")], base={"C1": record(1)})
    assert not p.updates
    (c,) = p.conflicts
    assert (c.field, c.base, c.local, c.store, c.store_user) == ("mobile", "13812345678", "13900001111",
                                                                  "13700000000", "wang")
    assert p.writes[2].version is None  # the row keeps its base until the conflict is settled


def test_unchanged_rows_cost_a_lookup_and_are_not_merged():
    r = row()
    known = {"C1": (1, r.digest)}
    view = StoreView(versions={"C1": (1, False)}, current={}, base={}, known=known, keys={})
    tri = triage([r], view)
    assert tri.unchanged_count == 1 and tri.merge == [] and tri.new == []


@pytest.mark.parametrize("cells, reason, field, words", [
    ({"owner": "li"}, "转交", "owner", "负责人"),
    ({"customer_name": "乙公司"}, None, "customer_name", "变更原因"),
    ({"status": "流失客户"}, "客户流失", "lost_reason", "流失原因"),
])
def test_refusals_name_the_field_and_why(cells, reason, field, words):
    p = plan([row(reason=reason, **cells)], [record()])
    assert not p.updates
    (f,) = p.refusals
    assert f.field == field and words in f.reason


def test_a_core_change_with_a_reason_is_applied_with_it():
    p = plan([row(reason="工商变更", customer_name="乙公司")], [record()])
    (u,) = p.updates
    assert u.reason == "工商变更" and p.writes[2].clear_reason


def test_a_rep_cannot_sync_another_reps_customer():
    p = plan([row(remark="抢")], [record(owner="li")])
    (f,) = p.refusals
    assert "li" in f.reason and not p.updates


def test_a_manager_may_reassign_within_the_team():
    p = plan([row(owner="li", reason="调整")], [record()], user=WANG)
    assert p.updates[0].changes == {"owner": "li"}


def test_rows_gone_from_the_copy_are_delete_requests():
    current = [record()]
    known = {"C1": (1, "x")}
    rep = plan([], current, known=known)
    assert rep.refusals and not rep.deletes
    manager = plan([], current, user=WANG, known=known)
    assert [d.record_id for d in manager.deletes] == ["C1"]
    moved = plan([], [record(2)], user=WANG, known=known)
    assert moved.conflicts and moved.conflicts[0].field == "deleted"


def test_a_new_row_gets_the_user_as_owner_and_a_client_key():
    p = plan([row(rid=None, version=None, customer_name="新公司", mobile="13711112222")], [])
    (c,) = p.creates
    assert c.values["owner"] == "zhang" and c.client_key == "k1" and c.keyless


def test_keyless_rows_match_what_was_sent_even_edited_and_moved():
    sent = {"customer_name": "新公司", "mobile": "13711112222", "status": "意向客户"}
    remembered = [("k1", "C9", 1, "d-old", 5, sent)]
    edited = CopyRow(8, None, None, None, {**sent, "mobile": "13799998888"}, None, "d-new")
    other = CopyRow(9, None, None, None, {"customer_name": "别的公司", "mobile": "13600000000"}, None, "d-x")
    assert match_keyless([edited, other], remembered) == {8: ("k1", "C9", 1)}
    same = CopyRow(3, None, None, None, dict(sent), None, "d-old")
    assert match_keyless([other, same], remembered) == {3: ("k1", "C9", 1)}


def test_a_problem_the_record_already_had_does_not_block_an_unrelated_edit():
    legacy = record(mobile="12345")  # imported long ago, before the check
    p = plan([row(mobile="12345", remark="新备注")], [legacy])
    assert [u.changes for u in p.updates] == [{"remark": "新备注"}] and not p.refusals
    bad = plan([row(mobile="999")], [record()])
    assert bad.refusals and bad.refusals[0].field == "mobile" and not bad.updates
