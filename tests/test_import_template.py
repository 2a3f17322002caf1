"""The blank import template: drop-downs from the lists, instructions, and it imports as it is."""

from __future__ import annotations

from openpyxl import load_workbook

from crmsync.import_template import template_fields, write_import_template
from crmsync.importer import apply_import, plan_import
from crmsync.schema import CUSTOMER


def test_template_has_a_column_per_field_dropdowns_and_instructions(store, tmp_path):
    store.add_enum("source", "association", "行业协会")
    path = write_import_template(tmp_path / "t.xlsx", enums=store.enums(), entity=store.entity("customer"))
    wb = load_workbook(path)
    ws = wb["客户导入"]
    header = [c.value for c in ws[1]]
    assert header[0] == "客户名称*" and "客户编号" not in header and "版本" not in header
    assert len(header) == len(template_fields(CUSTOMER))
    lists = wb["下拉列表"]
    assert lists.sheet_state == "hidden"
    by_header = {lists.cell(1, c).value: [lists.cell(r, c).value for r in range(2, lists.max_row + 1)]
                 for c in range(1, lists.max_column + 1)}
    assert "行业协会" in by_header["客户来源"]  # a value the admin added
    assert [v for v in by_header["客户状态"] if v] == ["潜在客户", "意向客户", "成交客户", "流失客户"]
    validations = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
    status_col = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[header.index("客户状态*")]
    assert validations[f"{status_col}2"].type == "list" and "下拉列表" in validations[f"{status_col}2"].formula1
    mobile_col = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[header.index("手机号")]
    assert ws.column_dimensions[mobile_col].number_format == "@"  # digits stay digits
    about = [r[0] for r in wb["填写说明"].iter_rows(values_only=True)]
    assert "客户导入模板填写说明" in about and "客户名称" in about and any("crmsync import" in (a or "") for a in about)


def test_a_filled_template_imports_with_nothing_unmapped(store, tmp_path):
    path = write_import_template(tmp_path / "t.xlsx")
    wb = load_workbook(path)
    ws = wb["客户导入"]
    header = [c.value.rstrip("*") for c in ws[1]]
    values = {"客户名称": "杭州示例网络科技有限公司", "客户类型": "企业客户", "客户状态": "意向客户",
              "手机号": "13812345678", "所属行业": "软件开发", "详细地址": "浙江省杭州市西湖区文三路100号"}
    for j, h in enumerate(header, start=1):
        ws.cell(2, j, values.get(h))
    wb.save(path)
    plan = plan_import(store, path)
    assert plan.unmapped == [] and plan.problems == []
    apply_import(store, plan)
    rec = store.list("customer")[0]
    assert (rec["status"], rec["industry"], rec["city"], rec["address"]) == ("intent", "software", "杭州市", "文三路100号")


def test_english_template(tmp_path):
    wb = load_workbook(write_import_template(tmp_path / "t.xlsx", lang="en"))
    assert wb.sheetnames[:2] == ["Customers", "Instructions"]
    assert wb["Customers"]["A1"].value == "Customer name*"
