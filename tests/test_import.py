"""Importing legacy customer files into a real store: what lands, what is reported, what is kept."""

from __future__ import annotations

import json

import pytest
from openpyxl import Workbook, load_workbook

from crmsync.errors import InvalidInput, NotFound, PermissionDenied
from crmsync.importer import IMPORTED_KEY, apply_import, plan_import, write_error_workbook
from data_import import messy


def _stored(store) -> dict[str, dict]:
    return {c["customer_name"]: c for c in store.list("customer")}


def _problem_keys(plan) -> set:
    return {(p.row, p.column, p.field, p.code) for p in plan.problems}


def _xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.fixture
def messy_xlsx(tmp_path):
    return messy.build_xlsx(tmp_path / "老客户名单.xlsx")


def test_messy_legacy_workbook_imports_every_good_row_and_reports_every_bad_cell(store, messy_xlsx):
    plan = plan_import(store, messy_xlsx)
    assert plan.header_row == 4  # under a merged title, an export date and a blank row
    assert _problem_keys(plan) == messy.EXPECTED_PROBLEMS
    result = apply_import(store, plan)
    stored = _stored(store)
    assert set(stored) == messy.GOOD_NAMES and len(result.ids) == len(messy.GOOD_NAMES)
    hz = stored["杭州示例网络科技有限公司"]
    assert hz["mobile"] == "13812345678"  # typed as the float 13812345678.0
    assert (hz["first_deal_date"], hz["customer_level"], hz["status"], hz["industry"]) == (
        "2023-05-21", "vip", "intent", "software")  # 2023/5/21, VIP, 意向, 软件
    assert (hz["province"], hz["city"], hz["district"], hz["address"]) == ("浙江省", "杭州市", "西湖区", "文三路100号")
    sh = stored["上海样本贸易有限公司"]  # "  上海样本贸易有限公司 ": trimmed, not rewritten
    assert sh["mobile"] == "13900001111" and sh["first_deal_date"] == "2023-06-01"  # full-width, 2023年6月1日
    assert stored["苏州合并单元格制造有限公司"]["first_deal_date"] == "2023-08-15"  # a real Excel date
    wx = stored["无锡合并二号机械有限公司"]
    assert wx["industry"] == "manufacturing"  # from the cell merged over rows 8-9
    assert wx["mobile"] == "13700002222" and wx["first_deal_date"] == "2023-09-01"  # 137-0000-2222, 2023.9.1
    assert hz[IMPORTED_KEY] == {"微信号": "wx_hz01"}  # the unmapped column is kept
    assert any("I8:I9" in n for n in plan.notes)


def test_the_same_data_as_gbk_csv_gives_the_same_result(tmp_path, store_path, messy_xlsx):
    from crmsync.store import Store

    results = []
    for i, path in enumerate([messy_xlsx, messy.build_csv(tmp_path / "老客户名单.csv", "gbk")]):
        with Store(tmp_path / f"s{i}.db", create=True) as s:
            plan = plan_import(s, path)
            apply_import(s, plan)
            rows = {n: {k: v for k, v in c.items() if k not in ("customer_id", "created_at", "updated_at")}
                    for n, c in _stored(s).items()}
            results.append((_problem_keys(plan), rows, plan.source.encoding))
    assert results[0][:2] == results[1][:2]
    assert results[1][2] == "GBK"


@pytest.mark.parametrize("encoding,label", [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM)"),
                                            ("gb18030", "GBK"), ("utf-16", "UTF-16 LE")])
def test_csv_encodings_are_detected_and_named(store, tmp_path, encoding, label):
    path = messy.build_csv(tmp_path / "list.csv", encoding)
    plan = plan_import(store, path)
    assert plan.source.encoding == label
    assert _problem_keys(plan) == messy.EXPECTED_PROBLEMS
    assert {r["customer_name"] for r in plan.records} == messy.GOOD_NAMES


def test_gb18030_only_characters_are_read(store, tmp_path):
    path = tmp_path / "gb.csv"  # 𠀀 (U+20000) exists in GB18030, not in GBK
    path.write_bytes("客户名称,手机号\n𠀀记商行,13812345678\n".encode("gb18030"))
    plan = plan_import(store, path)
    assert plan.source.encoding == "GB18030" and plan.records[0]["customer_name"] == "𠀀记商行"


def test_dry_run_changes_nothing(store, messy_xlsx):
    before = store.count("customer")
    plan = plan_import(store, messy_xlsx)
    assert plan.summary() == {"rows": 8, "valid": 5, "invalid": 3, "duplicates": 0, "problems": 4}
    assert store.count("customer") == before == 0


def test_unmapped_columns_are_listed_and_kept(store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机", "微信号", "QQ"], ["甲公司", "13812345678", "wx1", 12345.0]])
    plan = plan_import(store, path)
    assert plan.unmapped == ["微信号", "QQ"]
    apply_import(store, plan)
    record = store.list("customer")[0]
    assert record[IMPORTED_KEY] == {"微信号": "wx1", "QQ": 12345}
    created = [h for h in store.history("customer", record["customer_id"]) if h["action"] == "create"][0]
    assert created["new_value"][IMPORTED_KEY] == {"微信号": "wx1", "QQ": 12345}  # audited as stored
    assert store.verify_audit().ok


def test_map_overrides_header_matching(store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["单位全称XYZ", "电话号码甲"], ["甲公司", "13812345678"]])
    plan = plan_import(store, path, mapping=["单位全称XYZ=customer_name", "电话号码甲=手机号"])
    assert plan.records[0]["customer_name"] == "甲公司" and plan.records[0]["mobile"] == "13812345678"
    with pytest.raises(InvalidInput, match="不在表头"):
        plan_import(store, path, mapping=["不存在的列=customer_name"])
    with pytest.raises(InvalidInput, match="未知字段"):
        plan_import(store, path, mapping=["单位全称XYZ=nonsense"])


def test_rows_matching_existing_customers_are_held_back_as_likely_duplicates(store, tmp_path):
    store.create("customer", {"customer_name": "上海示例科技有限公司", "mobile": "13812345678",
                              "customer_type": "企业客户", "status": "潜在客户"})
    path = _xlsx(tmp_path / "a.xlsx", [
        ["客户名称", "手机号"],
        ["上海示例科技股份有限公司", "13900000000"],  # same name once the legal suffix is ignored
        ["另一家公司", "138 1234 5678"],  # same mobile
        ["全新公司", "13700000000"],
        ["全新公司", "13600000000"],  # repeats an earlier row of the file
    ])
    plan = plan_import(store, path)
    dupes = {d.row: d for d in plan.duplicates}
    assert set(dupes) == {2, 3, 5}
    assert dupes[2].matches == ("C202405210001",) and dupes[2].evidence  # the evidence is named
    assert dupes[3].matches == ("C202405210001",) and dupes[3].evidence
    assert dupes[5].matches == ("第4行",)
    apply_import(store, plan)
    assert store.count("customer") == 2  # only 全新公司 was added
    assert len(plan_import(store, path, keep_duplicates=True).records) == 4


def test_import_is_atomic(store, tmp_path, monkeypatch):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号"]] + [[f"公司{i}", f"138{i:08d}"] for i in range(30)])
    plan = plan_import(store, path)
    import crmsync.importer as importer

    monkeypatch.setattr(importer, "_CHUNK", 10)  # so the first chunks are inserted before the failure
    plan.records[25]["owner"] = "ghost"  # e.g. a user removed between the dry run and the import
    with pytest.raises(NotFound):
        apply_import(store, plan)
    assert store.count("customer") == 0
    assert store.verify_audit().ok


def test_owners_must_be_users_and_reps_import_only_their_own(team_store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号", "负责人"], ["甲公司", "13812345678", "zhang"],
                                       ["乙公司", "13812345679", "nobody"], ["丙公司", "13812345670", None]])
    plan = plan_import(team_store, path, user="zhang")
    assert {(p.row, p.column, p.code) for p in plan.problems} == {(3, "C", "unknown_user")}
    apply_import(team_store, plan, user="zhang")
    assert {c["owner"] for c in team_store.list("customer")} == {"zhang"}
    plan = plan_import(team_store, path, user="li")
    assert {p.row for p in plan.problems} == {2, 3}
    assert "销售代表 li 不能导入归属他人（zhang）的客户" in plan.problems[0].message


def test_error_workbook_has_every_problem_and_reimports_after_fixing(store, messy_xlsx, tmp_path):
    plan = plan_import(store, messy_xlsx)
    apply_import(store, plan)
    out = write_error_workbook(plan, tmp_path / "errors.xlsx")
    wb = load_workbook(out)
    ws = wb["错误行"]
    header = [c.value for c in ws[1]]
    assert header == ["原行号", *messy.HEADER, "错误说明"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    assert set(rows) == {7, 10, 11}
    assert rows[10][4].value == "2023-13-45" and rows[10][4].comment is not None  # original value, noted
    assert rows[10][4].fill.fgColor.rgb.endswith("FFC7CE")
    assert rows[11][1].value == "123" and "手机号“123”" in rows[11][1].comment.text
    assert rows[11][7].value == "foo@" and "邮箱" in rows[11][7].comment.text
    assert rows[11][2].comment is None  # a good cell is not marked
    assert rows[7][1].value == "#N/A"
    problems = list(wb["问题清单"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[1]) for r in problems} == {(7, "A"), (10, "D"), (11, "A"), (11, "G")}
    # fix the three rows in the error workbook and import it again
    ws.cell(2, 2).value = "13511112222"
    ws.cell(3, 5).value = "2023-12-01"
    ws.cell(4, 2).value = "13522223333"
    ws.cell(4, 8).value = "wz@example.com"
    wb.save(out)
    again = plan_import(store, out, sheet="错误行")
    assert again.problems == []
    assert again.unmapped == ["微信号"]  # 原行号 and 错误说明 are ignored
    apply_import(store, again)
    assert store.count("customer") == 8


def test_title_only_or_empty_files_give_one_clear_error(store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["2023年客户名单"], ["客户名称", "手机号"]])
    with pytest.raises(InvalidInput, match="没有数据行"):
        plan_import(store, path)
    with pytest.raises(NotFound, match="没有工作表“不存在”"):
        plan_import(store, path, sheet="不存在")


def test_hostile_values_are_refused_not_stored(store, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("客户名称,手机号,备注\n=HYPERLINK(\"x\"),13812345678,ok\n"
                    "正常\u202e公司,13812345679,\n" + "长备注公司,13812345670," + "字" * 501 + "\n", encoding="utf-8")
    plan = plan_import(store, path)
    codes = {(p.row, p.field, p.code) for p in plan.problems}
    assert (3, "customer_name", "bad_characters") in codes and (4, "remark", "too_long") in codes
    out = write_error_workbook(plan, tmp_path / "e.xlsx")
    assert load_workbook(out)["错误行"].cell(2, 1).value in (3, 4)


def test_rep_without_create_permission_changes_nothing(team_store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号", "负责人"], ["甲公司", "13812345678", "wang"]])
    plan = plan_import(team_store, path, user="wang")
    with pytest.raises((PermissionDenied, NotFound)):
        apply_import(team_store, plan, user="nobody")
    assert team_store.count("customer") == 0


def test_custom_fields_are_matched_and_extras_merge_with_them(store, tmp_path):
    store.add_custom_field("customer", "wechat", "微信号")
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号", "微信号", "QQ"], ["甲公司", "13812345678", "wx1", "999"]])
    plan = plan_import(store, path)
    apply_import(store, plan)
    rec = store.list("customer")[0]
    assert rec["wechat"] == "wx1" and rec[IMPORTED_KEY] == {"QQ": "999"}
    with store.engine.connect() as conn:
        raw = conn.exec_driver_sql("select custom_data from customers").scalar()
    assert json.loads(raw) == {"wechat": "wx1", IMPORTED_KEY: {"QQ": "999"}}


def test_repeated_header_rows_are_skipped(store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号"], ["甲公司", "13812345678"],
                                       ["客户名称", "手机号"], ["乙公司", "13812345679"]])
    plan = plan_import(store, path)
    assert [r["customer_name"] for r in plan.records] == ["甲公司", "乙公司"] and not plan.problems
    assert any("重复的表头" in n for n in plan.notes)


def test_headerless_and_repeated_unmapped_columns_are_kept_apart(store, tmp_path):
    path = _xlsx(tmp_path / "a.xlsx", [["客户名称", "手机号", "备用", "备用", None],
                                       ["甲公司", "13812345678", "x", "y", "旁注"]])
    plan = plan_import(store, path)
    assert plan.unmapped == ["备用", "备用 (D)", "E列"]
    assert plan.extras == [{"备用": "x", "备用 (D)": "y", "E列": "旁注"}]


def test_progress_is_reported_by_stage(store, messy_xlsx):
    seen = []
    plan = plan_import(store, messy_xlsx, progress=lambda stage, done, total: seen.append((stage, done, total)))
    apply_import(store, plan, progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert stages.index("read") < stages.index("address") < stages.index("validate") < stages.index("write")
    assert ("write", 5, 5) in seen


def test_english_error_workbook(store, messy_xlsx, tmp_path):
    from crmsync import i18n

    i18n.set_lang("en")
    plan = plan_import(store, messy_xlsx)
    wb = load_workbook(write_error_workbook(plan, tmp_path / "e.xlsx"))
    assert wb.sheetnames == ["Rows to fix", "Problems", "About"]
    assert wb["Rows to fix"]["A1"].value == "Original row"
    assert "Mobile '123' is not a valid 11-digit mainland mobile number" in wb["Rows to fix"]["B4"].comment.text
    assert plan.problems[0].located(plan.where).startswith("'老客户名单.xlsx' sheet '客户名单' row 7 column A (联系电话): ")
