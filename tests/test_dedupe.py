"""The duplicate finder: names, scoring, blocking, clustering, and matching against the store."""

from __future__ import annotations

import numpy as np
import pytest
from records import customer

from crmsync import dedupe, lookup, udfs
from crmsync.dedupe import Config, FieldRule, customer_config, find_duplicates
from crmsync.dedupe_model import Model, Prepared, candidate_pairs, score_pairs
from crmsync.names import company_key, person_key, simplified


@pytest.mark.parametrize("a,b", [
    ("上海示例科技有限公司", "示例科技（上海）股份有限公司"),
    ("上海示例科技有限公司", "上海示例科技有限責任公司"),  # traditional 責
    ("ＡＢＣ科技有限公司", "abc 科技"),
    ("臺灣積體電路製造股份有限公司", "台湾积体电路制造有限公司"),
    ("Acme Trading Co., Ltd.", "ACME TRADING LIMITED"),
    ("华为技术有限公司北京办事处", "华为技术北京办事处"),
])
def test_company_names_compare_without_suffix_region_width_and_script(a, b):
    assert company_key(a).core == company_key(b).core


def test_company_key_keeps_branch_and_region_apart_from_the_core():
    k = company_key("华为技术有限公司上海分公司")
    assert (k.core, k.branch) == ("华为技术", "上海分公司")
    assert company_key("示例科技（北京）有限公司").region == "北京"
    assert company_key("有限公司").core == "有限公司"  # nothing but a suffix stays itself
    assert company_key("上海电气集团股份有限公司").core == "上海电气"  # too short to lose its region


def test_person_names_fold_script_width_and_latin_word_order():
    assert person_key("張三") == person_key("张三")
    assert person_key("Zhang San") == person_key("san  ZHANG")
    assert simplified("體驗") == "体验"


ROWS = [
    customer(customer_name="上海示例科技有限公司", mobile="13812345678", city="上海"),
    customer(customer_name="示例科技（上海）股份有限公司", mobile="+86 138-1234-5678", contact_name="张三"),
    customer(customer_name="上海示例科技有限責任公司", mobile=None, contact_name="張三", city="上海市"),
    customer(customer_name="杭州云帆软件有限公司", mobile="13900001111", contact_name="李四"),
    customer(customer_name="深圳星辰电子有限公司", mobile="13700002222", contact_name="王五"),
    customer(customer_name="深圳星辰电子有限公司上海分公司", mobile="13600003333", contact_name="赵六"),
]


def test_finds_the_three_records_of_one_company_with_evidence():
    result = find_duplicates(ROWS)
    assert result.clusters == [[0, 1, 2]]
    pairs = {(m.a, m.b): m for m in result.pairs}
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    assert "手机号相同" in pairs[(0, 1)].evidence and "客户名称相同" in pairs[(0, 1)].evidence
    assert all(0.9 <= m.score <= 1 for m in result.pairs)


def test_a_branch_is_not_its_head_office_and_unrelated_rows_stay_apart():
    result = find_duplicates(ROWS[3:])
    assert result.pairs == [] and result.clusters == []


def test_empty_and_tiny_inputs():
    assert find_duplicates([]).pairs == []
    assert find_duplicates([customer()]).clusters == []
    assert find_duplicates([{"customer_name": None}, {"customer_name": None}]).pairs == []


def test_one_weak_link_does_not_chain_two_groups():
    # two people who share only a surname and a city, each with an exact twin; the bridge record
    # agrees with one of each group on a little.
    cfg = Config(
        fields=(FieldRule("name", "person"), FieldRule("id", "id"), FieldRule("city", "place"),
                FieldRule("born", "date")),
        blocks=(("city",), ("id",)), min_population=1000)
    rows = [
        {"name": "zhang wei", "id": "110101199001011234", "city": "beijing", "born": "19900101"},
        {"name": "zhang wei", "id": "110101199001011234", "city": "beijing", "born": "19900101"},
        {"name": "zhang wei", "id": None, "city": "beijing", "born": "19900101"},  # the bridge
        {"name": "zhang wei", "id": "310101198505054321", "city": "beijing", "born": "19850505"},
        {"name": "zhang wei", "id": "310101198505054321", "city": "beijing", "born": "19850505"},
    ]
    clusters = find_duplicates(rows, cfg).clusters
    assert [0, 1] in [c[:2] for c in clusters] and [3, 4] in [c[-2:] for c in clusters]
    assert not any({0, 3} <= set(c) for c in clusters)


def test_blocking_stays_far_below_all_pairs():
    rows = [customer(customer_name=f"公司{i:05d}", mobile=f"138{i:08d}", contact_name=f"联系人{i}")
            for i in range(3000)]
    p = Prepared(rows, customer_config())
    i, j, _ = candidate_pairs(p)
    assert i.size < 3000 * 10  # all pairs would be 4.5 million
    assert np.all(i < j)


def test_pruned_and_full_scoring_agree_on_what_matches():
    rng = np.random.default_rng(3)
    rows = [customer(customer_name=f"示例{rng.integers(0, 50)}科技有限公司", mobile=f"1381234{rng.integers(0, 30):04d}",
                     contact_name=f"张{rng.integers(0, 5)}") for _ in range(400)]
    cfg = customer_config()
    p = Prepared(rows, cfg)
    model = Model(p)
    i, j, _ = candidate_pairs(p)
    keep_p, w_p, _ = score_pairs(model, p, i, p, j, prune_below=model.threshold)
    keep_f, w_f, _ = score_pairs(model, p, i, p, j)
    full = keep_f[w_f >= model.threshold]
    assert set(keep_p.tolist()) == set(full.tolist())
    assert np.allclose(w_p, w_f[np.isin(keep_f, keep_p)])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        FieldRule("x", "nonsense")


# ---- against the store --------------------------------------------------------------------------

@pytest.fixture
def stocked(team_store):
    with team_store.transaction("admin") as tx:
        a = tx.create("customer", customer(customer_name="上海示例科技有限公司", mobile="13812345678", owner="zhang"))
        b = tx.create("customer", customer(customer_name="杭州云帆软件有限公司", mobile="13900001111", owner="li"))
        tx.create("contact", {"customer_id": b["customer_id"], "name": "王五", "mobile": "13655556666"})
    return team_store, a["customer_id"], b["customer_id"]


def test_store_matches_per_incoming_row_best_first(stocked):
    store, a, b = stocked
    found = dedupe.find_store_matches(store, [
        {"customer_name": "示例科技（上海）股份有限公司"},
        {"customer_name": "别的公司", "mobile": "136 5555 6666"},  # a contact's mobile
        {"customer_name": "完全不同的公司", "mobile": "13000000000"},
    ])
    assert [m.a for m in found[0]] == [a] and "客户名称相同" in found[0][0].evidence
    assert [m.a for m in found[1]] == [b] and found[1][0].b == 1
    assert found[2] == []


def test_store_index_follows_changes_and_skips_deleted(stocked):
    store, a, b = stocked
    assert dedupe.customer_matches(store, {"mobile": "13812345678"})[0][0] == a
    with store.transaction("admin") as tx:
        tx.delete("customer", a, reason="测试")
    assert dedupe.customer_matches(store, {"mobile": "13812345678"}) == []
    with store.transaction("admin") as tx:
        tx.restore("customer", a, reason="测试")
    assert dedupe.customer_matches(store, {"mobile": "138-1234-5678"})[0][0] == a
    assert dedupe.customer_matches(store, {}) == []


def test_crm_dupes_uses_the_engine_for_near_names(stocked, store_path, monkeypatch):
    store, a, b = stocked
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    lookup.close_all()
    try:
        assert udfs.CRM_DUPES("示例科技（上海）有限公司", None) == a  # region in brackets
        assert udfs.CRM_DUPES("上海示例科技有限責任公司", None) == a  # traditional characters
        assert udfs.CRM_DUPES("别的公司", 13655556666.0) == b  # a contact's mobile held as a number
        assert udfs.CRM_DUPES("别的公司", "13000000000") == ""
    finally:
        lookup.close_all()
