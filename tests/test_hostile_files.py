"""Hostile and broken workbook files: one clear message each, in bounded time and memory.

Every file in hostile.HOSTILE must be refused with one InvalidFile line that names the file, by
every entry point (check, list, read, write), and a write must leave the file as it was.  The
dangerous ones would kill a bare python-calamine reader with SIGABRT: each is also read in a child
process, which must exit normally within 10 s and 256 MB of extra memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hostile
import pytest

from crmsync.errors import InvalidFile
from crmsync.workbook import Limits, check_package, list_sheets, read_sheet, replace_sheet_rows, update_cells, \
    write_key_values

NAMES = sorted(hostile.HOSTILE)
MAX_SECONDS = 10
MAX_EXTRA_MB = 256


@pytest.fixture(scope="session")
def hostile_file(tmp_path_factory):
    """Return the path of a hostile file by name, building each once per test session."""
    folder = tmp_path_factory.mktemp("hostile")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            sub = folder / name  # one folder each: some builders share file names
            sub.mkdir()
            built[name] = hostile.HOSTILE[name](sub)
        return built[name]

    return get


def shown(name: str) -> str:
    """The file name as a message shows it: invisible and control characters escaped."""
    from crmsync.xlsx_safety import shown as escape

    return escape(name)


def assert_one_line_refusal(message: str, path: Path, lang: str = "zh") -> None:
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    if lang == "zh":
        assert message.startswith(f"无法读取“{shown(path.name)}”："), message
        assert any("\u4e00" <= ch <= "\u9fff" for ch in message.split("：", 1)[1]), message
    else:
        assert message.startswith(f'Cannot read "{shown(path.name)}": '), message


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"


# ---- in this process: every entry point refuses, with one line ---------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_reader_refuses_with_one_line(name, hostile_file):
    path = hostile_file(name)
    messages = set()
    for call in (check_package, list_sheets, lambda p: read_sheet(p, "客户")):
        with pytest.raises(InvalidFile) as e:
            call(path)
        assert_one_line_refusal(str(e.value), path)
        messages.add(str(e.value))
    assert len(messages) == 1  # the same reason, whichever way the file is opened


@pytest.mark.parametrize("name", NAMES)
def test_writers_refuse_and_leave_the_file_as_it_was(name, hostile_file):
    path = hostile_file(name)
    before = digest(path)
    for call in (lambda p: replace_sheet_rows(p, "客户", [["C001", "华为"]]),
                 lambda p: update_cells(p, "客户", {(2, 1): "C001"}),
                 lambda p: write_key_values(p, "xlwings.conf", {"CRMSYNC_LANG": "zh"})):
        with pytest.raises(InvalidFile) as e:
            call(path)
        assert_one_line_refusal(str(e.value), path)
    assert digest(path) == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".~")] == []  # no temp file left


@pytest.mark.parametrize("name", ["zip_bomb", "billion_laughs", "far_cell", "encrypted", "text_as_xlsm",
                                  "rtl_sheet_name", "rtl_file_name"])
def test_messages_in_english(name, hostile_file):
    path = hostile_file(name)
    with pytest.raises(InvalidFile) as e:
        list_sheets(path, lang="en")
    assert_one_line_refusal(str(e.value), path, lang="en")


#: what each refusal must say (besides naming the file)
EXPECTED = {
    "zip_bomb": ["压缩炸弹"],
    "lying_bomb": ["声明"],
    "many_members_bomb": ["压缩炸弹"],
    "bzip2": ["bzip2"],
    "lzma": ["LZMA"],
    "billion_laughs": ["DOCTYPE", "实体"],
    "external_entity": ["DOCTYPE"],
    "huge_dimension": ["XFD1048576", "1048576 行"],
    "far_cell": ["1048576 行"],
    "full_rows": ["行"],
    "full_columns": ["列"],
    "wide_row": ["1001 列"],
    "sparse_grid": ["1000000 行 × 1000 列"],
    "cell_beyond_rows": ["1048576 行"],
    "sst_count_lie": ["100000000"],
    "far_cell_out_of_order": ["1048576 行"],
    "bloated_workbook_xml": ["xl/workbook.xml", "超过上限 8.0 MB"],
    "bloated_rels": ["workbook.xml.rels", "超过上限 8.0 MB"],
    "long_string": ["32767"],
    "huge_string": ["压缩比"],
    "huge_string_stored": ["32767"],
    "encrypted": ["密码", "加密"],
    "legacy_xls": [".xls", "另存为"],
    "truncated": ["不完整"],
    "text_as_xlsm": ["文本文件", "CSV"],
    "gbk_csv_as_xlsx": ["文本文件"],
    "png_as_xlsm": ["不是 Excel 工作簿"],
    "random_bytes": ["不是 Excel 工作簿"],
    "docx_as_xlsm": ["不是 Excel 工作簿"],
    "folder_as_xlsm": ["文件夹"],
    "empty": ["空的"],
    "py_sheet": ["evil.py", "重命名"],
    "rtl_sheet_name": ["\\u202e", "重命名"],
    "control_sheet_name": ["\\u0085", "重命名"],
    "rtl_file_name": ["不完整"],
}


@pytest.mark.parametrize("name", NAMES)
def test_each_message_says_what_is_wrong(name, hostile_file):
    with pytest.raises(InvalidFile) as e:
        check_package(hostile_file(name))
    for word in EXPECTED[name]:
        assert word in str(e.value), str(e.value)


def test_every_hostile_file_has_an_expected_message():
    assert sorted(EXPECTED) == NAMES


def test_names_are_escaped_in_messages(hostile_file):
    path = hostile_file("rtl_file_name")
    with pytest.raises(InvalidFile) as e:
        read_sheet(path, "客户")
    assert "\u202e" not in str(e.value) and "\\u202e" in str(e.value)
    assert "\\u000a" in str(e.value)  # the line break in the name, shown, not breaking the line


def test_names_with_marks_are_read_unchanged_for_validation_to_report(tmp_path):
    data = read_sheet(hostile.names_with_marks(tmp_path), "客户")
    assert [r[0] for r in data.rows] == ["华为\u202e公司", "腾讯\u200b科技\x07", "阿里\n巴巴 "]


def test_cells_out_of_order_are_scanned_in_linear_time(tmp_path):
    """200,000 rows, then a cell back at A1: every cell lies beyond the last one's extent."""
    import time

    path = hostile.out_of_order(tmp_path)
    start = time.perf_counter()
    check_package(path)
    assert time.perf_counter() - start < 3
    from crmsync.xlsx_safety import open_package

    with open_package(path) as pkg:
        scan = pkg.scans["xl/worksheets/sheet1.xml"]
    assert (scan.max_row, scan.max_col) == (200_000, 2)


def test_limits_are_settings(tmp_path):
    """The bounds come from Limits: a small file is refused under tight limits, read under defaults."""
    path = hostile.truncated(tmp_path, keep=1.0, name="ok.xlsx")
    assert len(read_sheet(path, "客户").rows) == 1999
    for limits, word in ((Limits(max_rows=100), "100 行"), (Limits(max_cols=1), "1 列"),
                         (Limits(max_cells=1000), "1000 个单元格"), (Limits(max_file_bytes=1000), "超过上限"),
                         (Limits(max_members=3), "个部件"), (Limits(max_total_bytes=10_000), "解压后共"),
                         (Limits(max_member_bytes=10_000), "解压后为"), (Limits(max_cell_chars=3), "3 个字符")):
        with pytest.raises(InvalidFile) as e:
            read_sheet(path, "客户", limits=limits)
        assert word in str(e.value), (limits, str(e.value))


def test_check_time_limit(tmp_path, monkeypatch):
    path = hostile.truncated(tmp_path, keep=1.0, name="ok.xlsx")
    with pytest.raises(InvalidFile) as e:
        check_package(path, Limits(max_seconds=0))
    assert "秒" in str(e.value)


@pytest.mark.parametrize("keep", [0.01, 0.3, 0.9, 0.999])
def test_truncated_anywhere(tmp_path, keep):
    path = hostile.truncated(tmp_path, keep=keep)
    with pytest.raises(InvalidFile) as e:
        read_sheet(path, "客户")
    assert_one_line_refusal(str(e.value), path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidFile) as e:
        read_sheet(tmp_path / "没有.xlsx", "客户")
    assert str(e.value) == "无法读取“没有.xlsx”：找不到文件"


# ---- in a child process: the process survives, within time and memory ---------------------------

PROBE = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a runaway allocation fails, not the machine
import python_calamine  # noqa: F401 -- loaded before the baseline, as any reader has it
from crmsync.errors import CrmsyncError
from crmsync.workbook import list_sheets, read_sheet
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    names = list_sheets(sys.argv[1])
    result = {"rows": len(read_sheet(sys.argv[1], names[0]).rows)}
except CrmsyncError as e:
    result = {"error": type(e).__name__, "message": str(e)}
result["seconds"] = time.perf_counter() - start
result["extra_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(result))
"""

BARE = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from python_calamine import CalamineWorkbook
CalamineWorkbook.from_path(sys.argv[1]).get_sheet_by_index(0).to_python()
"""


def _child(code: str, path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CRMSYNC_LANG", "XLWINGS_LICENSE_KEY")}
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=Path(__file__).resolve().parents[1])


@pytest.fixture(scope="session")
def probed(hostile_file):
    """Read every hostile file in its own child process, two at a time (one per core)."""
    paths = {name: hostile_file(name) for name in NAMES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(NAMES, pool.map(lambda n: _child(PROBE, paths[n]), NAMES)))
    return paths, done


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_child_process_survives_within_time_and_memory(name, probed):
    paths, done = probed
    out = done[name]
    assert out.returncode == 0, (f"killed by {signal.Signals(-out.returncode).name}" if out.returncode < 0
                                 else out.stderr[-3000:])
    assert out.stderr == ""  # no traceback, no warning
    result = json.loads(out.stdout)
    assert result.get("error") == "InvalidFile", result
    assert_one_line_refusal(result["message"], paths[name])
    assert result["seconds"] < MAX_SECONDS, result
    assert result["extra_mb"] < MAX_EXTRA_MB, result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["far_cell", "sparse_grid"])
def test_bare_calamine_would_have_died(name, hostile_file):
    """The reference: python-calamine alone is killed by SIGABRT on these files (what the check prevents)."""
    out = _child(BARE, hostile_file(name))
    assert out.returncode == -signal.SIGABRT, (out.returncode, out.stderr[-500:])


# ---- damaged files: only our own errors, never a traceback ----------------------------------------

GOOD_SHEET = hostile.sheet_xml(
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>名称</t></is></c></row>'
    '<row r="2" spans="1:3"><c r="A2" s="1"><v>12.5</v></c><c r="B2" t="e"><v>#N/A</v></c><c r="C2" t="b"><v>1</v>'
    '</c></row><row r="3"><c r="A3"><f>1+1</f><v>2</v></c><c r="C3" t="inlineStr"><is><t xml:space="preserve"> x '
    "</t></is></c></row>", "A1:C3")


def _every_entry_point(path: Path) -> list[str]:
    """Run each reader and writer on path; return the messages of the CrmsyncErrors raised."""
    from crmsync.errors import CrmsyncError

    messages = []
    for call in (lambda: read_sheet(path, "客户"), lambda: update_cells(path, "客户", {(2, 2): "x"}),
                 lambda: replace_sheet_rows(path, "客户", [["a", 1]]),
                 lambda: write_key_values(path, "客户", {"K": "v"})):
        try:
            call()
        except CrmsyncError as e:
            assert "\n" not in str(e), str(e)
            messages.append(str(e))
    return messages


@pytest.mark.parametrize("part, data", [
    # found by fuzzing: each once raised something other than a CrmsyncError
    ("xl/worksheets/sheet1.xml", GOOD_SHEET.replace('<c r="C2" t="b">', '<c r="C2\ufffd t="b">')),
    ("xl/worksheets/sheet1.xml", GOOD_SHEET.replace('<c r="A2" s="1">', '<c r="A2" s="\ufffd">')),
    ("xl/worksheets/sheet1.xml", GOOD_SHEET.replace('<c r="A2" s="1">', '<c r="A2" s="1<row">')),
    ("xl/worksheets/sheet1.xml", hostile.sheet_xml('<row r="1"><c r="A1" s="1" t="inlineStr"><is><t>a</t></is></c>'
                                                   '</row>', "A1")),
    ("xl/workbook.xml", hostile.workbook_xml().replace('encoding="UTF-8"', 'encoding="UTF_x0000_-8"')),
    ("_rels/.rels", hostile.ROOT_RELS.replace('encoding="UTF-8"', 'encoding="UF-8"')),
])
def test_damaged_parts_give_our_own_errors(tmp_path, part, data):
    key = {"xl/worksheets/sheet1.xml": "sheet", "xl/workbook.xml": "workbook"}.get(part)
    path = hostile.minimal_xlsx(tmp_path / "damaged.xlsx", **({key: data} if key else {"extra": {part: data}}))
    _every_entry_point(path)


def test_mutated_workbooks_give_our_own_errors(tmp_path):
    """A short, fixed-seed mutation fuzz of the parts every reader touches (issue 8 runs longer ones)."""
    import random

    rnd = random.Random(20240521)
    tokens = [b"<", b">", b"/", b'"', b"r=", b"<c", b"</c>", b"<row", b"</row>", b"<v>", b"</v>", b"&amp;", b"&#0;",
              b"XFD", b"99999999", b"1048576", b't="s"', b't="e"', b"<is><t>", b"</t></is>", b"<!DOCTYPE x>", b"\x00",
              b"\xff", b"<x:c ", b"_x0000_", b" ", b"A"]
    originals = {"sheet": GOOD_SHEET, "sst": hostile.sst_xml(["客户编号", "甲"]), "workbook": hostile.workbook_xml(),
                 "xl/_rels/workbook.xml.rels": hostile.WORKBOOK_RELS, "_rels/.rels": hostile.ROOT_RELS,
                 "[Content_Types].xml": hostile.CONTENT_TYPES}
    for k in range(150):
        key = rnd.choice(list(originals))
        data = bytearray(originals[key].encode())
        for _ in range(rnd.randint(1, 6)):
            i = rnd.randrange(len(data) + 1)
            op = rnd.random()
            if op < 0.3:
                del data[i:i + rnd.randint(1, 8)]
            elif op < 0.7:
                data[i:i] = rnd.choice(tokens)
            elif data:
                data[min(i, len(data) - 1)] = rnd.randrange(256)
        kw = {key: bytes(data)} if key in ("sheet", "sst", "workbook") else {"extra": {key: bytes(data)}}
        _every_entry_point(hostile.minimal_xlsx(tmp_path / f"m{k}.xlsx", **kw))
