"""The import's fast paths give the answers of the plain ones: address prefixes reused instead of
asking cpca again, validation over columns instead of row dicts, duplicate search over the few
rows whose values repeat."""

from __future__ import annotations

import random
from datetime import datetime

from openpyxl import Workbook

import crmsync.address as address
from crmsync.address import Address, split_addresses
from crmsync.importer import apply_import, plan_import
from crmsync.schema import entity
from crmsync.validate import validate_table

TRICKY = [
    "杭州西湖文三路1号",  # abbreviations only: 西湖 is a district found by its short name
    "浙江省杭州市西湖区", "浙江省杭州市西湖区文三路1号", "浙江省杭州市西湖文三路2号",
    "浙江省杭州市西湖区域路3号",  # 西湖区 followed by 域: the full district name still wins
    "上海市徐汇区漕溪北路88号", "上海徐汇区漕溪北路89号", "北京市朝阳区建国路1号", "朝阳区建国路2号",
    "吉林省吉林市船营区1号", "吉林市船营区2号", "内蒙古呼和浩特市新城区3号", "新城区4号",
    "广西南宁青秀区民族大道5号", "浙江省", "杭州市", "abc", "  ", "江苏省南京市鼓楼区 中山路6号 ",
]


def _addresses(n: int, seed: int = 3) -> list:
    rnd = random.Random(seed)
    stems = ["浙江省杭州市西湖区", "杭州市西湖区", "浙江杭州西湖", "上海市上海市徐汇区", "上海徐汇", "北京市朝阳区",
             "江苏省苏州市工业园区", "江苏省南京市鼓楼区", "广东省深圳市南山区", "福建省厦门市思明区", "新城区",
             "吉林省吉林市船营区", "内蒙古呼和浩特市新城区", "浙江省杭州市西湖"]
    streets = ["文三路", "人民路", "区府路", "中山路", "西湖大道", "新城大街", "南山路"]
    out = [f"{rnd.choice(stems)}{rnd.choice(streets)}{rnd.randrange(1, 400)}号" for _ in range(n)]
    return out + TRICKY + [None, ""] + TRICKY[:5]


def test_reused_prefixes_give_what_cpca_gives_for_each_address(monkeypatch):
    import cpca

    texts = _addresses(1500)
    plain = split_addresses(texts, reuse_prefixes=False)
    asked: list[int] = []
    transform = cpca.transform
    monkeypatch.setattr(cpca, "transform", lambda xs, *a, **k: asked.append(len(xs)) or transform(xs, *a, **k))
    monkeypatch.setattr(address, "_BATCH", 50)  # several rounds of learning
    reused = split_addresses(texts)
    assert reused == plain
    assert sum(asked) < len({t for t in texts if t}) / 2  # most addresses never reached cpca
    by_text = dict(zip(texts, reused))
    assert by_text["浙江省杭州市西湖区文三路1号"] == Address("浙江省", "杭州市", "西湖区", "文三路1号")
    assert by_text["上海市徐汇区漕溪北路88号"] == Address("上海市", "上海市", "徐汇区", "漕溪北路88号")
    assert by_text["abc"] == Address(None, None, None, "abc")
    assert by_text[None] == by_text[""] == Address(None, None, None, None)


def _xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def test_duplicates_far_apart_in_a_large_file_are_found_and_unique_rows_pass(store, tmp_path):
    rows = [["客户名称", "手机号", "邮箱"]]
    for i in range(600):
        rows.append([f"唯一公司{i}号有限公司", f"139{i:08d}" if i % 3 else None, f"u{i}@example.com"])
    rows[400] = ["唯一公司7号股份有限公司", "13700000001", None]  # row 401: row 9's name, another suffix
    rows[500] = ["别名公司", "13900000010", None]  # row 501: row 12's mobile
    rows[550] = ["无手机公司", None, "x@example.com"]  # row 551: no mobile, like many others: no match
    plan = plan_import(store, _xlsx(tmp_path / "big.xlsx", rows))
    assert {d.row: d.matches for d in plan.duplicates} == {401: ("第9行",), 501: ("第12行",)}
    assert plan.summary()["valid"] == 598
    apply_import(store, plan)
    assert store.count("customer") == 598


def _row_dicts(rows, header_fields):
    return [{f: v for f, v in zip(header_fields, r)} for r in rows]


def test_column_validation_reports_what_row_validation_reports(store, tmp_path):
    rnd = random.Random(11)
    header = ["客户名称", "手机号", "邮箱", "首次合作日期", "客户等级", "客户状态", "客户类型"]
    fields = ["customer_name", "mobile", "email", "first_deal_date", "customer_level", "status", "customer_type"]
    rows = []
    for i in range(300):
        mobile = rnd.choice([13800000000.0 + i, f"138{i:08d}", f"１３８{i:08d}", "123", None])
        email = rnd.choice([f"a{i}@example.com", "foo@", None])
        deal = rnd.choice([datetime(2023, 5, 1 + i % 28), "2023/5/21", "2023年6月1日", "2023-02-30", None])
        rows.append([f"公司{i}有限公司", mobile, email, deal, rnd.choice(["VIP", "重要", "普通", "未知级别"]),
                     rnd.choice(["意向", "潜在", "成交", "流失"]), rnd.choice(["企业", "企业客户"])])
    plan = plan_import(store, _xlsx(tmp_path / "r.xlsx", [header] + rows), keep_duplicates=True)
    assert [plan.columns.by_field()[f].header for f in fields] == header
    reference = validate_table(_row_dicts(rows, fields), entity("customer"), row_numbers=range(2, 302))
    assert {(p.row, p.field, p.code) for p in plan.problems} == {(p.row, p.field, p.code) for p in reference.problems}
    bad = {p.row for p in reference.problems}
    assert plan.records == [r for n, r in zip(range(2, 302), reference.rows) if n not in bad]
