"""`crmsync validate FILE`: the 校验 button from the command line, on a real workbook file."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.project import committed_workbook
from crmsync.workbook import read_sheet, update_cells

runner = CliRunner()


def _book(tmp_path: Path) -> Path:
    """A copy of the real workbook with three customers typed in, two of them wrong."""
    book = tmp_path / "crm_workbook.xlsm"
    shutil.copyfile(committed_workbook(), book)
    header = read_sheet(book, "客户").header
    col = {label: header.index(label) + 1 for label in header}
    rows = [
        {"客户名称": "上海示例科技有限公司", "客户类型": "企业客户", "客户状态": "潜在客户", "手机号": "13812345678"},
        {"客户名称": "杭州坏号码有限公司", "客户类型": "企业客户", "客户状态": "意向客户", "手机号": "1381234"},
        {"客户名称": "南京流失有限公司", "客户类型": "企业客户", "客户状态": "流失客户", "邮箱": "foo@"},
    ]
    update_cells(book, "客户", {(i + 2, col[k]): v for i, r in enumerate(rows) for k, v in r.items()})
    return book


def test_validate_lists_every_problem_and_fails(tmp_path):
    book = _book(tmp_path)
    result = runner.invoke(app, ["validate", str(book)])
    assert result.exit_code == 1, result.output
    assert "1381234" in result.output and "手机号" in result.output
    assert "流失原因" in result.output and "foo@" in result.output
    assert "3 行中 2 行有问题" in result.output
    report = read_sheet(book, "校验结果")
    assert {(r[0], r[1]) for r in report.rows} >= {("客户", 3), ("客户", 4)}


def test_no_marks_leaves_the_file_byte_for_byte(tmp_path):
    book = _book(tmp_path)
    before = book.read_bytes()
    result = runner.invoke(app, ["validate", str(book), "--no-marks"])
    assert result.exit_code == 1
    assert book.read_bytes() == before


def test_a_valid_workbook_passes_in_english(tmp_path):
    book = tmp_path / "crm_workbook.xlsm"
    shutil.copyfile(committed_workbook(), book)
    result = runner.invoke(app, ["--lang", "en", "validate", str(book)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_not_a_workbook_is_one_clear_line(tmp_path):
    bad = tmp_path / "客户.xlsm"
    bad.write_text("这不是工作簿", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "客户.xlsm" in result.output and "Traceback" not in result.output
    assert bad.read_text(encoding="utf-8") == "这不是工作簿"


def test_fixing_a_cell_clears_its_mark(tmp_path):
    book = _book(tmp_path)
    runner.invoke(app, ["validate", str(book)])
    header = read_sheet(book, "客户").header
    update_cells(book, "客户", {(3, header.index("手机号") + 1): "13912345678"})
    runner.invoke(app, ["validate", str(book)])
    report = read_sheet(book, "校验结果")
    assert all(r[1] != 3 for r in report.rows)
    with zipfile.ZipFile(book) as z:
        comments = "".join(z.read(n).decode() for n in z.namelist() if "comments" in n)
    assert "1381234" not in comments and "流失原因" in comments
