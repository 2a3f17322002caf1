"""Workbook file benchmark: write 100,000 customer rows into a finished workbook and read them back.

Measured side by side, each step in its own process (so peak memory is that step's own):
- write: replace_sheet_rows of the customer sheet (part swap, lossless for the rest);
- openpyxl write: the same rows into a new file with openpyxl write-only — the bare library
  reference for writing (and it could not keep the rest of a finished workbook);
- update: update_cells of 1,000 scattered cells in the written 100,000-row sheet;
- check: check_package alone (what every read and write pays first);
- read: read_sheet (check + python-calamine + error cells + header/rows);
- calamine: python-calamine alone reading the same sheet — the reference (no safety check);
- openpyxl read: openpyxl read-only, values only, the same sheet — the other bare reference.

Goal (notes/performance.md): the part swap at ≥ ~15,000 rows/s; reading within ~1.5× of bare calamine.

Run: .venv/bin/python bench/bench_workbook.py [N] [--no-openpyxl]
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import customer_rows, peak_rss_mb  # noqa: E402

from crmsync.schema import CUSTOMER  # noqa: E402

SHEET = "客户"
EXTRA = ["变更原因", "自定义1", "自定义2", "自定义3", "自定义4", "自定义5"]


def header() -> list[str]:
    return [f.zh for f in CUSTOMER.fields] + EXTRA


def rows(n: int) -> list[list[object]]:
    """n customer rows of about 40 columns: Chinese text, codes with leading zeros, dates, numbers."""
    rnd = random.Random(7)
    base = dt.datetime(2024, 5, 21, 9, 30)
    out = []
    for i, c in enumerate(customer_rows(n)):
        c = dict(c)
        c["customer_id"] = f"C{20240521_00000 + i}"
        c["first_deal_date"] = (base - dt.timedelta(days=rnd.randint(0, 2000))).date()
        c["total_amount"] = round(rnd.uniform(0, 1e6), 2)
        c["next_follow_up"] = base + dt.timedelta(days=rnd.randint(0, 60), minutes=rnd.randint(0, 600))
        c["created_at"] = c["updated_at"] = base
        c["created_by"] = c["updated_by"] = "admin"
        c["version"] = 1
        c["deleted"] = False
        c["phone"] = f"0755-{rnd.randint(10000000, 99999999)}"
        row = [c.get(f.key) for f in CUSTOMER.fields]
        row += [None, f"{rnd.randint(0, 999):06d}", "备注文字" * rnd.randint(0, 5), rnd.randint(0, 100), None, "是"]
        out.append(row)
    return out


def base_workbook(path: Path) -> Path:
    """A finished-looking workbook: styled header, one styled data row, a table, a validation."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.worksheet.table import Table

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws.append(header())
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.append(rows(1)[0])
    for cell in ws[2]:
        if isinstance(cell.value, dt.datetime):
            cell.number_format = "yyyy-mm-dd hh:mm"
        elif isinstance(cell.value, dt.date):
            cell.number_format = "yyyy-mm-dd"
        elif isinstance(cell.value, str):
            cell.number_format = "@"
    last = ws.cell(1, len(header())).column_letter
    ws.add_table(Table(displayName="customers", ref=f"A1:{last}2"))
    dv = DataValidation(type="list", formula1='"是,否"')
    dv.add(f"{last}2:{last}2")
    ws.add_data_validation(dv)
    other = wb.create_sheet("跟进记录")
    other.append(["跟进编号", "客户编号", "跟进内容"])
    wb.save(path)
    return path


def phase(name: str, path: str, n: int) -> dict:
    """Run one measured step in this process; return seconds and peak memory."""
    if name == "write":
        data = rows(n)
        from crmsync.workbook import replace_sheet_rows

        start = time.perf_counter()
        replace_sheet_rows(path, SHEET, data)
    elif name == "check":
        from crmsync.workbook import check_package

        start = time.perf_counter()
        check_package(path)
    elif name == "read":
        from crmsync.workbook import read_sheet

        start = time.perf_counter()
        got = read_sheet(path, SHEET)
        assert len(got.rows) == n, len(got.rows)
    elif name == "calamine":
        from python_calamine import CalamineWorkbook

        start = time.perf_counter()
        got = CalamineWorkbook.from_path(path).get_sheet_by_name(SHEET).to_python(skip_empty_area=False)
        assert len(got) == n + 1, len(got)
    elif name == "openpyxl_read":
        from openpyxl import load_workbook

        start = time.perf_counter()
        book = load_workbook(path, read_only=True)
        got = list(book[SHEET].iter_rows(values_only=True))
        book.close()
        assert len(got) == n + 1, len(got)
    elif name == "openpyxl_write":
        data = rows(n)
        from openpyxl import Workbook

        start = time.perf_counter()
        book = Workbook(write_only=True)
        sheet = book.create_sheet(SHEET)
        sheet.append(header())
        for row in data:
            sheet.append(row)
        book.save(path + ".openpyxl.xlsx")
    elif name == "update":
        step = max(n // 1000, 1)
        cells = {(2 + i, 2 + i % 30): f"改{i}" for i in range(0, n, step)}
        from crmsync.workbook import update_cells

        start = time.perf_counter()
        update_cells(path, SHEET, cells)
    else:
        start = time.perf_counter()
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb()}


def run(name: str, path: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, str(path), str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n: int = 100_000, with_openpyxl: bool = True) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="crmsync-bench-wb-"))
    try:
        path = base_workbook(folder / "crm.xlsx")
        results = {"idle": run("idle", path, n)}
        results["write"] = run("write", path, n)
        size = path.stat().st_size
        names = ["check", "read", "calamine"] + (["openpyxl_read", "openpyxl_write"] if with_openpyxl else [])
        for name in names + ["update"]:
            results[name] = run(name, path, n)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{n:,} rows × {len(header())} columns; file {size / 1e6:.1f} MB; "
          f"idle interpreter {results['idle']['peak_mb']:.0f} MB")
    print(f"{'step':<38}{'seconds':>9}{'rows/s':>10}{'peak MB':>9}")
    labels = {"write": "write (replace_sheet_rows)", "openpyxl_write": "openpyxl write-only, new file (ref.)",
              "update": "update_cells, 1,000 cells", "check": "check_package only",
              "read": "read (read_sheet, checked)", "calamine": "python-calamine alone (reference)",
              "openpyxl_read": "openpyxl read-only (reference)"}
    for name, label in labels.items():
        if name in results:
            r = results[name]
            print(f"{label:<38}{r['seconds']:>9.2f}{n / r['seconds']:>10,.0f}{r['peak_mb']:>9.0f}")
    ratio = {"read / calamine": ("read", "calamine"), "check / calamine": ("check", "calamine"),
             "read / openpyxl read-only": ("read", "openpyxl_read"),
             "write / openpyxl write-only": ("write", "openpyxl_write")}
    for label, (a, b) in ratio.items():
        if a in results and b in results:
            print(f"{label}: {results[a]['seconds'] / results[b]['seconds']:.2f}×")
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        print(json.dumps(phase(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        args = [a for a in sys.argv[1:] if not a.startswith("--")]
        main(int(args[0]) if args else 100_000, with_openpyxl="--no-openpyxl" not in sys.argv)
