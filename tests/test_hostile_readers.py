"""Every product reader given each hostile file: import, validate, sync and the watcher.

tests/test_hostile_files.py proves the workbook layer refuses each file; this file proves the
commands a user runs do too.  Each hostile file is handed, in a child process with an address-space
limit, to `crmsync import`, `crmsync validate`, `crmsync sync` and `crmsync watch --once` (the real
CLI through typer's runner).  Each must give one clear line naming the file, exit 1 (never a
traceback, never a signal), within 10 s and 256 MB of extra memory; the store — every table — and
the file itself are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hostile
import pytest

from crmsync.store import Store
from crmsync.xlsx_safety import shown

MAX_SECONDS = 10
MAX_EXTRA_MB = 256
ROOT = Path(__file__).resolve().parents[1]

#: the hostile workbooks of issue 8, by their hostile.HOSTILE name
WORKBOOKS = ["zip_bomb", "lying_bomb", "bzip2", "billion_laughs", "external_entity", "huge_dimension", "far_cell",
             "sparse_grid", "full_rows", "full_columns", "huge_string", "huge_string_stored", "encrypted",
             "truncated", "text_as_xlsm", "png_as_xlsm", "empty", "rtl_sheet_name", "control_sheet_name",
             "rtl_file_name", "py_sheet"]
READERS = ["import", "validate", "sync", "watch"]

CHILD = r"""
import json, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a runaway allocation fails, not the machine
from pathlib import Path
from typer.testing import CliRunner
import python_calamine, charset_normalizer  # noqa: F401 -- loaded before the baseline, as the CLI has them
from crmsync import clock
from crmsync.cli import app
import crmsync.importer, crmsync.sync_copy, crmsync.watch, crmsync.actions, crmsync.book_file  # noqa: F401
clock.set_now("2024-05-21 10:00:00")
readers = sys.argv[1].split(",")
runner = CliRunner()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
for item in json.loads(sys.argv[2]):
    store, path, folder = item["store"], Path(item["path"]), Path(item["work"])
    commands = {
        "import": ["--store", store, "--user", "admin", "import", str(path), "--errors", str(folder / "errors.xlsx")],
        "validate": ["--store", store, "validate", str(path)],
        "sync": ["--store", store, "--user", "zhang", "sync", str(path)],
        "watch": ["--store", store, "watch", str(folder / "watched"), "--once"],
    }
    got = out[item["path"]] = {}
    for reader in readers:
        start = time.perf_counter()
        r = runner.invoke(app, commands[reader])
        exc = r.exception if not isinstance(r.exception, SystemExit) else None
        got[reader] = {"code": r.exit_code, "output": r.output, "seconds": time.perf_counter() - start,
                       "exception": None if exc is None else f"{type(exc).__name__}: {exc}"}
    got["extra_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # peak so far
print(json.dumps(out))
"""


def tables(db: Path) -> dict[str, list]:
    """Every row of every table of a SQLite store (the store compared before and after)."""
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY rowid').fetchall() for n in names}
    finally:
        con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"


def seeded_store(path: Path) -> Path:
    """A store with two teams, a customer per rep and a checked-out copy's memory (zhang)."""
    s = Store(path, create=True)
    for name, role, team in (("wang", "manager", "east"), ("zhang", "rep", "east"), ("li", "rep", "east"),
                             ("chen", "manager", "south"), ("liu", "rep", "south")):
        s.add_user(name, role, team)
    for i, rep in enumerate(("zhang", "li", "liu")):
        s.create("customer", {"customer_name": f"{rep}的老客户有限公司", "mobile": f"1391234567{i}",
                              "contact_name": "张三", "customer_type": "企业客户", "status": "潜在客户",
                              "owner": rep}, user="admin")
    s.close()
    return path


def _prepare(base_store: Path, path: Path, work: Path) -> dict:
    """A store copy and a watched folder holding the file, for one file's run."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "crm.db"
    shutil.copy(base_store, db)
    watched = work / "watched"
    watched.mkdir(exist_ok=True)
    if path.is_dir():
        (watched / path.name).mkdir(exist_ok=True)
    else:
        os.link(path, watched / path.name)  # the same bytes, no copy of a 100 MB file
    key = json.dumps(path.name, ensure_ascii=False)
    (watched / "crmsync-watch.toml").write_text(f'settle_seconds = 0\n[files]\n{key} = "zhang"\n', encoding="utf-8")
    (watched / "crmsync-watch.toml").chmod(0o644)  # the watcher refuses a map others can write
    return {"store": str(db), "path": str(path), "work": str(work)}


def run_readers_many(base_store: Path, items: list[tuple[Path, Path]], readers=READERS) -> dict[str, dict]:
    """Run the readers on each (file, work folder) in one child process (a process start is ~2 s
    here); return, per file, the child's report plus store and file checks."""
    prepared = [_prepare(base_store, path, work) for path, work in items]
    before = {p["path"]: (tables(Path(p["store"])), digest(Path(p["path"]))) for p in prepared}
    env = {k: v for k, v in os.environ.items() if k not in ("CRMSYNC_LANG", "CRMSYNC_STORE", "CRMSYNC_USER",
                                                                "XLWINGS_LICENSE_KEY")}
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(readers), json.dumps(prepared)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        report = {}
    return {p["path"]: {"proc": proc, "report": report.get(p["path"]),
                        "store_same": tables(Path(p["store"])) == before[p["path"]][0],
                        "file_same": digest(Path(p["path"])) == before[p["path"]][1]} for p in prepared}


def run_readers(base_store: Path, path: Path, work: Path, readers=READERS) -> dict:
    return run_readers_many(base_store, [(path, work)], readers)[str(path)]


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    return seeded_store(tmp_path_factory.mktemp("hostile-readers") / "base.db")


@pytest.fixture(scope="module")
def results(tmp_path_factory, base_store):
    """Each hostile workbook through every reader, each in its own child, two at a time."""
    folder = tmp_path_factory.mktemp("hostile-reader-files")

    paths = {}
    for name in WORKBOOKS:
        (folder / name).mkdir()
        paths[name] = hostile.HOSTILE[name](folder / name)
    groups = [WORKBOOKS[i::2] for i in range(2)]  # two children, one per core

    def one(names):
        return run_readers_many(base_store, [(paths[n], folder / f"{n}-work") for n in names])

    out = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in pool.map(one, groups):
            out.update(done)
    return {name: (paths[name], out[str(paths[name])]) for name in WORKBOOKS}


def assert_clean_refusal(name: str, path: Path, res: dict, readers=READERS) -> dict:
    proc = res["proc"]
    assert proc.returncode == 0, (f"{name}: killed by {signal.Signals(-proc.returncode).name}"
                                  if proc.returncode < 0 else proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = res["report"]
    assert report is not None, proc.stdout[-3000:]
    for reader in readers:
        r = report[reader]
        assert r["exception"] is None, (name, reader, r["exception"])
        assert r["code"] == 1, (name, reader, r["output"])
        assert "Traceback" not in r["output"], (name, reader, r["output"])
        assert shown(path.name) in r["output"], (name, reader, r["output"])  # the message names the file
        assert r["seconds"] < MAX_SECONDS, (name, reader, r["seconds"])
    assert report["extra_mb"] < MAX_EXTRA_MB, (name, report["extra_mb"])
    assert res["store_same"], f"{name}: the store changed"
    assert res["file_same"], f"{name}: the file was written"
    return report


@pytest.mark.parametrize("name", WORKBOOKS)
def test_every_reader_refuses_the_hostile_workbook(name, results):
    path, res = results[name]
    report = assert_clean_refusal(name, path, res)
    for reader in ("import", "validate", "sync"):  # one line: "错误: 无法读取“FILE”：…"
        lines = [ln for ln in report[reader]["output"].splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("错误: "), (name, reader, report[reader]["output"])
    # the watcher sets the file aside with the same reason and says so
    assert "1 个文件待处理" in report["watch"]["output"], report["watch"]["output"]


def test_a_folder_named_xlsm_is_refused_by_every_reader(tmp_path, base_store):
    path = hostile.folder_as_xlsm(tmp_path)
    res = run_readers(base_store, path, tmp_path / "work", readers=["import", "validate", "sync"])
    assert_clean_refusal("folder_as_xlsm", path, res, readers=["import", "validate", "sync"])


# ---- CSV in unexpected encodings (import reads CSV; the workbook readers refuse text) ------------

ROWS = [["客户名称", "手机号", "联系人", "客户类型", "客户状态"], ["华为技术有限公司", "13812345678", "张三", "企业客户", "潜在客户"]]


def _csv(rows, sep=",", newline="\r\n") -> str:
    return newline.join(sep.join(r) for r in rows) + newline


def test_csv_encodings_excel_writes_are_read_and_named(tmp_path, team_store, store_path):
    """UTF-8, UTF-8 with BOM, GB18030 and UTF-16 (Excel's "Unicode text", tab separated) all import."""
    from typer.testing import CliRunner

    from crmsync.cli import app

    runner = CliRunner()
    cases = {"utf8.csv": _csv(ROWS).encode("utf-8"), "bom.csv": _csv(ROWS).encode("utf-8-sig"),
             "gb.csv": _csv(ROWS).encode("gb18030"), "unicode.txt": _csv(ROWS, "\t").encode("utf-16")}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        r = runner.invoke(app, ["--store", str(store_path), "import", str(path), "--dry-run"])
        assert r.exit_code == 0, r.output
        assert "文本编码" in r.output and "将导入 1 行" in r.output, (name, r.output)


@pytest.mark.parametrize("name, data", [
    ("binary.csv", bytes(range(1, 256)) * 4000),
    ("nul.csv", b"\x00\x01\x02" * 10000),
    ("bad-bom.csv", b"\xff\xfe" + b"\x00\xd8" * 100),  # UTF-16 BOM, then lone surrogates
    ("utf32.csv", _csv(ROWS).encode("utf-32")),  # UTF-32's BOM starts like UTF-16 LE's
])
def test_undecodable_csv_is_refused_or_imports_nothing_garbled(tmp_path, team_store, store_path, name, data):
    """Either one line naming the file, or a plan that imports no row with NUL or garbled text."""
    from typer.testing import CliRunner

    from crmsync.cli import app

    path = tmp_path / name
    path.write_bytes(data)
    before = tables(store_path)
    r = CliRunner().invoke(app, ["--store", str(store_path), "import", str(path)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    assert name in r.output
    after = tables(store_path)
    if r.exit_code == 1:
        assert after == before
    for rec in team_store.list("customer"):
        assert "\x00" not in json.dumps(rec, ensure_ascii=False, default=str)


def test_csv_with_a_100_mb_cell_is_refused_within_memory(tmp_path, base_store):
    path = tmp_path / "bigcell.csv"
    with open(path, "wb") as f:
        f.write("客户名称,手机号\r\n\"".encode())
        for _ in range(100):
            f.write(b"a" * (1 << 20))
        f.write(b'",13812345678\r\n')
    res = run_readers(base_store, path, tmp_path / "work", readers=["import"])
    report = assert_clean_refusal("bigcell.csv", path, res, readers=["import"])
    assert "32767" in report["import"]["output"] or "字符" in report["import"]["output"]


# ---- names with marks: readable, but never stored silently ---------------------------------------

def test_import_refuses_names_with_invisible_marks(tmp_path, team_store, store_path):
    from typer.testing import CliRunner

    from crmsync.cli import app

    rows = [ROWS[0], ["华为\u202e公司", "13812345678", "张三", "企业客户", "潜在客户"],
            ["腾讯\u200b科技\x07", "13812345679", "张三", "企业客户", "潜在客户"]]
    path = tmp_path / "marks.csv"
    path.write_text(_csv(rows), encoding="utf-8")
    r = CliRunner().invoke(app, ["--store", str(store_path), "import", str(path)])
    assert "Traceback" not in r.output
    assert "U+202E" in r.output and "U+200B" in r.output  # shown, not rendered
    for rec in team_store.list("customer"):
        assert not any(ch in rec["customer_name"] for ch in "\u202e\u200b\x07"), rec["customer_name"]
