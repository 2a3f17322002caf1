"""`crmsync import` and `crmsync template import` through the real command line."""

from __future__ import annotations

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.store import Store
from data_import import messy

runner = CliRunner()


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def db(tmp_path):
    Store(tmp_path / "crm.db", create=True).close()
    return tmp_path / "crm.db"


def _count(db) -> int:
    with Store(db) as s:
        return s.count("customer")


def test_dry_run_prints_mapping_unmapped_counts_and_problems_and_writes_nothing(db, tmp_path):
    path = messy.build_xlsx(tmp_path / "老客户.xlsx")
    out = run("import", path, "--dry-run", "--store", db)
    assert "“老客户.xlsx”工作表“客户名单”：表头在第 4 行，数据 8 行" in out
    assert "公司名称" in out and "客户名称" in out  # the mapping
    assert "未匹配的列：微信号" in out
    assert "共 8 行：可导入 5，有错误 3（4 个问题），疑似重复 0" in out
    assert "手机号“123”不是有效的11位大陆手机号" in out
    assert "试运行：将导入 5 行；未写入任何数据" in out
    assert _count(db) == 0 and not list(tmp_path.glob("*导入错误*"))


def test_import_stores_good_rows_and_writes_the_error_workbook(db, tmp_path):
    path = messy.build_csv(tmp_path / "老客户.csv", "gbk")
    out = run("import", path, "--store", db)
    assert "文本编码：GBK" in out
    assert "已导入 5 个客户 (C202405210001 … C202405210005)；有错误 3 行，疑似重复 0 行" in out
    errors = tmp_path / "老客户-导入错误.xlsx"
    assert errors.exists() and str(errors.name) in out.replace("\n", "")
    assert {r[0] for r in load_workbook(errors)["错误行"].iter_rows(min_row=2, values_only=True)} == {7, 10, 11}
    assert _count(db) == 5
    again = run("import", path, "--store", db, "--errors", tmp_path / "second.xlsx")
    assert "已导入 0 个客户" in again and "疑似重复 5 行" in again  # a second run adds nothing
    assert load_workbook(tmp_path / "second.xlsx")["疑似重复"].max_row == 6
    checked = run("import", tmp_path / "second.xlsx", "--sheet", "疑似重复", "--keep-duplicates", "--dry-run",
                  "--store", db)
    assert "未匹配的列：微信号（" in checked and "试运行：将导入 5 行" in checked  # our own columns are ignored


def test_english_messages_and_map_option(db, tmp_path):
    wb = Workbook()
    wb.active.append(["Firm", "Cell"])
    wb.active.append(["Acme Ltd", "13812345678"])
    wb.save(tmp_path / "a.xlsx")
    out = run("import", tmp_path / "a.xlsx", "--map", "Firm=customer_name", "--map", "Cell=mobile",
              "--store", db, "--lang", "en")
    assert "Imported 1 customers" in out
    out = run("import", tmp_path / "a.xlsx", "--map", "Nope=customer_name", "--store", db, "--lang", "en", code=1)
    assert "Error: 'a.xlsx' sheet 'Sheet': --map names column(s) Nope not in the header: Firm, Cell" in out


def test_bad_files_are_one_line_errors(db, tmp_path):
    (tmp_path / "fake.xlsx").write_text("not a workbook", encoding="utf-8")
    out = run("import", tmp_path / "fake.xlsx", "--store", db, code=1)
    assert out.startswith("错误: ") and "fake.xlsx" in out and "Traceback" not in out
    out = run("import", tmp_path / "missing.csv", "--store", db, code=1)
    assert "找不到文件" in out
    assert _count(db) == 0


def test_unknown_user_changes_nothing(db, tmp_path):
    path = messy.build_xlsx(tmp_path / "x.xlsx")
    out = run("import", path, "--store", db, "--user", "ghost", code=1)
    assert "用户 ghost 不存在" in out and _count(db) == 0


def test_template_import_writes_the_blank_template(db, tmp_path):
    out = run("template", "import", tmp_path / "模板.xlsx", "--store", db)
    assert "已生成导入模板" in out
    wb = load_workbook(tmp_path / "模板.xlsx")
    assert wb.sheetnames[:2] == ["客户导入", "填写说明"]
