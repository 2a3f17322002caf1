"""Importing a legacy 客户 file end to end, against python-calamine just reading it (same run).

Goal (issue 5): importing a 100,000-row file end to end takes ≤ 6× the time python-calamine needs
just to read it.

The file (.xlsx, written with XlsxWriter, bench-only): a title row and an export-date row above a
header of shuffled Chinese synonyms (公司名称, 联系电话, 地址, 微信号…), N rows from
bench/common.py customer_rows with what legacy files do: mobiles as numbers (13812345678.0),
list values as Chinese labels or synonyms, first-deal dates as Excel dates or text in three
formats, the whole address in one cell, a column no field knows, and ~1% bad cells (short mobiles,
emails without a domain, impossible dates).

Steps, each in its own process (so peak memory is the step's own), alternated round by round,
medians reported:

- calamine: ``CalamineWorkbook.from_path(path).get_sheet_by_name(...).to_python()`` — the reference;
- import: ``plan_import`` (safety check, read, header match, address split, validation, duplicate
  check) + ``apply_import`` into a fresh SQLite store (one transaction, audit entries) +
  ``write_error_workbook`` for the bad rows.  Library imports happen before the clock starts.

Both wall-clock and CPU time of each step's process are reported: on a machine shared with other
work the wall clock also measures the neighbours (a 4-second read took 3–10 s in one run), while
the CPU time a step spends is its own; the goal is stated on wall time, the CPU ratio says whether
a miss is the code's or the machine's.

Run: .venv/bin/python bench/bench_import.py [--rows 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import customer_rows, peak_rss_mb  # noqa: E402

SHEET = "客户资料"
GOAL = 6.0
HEADER = ["联系电话", "公司名称", "客户级别", "地址", "首次合作日期", "状态", "邮箱", "微信号", "行业",
          "联系人", "来源", "统一社会信用代码", "备注", "标签", "流失原因"]


def build(path: Path, n: int) -> int:
    """Write the benchmark file; return the number of bad cells put in."""
    import xlsxwriter

    from crmsync.enums import Enums
    from crmsync.lookup import name_key

    enums = Enums.seed()
    rnd = random.Random(5)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet(SHEET)
    dates = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, ["2023年客户资料汇总（导出）"])
    ws.write_row(1, 0, ["导出时间：2023-12-31"])
    ws.write_row(3, 0, HEADER)
    bad = 0
    day0 = datetime(2015, 1, 1)
    seen: set[str] = set()
    for i, c in enumerate(customer_rows(n)):
        if name_key(c["customer_name"]) in seen:  # the demo generator repeats names (up to legal suffixes)
            c["customer_name"] = f"{c['customer_name'][:2]}{i}号{c['customer_name'][2:]}"
        seen.add(name_key(c["customer_name"]))
        r = 4 + i
        deal = day0 + timedelta(days=rnd.randrange(3000))
        style = rnd.randrange(4)
        mobile = float(c["mobile"]) if c.get("mobile") else None
        email = c.get("email")
        deal_text = None
        x = rnd.random()
        if x < 0.005 and mobile:
            mobile = float(str(int(mobile))[:8])
            bad += 1
        elif x < 0.008 and email:
            email = email.split("@")[0] + "@"
            bad += 1
        elif x < 0.01:
            deal_text = "2023-02-30"
            bad += 1
        address = "".join(v for v in (c.get("province"), c.get("city"), c.get("address")) if v)
        values = [mobile, c["customer_name"], enums.label("customer_level", c.get("customer_level")),
                  address, None, enums.label("customer_status", c.get("status")).removesuffix("客户"),
                  email, f"wx{i:06d}", enums.label("industry", c.get("industry")), c.get("contact_name"),
                  enums.label("source", c.get("source")), c.get("credit_code"), c.get("remark"), c.get("tags"),
                  enums.label("lost_reason", c.get("lost_reason")) or None]
        ws.write_row(r, 0, values)
        if deal_text is not None:
            ws.write_string(r, 4, deal_text)
        elif style == 0:
            ws.write_datetime(r, 4, deal, dates)
        else:
            ws.write_string(r, 4, deal.strftime(("%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d")[style - 1]))
    wb.close()
    return bad


def step(kind: str, path: str, tmp: str) -> dict:
    """One measured step in this process; returns seconds, peak memory and what it saw."""
    if kind == "calamine":
        from python_calamine import CalamineWorkbook

        start, cpu = time.perf_counter(), time.process_time()
        book = CalamineWorkbook.from_path(path)
        grid = book.get_sheet_by_name(SHEET).to_python()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "cpu": time.process_time() - cpu, "peak_mb": peak_rss_mb(), "rows": len(grid)}
    from crmsync import clock

    t = time.perf_counter()
    from crmsync.address import split_addresses

    split_addresses(["浙江省杭州市西湖区文三路100号"])  # cpca loads its division table once per process
    try:
        import crmsync.dedupe  # noqa: F401  (the duplicate engine the import calls, when present)
    except ImportError:
        pass
    import xlsxwriter  # noqa: F401  (the error workbook's writer: a library import, like calamine's)

    from crmsync.importer import apply_import, plan_import, write_error_workbook
    from crmsync.store import Store

    imports = time.perf_counter() - t
    clock.set_now("2024-05-21 10:00:00")
    store = Store(Path(tmp) / f"bench-{time.time_ns()}.db", create=True)
    phases: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:  # time spent per stage
        now = time.perf_counter()
        if progress.last is not None:
            phases[progress.last[0]] = phases.get(progress.last[0], 0.0) + now - progress.last[1]
        progress.last = (stage, now)

    progress.last = None
    start, cpu = time.perf_counter(), time.process_time()
    plan = plan_import(store, path, progress=progress)
    result = apply_import(store, plan, progress=progress)
    progress("errors", 0, 1)
    write_error_workbook(plan, Path(tmp) / "errors.xlsx")
    progress("done", 0, 1)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    store.close()
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak_rss_mb(), "imported": len(result.ids),
            "invalid": len(plan.bad_rows), "duplicates": len(plan.duplicates), "imports": imports,
            "phases": phases}


def run_child(kind: str, path: Path, tmp: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--step", kind, str(path), tmp], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--step", nargs=3, metavar=("KIND", "PATH", "TMP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(step(*args.step), ensure_ascii=False))
        return
    print(f"{'rows':>8}{'step':>10}{'median s':>10}{'rows/s':>10}{'peak MB':>9}{'× calamine':>12}"
          f"{'CPU s':>8}{'CPU ×':>8}")
    verdicts = []
    for n in args.rows:
        with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
            source = Path(tmp) / "legacy.xlsx"
            t = time.perf_counter()
            bad = build(source, n)
            built = f"built {n:,} rows ({bad:,} bad cells) in {time.perf_counter() - t:.1f} s, " \
                    f"{source.stat().st_size / 1e6:.1f} MB"
            results: dict[str, list[dict]] = {"calamine": [], "import": []}
            for _ in range(args.repeat):
                for kind in results:
                    results[kind].append(run_child(kind, source, tmp))
        ref = statistics.median(r["seconds"] for r in results["calamine"])
        ref_cpu = statistics.median(r["cpu"] for r in results["calamine"])
        for kind, runs in results.items():
            sec = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            print(f"{n:>8,}{kind:>10}{sec:>10.2f}{n / sec:>10,.0f}{peak:>9.0f}{sec / ref:>12.2f}"
                  f"{cpu:>8.2f}{cpu / ref_cpu:>8.2f}")
        last = results["import"][-1]
        phases = {k: statistics.median(r["phases"].get(k, 0.0) for r in results["import"])
                  for k in ("read", "address", "validate", "duplicates", "write", "errors")}
        print(f"         {built}; imported {last['imported']:,}, rows with problems {last['invalid']:,}, "
              f"duplicates held back {last['duplicates']:,}")
        print("         import, where the time goes (medians, s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
              + f"; library imports and cpca's table before the clock {statistics.median(r['imports'] for r in results['import']):.2f} s")
        print("         runs (s): " + "; ".join(f"{k} " + ", ".join(f"{r['seconds']:.2f}" for r in v)
                                         for k, v in results.items()))
        ratio = statistics.median(r["seconds"] for r in results["import"]) / ref
        cpu_ratio = statistics.median(r["cpu"] for r in results["import"]) / ref_cpu
        verdicts.append(f"{n:,}: {ratio:.2f}× (CPU time {cpu_ratio:.2f}×)")
    print(f"goal: import ≤ {GOAL:.0f}× calamine read — " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
