"""Reading files to import: encodings, merged cells, legacy .xls, and files that must be refused."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from openpyxl import Workbook

import hostile
from crmsync.errors import InvalidFile, InvalidInput, NotFound
from crmsync.importer import plan_import
from crmsync.readers import decode_text, read_file
from data_import import messy
from workbook_fixtures import soffice_or_skip


@pytest.mark.parametrize("text,encoding,label", [
    ("客户名称\n甲公司\n", "utf-8", "UTF-8"),
    ("客户名称\n甲公司\n", "utf-8-sig", "UTF-8 (BOM)"),
    ("客户名称\n甲公司\n", "gbk", "GBK"),
    ("客户名称\n𠀀记\n", "gb18030", "GB18030"),
    ("客户名称\n甲公司\n", "utf-16", "UTF-16 LE"),
    ("客户名称\n甲公司\n", "utf-32", "UTF-32 LE"),
])
def test_text_encodings(text, encoding, label):
    assert decode_text(text.encode(encoding)) == (text, label)


def test_an_undecodable_file_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\x00\xfe\x01" * 100)
    with pytest.raises(InvalidFile, match="bad.csv.*编码"):
        read_file(path)


def test_a_utf32_csv_imports_as_utf32_not_as_utf16(tmp_path):
    path = tmp_path / "u32.csv"
    path.write_bytes("客户名称,手机号\n甲公司,13812345678\n".encode("utf-32"))
    raw = read_file(path)
    assert raw.encoding == "UTF-32 LE"
    assert raw.grid == [["客户名称", "手机号"], ["甲公司", "13812345678"]]


def test_a_file_that_stops_being_its_encoding_names_the_line(tmp_path):
    # starts as UTF-8 with a BOM (so no cascade runs), then a GBK line far past the reader's buffer
    path = tmp_path / "mixed.csv"
    good = "".join(f"甲公司{i},1381234{i:04d}\n" for i in range(3000))
    path.write_bytes(b"\xef\xbb\xbf" + "客户名称,手机号\n".encode() + good.encode() + "乙公司,13800000000\n".encode("gbk"))
    with pytest.raises(InvalidFile) as err:
        read_file(path)
    assert "mixed.csv" in str(err.value) and "第 3002 行" in str(err.value) and "UTF-8 (BOM)" in str(err.value)


def test_a_cell_over_excels_limit_is_refused_with_its_line(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("客户名称,备注\n甲公司,短\n乙公司," + "长" * 40000 + "\n", encoding="utf-8")
    with pytest.raises(InvalidFile) as err:
        read_file(path)
    assert "long.csv" in str(err.value) and "第 3 行" in str(err.value) and "32767" in str(err.value)
    path.write_text("客户名称,备注\n乙公司," + "长" * 32767 + "\n", encoding="utf-8")
    assert len(read_file(path).grid[1][1]) == 32767  # exactly Excel's limit is still a cell


def test_csv_with_tabs_or_semicolons(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("客户名称\t手机号\n甲公司\t13812345678\n", encoding="utf-8")
    assert read_file(path).grid == [["客户名称", "手机号"], ["甲公司", "13812345678"]]


def test_merged_cells_are_filled_down_and_noted(tmp_path):
    raw = read_file(messy.build_xlsx(tmp_path / "m.xlsx"))
    assert raw.grid[7][8] == raw.grid[8][8] == "制造"
    assert raw.grid[0][1] is None  # the title merged across columns is not copied sideways
    assert raw.grid[6][0] == "#N/A"  # the error cell keeps its text
    assert raw.sheet == "客户名单" and raw.notes


def test_sheet_is_chosen_by_name_or_number(tmp_path):
    wb = Workbook()
    wb.active.title = "说明"
    wb.create_sheet("客户")["A1"] = "客户名称"
    wb.save(tmp_path / "two.xlsx")
    assert read_file(tmp_path / "two.xlsx", "客户").grid == [["客户名称"]]
    assert read_file(tmp_path / "two.xlsx", "2").sheet == "客户"
    with pytest.raises(NotFound, match="没有工作表“联系人”.*说明、客户"):
        read_file(tmp_path / "two.xlsx", "联系人")


@pytest.mark.parametrize("build,words", [
    (hostile.zip_bomb, ["压缩炸弹"]),
    (hostile.billion_laughs, ["DTD"]),
    (hostile.huge_dimension, ["上限"]),
    (hostile.encrypted, ["密码"]),
])
def test_hostile_workbooks_are_refused_and_nothing_is_written(store, tmp_path, build, words):
    path = build(tmp_path)
    with pytest.raises(InvalidFile) as err:
        plan_import(store, path)
    assert path.name in str(err.value) and all(w in str(err.value) for w in words)
    assert store.count("customer") == 0


def test_missing_empty_and_unsupported_files(tmp_path):
    with pytest.raises(InvalidFile, match="找不到文件"):
        read_file(tmp_path / "nope.xlsx")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InvalidFile, match="空"):
        read_file(tmp_path / "empty.csv")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(InvalidInput, match="不支持的文件类型"):
        read_file(tmp_path / "a.pdf")
    (tmp_path / "fake.xlsx").write_text("客户名称\n甲\n", encoding="utf-8")
    with pytest.raises(InvalidFile, match="文本文件"):
        read_file(tmp_path / "fake.xlsx")


def test_a_broken_xls_is_refused_without_harming_the_process(tmp_path):
    path = hostile.legacy_xls(tmp_path)  # an OLE file whose Workbook stream is garbage
    with pytest.raises(InvalidFile, match="legacy.xls"):
        read_file(path)
    path = hostile.encrypted(tmp_path)
    with pytest.raises(InvalidFile, match="密码"):
        read_file(shutil.copy(path, tmp_path / "locked.xls"))


@pytest.mark.slow
def test_legacy_xls_imports_like_the_xlsx(store, tmp_path):
    soffice = soffice_or_skip()
    source = messy.build_xlsx(tmp_path / "legacy.xlsx")
    subprocess.run([soffice, "--headless", "--convert-to", "xls", "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=120,
                   env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    plan = plan_import(store, tmp_path / "legacy.xls")
    assert {(p.row, p.column, p.field, p.code) for p in plan.problems} == messy.EXPECTED_PROBLEMS
    assert {r["customer_name"] for r in plan.records} == messy.GOOD_NAMES
