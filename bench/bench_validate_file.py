"""Validating a 100,000-row 客户 sheet from a file end to end, against python-calamine just reading it.

Goal (issue 3): ``validate_workbook(FileBook(path))`` — check the file, read the sheets, validate,
mark every invalid cell (fill + note), set the hidden status column, write 校验结果 with links,
save atomically — in ≤ 3× the time python-calamine needs just to read that sheet.

The file: a copy of crm_workbook.xlsm whose 客户 sheet gets N rows from bench/common.py
customer_rows (enumerations as their Chinese labels), ~1% mobiles and ~0.5% emails corrupted,
written with the file layer (replace_sheet_rows).  Steps, each in its own process so peak memory
is that step's own, alternated round by round, medians reported:

- calamine: ``CalamineWorkbook.from_path(...).get_sheet_by_name("客户").to_python()`` — the reference;
- validate: the action on a fresh copy of the file (no marks yet: every mark is new);
- revalidate: the action again on the file the first run wrote (marks found, kept, nothing new).

Each side imports its libraries before its clock starts (python_calamine; crmsync's action, rules
and report labels — printed apart), as a button click served by a running interpreter would.

Run: .venv/bin/python bench/bench_validate_file.py [--rows N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import customer_rows, peak_rss_mb  # noqa: E402

SHEET = "客户"
GOAL = 3.0


def build(path: Path, n: int) -> int:
    """Write the benchmark workbook; return the number of corrupted cells."""
    from crmsync.enums import Enums
    from crmsync.schema import CUSTOMER
    from crmsync.workbook import replace_sheet_rows

    enums = Enums.seed()
    rnd = random.Random(11)
    keys = [f.key for f in CUSTOMER.fields]
    mobile, email = keys.index("mobile"), keys.index("email")
    rows, bad = [], 0
    for i, c in enumerate(customer_rows(n)):
        row = []
        for f in CUSTOMER.fields:
            v = c.get(f.key)
            if f.enum and v is not None:
                v = enums.label(f.enum, v)
            row.append(v)
        row[0] = f"C{20240521_00000 + i}"
        x = rnd.random()
        if x < 0.01 and row[mobile]:
            row[mobile] = row[mobile][:7]  # too short
            bad += 1
        elif x < 0.015:
            row[email] = f"user{i}@"  # no domain
            bad += 1
        rows.append(row)
    shutil.copy(ROOT / "crm_workbook.xlsm", path)
    replace_sheet_rows(path, SHEET, rows)
    return bad


def step(kind: str, path: str) -> dict:
    """One measured step in this process; returns seconds, peak memory and what it saw."""
    if kind == "calamine":
        from python_calamine import CalamineWorkbook

        start = time.perf_counter()
        book = CalamineWorkbook.from_path(path)
        grid = book.get_sheet_by_name(SHEET).to_python()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "peak_mb": peak_rss_mb(), "rows": len(grid) - 1}
    start = time.perf_counter()
    import crmsync.build_sheets  # noqa: F401  (the action imports these on first use: report labels,
    import crmsync.validate  # noqa: F401       rules; a one-off cost, reported apart)
    from crmsync.actions import validate_workbook
    from crmsync.book_file import FileBook

    imports = time.perf_counter() - start
    phases = _time_phases()
    start = time.perf_counter()
    book = FileBook(path)
    phases["open"] = time.perf_counter() - start
    message = validate_workbook(book, lang="zh")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "message": message, "imports": imports, "phases": phases}


def _time_phases() -> dict[str, float]:
    """Time what the action spends where: the file layer's calls and the rules (check_sheet)."""
    from crmsync import actions
    from crmsync.book_file import FileBook

    spent: dict[str, float] = {"open": 0.0}

    def timed(owner, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(FileBook, "read_table", "read")
    timed(actions, "check_sheet", "rules")
    for name in ("marked_cells", "mark_cells", "write_cells", "replace_report"):
        timed(FileBook, name, "collect")
    timed(FileBook, "save", "save")
    return spent


def run_child(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--step", kind, str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--step", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(step(*args.step), ensure_ascii=False))
        return
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "bench.xlsm"
        t = time.perf_counter()
        bad = build(source, args.rows)
        print(f"built {args.rows:,} rows ({bad:,} bad cells) in {time.perf_counter() - t:.1f} s, "
              f"{source.stat().st_size / 1e6:.1f} MB")
        results: dict[str, list[dict]] = {"calamine": [], "validate": [], "revalidate": []}
        for _ in range(args.repeat):
            results["calamine"].append(run_child("calamine", source))
            work = Path(shutil.copy(source, Path(tmp) / "work.xlsm"))
            results["validate"].append(run_child("validate", work))
            results["revalidate"].append(run_child("revalidate", work))
        print(f"\n{'step':<12}{'median s':>10}{'rows/s':>12}{'peak MB':>10}{'× calamine':>12}")
        ref = statistics.median(r["seconds"] for r in results["calamine"])
        for kind, runs in results.items():
            sec = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            print(f"{kind:<12}{sec:>10.2f}{args.rows / sec:>12,.0f}{peak:>10.0f}{sec / ref:>12.2f}")
        print("\nruns (s): " + "; ".join(f"{k} " + ", ".join(f"{r['seconds']:.2f}" for r in v) for k, v in results.items()))
        phases = {k: statistics.median(r["phases"].get(k, 0.0) for r in results["validate"])
                  for k in ("open", "read", "rules", "collect", "save")}
        print("validate, where the time goes (medians, s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
              + "  — open: the file's safety check; read: calamine + rows; rules: actions.check_sheet;"
              " collect: marks/report handed to the seam; save: the one write")
        print(f"message: {results['validate'][-1]['message']}")
        print(f"imports before the timed part (crmsync.actions, .validate, .build_sheets): "
              f"{statistics.median(r['imports'] for r in results['validate']):.2f} s")
        ratio = statistics.median(r["seconds"] for r in results["validate"]) / ref
        print(f"goal: validate ≤ {GOAL:.0f}× calamine — {'met' if ratio <= GOAL else 'NOT met'} ({ratio:.2f}×)")


if __name__ == "__main__":
    main()
