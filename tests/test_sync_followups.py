"""A follow-up typed in a copy does what `crmsync followup add` does to its customer."""

from __future__ import annotations

from test_sync_copy import checkout, edit, ingest_copy, row_of


def test_a_synced_follow_up_moves_the_customers_next_follow_up_and_last_contact(team_store, tmp_path):
    store = team_store
    cid = store.create("customer", {"customer_name": "回访客户有限公司", "customer_type": "企业客户",
                                    "mobile": "13811112222", "owner": "zhang"}, user="zhang")["customer_id"]
    z = tmp_path / "zhang.xlsm"
    checkout(store, "zhang", z)
    edit(z, 2, sheet="跟进记录", 客户编号=cid, 跟进时间="2024-05-20 10:00", 跟进方式="电话",
         跟进内容="报价已发", 下次跟进时间="2024-05-23 09:00")
    result = ingest_copy(store, z, "zhang", write_back=True)
    assert result.created == 1, result.details
    customer = store.get("customer", cid)
    assert customer["next_follow_up"].startswith("2024-05-23")
    assert customer["last_contact_at"].startswith("2024-05-20")
    # the copy learns the new dates on its next sync, without a conflict
    again = ingest_copy(store, z, "zhang", write_back=True)
    assert again.conflicts == 0 and again.refused == 0
    assert row_of(z, cid)
