"""`crmsync dedupe`, `merge`, `unmerge` and the 查重 button, on real files and stores."""

from __future__ import annotations

import csv
import json

import pytest
from openpyxl import Workbook
from records import customer
from typer.testing import CliRunner

from crmsync.cli import app

runner = CliRunner()

LEGACY = [
    ["客户资料（2023 年整理）"],  # a title row above the header
    ["编号", "联系电话", "单位名称", "联系人", "所在城市"],
    ["K-001", 13812345678.0, "上海示例科技有限公司", "张三", "上海"],
    ["K-002", "138 1234 5678", "示例科技（上海）股份有限公司", "张三", "上海市"],
    ["K-003", "13900001111", "杭州云帆软件有限公司", "李四", "杭州"],
    ["K-004", None, "上海示例科技有限責任公司", "張三", None],
    ["K-005", "13700002222", "深圳星辰电子有限公司", "王五", "深圳"],
]


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def _xlsx(path, rows):
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(path)
    return path


def _pairs(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [r for r in csv.DictReader(fh)]


def test_dedupe_file_writes_every_pair_by_id_column(tmp_path):
    src = _xlsx(tmp_path / "客户.xlsx", LEGACY)
    out = run("dedupe", "--file", src, "--id-column", "编号", "--pairs-out", tmp_path / "pairs.csv")
    assert "5 行，1 组重复，3 对" in out
    pairs = _pairs(tmp_path / "pairs.csv")
    assert {(p["id_a"], p["id_b"]) for p in pairs} == {("K-001", "K-002"), ("K-001", "K-004"), ("K-002", "K-004")}
    assert all(0.9 <= float(p["score"]) <= 1 and p["evidence"] for p in pairs)


def test_dedupe_gbk_csv_gives_the_same_pairs_by_row_number(tmp_path):
    src = tmp_path / "客户.csv"
    with open(src, "w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh)
        for r in LEGACY:
            w.writerow([("" if v is None else (str(int(v)) if isinstance(v, float) else v)) for v in r])
    run("dedupe", "--file", src, "--pairs-out", tmp_path / "pairs.csv")
    assert {(p["id_a"], p["id_b"]) for p in _pairs(tmp_path / "pairs.csv")} == {("3", "4"), ("3", "6"), ("4", "6")}


def test_dedupe_file_with_a_configuration_for_other_data(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"fields": [{"key": "name", "kind": "person"}, {"key": "born", "kind": "date"},
                                          {"key": "ssn", "kind": "id"}],
                               "blocks": [["ssn"], ["born"]]}), encoding="utf-8")
    src = tmp_path / "people.csv"
    src.write_text("rid,name,born,ssn\nr1,john smith,1970-01-02,1234567\nr2,jon smith,19700102,1234567\n"
                   "r3,mary jones,19800505,7654321\n", encoding="utf-8")
    run("dedupe", "--file", src, "--config", cfg, "--id-column", "rid", "--pairs-out", tmp_path / "p.csv")
    assert [(p["id_a"], p["id_b"]) for p in _pairs(tmp_path / "p.csv")] == [("r1", "r2")]


@pytest.mark.parametrize("args,message", [
    (["--file", "nope.xlsx"], "nope.xlsx"),
    (["--file", "{src}", "--id-column", "没有这列"], "没有列“没有这列”"),
    (["--file", "{src}", "--config", "{bad}"], "字段类型可用"),
])
def test_bad_inputs_give_one_line_and_exit_1(tmp_path, args, message):
    src = _xlsx(tmp_path / "客户.xlsx", LEGACY)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fields": [{"key": "x", "kind": "nonsense"}], "blocks": []}), encoding="utf-8")
    result = runner.invoke(app, ["dedupe", *[a.format(src=src, bad=bad) for a in args]])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


@pytest.fixture
def db(team_store, store_path):
    with team_store.transaction("admin") as tx:
        a = tx.create("customer", customer(customer_name="上海示例科技有限公司", email="a@example.com", owner="zhang"))
        b = tx.create("customer", customer(customer_name="上海示例科技股份有限公司", mobile="138-1234-5678", owner="li"))
        tx.create("followup", {"customer_id": b["customer_id"], "follow_time": "2024-05-21 09:00",
                               "method": "电话", "content": "电话沟通"})
    team_store.close()
    return store_path, a["customer_id"], b["customer_id"]


def test_store_dedupe_review_merge_and_unmerge_from_the_command_line(db, tmp_path):
    path, a, b = db
    review = tmp_path / "查重.xlsx"
    out = run("dedupe", "--report", review, "--store", path)
    assert "找到 1 组" in out and review.exists()
    out = run("merge", review, "--store", path, "--user", "wang")
    assert f"{b} 合并到 {a}" in out and "移动 1 条" in out
    merge_id = out.split(":")[0].strip()
    assert run("customer", "show", b, "--store", path)  # still readable, marked deleted
    out = run("unmerge", merge_id, "--store", path, "--user", "wang")
    assert f"{b} 已恢复" in out
    result = runner.invoke(app, ["unmerge", merge_id, "--store", path, "--user", "wang"])
    assert result.exit_code == 1 and "已于" in result.output


def test_a_rep_cannot_merge(db, tmp_path):
    path, a, b = db
    review = tmp_path / "查重.xlsx"
    run("dedupe", "--report", review, "--store", path)
    out = run("merge", review, "--store", path, "--user", "zhang", code=1)
    assert "无权" in out


def test_dedupe_button_marks_duplicate_rows_in_the_workbook(committed, db, monkeypatch):
    from crmsync import macros
    from crmsync.book_file import FileBook
    from crmsync.seam import MARK_PREFIX

    path, a, b = db
    book = FileBook(committed)
    table = book.read_table("客户")
    col = {h: j + 1 for j, h in enumerate(table.header)}
    rows = [("新客户一号有限公司", "13600001111"), ("上海示例科技（集团）有限公司", "13812345678"),
            ("新客户一号股份有限公司", "136 0000 1111")]
    cells = {}
    for i, (name, mobile) in enumerate(rows, start=2):
        cells[(i, col["客户名称"])] = name
        cells[(i, col["手机号"])] = mobile
    book.write_cells("客户", cells)
    book.save()
    monkeypatch.setenv("CRMSYNC_STORE", str(path))
    text = macros.on_ribbon("dedupe", str(committed))
    assert "1 组疑似重复" in text and "与中心库已有客户重复" in text
    marks = FileBook(committed).marked_cells("客户")
    name = col["客户名称"]
    assert set(marks) == {(2, name), (3, name), (4, name)}
    assert marks[(2, name)].startswith(MARK_PREFIX + "疑似重复") and "第 4 行" in marks[(2, name)]
    assert a in marks[(3, name)]
    # fixed rows lose their marks on the next run
    book = FileBook(committed)
    book.write_cells("客户", {(4, name): "完全不同的名字", (4, col["手机号"]): "13500009999"})
    book.save()
    macros.on_ribbon("dedupe", str(committed))
    assert set(FileBook(committed).marked_cells("客户")) == {(3, name)}


def test_merge_refuses_a_file_that_is_not_a_review_workbook(db, tmp_path):
    path, a, b = db
    other = _xlsx(tmp_path / "客户.xlsx", LEGACY)
    result = runner.invoke(app, ["merge", str(other), "--store", str(path), "--user", "wang"])
    assert result.exit_code == 1 and "不是查重工作簿" in result.output and "Traceback" not in result.output
